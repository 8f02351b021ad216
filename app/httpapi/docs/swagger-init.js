// Starts Swagger UI on /docs against the API's own /openapi.json. Loaded as
// a same-origin file, so the page's Content-Security-Policy needs no inline
// script.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayRequestDuration: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
