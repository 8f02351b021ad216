package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"sync/atomic"
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
