package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Params are optional per-request settings (k6's params object).
type Params struct {
	// Name is the request's name tag; set it to a template
	// ("/api/v1/items/{id}") for URLs with IDs. It also replaces the url
	// tag (as k6's http.url template does), which keeps the number of
	// series, and so memory, bounded.
	Name string
	// Tags are added to this request's samples.
	Tags map[string]string
	// Header is sent as is, plus User-Agent when it has none. Build it once
	// per VU rather than per request.
	Header http.Header
	// Timeout overrides Options.HTTPTimeout.
	Timeout time.Duration
	// Expected overrides Options.ResponseCallback for this request.
	Expected func(status int) bool
	// Discard reads and counts the body without keeping it.
	Discard bool
}

// Response is the outcome of one request. It is never nil: a request that
// failed before a response has Status 0 and Err set (k6 semantics).
type Response struct {
	Status    int
	Proto     string
	Header    http.Header
	Body      []byte // nil when discarded
	Err       error  // transport error; nil for any HTTP status
	ErrorCode int    // k6's error_code: 1000-1399 network, 1000+status for HTTP >= 400, 0 otherwise
	URL       string
	Name      string
	Timings   Timings
}

// JSON decodes the body into v.
func (r *Response) JSON(v any) error {
	if r.Err != nil {
		return r.Err
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("%s %s: decode %d response: %w", r.Name, r.URL, r.Status, err)
	}
	return nil
}

// Timings are a request's phases (k6's res.timings). Blocked includes DNS;
// Duration = Sending + Waiting + Receiving; Latency is measured from the
// intended start: the iteration's schedule lag plus the whole round trip
// (blocked and connecting included). Without HTTP phases only Duration and
// Latency are set.
type Timings struct {
	Blocked, Connecting, TLSHandshaking, Sending, Waiting, Receiving time.Duration
	Duration, Latency                                                time.Duration
}

// ExpectedStatuses returns a response callback accepting statuses in the
// inclusive ranges lo..hi given as pairs (k6's http.expectedStatuses), e.g.
// ExpectedStatuses(200, 499) fails only 5xx and network errors.
func ExpectedStatuses(ranges ...int) func(int) bool {
	r := slices.Clone(ranges)
	return func(s int) bool {
		for i := 0; i+1 < len(r); i += 2 {
			if s >= r[i] && s <= r[i+1] {
				return true
			}
		}
		return false
	}
}

func defaultExpected(s int) bool { return s >= 200 && s <= 399 }

// Get sends a GET request.
func (vu *VU) Get(ctx context.Context, url string, p *Params) *Response {
	return vu.Request(ctx, http.MethodGet, url, nil, p)
}

// Post sends a POST request with body.
func (vu *VU) Post(ctx context.Context, url string, body []byte, p *Params) *Response {
	return vu.Request(ctx, http.MethodPost, url, body, p)
}

// Put sends a PUT request with body.
func (vu *VU) Put(ctx context.Context, url string, body []byte, p *Params) *Response {
	return vu.Request(ctx, http.MethodPut, url, body, p)
}

// Delete sends a DELETE request.
func (vu *VU) Delete(ctx context.Context, url string, p *Params) *Response {
	return vu.Request(ctx, http.MethodDelete, url, nil, p)
}

// counting wraps a connection to count bytes and keep its dial timings.
type countingConn struct {
	net.Conn
	dialStart, dialDone int64 // runner nanos
	sent, recv          atomic.Int64
	total               *byteTotals // run-wide totals, only without HTTP phases
}

// byteTotals are the run's bytes on the wire when requests are not traced
// (Options.NoHTTPPhases); the sampler records them once a second.
type byteTotals struct {
	sent, recv                 atomic.Int64
	reportedSent, reportedRecv int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.recv.Add(int64(n))
	if c.total != nil {
		c.total.recv.Add(int64(n))
	}
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.sent.Add(int64(n))
	if c.total != nil {
		c.total.sent.Add(int64(n))
	}
	return n, err
}

func newTransport(r *runner, maxConns int) *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			start := r.nanos()
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cc := &countingConn{Conn: c, dialStart: start, dialDone: r.nanos()}
			if r.test.Options.NoHTTPPhases {
				cc.total = &r.bytes
			}
			r.connsOpened.Add(1)
			return cc, nil
		},
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        0, // no global limit
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  true, // send exactly what the test asks for
		DisableKeepAlives:   r.test.Options.NoConnectionReuse,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: r.test.Options.InsecureSkipTLSVerify}, // opt-in, as k6's insecureSkipTLSVerify
	}
}

