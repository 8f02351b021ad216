package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// rawGet sends a request with the given Accept-Encoding through a
// transport that does not decompress, and returns the response with its
// raw body.
func rawGet(t *testing.T, method, url, acceptEncoding, token string) (*http.Response, []byte) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)
	r, _ := http.NewRequestWithContext(t.Context(), method, url, nil)
	if acceptEncoding != "" {
		r.Header.Set("Accept-Encoding", acceptEncoding)
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

func varies(h http.Header) bool {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Accept-Encoding") {
				return true
			}
		}
	}
	return false
}

// TestCompressionOverHTTP fetches real routes through the whole chain
// with and without Accept-Encoding: gzip. Bodies of at least 1 KiB (the
// OpenAPI document, the docs page's script) come gzip-compressed and
// decompress to the plain body; small bodies and 204s are sent as they
// are; every response varies on Accept-Encoding.
func TestCompressionOverHTTP(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	_, token := f.signup(t, "zipper")
	item := f.createItem(t, token, "to delete")

	for _, tc := range []struct {
		method, path string
		token        string
		wantGzip     bool
	}{
		{"GET", "/openapi.json", "", true},
		{"GET", "/docs/assets/swagger-ui/swagger-ui-bundle.js", "", true},
		{"GET", "/docs", "", false},        // about 500 bytes of HTML
		{"GET", "/health/live", "", false}, // a few bytes
		{"GET", "/api/v1/users/me", token, false},
		{"HEAD", "/openapi.json", "", false},
		{"DELETE", "/api/v1/items/" + itoa(int(item.ID)), token, false}, // 204
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			// A DELETE can be sent once: its plain twin is a health probe.
			plainMethod, plainPath := tc.method, tc.path
			if tc.method == "DELETE" {
				plainMethod, plainPath = "GET", "/health/live"
			}
			plainResp, plain := rawGet(t, plainMethod, srv.URL+plainPath, "", tc.token)
			resp, body := rawGet(t, tc.method, srv.URL+tc.path, "gzip, deflate, br, zstd", tc.token)
			if resp.StatusCode >= 300 || plainResp.StatusCode >= 300 {
				t.Fatalf("status %d / %d", resp.StatusCode, plainResp.StatusCode)
			}
			if !varies(resp.Header) || !varies(plainResp.Header) {
				t.Errorf("Vary = %q / %q, want Accept-Encoding in both", resp.Header.Values("Vary"), plainResp.Header.Values("Vary"))
			}
			if ce := plainResp.Header.Get("Content-Encoding"); ce != "" {
				t.Errorf("without Accept-Encoding: Content-Encoding %q", ce)
			}
			got := resp.Header.Get("Content-Encoding")
			if !tc.wantGzip {
				if got != "" {
					t.Errorf("Content-Encoding %q, want none (status %d, %d bytes)", got, resp.StatusCode, len(body))
				}
				return
			}
			if got != "gzip" {
				t.Fatalf("Content-Encoding %q, want gzip (%d bytes plain)", got, len(plain))
			}
			if unz := gunzip(t, body); !bytes.Equal(unz, plain) {
				t.Errorf("gunzipped body (%d bytes) differs from the plain one (%d bytes)", len(unz), len(plain))
			}
			if cl := resp.Header.Get("Content-Length"); cl != "" && cl != itoa(len(body)) {
				t.Errorf("Content-Length %s for a %d-byte compressed body", cl, len(body))
			}
			t.Logf("%s: %d -> %d bytes", tc.path, len(plain), len(body))
		})
	}
}

// TestCompressionLeavesEncodedAndBodilessAlone wraps handlers that answer
// 304, a body already encoded with brotli and a large 204 attempt, and
// checks that none of them is (re)compressed.
func TestCompressionLeavesEncodedAndBodilessAlone(t *testing.T) {
	big := strings.Repeat("x", 4*CompressMinBytes)
	mux := http.NewServeMux()
	mux.HandleFunc("/not-modified", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusNotModified)
	})
	mux.HandleFunc("/encoded", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "br")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, big) // stands in for a brotli body
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"x": big})
	})
	srv := httptest.NewServer(compress(mux))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		path     string
		wantCode int
		wantCE   []string
	}{
		{"/not-modified", 304, nil},
		{"/encoded", 200, []string{"br"}},
		{"/plain", 200, []string{"gzip"}},
	} {
		resp, body := rawGet(t, "GET", srv.URL+tc.path, "gzip", "")
		if resp.StatusCode != tc.wantCode || !slices.Equal(resp.Header.Values("Content-Encoding"), tc.wantCE) {
			t.Errorf("%s: %d Content-Encoding %q, want %d %q", tc.path, resp.StatusCode, resp.Header.Values("Content-Encoding"), tc.wantCode, tc.wantCE)
		}
		if tc.path == "/encoded" && string(body) != big {
			t.Errorf("%s: body changed (%d bytes)", tc.path, len(body))
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false},
		{"gzip", true},
		{"br, GZIP;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.0, br", false},
		{"identity", false},
		{"*", true},
		{"x-gzip", true},
	} {
		h := http.Header{}
		if tc.in != "" {
			h.Set("Accept-Encoding", tc.in)
		}
		if got := acceptsGzip(h); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// BenchmarkCompress measures what the compress middleware costs per
// response, against the same handler without it, for three bodies: a
// small JSON item (below the threshold: passed through), the OpenAPI
// document (64 KiB, compressed per response) and the docs page's script
// bundle (1.7 MiB, compressed once and then served from memory), each
// requested with and without Accept-Encoding: gzip. docs/performance.md
// quotes it.
func BenchmarkCompress(b *testing.B) {
	item := []byte(`{"id":1,"owner_id":1,"name":"benchmark item","description":"d","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`)
	small := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(item)
	})
	assets := handleDocsAssets()
	bundle := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.SetPathValue("file", "swagger-ui/swagger-ui-bundle.js")
		assets.ServeHTTP(w, r)
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
		path string
	}{
		{"item", small, "/api/v1/items/1"},
		{"openapi", handleOpenAPI(), "/openapi.json"},
		{"bundle", bundle, "/docs/assets/swagger-ui/swagger-ui-bundle.js"},
	} {
		for _, mode := range []struct {
			name, accept string
			wrap         bool
		}{{"plain", "", false}, {"wrapped-identity", "", true}, {"wrapped-gzip", "gzip", true}} {
			h := tc.h
			if mode.wrap {
				h = compress(h)
			}
			b.Run(tc.name+"/"+mode.name, func(b *testing.B) {
				r := httptest.NewRequest("GET", tc.path, nil)
				if mode.accept != "" {
					r.Header.Set("Accept-Encoding", mode.accept)
				}
				cw := &countWriter{h: http.Header{}}
				h.ServeHTTP(cw, r) // one-time work (building the document, compressing an asset) is not per response
				b.ReportAllocs()
				for b.Loop() {
					clear(cw.h)
					cw.n = 0
					h.ServeHTTP(cw, r)
				}
				b.ReportMetric(float64(cw.n), "B/resp")
			})
		}
	}
}

// countWriter is a reusable ResponseWriter that counts body bytes.
type countWriter struct {
	h http.Header
	n int
}

func (w *countWriter) Header() http.Header         { return w.h }
func (w *countWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }
func (w *countWriter) WriteHeader(int)             {}
