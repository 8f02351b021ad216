package httpapi

import (
	"bytes"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// The interactive documentation is Swagger UI at /docs and ReDoc at /redoc,
// both served by the API itself from files embedded in the binary: the
// pinned npm releases fetched by docs/fetch-assets.sh (licences beside
// them), plus one small same-origin init script each. ReDoc is the 2.x line,
// the one FastAPI serves: 3.x reports telemetry to a third-party host and
// loads its logo from a CDN, which this page's CSP would block. No CDN is contacted:
// none is reachable from an air-gapped cluster, and third-party script on
// the API's own origin would be a supply-chain risk.
//
//go:embed docs/swagger-ui docs/redoc docs/swagger-init.js docs/redoc-init.js
var docsFiles embed.FS

// docsCSP allows exactly what the two UIs need: their scripts and styles
// from this origin, inline style attributes (both set element styles at run
// time, and ReDoc injects <style> elements), images as data: URIs (icons),
// fetching /openapi.json and sending try-it-out requests to this origin,
// and ReDoc's search worker, which it starts from a blob: URL.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

const swaggerPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>glasshouse API: Swagger UI</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui/swagger-ui.css">
</head><body>
<div id="swagger-ui"><noscript>This page needs JavaScript; the raw document is at <a href="/openapi.json">/openapi.json</a>.</noscript></div>
<script src="/docs/assets/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-init.js"></script>
</body></html>
`

const redocPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>glasshouse API: ReDoc</title>
</head><body>
<div id="redoc"><noscript>This page needs JavaScript; the raw document is at <a href="/openapi.json">/openapi.json</a>.</noscript></div>
<script src="/docs/assets/redoc/redoc.standalone.js"></script>
<script src="/docs/assets/redoc-init.js"></script>
</body></html>
`

// handlePage serves one of the documentation pages under docsCSP.
func handlePage(page string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	})
}

func handleDocs() http.Handler  { return handlePage(swaggerPage) }
func handleRedoc() http.Handler { return handlePage(redocPage) }

// handleDocsAssets serves the embedded files under /docs/assets/. They
// change only with the binary, so browsers may keep them for a day.
// Clients that accept gzip get a copy compressed once, on the first such
// request, at the best ratio: compressing the 1.7 MB Swagger UI bundle
// costs tens of milliseconds of CPU, which on every request would make
// /docs an amplifier (the compress middleware passes an encoded body
// through untouched).
func handleDocsAssets() http.Handler {
	sub, err := fs.Sub(docsFiles, "docs")
	if err != nil {
		panic(err) // start-up invariant: the embedded directory exists
	}
	files := http.StripPrefix("/docs/assets/", http.FileServerFS(sub))
	gz := map[string]*gzipOnce{}
	fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			gz[p] = &gzipOnce{}
		}
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only regular files: a missing one, or a directory (which the
		// file server would list), is an ordinary problem+json 404.
		name := r.PathValue("file")
		st, err := fs.Stat(sub, name)
		if err != nil || st.IsDir() {
			writeProblem(w, r, Problem{Status: http.StatusNotFound, Code: "not_found", Detail: "no such documentation file"})
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "public, max-age=86400")
		if g := gz[name]; g != nil && st.Size() >= CompressMinBytes && r.Header.Get("Range") == "" && acceptsGzip(r.Header) {
			body, err := g.get(sub, name)
			if err == nil {
				if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
					h.Set("Content-Type", ct)
				} else {
					h.Set("Content-Type", "text/plain; charset=utf-8")
				}
				h.Set("Content-Encoding", "gzip")
				if !slices.Contains(h.Values("Vary"), "Accept-Encoding") {
					h.Add("Vary", "Accept-Encoding")
				}
				h.Set("Content-Length", strconv.Itoa(len(body)))
				w.Write(body)
				return
			}
		}
		files.ServeHTTP(w, r)
	})
}

// gzipOnce holds one file's gzip-compressed copy, made on first use.
type gzipOnce struct {
	once sync.Once
	body []byte
	err  error
}

func (g *gzipOnce) get(fsys fs.FS, name string) ([]byte, error) {
	g.once.Do(func() {
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			g.err = err
			return
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level: no error
		zw.Write(raw)
		if g.err = zw.Close(); g.err == nil {
			g.body = buf.Bytes()
		}
	})
	return g.body, g.err
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip
// (named, or "*", without q=0).
func acceptsGzip(h http.Header) bool {
	for _, v := range h.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "x-gzip" && coding != "*" {
				continue
			}
			q := 1.0
			if k, val, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					q = f
				}
			}
			return q > 0
		}
	}
	return false
}
