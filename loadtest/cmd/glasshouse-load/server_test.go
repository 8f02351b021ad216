package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/glasshouse-dev/glasshouse/loadtest"
)

// instrumentedServer starts a loopback server that records every request
// it serves in a real client_golang histogram named as the API's, and
// serves it on a separate metrics listener. skip says
// which requests the server leaves unrecorded (a server whose metrics
// under-count).
func instrumentedServer(t *testing.T, status int, skip func(n int64) bool) (target, metrics string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: serverMetric,
		// One 10 s bucket: the client's p99 on a busy machine must not
		// decide this test (no timing assertion in go test); the
		// one-bucket tolerance is tested on fixed values below.
		Buckets: []float64{10},
	}, []string{"method", "route", "code"})
	reg.MustRegister(h)
	var n atomic.Int64
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, "ok")
		if !skip(n.Add(1)) {
			h.WithLabelValues(r.Method, "/", strconv.Itoa(status)).Observe(0.001)
		}
	})
	serve := func(h http.Handler) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return "http://" + ln.Addr().String()
	}
	return serve(app), serve(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})) + "/metrics"
}

func TestServerMetricsAgreeWithTheClient(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		skip    func(int64) bool
		wantErr error
		// check gets the completed requests and 5xx of the client and
		// the server as printed.
		check func(client, server, client5xx, server5xx int) bool
	}{
		{"agree", 200, func(int64) bool { return false }, nil,
			func(c, s, c5, s5 int) bool { return c > 0 && c == s && c5 == 0 && s5 == 0 }},
		{"5xx counted on both sides", 503, func(int64) bool { return false }, nil,
			func(c, s, c5, s5 int) bool { return c > 0 && c == s && c5 == c && s5 == s }},
		{"server misses requests", 200, func(n int64) bool { return n%10 == 0 }, errServerDisagrees,
			func(c, s, c5, s5 int) bool { return c >= 10 && s < c }},
	}
	row := regexp.MustCompile(`completed requests\s+(\d+)\s+(\d+)[\s\S]*5xx responses\s+(\d+) \([^)]*\)\s+(\d+) `)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, metrics := instrumentedServer(t, tt.status, tt.skip)
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{"glasshouse-load", "-url", target, "-rate", "40", "-vus", "2", "-duration", "1s",
				"-server-metrics", metrics}, env(map[string]string{"CI": "1"}), nil, &stdout, &stderr)
			wantCode := 0
			if tt.wantErr != nil {
				wantCode = 1
			}
			if !errors.Is(err, tt.wantErr) || loadtest.ExitCode(err) != wantCode {
				t.Fatalf("err = %v (exit %d), want %v (exit %d)\n%s", err, loadtest.ExitCode(err), tt.wantErr, wantCode, stdout.String())
			}
			m := row.FindStringSubmatch(stdout.String())
			if m == nil {
				t.Fatalf("no CLIENT vs SERVER rows in:\n%s", stdout.String())
			}
			n := make([]int, 4)
			for i := range n {
				n[i], _ = strconv.Atoi(m[i+1])
			}
			if !tt.check(n[0], n[1], n[2], n[3]) {
				t.Errorf("client %d (5xx %d), server %d (5xx %d): not what %q expects\n%s", n[0], n[2], n[1], n[3], tt.name, stdout.String())
			}
			if agree := strings.Contains(stdout.String(), "✓ client and server agree"); agree != (tt.wantErr == nil) {
				t.Errorf("agreement line printed = %v, want %v", agree, tt.wantErr == nil)
			}
		})
	}
}

func TestMinRequests(t *testing.T) {
	target, _ := instrumentedServer(t, 200, func(int64) bool { return false })
	err := run(t.Context(), []string{"glasshouse-load", "-url", target, "-rate", "20", "-vus", "1", "-duration", "1s",
		"-min-requests", "1000", "-quiet"}, env(nil), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "requests completed, fewer than -min-requests 1000") || loadtest.ExitCode(err) != 1 {
		t.Errorf("err = %v (exit %d), want a -min-requests failure", err, loadtest.ExitCode(err))
	}
}

func TestServerViewQuantileBucket(t *testing.T) {
	v := serverView{requests: 100, bounds: []float64{0.005, 0.01, 0.025, 0.05, 0.1}, counts: []uint64{90, 98, 99, 100, 100}}
	tests := []struct {
		q    float64
		want int
	}{{0.5, 0}, {0.9, 0}, {0.95, 1}, {0.99, 2}, {1, 3}}
	for _, tt := range tests {
		if got := v.quantileBucket(tt.q); got != tt.want {
			t.Errorf("quantileBucket(%v) = %d, want %d", tt.q, got, tt.want)
		}
	}
	for s, want := range map[float64]int{0.001: 0, 0.005: 0, 0.0051: 1, 0.02: 2, 1: 5} {
		if got := v.bucketOf(s); got != want {
			t.Errorf("bucketOf(%v) = %d, want %d", s, got, want)
		}
	}
	var buf bytes.Buffer
	err := compareViews(&buf, clientView{completed: 100, p99: 0.2}, v)
	if !errors.Is(err, errServerDisagrees) || !strings.Contains(err.Error(), "more than one bucket apart") {
		t.Errorf("p99 three buckets apart: err = %v", err)
	}
}
