package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTarget(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	mux.HandleFunc("GET /missing", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusServiceUnavailable) })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) { time.Sleep(300 * time.Millisecond) })
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.PathValue("id")) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func tagsOf(t *testing.T, res *Result, metric string) [][]Tag {
	t.Helper()
	var out [][]Tag
	for _, s := range res.reg.snapshot() {
		if s.Metric.Name == metric {
			out = append(out, s.Tags)
		}
	}
	return out
}

func TestHTTPMetricsTagsAndErrors(t *testing.T) {
	srv := newTarget(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String() + "/"
	closed.Close()

	var mu sync.Mutex
	got := map[string]*Response{}
	keep := func(k string, r *Response) {
		mu.Lock()
		got[k] = r
		mu.Unlock()
	}
	res, err := Run(t.Context(), Test{
		Scenarios: []Scenario{{
			Name: "api", Executor: PerVUIterations{VUs: 1, Iterations: 1}, Tags: map[string]string{"team": "sre"},
			Exec: func(ctx context.Context, vu *VU) error {
				keep("ok", vu.Get(ctx, srv.URL+"/ok", nil))
				keep("missing", vu.Get(ctx, srv.URL+"/missing", nil))
				keep("boom", vu.Get(ctx, srv.URL+"/boom", &Params{Tags: map[string]string{"kind": "x"}}))
				keep("slow", vu.Get(ctx, srv.URL+"/slow", &Params{Timeout: 50 * time.Millisecond}))
				keep("refused", vu.Get(ctx, refused, nil))
				keep("echo", vu.Post(ctx, srv.URL+"/echo", []byte(`{"a":1}`), &Params{Header: http.Header{"Content-Type": {"application/json"}}}))
				for _, id := range []string{"1", "2", "3"} {
					vu.Group("items", func() error {
						keep("item"+id, vu.Get(ctx, srv.URL+"/items/"+id, &Params{Name: "/items/{id}"}))
						return nil
					})
				}
				keep("badurl", vu.Get(ctx, "ftp://nope", nil))
				return nil
			},
		}},
		Options: Options{ResponseCallback: ExpectedStatuses(200, 499)},
	}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key    string
		status int
		code   int
		errHas string
	}{
		{"ok", 200, 0, ""}, {"missing", 404, 1404, ""}, {"boom", 503, 1503, ""},
		{"slow", 0, 1050, "timeout"}, {"refused", 0, 1212, "refused"}, {"echo", 200, 0, ""},
		{"item2", 200, 0, ""}, {"badurl", 0, 1020, "invalid URL"},
	}
	for _, c := range checks {
		r := got[c.key]
		if r.Status != c.status || r.ErrorCode != c.code || (c.errHas == "") != (r.Err == nil) || (r.Err != nil && !strings.Contains(r.Err.Error(), c.errHas)) {
			t.Errorf("%s: status %d code %d err %v; want %d, %d, %q", c.key, r.Status, r.ErrorCode, r.Err, c.status, c.code, c.errHas)
		}
	}
	if string(got["echo"].Body) != `{"a":1}` || string(got["ok"].Body) != "hello" {
		t.Errorf("bodies: echo %q ok %q", got["echo"].Body, got["ok"].Body)
	}
	var echo map[string]int
	if err := got["echo"].JSON(&echo); err != nil || echo["a"] != 1 {
		t.Errorf("JSON: %v %v", echo, err)
	}
	tm := got["ok"].Timings
	if tm.Duration != tm.Sending+tm.Waiting+tm.Receiving || tm.Duration <= 0 || tm.Latency < tm.Duration {
		t.Errorf("timings %+v: want duration = sending+waiting+receiving > 0 and latency >= duration", tm)
	}

	// 9 requests were sent (the bad URL was not); the timeout and the
	// refused connection and the 503 fail; 404 is expected (200..499).
	if n, _ := res.Value("http_reqs", "count"); n != 9 {
		t.Errorf("http_reqs = %v, want 9", n)
	}
	if f, _ := res.Aggregate("http_req_failed"); f.Passes != 3 || f.Count != 9 {
		t.Errorf("http_req_failed = %d of %d, want 3 of 9", f.Passes, f.Count)
	}
	if n, _ := res.Value("http_reqs{name:/items/{id},group:::items,url:/items/{id},method:GET,status:200,scenario:api,team:sre}", "count"); n != 3 {
		t.Errorf("templated item requests = %v, want 3 in one series", n)
	}
	if n, _ := res.Value("http_reqs{status:503,kind:x,expected_response:false,error_code:1503}", "count"); n != 1 {
		t.Errorf("503 with request tag = %v, want 1", n)
	}
	if n, _ := res.Value("http_reqs{error_code:1212}", "count"); n != 1 {
		t.Errorf("refused = %v, want 1", n)
	}
	if b, _ := res.Value("data_received", "count"); b < 9*100 {
		t.Errorf("data_received = %v bytes, want at least 100 per response", b)
	}
	if b, _ := res.Value("data_sent", "count"); b < 9*50 {
		t.Errorf("data_sent = %v bytes, want at least 50 per request", b)
	}
	if res.ConnectionsOpened < 1 || res.ConnectionsOpened > 3 {
		t.Errorf("%d connections opened by one VU's sequential requests, want 1..3 (keep-alive)", res.ConnectionsOpened)
	}
	if c, _ := res.Value("http_req_connecting", "max"); c <= 0 {
		t.Errorf("http_req_connecting max = %v, want > 0 (the first request connects)", c)
	}
	for _, tags := range tagsOf(t, res, "http_reqs") {
		m := map[string]string{}
		for _, tg := range tags {
			m[tg.Key] = tg.Value
		}
		if m["scenario"] != "api" || m["team"] != "sre" || m["method"] == "" || m["url"] == "" || m["name"] == "" || m["expected_response"] == "" {
			t.Errorf("request tags %v lack k6's system tags", m)
		}
	}
}

func TestHTTPSeriesAreBounded(t *testing.T) {
	srv := newTarget(t)
	var log bytes.Buffer
	var mu sync.Mutex
	res, err := Run(t.Context(), Test{
		Scenarios: []Scenario{{Name: "s", Executor: PerVUIterations{VUs: 1, Iterations: 1},
			Exec: func(ctx context.Context, vu *VU) error {
				for i := range 30 {
					vu.Get(ctx, srv.URL+"/items/"+string(rune('a'+i%26))+string(rune('a'+i/26)), nil)
				}
				return nil
			}}},
		Options: Options{MaxSeries: 10},
	}, RunOptions{Log: syncWriter{&mu, &log}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tagsOf(t, res, "http_reqs")); n != 11 {
		t.Errorf("%d request series, want 10 + 1 overflow", n)
	}
	if n, _ := res.Value("http_reqs{url:[overflow]}", "count"); n != 20 {
		t.Errorf("overflow series holds %v requests, want 20", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(log.String(), "Params.Name") {
		t.Errorf("no overflow warning in %q", log.String())
	}
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestJSONLinesOutput(t *testing.T) {
	srv := newTarget(t)
	var out bytes.Buffer
	_, err := Run(t.Context(), Test{
		Scenarios: []Scenario{{Name: "s", Executor: PerVUIterations{VUs: 1, Iterations: 2},
			Exec: func(ctx context.Context, vu *VU) error {
				r := vu.Get(ctx, srv.URL+"/ok", nil)
				vu.Check(`status is "200"`, r.Status == 200)
				return nil
			}}},
		Thresholds: map[string][]Threshold{"http_req_duration": {T("p(95)<5000")}},
	}, RunOptions{JSON: &out})
	if err != nil {
		t.Fatal(err)
	}
	raw := out.String()
	declared := map[string]bool{}
	points := map[string]int{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var line struct {
			Type   string `json:"type"`
			Metric string `json:"metric"`
			Data   struct {
				Name     string            `json:"name"`
				Type     string            `json:"type"`
				Contains string            `json:"contains"`
				Time     time.Time         `json:"time"`
				Value    *float64          `json:"value"`
				Tags     map[string]string `json:"tags"`
			} `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		switch line.Type {
		case "Metric":
			if line.Data.Name != line.Metric || line.Data.Type == "" || line.Data.Contains == "" {
				t.Errorf("bad declaration %s", sc.Text())
			}
			declared[line.Metric] = true
		case "Point":
			if !declared[line.Metric] {
				t.Errorf("point before declaration: %s", sc.Text())
			}
			if line.Data.Time.IsZero() || line.Data.Value == nil || line.Data.Tags == nil {
				t.Errorf("bad point %s", sc.Text())
			}
			points[line.Metric]++
		default:
			t.Errorf("unknown line type %q", line.Type)
		}
	}
	if !strings.Contains(raw, `{"type":"Metric","data":{"name":"http_req_duration","type":"trend","contains":"time","thresholds":["p(95)<5000"],"submetrics":null},"metric":"http_req_duration"}`) {
		t.Error("http_req_duration's declaration lacks its threshold")
	}
	if points["http_reqs"] != 2 || points["checks"] != 2 || points["http_req_duration"] != 2 || points["iterations"] != 2 {
		t.Errorf("points per metric = %v, want 2 requests, checks, iterations", points)
	}
}

func TestNoHTTPPhases(t *testing.T) {
	srv := newTarget(t)
	res, err := Run(t.Context(), Test{
		Scenarios: []Scenario{{Name: "s", Executor: PerVUIterations{VUs: 2, Iterations: 5},
			Exec: func(ctx context.Context, vu *VU) error {
				r := vu.Get(ctx, srv.URL+"/ok", nil)
				if r.Timings.Duration <= 0 || r.Timings.Waiting != 0 {
					t.Errorf("timings without phases = %+v, want only duration and latency", r.Timings)
				}
				return nil
			}}},
		Options: Options{NoHTTPPhases: true},
	}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.Value("http_reqs", "count"); n != 10 {
		t.Errorf("http_reqs = %v, want 10", n)
	}
	if _, err := res.Aggregate("http_req_waiting"); err != nil {
		t.Fatal(err)
	}
	if a, _ := res.Aggregate("http_req_waiting"); a.HasData {
		t.Error("http_req_waiting recorded without phases")
	}
	if b, _ := res.Value("data_received", "count"); b < 10*100 {
		t.Errorf("data_received = %v, want the run's bytes recorded by the sampler", b)
	}
}

func TestTLSPhasesAndCertificateErrors(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	for _, insecure := range []bool{true, false} {
		var first *Response
		res, err := Run(t.Context(), Test{
			Scenarios: []Scenario{{Name: "s", Executor: PerVUIterations{VUs: 1, Iterations: 2},
				Exec: func(ctx context.Context, vu *VU) error {
					r := vu.Get(ctx, srv.URL, nil)
					if first == nil {
						first = r
					}
					return nil
				}}},
			Options: Options{InsecureSkipTLSVerify: insecure},
		}, RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !insecure {
			if first.Status != 0 || first.ErrorCode != 1310 {
				t.Errorf("self-signed certificate: status %d code %d err %v, want 0 and 1310", first.Status, first.ErrorCode, first.Err)
			}
			continue
		}
		if first.Status != 200 || first.Timings.TLSHandshaking <= 0 || first.Timings.Connecting <= 0 {
			t.Errorf("first request over TLS: status %d timings %+v, want 200 with connecting and TLS handshake time", first.Status, first.Timings)
		}
		if m, _ := res.Value("http_req_tls_handshaking", "max"); m <= 0 {
			t.Errorf("http_req_tls_handshaking max = %v, want > 0", m)
		}
		if b, _ := res.Value("data_received", "count"); b < 1000 {
			t.Errorf("data_received = %v, want the TLS handshake's bytes too", b)
		}
	}
}
