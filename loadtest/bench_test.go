package loadtest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkRequest measures the engine's own cost per request (a VU's
// request plus its metrics) against a loopback server, with and without
// the per-request trace. Compare allocations with net/http's bare client in
// BenchmarkBareClient.
func BenchmarkRequest(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	for _, phases := range []bool{true, false} {
		name := "phases"
		if !phases {
			name = "no-phases"
		}
		b.Run(name, func(b *testing.B) {
			rn, err := New(Test{
				Scenarios: []Scenario{{Name: "s", Executor: PerVUIterations{VUs: 1, Iterations: 1},
					Exec: func(ctx context.Context, vu *VU) error {
						p := &Params{Discard: true}
						b.ReportAllocs()
						b.ResetTimer()
						for b.Loop() {
							vu.Get(ctx, srv.URL, p)
						}
						return nil
					}}},
				Options: Options{NoHTTPPhases: !phases},
			}, RunOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := rn.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkBareClient(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 10}, Timeout: time.Minute}
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}
