package loadtest

import (
	"context"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/glasshouse-dev/glasshouse/loadtest/histogram"
)

// TestStallIsNotHidden is the coordinated-omission test, on synctest's fake
// clock: a server stalls for one second once, during a 1,000 req/s
// constant-arrival-rate run of 10 s. While it stalls it accepts no
// connection and holds every response until the stall ends, so a request
// due inside the stall waits first for a connection, then for its
// response. Every request's true latency (from its intended start, sent in
// a header, to the moment the server wrote its response) must be exactly
// the analytic one: the time left in the stall when it was due, else zero.
// The engine's reported http_req_latency p99 must match the true p99 to
// within the histogram's precision. Measured from the actual send
// (http_req_duration), the stall is invisible, and so it is to a closed
// loop of 50 VUs offering the same 1,000 req/s against the same stall.
func TestStallIsNotHidden(t *testing.T) {
	const (
		rate       = 1000 // requests per second, both loops
		duration   = 10 * time.Second
		stallAt    = 3 * time.Second // from the start of the run
		stall      = time.Second
		closedVUs  = 50
		iterations = rate * int64(duration/time.Second)
	)
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		res, observed := runAgainstStall(t, start.Add(stallAt), stall, Scenario{
			Name:         "open",
			Executor:     ConstantArrivalRate{Rate: rate, Duration: duration, PreAllocatedVUs: 100, MaxVUs: 2500},
			Exec:         getWithDue,
			GracefulStop: 5 * time.Second,
		})
		sc := res.Scenarios[0]
		if sc.Scheduled != iterations || sc.Dropped != 0 {
			t.Fatalf("scheduled %d iterations and dropped %d, want %d and none (every VU needed is available)", sc.Scheduled, sc.Dropped, iterations)
		}
		sent, _ := res.Value("data_sent", "count")
		recv, _ := res.Value("data_received", "count")
		if sent == 0 || recv == 0 {
			t.Errorf("data_sent = %v, data_received = %v bytes: the in-memory connections were not counted", sent, recv)
		}

		// The analytic latencies: iteration i is due at start + i ms; one
		// due inside the stall completes at its end, any other at once.
		var want []time.Duration
		for i := range iterations {
			due := time.Duration(i) * time.Second / rate
			var d time.Duration
			if due >= stallAt && due < stallAt+stall {
				d = stallAt + stall - due
			}
			want = append(want, d)
		}
		slices.Sort(want)
		slices.Sort(observed)
		if !slices.Equal(observed, want) {
			t.Fatalf("the server saw %d requests whose latencies differ from the analytic ones (%d requests)", len(observed), len(want))
		}
		truth := k6Quantile(millis(want), 0.99) // 900.01 ms

		got, err := res.Value("http_req_latency", "p(99)")
		if err != nil {
			t.Fatal(err)
		}
		service, _ := res.Value("http_req_duration", "p(99)")
		t.Logf("p99: true %.2f ms; reported from the intended start %.2f ms, from the actual send %.2f ms; peak busy %d VUs", truth, got, service, sc.PeakBusy)
		// The engine's latencies are exact on a fake clock, so the only
		// error left is the histogram's: every rank is reported as its
		// bucket's midpoint, within histogram.RelativeError (1/256, 0.39%)
		// of the sample, and interpolating between two ranks keeps that
		// bound. Anything further off is a measurement error.
		if math.Abs(got-truth) > histogram.RelativeError*truth {
			t.Errorf("reported p99 from the intended start = %.3f ms, true p99 = %.3f ms: off by %.3f%% (> %.3f%%, the histogram's precision)",
				got, truth, 100*math.Abs(got-truth)/truth, 100*histogram.RelativeError)
		}
		// The premise: the stall happens before the send, so the send-based
		// measurement hides it; only the one request that was sent on a
		// kept-alive connection when the stall began waits after its send.
		if service > truth/100 {
			t.Errorf("http_req_duration p99 = %.2f ms, want the stall invisible from the actual send (< 1%% of %.2f ms)", service, truth)
		}

		// A closed loop offering the same rate: each VU sends, waits for its
		// response, then sleeps until its next turn. In the stall each VU
		// waits once, so 50 slow requests among ~9,000 stay below p99.
		closed, _ := runAgainstStall(t, time.Now().Add(stallAt), stall, Scenario{
			Name:     "closed",
			Executor: ConstantVUs{VUs: closedVUs, Duration: duration},
			Exec: func(ctx context.Context, vu *VU) error {
				if err := getWithDue(ctx, vu); err != nil {
					return err
				}
				return Sleep(ctx, closedVUs*time.Second/rate)
			},
			GracefulStop: 5 * time.Second,
		})
		hidden, err := closed.Value("http_req_latency", "p(99)")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("closed loop of %d VUs: %d iterations, http_req_latency p99 %.2f ms", closedVUs, closed.Scenarios[0].Completed, hidden)
		if hidden > truth/100 {
			t.Errorf("closed loop's p99 = %.2f ms, want the stall hidden (< 1%% of %.2f ms): the parameters no longer show coordinated omission", hidden, truth)
		}
	})
}

