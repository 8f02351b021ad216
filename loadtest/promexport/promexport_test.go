package promexport

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/glasshouse-dev/glasshouse/loadtest"
	"github.com/glasshouse-dev/glasshouse/loadtest/histogram"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden")

type fakeSource struct {
	snap []loadtest.SeriesSnapshot
	th   []loadtest.ThresholdResult
}

func (f fakeSource) Snapshot() []loadtest.SeriesSnapshot          { return f.snap }
func (f fakeSource) ThresholdResults() []loadtest.ThresholdResult { return f.th }

func hist(vals ...float64) *histogram.Histogram {
	h := new(histogram.Histogram)
	for _, v := range vals {
		h.Add(v)
	}
	return h
}

func tags(kv ...string) []loadtest.Tag {
	var t []loadtest.Tag
	for i := 0; i < len(kv); i += 2 {
		t = append(t, loadtest.Tag{Key: kv[i], Value: kv[i+1]})
	}
	return t
}

// source is a deterministic run: two request series that differ only in
// url (merged into one label set), a failing series, checks, VUs and a
// custom non-time trend.
func source() fakeSource {
	req := func(status, url, exp string) []loadtest.Tag {
		return tags("expected_response", exp, "group", "", "method", "GET", "name", "/api/v1/items/{id}",
			"proto", "HTTP/1.1", "scenario", "average", "status", status, "url", url)
	}
	ok1, ok2, bad := req("200", "http://x/api/v1/items/1", "true"), req("200", "http://x/api/v1/items/2", "true"), req("503", "http://x/api/v1/items/3", "false")
	bad = append(bad, loadtest.Tag{Key: "error_code", Value: "1503"})
	s := []loadtest.SeriesSnapshot{
		{Metric: loadtest.HTTPReqs, Tags: ok1, Agg: loadtest.Agg{Metric: loadtest.HTTPReqs, Sum: 3, Count: 3, HasData: true}},
		{Metric: loadtest.HTTPReqs, Tags: ok2, Agg: loadtest.Agg{Metric: loadtest.HTTPReqs, Sum: 2, Count: 2, HasData: true}},
		{Metric: loadtest.HTTPReqs, Tags: bad, Agg: loadtest.Agg{Metric: loadtest.HTTPReqs, Sum: 1, Count: 1, HasData: true}},
		{Metric: loadtest.HTTPReqFailed, Tags: ok1, Agg: loadtest.Agg{Metric: loadtest.HTTPReqFailed, Count: 3, HasData: true}},
		{Metric: loadtest.HTTPReqFailed, Tags: bad, Agg: loadtest.Agg{Metric: loadtest.HTTPReqFailed, Count: 1, Passes: 1, HasData: true}},
		{Metric: loadtest.HTTPReqDuration, Tags: ok1, Agg: loadtest.Agg{Metric: loadtest.HTTPReqDuration, Hist: hist(0.8, 3, 120), HasData: true}},
		{Metric: loadtest.HTTPReqDuration, Tags: ok2, Agg: loadtest.Agg{Metric: loadtest.HTTPReqDuration, Hist: hist(400), HasData: true}},
		{Metric: loadtest.HTTPReqLatency, Tags: ok1, Agg: loadtest.Agg{Metric: loadtest.HTTPReqLatency, Hist: hist(1, 3.2, 130), HasData: true}},
		{Metric: loadtest.Checks, Tags: tags("check", "status is 200", "group", "", "scenario", "average"), Agg: loadtest.Agg{Metric: loadtest.Checks, Count: 6, Passes: 5, HasData: true}},
		{Metric: loadtest.Iterations, Tags: tags("group", "", "scenario", "average"), Agg: loadtest.Agg{Metric: loadtest.Iterations, Sum: 6, Count: 6, HasData: true}},
		{Metric: loadtest.DroppedIterations, Tags: tags("scenario", "average"), Agg: loadtest.Agg{Metric: loadtest.DroppedIterations, Sum: 2, Count: 2, HasData: true}},
		{Metric: loadtest.DataSent, Tags: ok1, Agg: loadtest.Agg{Metric: loadtest.DataSent, Sum: 900, Count: 3, HasData: true}},
		{Metric: loadtest.VUs, Agg: loadtest.Agg{Metric: loadtest.VUs, Value: 4, Min: 0, Max: 5, Count: 9, HasData: true}},
		{Metric: loadtest.VUsMax, Agg: loadtest.Agg{Metric: loadtest.VUsMax, Value: 10, Min: 10, Max: 10, Count: 9, HasData: true}},
		{Metric: loadtest.NewTrend("page_size"), Tags: tags("scenario", "average", "my-tag", "x"), Agg: loadtest.Agg{Metric: loadtest.NewTrend("page_size"), Hist: hist(10, 20, 30, 40), HasData: true}},
	}
	return fakeSource{snap: s, th: []loadtest.ThresholdResult{
		{Metric: "http_req_failed", Expr: "rate<0.001", OK: false},
		{Metric: "http_req_duration{scenario:average}", Expr: "p(95)<250", OK: true},
	}}
}