// tracer records a request's phase timestamps (runner nanos). Fields are
// atomic because the transport may call hooks from its own goroutines, in
// rare cases after the request has returned.
type tracer struct {
	getConn, gotConn, tlsStart, tlsDone, wrote, firstByte atomic.Int64
	reused                                                atomic.Bool
	conn                                                  atomic.Pointer[countingConn]
	sent0, recv0                                          atomic.Int64
}

func (t *tracer) reset() {
	t.getConn.Store(0)
	t.gotConn.Store(0)
	t.tlsStart.Store(0)
	t.tlsDone.Store(0)
	t.wrote.Store(0)
	t.firstByte.Store(0)
	t.reused.Store(false)
	t.conn.Store(nil)
}

func (t *tracer) clientTrace(now func() int64) *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(string) { t.getConn.Store(now()) },
		GotConn: func(info httptrace.GotConnInfo) {
			t.gotConn.Store(now())
			t.reused.Store(info.Reused)
			c := info.Conn
			if tc, ok := c.(*tls.Conn); ok {
				c = tc.NetConn()
			}
			if cc, ok := c.(*countingConn); ok {
				// A new connection's handshake bytes belong to its first
				// request (as k6 counts them).
				var s0, r0 int64
				if info.Reused {
					s0, r0 = cc.sent.Load(), cc.recv.Load()
				}
				t.sent0.Store(s0)
				t.recv0.Store(r0)
				t.conn.Store(cc)
			}
		},
		TLSHandshakeStart:    func() { t.tlsStart.Store(now()) },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { t.tlsDone.Store(now()) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { t.wrote.Store(now()) },
		GotFirstResponseByte: func() { t.firstByte.Store(now()) },
	}
}

// vuHTTP is a VU's client state. The traced context is built once per
// iteration context and reused, and timeouts use one reusable timer, so a
// request allocates only what net/http itself needs.
type vuHTTP struct {
	tr      tracer
	trace   *httptrace.ClientTrace
	base    context.Context // the context ctx derives from
	ctx     context.Context // base + cancel (+ trace)
	cancel  atomic.Pointer[context.CancelFunc]
	timer   *time.Timer
	fired   chan struct{} // the timer's callback has finished
	urls    map[string]*url.URL
	scratch bytes.Buffer
	keyBuf  []byte
	keys    []string
}

func (h *vuHTTP) init(vu *VU) {
	if !vu.r.test.Options.NoHTTPPhases {
		h.trace = h.tr.clientTrace(vu.r.nanos)
	}
	h.urls = map[string]*url.URL{}
	h.fired = make(chan struct{}, 1)
	h.timer = time.AfterFunc(time.Hour, func() {
		defer func() { h.fired <- struct{}{} }()
		if c := h.cancel.Load(); c != nil {
			(*c)()
		}
	})
	h.timer.Stop()
}

// prepare returns the request context derived from ctx.
func (h *vuHTTP) prepare(ctx context.Context) context.Context {
	if ctx == h.base && h.ctx != nil && h.ctx.Err() == nil {
		return h.ctx
	}
	h.release()
	c, cancel := context.WithCancel(ctx)
	if h.trace != nil {
		c = httptrace.WithClientTrace(c, h.trace)
	}
	h.base, h.ctx = ctx, c
	h.cancel.Store(&cancel)
	return c
}

