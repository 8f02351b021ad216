package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/internal/freeport"
)

// TestQuickStartIsTheExample: the quick start at the top of
// telemetry/README.md, also shown in docs/fork.md, is line for line the
// marked block of main.go, so both show code that compiles and runs (this
// service).
func TestQuickStartIsTheExample(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../telemetry/README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)\t// quickstart:begin\n(.*?)\t// quickstart:end\n`).FindSubmatch(src)
	if block == nil {
		t.Fatal("main.go has no quickstart:begin/end block")
	}
	var want strings.Builder
	for line := range strings.Lines(string(block[1])) {
		want.WriteString(strings.TrimPrefix(line, "\t"))
	}
	quick := regexp.MustCompile("(?s)## Quick start\n.*?```go\n(.*?)```").FindSubmatch(readme)
	if quick == nil {
		t.Fatal("telemetry/README.md has no ```go block under ## Quick start")
	}
	if got := string(quick[1]); got != want.String() {
		t.Errorf("telemetry/README.md quick start differs from main.go's quickstart block:\n--- README\n%s--- main.go\n%s", got, want.String())
	}
	guide, err := os.ReadFile("../../docs/fork.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(guide), "```go\n"+want.String()+"```") {
		t.Error("docs/fork.md does not show main.go's quickstart block as it is")
	}
	if n := strings.Count(want.String(), "\n"); n > 30 {
		t.Errorf("quick start is %d lines, want at most 30", n)
	}
}

// syncBuffer is a bytes.Buffer safe for the service's concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return freeport.Addr(t)
}

// TestRun starts the service on loopback and checks what telemetry gives it:
// RED series per route with trace exemplars, system gauges, a traceresponse
// header, log records correlated with the trace, and the fault switch.
func TestRun(t *testing.T) {
	addr, admin := freeAddr(t), freeAddr(t)
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	env := map[string]string{"OTEL_TRACES_EXPORTER": "none"}
	go func() {
		done <- run(ctx, []string{"orders", "-addr", addr, "-admin-addr", admin}, func(k string) string { return env[k] }, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + admin + "/metrics")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin listener not up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	do := func(method, url, body string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	for _, tt := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/orders", `{"item":"tea","quantity":2}`, 201},
		{"GET", "/orders/1", "", 200},
		{"GET", "/orders/2", "", 404},
		{"POST", "/orders", `{"item":""}`, 422},
		{"GET", "/nope", "", 404},
	} {
		res, body := do(tt.method, base+tt.path, tt.body)
		if res.StatusCode != tt.want {
			t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, res.StatusCode, body, tt.want)
		}
	}
	res, _ := do("GET", base+"/orders/1", "")
	tr := strings.Split(res.Header.Get("Traceresponse"), "-")
	if len(tr) != 4 || len(tr[1]) != 32 {
		t.Fatalf("traceresponse = %q", res.Header.Get("Traceresponse"))
	}

	// The fault switch: every request fails, then none does.
	if res, body := do("PUT", "http://"+admin+"/debug/fault?errors=1", ""); res.StatusCode != 200 {
		t.Fatalf("PUT fault = %d %s", res.StatusCode, body)
	}
	if res, _ := do("GET", base+"/orders/1", ""); res.StatusCode != 500 {
		t.Errorf("with errors=1: status %d, want 500", res.StatusCode)
	}
	if res, _ := do("PUT", "http://"+admin+"/debug/fault?errors=2", ""); res.StatusCode != 400 {
		t.Errorf("errors=2: status %d, want 400", res.StatusCode)
	}
	do("PUT", "http://"+admin+"/debug/fault", "")
	if res, _ := do("GET", base+"/orders/1", ""); res.StatusCode != 200 {
		t.Errorf("after clearing: status %d, want 200", res.StatusCode)
	}

	_, metrics := do("GET", "http://"+admin+"/metrics", "", "Accept", "application/openmetrics-text")
	for _, want := range []string{
		`http_server_request_duration_seconds_count{code="201",method="POST",route="/orders"} 1`,
		`http_server_request_duration_seconds_count{code="500",method="GET",route="/orders/{id}"} 1`,
		`http_server_request_duration_seconds_count{code="404",method="GET",route="unmatched"} 1`,
		`trace_id="`,
		"system_memory_total_bytes ",
		"go_goroutines ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// The handler's record and the access record carry the request's trace.
	var created, access bool
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		if rec["trace_id"] == tr[1] && rec["msg"] == "http request" {
			access = true
		}
		if rec["msg"] == "order created" && rec["trace_id"] != nil && rec["request_id"] != nil {
			created = true
		}
	}
	if !created || !access {
		t.Errorf("correlated logs: order created %v, access record of trace %s %v\n%s", created, tr[1], access, logs.String())
	}
}
