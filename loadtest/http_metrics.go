package loadtest

import (
	"slices"
	"strconv"
	"sync"
	"time"
)

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