func (h *vuHTTP) release() {
	if c := h.cancel.Swap(nil); c != nil {
		(*c)()
	}
	h.base, h.ctx = nil, nil
}

func (h *vuHTTP) url(raw string) (*url.URL, error) {
	if u, ok := h.urls[raw]; ok {
		return u, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("invalid URL %q: want http(s)://host/path", raw)
	}
	if len(h.urls) >= 256 {
		clear(h.urls)
	}
	h.urls[raw] = u
	return u, nil
}

// Request sends one HTTP request and records k6's http_* metrics for it.
// body may be nil. Redirects are not followed (k6's maxRedirects: 0).
func (vu *VU) Request(ctx context.Context, method, rawURL string, body []byte, p *Params) *Response {
	r := vu.r
	h := &vu.http
	if p == nil {
		p = &noParams
	}
	res := &Response{URL: rawURL, Name: rawURL}
	if p.Name != "" {
		res.Name = p.Name
	}
	u, err := h.url(rawURL)
	if err != nil {
		res.Err, res.ErrorCode = err, 1020
		r.logf("request error: %v", err)
		return res
	}
	rctx := h.prepare(ctx)
	header := r.defaultHeader
	if p.Header != nil {
		header = p.Header
		if _, ok := header["User-Agent"]; !ok {
			header = header.Clone()
			header["User-Agent"] = r.defaultHeader["User-Agent"]
		}
	}
	req0 := http.Request{Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: header, Host: u.Host}
	if body != nil {
		req0.ContentLength = int64(len(body))
		req0.Body = io.NopCloser(bytes.NewReader(body))
		req0.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	req := req0.WithContext(rctx)
	timeout := r.httpTimeout
	if p.Timeout > 0 {
		timeout = p.Timeout
	}

	h.tr.reset()
	start := r.nanos()
	h.timer.Reset(timeout)
	resp, err := r.transport.RoundTrip(req)
	if err == nil {
		res.Status, res.Proto, res.Header = resp.StatusCode, resp.Proto, resp.Header
		res.Body, err = h.readBody(resp, p.Discard || r.test.Options.DiscardResponseBodies)
		resp.Body.Close()
	}
	end := r.nanos()
	if !h.timer.Stop() {
		// The timer fired: wait for its callback so that it cannot cancel
		// a later request's context, and rebuild the context next time.
		<-h.fired
		h.release()
		if err != nil {
			err = fmt.Errorf("request timeout after %s", timeout)
			res.ErrorCode = 1050
		}
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		res.Err = err
		if res.ErrorCode == 0 {
			res.ErrorCode = errorCode(err)
		}
		res.Status = 0
		if ctx.Err() != nil {
			// The iteration is being interrupted (graceful stop ended or
			// the test was aborted): not the target's fault, not recorded.
			return res
		}
	} else if res.Status >= 400 {
		res.ErrorCode = 1000 + res.Status
	}
	vu.recordHTTP(method, p, res, start, end)
	if r.test.Options.OnResponse != nil {
		r.test.Options.OnResponse(vu, res)
	}
	return res
}

var noParams Params

func (h *vuHTTP) readBody(resp *http.Response, discard bool) ([]byte, error) {
	if discard {
		_, err := io.Copy(io.Discard, resp.Body)
		return nil, err
	}
	if cl := resp.ContentLength; cl >= 0 && cl <= 64<<20 {
		b := make([]byte, cl)
		n, err := io.ReadFull(resp.Body, b)
		if err == nil {
			// Drain anything unexpected so the connection can be reused.
			_, err = io.Copy(io.Discard, resp.Body)
		}
		return b[:n], err
	}
	h.scratch.Reset()
	_, err := h.scratch.ReadFrom(resp.Body)
	b := bytes.Clone(h.scratch.Bytes())
	if h.scratch.Cap() > 1<<20 {
		h.scratch = bytes.Buffer{} // do not pin a huge buffer
	}
	return b, err
}

// errorCode maps a transport error to k6's error_code.
func errorCode(err error) int {
	var ne net.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return 1050
	case errors.As(err, &dnsErr):
		return 1100
	case errors.Is(err, syscall.ECONNREFUSED):
		return 1212
	case errors.Is(err, syscall.ECONNRESET):
		return 1220
	case errors.Is(err, syscall.EPIPE):
		return 1201
	case errors.As(err, &opErr) && opErr.Op == "dial":
		if opErr.Timeout() {
			return 1211
		}
		return 1210
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return 1050
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) {
		return 1310
	}
	return 1000
}