func scrape(t *testing.T, src Source) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(src).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

func TestExpositionGolden(t *testing.T) {
	got := scrape(t, source())
	path := filepath.Join("testdata", "metrics.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("exposition differs from %s (go test -update to accept):\n%s", path, got)
	}
	problems, err := testutil.CollectAndLint(New(source()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func parse(t *testing.T, b []byte) map[string]*familyView {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, b)
	}
	out := map[string]*familyView{}
	for n, f := range fams {
		out[n] = &familyView{typ: f.GetType().String(), n: len(f.GetMetric())}
	}
	return out
}

type familyView struct {
	typ string
	n   int
}

func TestMergesSeriesThatDifferOnlyInDroppedTags(t *testing.T) {
	fams := parse(t, scrape(t, source()))
	// ok1 and ok2 differ only in url: one 200 series plus the 503 series.
	if f := fams["k6_http_reqs_total"]; f == nil || f.n != 2 {
		t.Fatalf("k6_http_reqs_total = %+v, want 2 series", f)
	}
	b := string(scrape(t, source()))
	if !strings.Contains(b, `k6_http_reqs_total{error_code="",expected_response="true",group="",method="GET",name="/api/v1/items/{id}",proto="HTTP/1.1",scenario="average",status="200"} 5`) {
		t.Errorf("merged 200 series missing or wrong:\n%s", b)
	}
	if !strings.Contains(b, `k6_http_req_duration_seconds_bucket{expected_response="true",group="",method="GET",name="/api/v1/items/{id}",proto="HTTP/1.1",scenario="average",status="200",le="0.25"} 3`) {
		t.Errorf("le=0.25 bucket should hold the 3 requests under 250 ms:\n%s", b)
	}
}

// TestLiveRunExposesTheDocumentedNames runs a real short test against a
// loopback server and checks that every name in loadtest/README.md's table
// that the run produces is exposed with the documented type.
func TestLiveRunExposesTheDocumentedNames(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(srv.Close)
	rn, err := loadtest.New(loadtest.Test{
		Scenarios: []loadtest.Scenario{{Name: "s", Executor: loadtest.ConstantArrivalRate{Rate: 20, Duration: time.Second, PreAllocatedVUs: 2},
			Exec: func(ctx context.Context, vu *loadtest.VU) error {
				return vu.Group("g", func() error {
					vu.Check("ok", vu.Get(ctx, srv.URL, nil).Status == 200)
					return nil
				})
			}}},
		Thresholds: map[string][]loadtest.Threshold{"http_req_duration": {loadtest.T("p(95)<5000")}},
	}, loadtest.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rn.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	fams := parse(t, scrape(t, rn))
	want := map[string]string{
		"k6_http_reqs_total": "COUNTER", "k6_http_req_failed_rate": "GAUGE", "k6_http_req_failed_samples_total": "COUNTER",
		"k6_http_req_failed_nonzero_total": "COUNTER", "k6_http_req_duration_seconds": "HISTOGRAM", "k6_http_req_latency_seconds": "HISTOGRAM",
		"k6_http_req_blocked_seconds": "HISTOGRAM", "k6_http_req_connecting_seconds": "HISTOGRAM", "k6_http_req_tls_handshaking_seconds": "HISTOGRAM",
		"k6_http_req_sending_seconds": "HISTOGRAM", "k6_http_req_waiting_seconds": "HISTOGRAM", "k6_http_req_receiving_seconds": "HISTOGRAM",
		"k6_iterations_total": "COUNTER", "k6_iteration_duration_seconds": "HISTOGRAM", "k6_schedule_lag_seconds": "HISTOGRAM",
		"k6_vus": "GAUGE", "k6_vus_max": "GAUGE", "k6_checks_rate": "GAUGE", "k6_checks_samples_total": "COUNTER", "k6_checks_nonzero_total": "COUNTER",
		"k6_data_sent_total": "COUNTER", "k6_data_received_total": "COUNTER", "k6_group_duration_seconds": "HISTOGRAM", "k6_threshold_ok": "GAUGE",
	}
	for n, typ := range want {
		if f := fams[n]; f == nil || f.typ != typ {
			t.Errorf("%s: got %+v, want a %s", n, f, typ)
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for n := range want {
		if !strings.Contains(string(readme), "`"+n+"`") {
			t.Errorf("%s is exposed but not documented in loadtest/README.md", n)
		}
	}
}
