package threshold

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Expr
		wantErr string
	}{
		{in: "p(95)<300", want: Expr{Source: "p(95)<300", Agg: Agg{P, 95}, Op: Less, Value: 300}},
		{in: " p( 99.9 ) <= 1.5e3 ", want: Expr{Source: "p( 99.9 ) <= 1.5e3", Agg: Agg{P, 99.9}, Op: LessEqual, Value: 1500}},
		{in: "rate<0.01", want: Expr{Source: "rate<0.01", Agg: Agg{Name: Rate}, Op: Less, Value: 0.01}},
		{in: "rate >= 0.999", want: Expr{Source: "rate >= 0.999", Agg: Agg{Name: Rate}, Op: GreaterEqual, Value: 0.999}},
		{in: "count>10", want: Expr{Source: "count>10", Agg: Agg{Name: Count}, Op: Greater, Value: 10}},
		{in: "value==1", want: Expr{Source: "value==1", Agg: Agg{Name: Value}, Op: Equal, Value: 1}},
		{in: "avg!=-2", want: Expr{Source: "avg!=-2", Agg: Agg{Name: Avg}, Op: NotEqual, Value: -2}},
		{in: "med<100", want: Expr{Source: "med<100", Agg: Agg{Name: Med}, Op: Less, Value: 100}},
		{in: "min>0", want: Expr{Source: "min>0", Agg: Agg{Name: Min}, Op: Greater, Value: 0}},
		{in: "max<=5000", want: Expr{Source: "max<=5000", Agg: Agg{Name: Max}, Op: LessEqual, Value: 5000}},
		{in: "p(0)>=0", want: Expr{Source: "p(0)>=0", Agg: Agg{P, 0}, Op: GreaterEqual, Value: 0}},
		{in: "p(100)<1", want: Expr{Source: "p(100)<1", Agg: Agg{P, 100}, Op: Less, Value: 1}},
		{in: "", wantErr: "want <aggregation> <operator> <number>"},
		{in: "p95<300", wantErr: "want <aggregation>"},
		{in: "avgs<300", wantErr: "unknown aggregation"},
		{in: "p(101)<300", wantErr: "from 0 to 100"},
		{in: "p(-1)<300", wantErr: "from 0 to 100"},
		{in: "p(abc)<300", wantErr: "from 0 to 100"},
		{in: "p()<300", wantErr: "from 0 to 100"},
		{in: "p<300", wantErr: "needs an argument"},
		{in: "avg(5)<3", wantErr: "takes no argument"},
		{in: "rate<abc", wantErr: "not a finite number"},
		{in: "rate<NaN", wantErr: "not a finite number"},
		{in: "rate<Inf", wantErr: "not a finite number"},
		{in: "rate<", wantErr: "want <aggregation>"},
		{in: "rate=0.1", wantErr: "want <aggregation>"},
		{in: "rate<0.1 && count>1", wantErr: "want <aggregation>"},
		{in: "P(95)<3", wantErr: "want <aggregation>"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestHolds(t *testing.T) {
	tests := []struct {
		expr string
		v    float64
		want bool
	}{
		{"p(95)<300", 299.9, true}, {"p(95)<300", 300, false},
		{"rate<=0.01", 0.01, true}, {"rate<=0.01", 0.0101, false},
		{"rate>0.99", 0.99, false}, {"rate>=0.99", 0.99, true},
		{"count==3", 3, true}, {"count!=3", 3, false}, {"count!=3", 4, true},
	}
	for _, tt := range tests {
		e, err := Parse(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Holds(tt.v); got != tt.want {
			t.Errorf("%s holds for %v = %v, want %v", tt.expr, tt.v, got, tt.want)
		}
	}
}

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in      string
		want    Selector
		wantErr string
	}{
		{in: "http_req_duration", want: Selector{Metric: "http_req_duration"}},
		{in: "http_req_duration{scenario:browse}", want: Selector{Metric: "http_req_duration", Tags: []Tag{{"scenario", "browse"}}}},
		{in: "http_req_duration{ status:200 , method : GET }", want: Selector{Metric: "http_req_duration", Tags: []Tag{{"method", "GET"}, {"status", "200"}}}},
		{in: `checks{check:"status is 200"}`, want: Selector{Metric: "checks", Tags: []Tag{{"check", "status is 200"}}}},
		{in: "http_reqs{url:http://x:8080/a}", want: Selector{Metric: "http_reqs", Tags: []Tag{{"url", "http://x:8080/a"}}}},
		{in: "http_reqs{name:/items/{id}}", want: Selector{Metric: "http_reqs", Tags: []Tag{{"name", "/items/{id}"}}}},
		{in: "1abc", wantErr: "invalid name"},
		{in: "http-reqs", wantErr: "invalid name"},
		{in: "http_reqs{}", wantErr: "empty tag selector"},
		{in: "http_reqs{a:b", wantErr: "must end with }"},
		{in: "http_reqs{ab}", wantErr: "must be key:value"},
		{in: "http_reqs{a:1,a:2}", wantErr: "listed twice"},
		{in: "http_reqs{:x}", wantErr: "must be key:value"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSelector(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSelector(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSelector(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseSelector(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// FuzzParseThreshold checks that Parse never panics and that a parsed
// expression survives a round trip through its canonical form.
func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{"p(95)<300", "rate<0.01", " avg >= 1e3", "p(99.99)!=0", "count==5", "p(", "value<-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(e.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", e.String(), s, err)
		}
		if again.Agg != e.Agg || again.Op != e.Op || again.Value != e.Value {
			t.Fatalf("round trip of %q: got %+v, want %+v", s, again, e)
		}
		for _, v := range []float64{e.Value - 1, e.Value, e.Value + 1} {
			_ = e.Holds(v)
		}
	})
}

// FuzzParseSelector checks that ParseSelector never panics and that its
// canonical form parses back to the same selector.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"http_req_duration{scenario:browse}", "checks{check:'a b'}", "x{a:1,b:2}", "x{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelector(s)
		if err != nil {
			return
		}
		again, err := ParseSelector(sel.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", sel.String(), s, err)
		}
		if diff := cmp.Diff(sel, again); diff != "" {
			t.Fatalf("round trip of %q (-first +again):\n%s", s, diff)
		}
	})
}
