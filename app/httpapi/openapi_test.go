package httpapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type patternRecorder []string

func (p *patternRecorder) Handle(pattern string, _ http.Handler) { *p = append(*p, pattern) }

// TestOpenAPICoversEveryRoute compares the registered patterns with the
// document's operations, both ways.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	f := newFixture(t)
	var rec patternRecorder
	addRoutes(&rec, f.srv)
	var registered, documentedOps []string
	for _, p := range rec {
		// A ServeMux wildcard {x...} is the OpenAPI path parameter {x}.
		registered = append(registered, strings.ReplaceAll(p, "...}", "}"))
	}
	w := f.do(t, req{method: "GET", path: "/openapi.json"})
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			documentedOps = append(documentedOps, strings.ToUpper(method)+" "+path)
			var op struct {
				OperationID string                     `json:"operationId"`
				Responses   map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil || op.OperationID == "" || len(op.Responses) == 0 {
				t.Errorf("%s %s: operationId %q, %d responses (%v)", method, path, op.OperationID, len(op.Responses), err)
			}
			for code, resp := range op.Responses {
				if code[0] >= '4' && !strings.Contains(string(resp), "application/problem+json") {
					t.Errorf("%s %s %s: error response is not problem+json", method, path, code)
				}
			}
		}
	}
	slices.Sort(registered)
	slices.Sort(documentedOps)
	if !slices.Equal(registered, documentedOps) {
		t.Errorf("registered routes and documented operations differ:\nregistered: %v\ndocumented: %v", registered, documentedOps)
	}
	// Every $ref resolves.
	var full map[string]any
	json.Unmarshal(w.Body.Bytes(), &full)
	for _, ref := range regexp.MustCompile(`"\$ref":\s*"#/components/(\w+)/([\w-]+)"`).FindAllStringSubmatch(w.Body.String(), -1) {
		if _, ok := full["components"].(map[string]any)[ref[1]].(map[string]any)[ref[2]]; !ok {
			t.Errorf("dangling $ref %s/%s", ref[1], ref[2])
		}
	}
}

// TestDocsPages: /docs (Swagger UI) and /redoc load only same-origin files
// that the API serves, under a CSP without 'unsafe-inline' scripts; the
// pinned libraries ship with their licences. TestDocsInChromium proves the
// pages work in a browser.
func TestDocsPages(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ path, lib string }{
		{"/docs", "/docs/assets/swagger-ui/swagger-ui-bundle.js"},
		{"/redoc", "/docs/assets/redoc/redoc.standalone.js"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := f.do(t, req{method: "GET", path: tc.path})
			if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
				t.Fatalf("GET %s: %d %s", tc.path, w.Code, w.Header().Get("Content-Type"))
			}
			if csp := w.Header().Get("Content-Security-Policy"); csp != docsCSP {
				t.Errorf("CSP %q, want %q", csp, docsCSP)
			}
			page := w.Body.String()
			if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(page) || strings.Contains(page, "<script>") {
				t.Errorf("the page loads from another origin or inlines a script:\n%s", page)
			}
			refs := regexp.MustCompile(`(?:src|href)="(/[^"]*)"`).FindAllStringSubmatch(page, -1)
			if !slices.ContainsFunc(refs, func(m []string) bool { return m[1] == tc.lib }) {
				t.Errorf("the page does not load %s", tc.lib)
			}
			for _, m := range refs {
				a := f.do(t, req{method: "GET", path: m[1]})
				if a.Code != 200 || a.Body.Len() == 0 {
					t.Errorf("GET %s (linked from %s): %d, %d bytes", m[1], tc.path, a.Code, a.Body.Len())
				}
			}
		})
	}
	for _, lic := range []string{"/docs/assets/swagger-ui/LICENSE", "/docs/assets/redoc/LICENSE"} {
		if w := f.do(t, req{method: "GET", path: lic}); w.Code != 200 || !strings.Contains(w.Body.String(), "License") {
			t.Errorf("GET %s: %d, want the licence", lic, w.Code)
		}
	}
	for _, missing := range []string{"/docs/assets/nope.js", "/docs/assets/swagger-ui/", "/docs/assets/redoc"} {
		if w := f.do(t, req{method: "GET", path: missing}); w.Code != 404 {
			t.Errorf("GET %s: %d, want 404 (no file, no directory listing)", missing, w.Code)
		}
	}
	if w := f.do(t, req{method: "GET", path: "/docs/assets/swagger-ui/swagger-ui.css"}); !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Errorf("swagger-ui.css Content-Type %q, want text/css", w.Header().Get("Content-Type"))
	}
}
