package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
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
		registered = append(registered, p)
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

func TestDocsPage(t *testing.T) {
	f := newFixture(t)
	w := f.do(t, req{method: "GET", path: "/docs"})
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	page := w.Body.String()
	if !strings.Contains(page, `fetch("/openapi.json")`) {
		t.Error("the docs page does not load /openapi.json")
	}
	if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(page) {
		t.Error("the docs page loads something from another origin")
	}
	csp := w.Header().Get("Content-Security-Policy")
	sum := sha256.Sum256([]byte(docsJS))
	if !strings.Contains(csp, "script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") ||
		!strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("docs CSP %q does not allow exactly its inline script and same-origin fetch", csp)
	}
	if !strings.Contains(page, "<script>"+docsJS+"</script>") {
		t.Error("the inline script differs from the hashed one")
	}
}