// getWithDue sends one request carrying the iteration's intended start.
func getWithDue(ctx context.Context, vu *VU) error {
	h := http.Header{"X-Due": {strconv.FormatInt(vu.ScheduledAt().UnixNano(), 10)}}
	vu.Get(ctx, "http://stall.test/", &Params{Discard: true, Header: h})
	return nil
}

// runAgainstStall runs sc against a server on an in-memory network that
// stalls once, from stallFrom for stall: it accepts no connection and
// holds every response until the stall ends. It returns the run's result
// and, per request, the time from its X-Due header to its written response.
func runAgainstStall(t *testing.T, stallFrom time.Time, stall time.Duration, sc Scenario) (*Result, []time.Duration) {
	t.Helper()
	stallEnd := stallFrom.Add(stall)
	waitOutStall := func() {
		if now := time.Now(); !now.Before(stallFrom) && now.Before(stallEnd) {
			time.Sleep(stallEnd.Sub(now))
		}
	}
	var mu sync.Mutex
	var observed []time.Duration
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		waitOutStall()
		w.Write([]byte("ok"))
		w.(http.Flusher).Flush()
		due, _ := strconv.ParseInt(r.Header.Get("X-Due"), 10, 64)
		mu.Lock()
		observed = append(observed, time.Duration(time.Now().UnixNano()-due))
		mu.Unlock()
	})}
	ln := newPipeListener(waitOutStall)
	go srv.Serve(ln)
	defer srv.Close()

	rn, err := New(Test{Scenarios: []Scenario{sc}, Options: Options{DiscardResponseBodies: true}}, RunOptions{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rn.r.dial = ln.dial
	res, err := rn.Run(t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Scenarios[0].Completed == 0 {
		t.Fatal("no iteration completed")
	}
	mu.Lock()
	defer mu.Unlock()
	return res, observed
}

// pipeListener is an in-memory network with one server: a dial hands the
// server one end of a net.Pipe and returns the other once the server has
// accepted it. Its waits are channel operations, which a testing/synctest
// bubble sees as durably blocked (a socket's are not).
type pipeListener struct {
	dials     chan pipeDial
	done      chan struct{}
	closeOnce sync.Once
	hold      func() // Accept calls it between receiving a dial and accepting it
}

type pipeDial struct {
	conn     net.Conn
	accepted chan struct{}
}

func newPipeListener(hold func()) *pipeListener {
	return &pipeListener{dials: make(chan pipeDial), done: make(chan struct{}), hold: hold}
}

// dial has the signature of net.Dialer.DialContext; the address is ignored.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	d := pipeDial{conn: server, accepted: make(chan struct{})}
	select {
	case l.dials <- d:
	case <-l.done:
		client.Close()
		server.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
	select {
	case <-d.accepted:
		return client, nil
	case <-ctx.Done():
		client.Close() // the server reads EOF and closes its end
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case d := <-l.dials:
		l.hold()
		close(d.accepted)
		return d.conn, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// millis converts durations to milliseconds as the engine records them.
func millis(ds []time.Duration) []float64 {
	v := make([]float64, len(ds))
	for i, d := range ds {
		v[i] = ms(d)
	}
	return v
}

// k6Quantile is k6's percentile (linear interpolation) of unsorted values.
func k6Quantile(v []float64, q float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	r := q * float64(len(s)-1)
	lo := math.Floor(r)
	return s[int(lo)] + (s[int(math.Ceil(r))]-s[int(lo)])*(r-lo)
}