// httpKey identifies a request's tag set within a VU.
type httpKey struct {
	group, name, url, method, proto, errMsg string
	status, errCode                         int
	expected                                bool
	extra                                   *TagSet
}

// httpSeries holds the sinks of one request tag set; they share mu.
type httpSeries struct {
	mu                                                                *sync.Mutex
	reqs, failed, duration, latency                                   *sink
	blocked, connecting, tls, sending, waiting, receiving, sent, recv *sink
}

func (vu *VU) recordHTTP(method string, p *Params, res *Response, start, end int64) {
	r := vu.r
	h := &vu.http
	expected := false
	if res.Err == nil {
		switch {
		case p.Expected != nil:
			expected = p.Expected(res.Status)
		case r.test.Options.ResponseCallback != nil:
			expected = r.test.Options.ResponseCallback(res.Status)
		default:
			expected = defaultExpected(res.Status)
		}
	}
	urlTag := res.URL
	if p.Name != "" {
		urlTag = p.Name
	}
	key := httpKey{group: vu.group, name: res.Name, url: urlTag, method: method, proto: res.Proto,
		status: res.Status, errCode: res.ErrorCode, expected: expected}
	if res.Err != nil {
		key.errMsg = res.Err.Error()
	}
	if len(p.Tags) > 0 {
		key.extra = vu.internExtra(p.Tags)
	}
	s, ok := vu.httpCache[key]
	if !ok {
		s = vu.newHTTPSeries(key, p.Tags)
	}

	t := &res.Timings
	tr := &h.tr
	if h.trace != nil && tr.gotConn.Load() != 0 {
		getConn := tr.getConn.Load()
		if getConn == 0 {
			getConn = start
		}
		gotConn := tr.gotConn.Load()
		if !tr.reused.Load() {
			if c := tr.conn.Load(); c != nil && c.dialDone >= getConn {
				t.Connecting = time.Duration(c.dialDone - max(c.dialStart, getConn))
			}
			if ts, td := tr.tlsStart.Load(), tr.tlsDone.Load(); ts >= getConn && td >= ts {
				t.TLSHandshaking = time.Duration(td - ts)
			}
		}
		t.Blocked = max(0, time.Duration(gotConn-start)-t.Connecting-t.TLSHandshaking)
		wrote, first := tr.wrote.Load(), tr.firstByte.Load()
		if first == 0 {
			first = end
		}
		if wrote == 0 || wrote > first {
			wrote = gotConn
		}
		t.Sending = time.Duration(max(0, wrote-gotConn))
		t.Waiting = time.Duration(max(0, first-wrote))
		t.Receiving = time.Duration(max(0, end-first))
		t.Duration = t.Sending + t.Waiting + t.Receiving
	} else {
		t.Duration = time.Duration(end - start)
	}
	t.Latency = time.Duration(end-start) + vu.lag

	failed := 1.0
	if expected {
		failed = 0
	}
	var sent, recv float64
	c := tr.conn.Load()
	if h.trace != nil && c != nil {
		sent, recv = float64(c.sent.Load()-tr.sent0.Load()), float64(c.recv.Load()-tr.recv0.Load())
	}
	samples := [...]struct {
		s *sink
		v float64
	}{
		{s.reqs, 1}, {s.failed, failed}, {s.duration, ms(t.Duration)}, {s.latency, ms(t.Latency)},
		{s.blocked, ms(t.Blocked)}, {s.connecting, ms(t.Connecting)}, {s.tls, ms(t.TLSHandshaking)},
		{s.sending, ms(t.Sending)}, {s.waiting, ms(t.Waiting)}, {s.receiving, ms(t.Receiving)},
		{s.sent, sent}, {s.recv, recv},
	}
	n := len(samples)
	switch {
	case h.trace == nil:
		n = 4 // no phases, no per-request bytes
	case c == nil:
		n = 10
	}
	now := r.wall(end)
	nowNanos := now.UnixNano()
	s.mu.Lock()
	for _, x := range samples[:n] {
		x.s.addLocked(x.v, nowNanos)
	}
	s.mu.Unlock()
	if out := r.reg.out; out != nil {
		for _, x := range samples[:n] {
			out.point(x.s.metric.Name, x.s.tags, x.v, now)
		}
	}
}

