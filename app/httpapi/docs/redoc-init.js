// Starts ReDoc on /redoc against the API's own /openapi.json. Loaded as a
// same-origin file, so the page's Content-Security-Policy needs no inline
// script.
window.addEventListener("load", function () {
  Redoc.init("/openapi.json", {}, document.getElementById("redoc"));
});
