package httpapi

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
)

// The docs page is self-contained: its script and style are inlined and
// allowed by hash, so its Content-Security-Policy permits exactly them plus
// fetching /openapi.json from the same origin. No CDN is contacted (none is
// reachable from CI, and a third-party script would be a supply-chain risk
// on a page served by the API's own origin).
var (
	//go:embed docs/docs.js
	docsJS string
	//go:embed docs/docs.css
	docsCSS string
)

type docsPage struct {
	html string
	csp  string
}

var docs = sync.OnceValue(func() docsPage {
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	var b strings.Builder
	b.WriteString("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
	b.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	b.WriteString("<title>glasshouse API</title>\n<style>")
	b.WriteString(docsCSS)
	b.WriteString("</style></head>\n<body><main id=\"api\"><noscript>This page needs JavaScript; the raw document is at <a href=\"/openapi.json\">/openapi.json</a>.</noscript></main>\n<script>")
	b.WriteString(docsJS)
	b.WriteString("</script></body></html>\n")
	return docsPage{
		html: b.String(),
		csp: "default-src 'none'; script-src " + hash(docsJS) + "; style-src " + hash(docsCSS) +
			"; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
	}
})

func handleDocs() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := docs()
		h := w.Header()
		h.Set("Content-Security-Policy", p.csp)
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(p.html))
	})
}
