package loadtest

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

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
			dial := d.DialContext
			if r.dial != nil {
				dial = r.dial
			}
			start := r.nanos()
			c, err := dial(ctx, network, addr)
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