func (vu *VU) internExtra(tags map[string]string) *TagSet {
	h := &vu.http
	h.keys = h.keys[:0]
	for k := range tags {
		h.keys = append(h.keys, k)
	}
	slices.Sort(h.keys)
	h.keyBuf = h.keyBuf[:0]
	for _, k := range h.keys {
		h.keyBuf = appendTag(h.keyBuf, k, tags[k])
	}
	return vu.r.reg.intern(h.keyBuf, func() []Tag {
		out := make([]Tag, 0, len(tags))
		for _, k := range h.keys {
			out = append(out, Tag{Key: k, Value: tags[k]})
		}
		return out
	})
}

func (vu *VU) newHTTPSeries(key httpKey, extra map[string]string) *httpSeries {
	r := vu.r
	m := vu.tagMap(extra)
	m["name"] = key.name
	m["url"] = key.url
	m["method"] = key.method
	m["status"] = strconv.Itoa(key.status)
	if key.proto != "" {
		m["proto"] = key.proto
	}
	m["expected_response"] = strconv.FormatBool(key.expected)
	if key.errCode != 0 {
		m["error_code"] = strconv.Itoa(key.errCode)
	}
	if key.errMsg != "" {
		m["error"] = key.errMsg
	}
	s := r.httpSeries(r.limitSeries(r.reg.tagSet(m), m))
	if len(vu.httpCache) >= 4096 {
		clear(vu.httpCache)
	}
	vu.httpCache[key] = s
	return s
}

// httpSeries returns the shared sinks of request tag set ts, creating them
// (with one mutex) on first use by any VU.
func (r *runner) httpSeries(ts *TagSet) *httpSeries {
	r.seriesMu.Lock()
	defer r.seriesMu.Unlock()
	if s, ok := r.series[ts]; ok {
		return s
	}
	mu := new(sync.Mutex)
	s := &httpSeries{mu: mu,
		reqs: r.httpReqs.sinkWith(ts, mu), failed: r.httpFailed.sinkWith(ts, mu),
		duration: r.httpDuration.sinkWith(ts, mu), latency: r.httpLatency.sinkWith(ts, mu),
		blocked: r.httpBlocked.sinkWith(ts, mu), connecting: r.httpConnecting.sinkWith(ts, mu), tls: r.httpTLS.sinkWith(ts, mu),
		sending: r.httpSending.sinkWith(ts, mu), waiting: r.httpWaiting.sinkWith(ts, mu), receiving: r.httpReceiving.sinkWith(ts, mu),
		sent: r.dataSent.sinkWith(ts, mu), recv: r.dataReceived.sinkWith(ts, mu),
	}
	r.series[ts] = s
	return s
}
