package telemetry

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fixedSequence is the request sequence behind the golden exposition.
func fixedSequence(t *testing.T, e *testEnv) {
	t.Helper()
	for _, r := range []struct {
		method, target string
		code           int
	}{
		{"GET", "/items/1", 200},
		{"GET", "/items/2", 200},
		{"GET", "/items/abc", 200},
		{"POST", "/items", 201},
		{"GET", "/slow", 204},
		{"GET", "/fail", 500},
		{"GET", "/no/such/path", 404},
		{"DELETE", "/items/1", 405},
		{"PROPFIND", "/items/1", 405},
	} {
		if got := e.do(t, r.method, r.target).Code; got != r.code {
			t.Fatalf("%s %s: status %d, want %d", r.method, r.target, got, r.code)
		}
	}
	e.tel.ConcurrencyRejected()
	e.tel.PanicRecovered("/panic")
}

// nondeterministic families depend on the machine, the Go version or time.
func deterministic(name string) bool {
	for _, p := range []string{"go_", "process_", "system_", "app_build_info"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

func TestMetricsGolden(t *testing.T) {
	e := newTestEnv(t, nil)
	fixedSequence(t, e)

	mfs, err := e.tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if deterministic(mf.GetName()) {
			if err := enc.Encode(mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./telemetry -run Golden -update)", err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("/metrics exposition differs from %s (-want +got):\n%s", golden, diff)
	}

	// The families left out of the golden file are present all the same.
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, n := range []string{
		"app_build_info", "go_goroutines", "go_sched_latencies_seconds", "go_gc_duration_seconds",
		"process_open_fds", "process_resident_memory_bytes",
		"system_memory_used_bytes", "system_memory_available_bytes", "system_memory_total_bytes", "system_load_average",
	} {
		if !slices.Contains(names, n) {
			t.Errorf("family %s missing from /metrics", n)
		}
	}
}

func TestBuildInfo(t *testing.T) {
	e := newTestEnv(t, nil)
	body := scrape(t, e.tel, "")
	want := fmt.Sprintf(`app_build_info{goversion=%q,version="v1.2.3"} 1`, runtime.Version())
	if !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

func TestLint(t *testing.T) {
	e := newTestEnv(t, nil)
	fixedSequence(t, e)
	problems, err := testutil.GatherAndLint(e.tel.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestCardinality serves 100,000 requests with random paths, IDs and
// methods and checks that no series appears that a handful of
// representative requests did not already create.
func TestCardinality(t *testing.T) {
	e := newTestEnv(t, nil, func(c *Config) { c.DisableAccessLog = true; c.SpanProcessors = nil })
	families := []string{"http_server_request_duration_seconds", "http_server_response_body_size_bytes"}
	warm := func() {
		// One request per class: a matched route with an ID, an unmatched
		// path, a path that ServeMux redirects to its clean form (to a
		// matched and to an unmatched route), a method the route does not
		// allow, and an unknown method.
		for _, r := range [][2]string{
			{"GET", "/items/1"}, {"GET", "/nope"}, {"GET", "/items/./1"}, {"GET", "/a/../b"},
			{"PUT", "/items/1"}, {"PUT", "/nope"}, {"PUT", "/a/./b"},
			{"BREW", "/items/1"}, {"BREW", "/nope"}, {"BREW", "/a/./b"},
		} {
			e.do(t, r[0], r[1])
		}
	}
	warm()
	before := testutil.CollectAndCount(e.tel.Registry, families...)
	if before == 0 {
		t.Fatal("no series after warm-up")
	}

	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.~"
		b := make([]byte, 1+rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	methods := []string{"GET", "PUT", "BREW", "X" + "Y", "M-SEARCH"}
	const n = 100_000
	for i := range n {
		var target string
		switch i % 3 {
		case 0:
			target = "/items/" + word() // matches GET /items/{id}, random ID
		case 1:
			target = "/" + word() + "/" + word()
		default:
			target = "/items/" + word() + "/" + word()
		}
		method := "GET"
		if i%10 == 0 {
			method = methods[rng.IntN(len(methods))]
		}
		e.do(t, method, target)
	}
	warm() // nothing new
	if after := testutil.CollectAndCount(e.tel.Registry, families...); after != before {
		t.Errorf("series after %d random requests: %d, want %d (before)", n, after, before)
	}

	// The route label only holds templates and "unmatched".
	mfs, err := e.tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	methodsSeen := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != families[0] {
			continue
		}
		for _, m := range mf.GetMetric() {
			routes[label(m, "route")] = true
			methodsSeen[label(m, "method")] = true
		}
	}
	if diff := cmp.Diff(map[string]bool{"/items/{id}": true, Unmatched: true}, routes); diff != "" {
		t.Errorf("route label values (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]bool{"GET": true, "PUT": true, "_OTHER": true}, methodsSeen); diff != "" {
		t.Errorf("method label values (-want +got):\n%s", diff)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

var exemplarRE = regexp.MustCompile(`^http_server_request_duration_seconds_bucket\{(.*)\} \d+ # \{(.*)\} ([0-9.e+-]+)`)

func TestExemplars(t *testing.T) {
	e := newTestEnv(t, nil)
	rec := e.do(t, http.MethodGet, "/items/42")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	server := spanNamed(t, e.spans.Ended(), "GET /items/{id}")
	traceID, spanID := server.SpanContext().TraceID().String(), server.SpanContext().SpanID().String()

	body := scrape(t, e.tel, "application/openmetrics-text; version=1.0.0; charset=utf-8")
	var found []string
	for line := range strings.Lines(body) {
		m := exemplarRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		found = append(found, line)
		if !strings.Contains(m[1], `route="/items/{id}"`) {
			t.Errorf("exemplar on unexpected series: %s", line)
		}
		labels := strings.Split(m[2], ",")
		slices.Sort(labels)
		want := []string{fmt.Sprintf("span_id=%q", spanID), fmt.Sprintf("trace_id=%q", traceID)}
		if diff := cmp.Diff(want, labels); diff != "" {
			t.Errorf("exemplar labels (-want +got):\n%s", diff)
		}
		if m[3] != "0.03" {
			t.Errorf("exemplar value %s, want 0.03 (the fake-clock latency)", m[3])
		}
	}
	if len(found) != 1 {
		t.Fatalf("got %d exemplars, want 1 on the le=0.05 bucket; body:\n%s", len(found), body)
	}
	if !strings.Contains(found[0], `le="0.05"`) {
		t.Errorf("exemplar on %s, want the le=\"0.05\" bucket", found[0])
	}

	// The classic text format has no exemplars; the scrape still works.
	if strings.Contains(scrape(t, e.tel, "text/plain"), "trace_id") {
		t.Error("text/plain exposition carries exemplars")
	}
}

func TestNoExemplarWhenNotSampled(t *testing.T) {
	e := newTestEnv(t, envMap("OTEL_TRACES_SAMPLER", "always_off"))
	rec := e.do(t, http.MethodGet, "/items/42")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if n := len(e.spans.Ended()); n != 0 {
		t.Errorf("recorded %d spans with always_off, want 0", n)
	}
	body := scrape(t, e.tel, "application/openmetrics-text")
	if strings.Contains(body, "trace_id") {
		t.Error("exemplar recorded for an unsampled request")
	}
	if !strings.Contains(body, `http_server_request_duration_seconds_count{code="200",method="GET",route="/items/{id}"} 1`) {
		t.Error("unsampled request not counted")
	}
}

func TestExemplarInterval(t *testing.T) {
	e := newTestEnv(t, nil)
	traceOf := func(n int) string {
		spans := e.spans.Ended()
		var ids []string
		for _, s := range spans {
			if s.Name() == "GET /items/{id}" {
				ids = append(ids, s.SpanContext().TraceID().String())
			}
		}
		return ids[n]
	}
	exemplar := func() string {
		for line := range strings.Lines(scrape(t, e.tel, "application/openmetrics-text")) {
			if m := exemplarRE.FindStringSubmatch(line); m != nil {
				return m[2]
			}
		}
		return ""
	}
	e.do(t, http.MethodGet, "/items/1")
	e.do(t, http.MethodGet, "/items/2") // same bucket, same instant: keeps the first exemplar
	if ex := exemplar(); !strings.Contains(ex, traceOf(0)) {
		t.Errorf("exemplar {%s}, want the first request's trace %s", ex, traceOf(0))
	}
	e.clock.Advance(ExemplarInterval)
	e.do(t, http.MethodGet, "/items/3")
	if ex := exemplar(); !strings.Contains(ex, traceOf(2)) {
		t.Errorf("exemplar {%s} after the interval, want the third request's trace %s", ex, traceOf(2))
	}
}
