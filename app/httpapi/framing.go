package httpapi

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
)

// A request with both Content-Length and Transfer-Encoding has two
// lengths. net/http follows Transfer-Encoding and deletes Content-Length
// before any handler runs, and keeps the connection open; a proxy in
// front may have used the other length, which is how requests are
// smuggled. RFC 9112 section 6.3 asks a server that sees both to close the
// connection after answering. Since the header is gone by the time a
// handler runs, GuardListener watches the raw bytes of each connection,
// and refuseAmbiguousFraming answers the request 400 and closes.

// GuardListener returns ln whose connections note any header section with
// both Content-Length and Transfer-Encoding; serve with
// http.Server.ConnContext set to ConnContext. It sees plaintext only: do
// not put it under TLS (wrap the TCP listener of a plain-HTTP server).
func GuardListener(ln net.Listener) net.Listener { return guardListener{ln} }

type guardListener struct{ net.Listener }

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, lineStart: true}, nil
}

// ConnContext puts c's framing watch in ctx when c came from
// GuardListener, for refuseAmbiguousFraming.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingKey{}, fc)
	}
	return ctx
}

type framingKey struct{}

// framingConn scans what is read from the connection line by line. A
// blank line ends a block; a block with a Content-Length line and a
// Transfer-Encoding line sets ambiguous. Bodies are scanned too, which is
// harmless: a JSON body has no line breaks inside strings, so it cannot
// hold header lines.
type framingConn struct {
	net.Conn
	ambiguous atomic.Bool

	// Scanner state, touched only by the goroutine reading the connection.
	lineStart    bool
	name         [len("transfer-encoding:")]byte
	n            int  // bytes of the current line kept in name (at most len(name))
	sawCL, sawTE bool // in the current block
	blank        bool // the current line has no bytes but (possibly) CR
}

var (
	clName = []byte("content-length:")
	teName = []byte("transfer-encoding:")
)

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.scan(p[:n])
	return n, err
}

func (c *framingConn) scan(b []byte) {
	for _, ch := range b {
		if ch == '\n' {
			if c.lineStart || c.blank {
				if c.sawCL && c.sawTE {
					c.ambiguous.Store(true)
				}
				c.sawCL, c.sawTE = false, false
			}
			c.lineStart, c.blank, c.n = true, false, 0
			continue
		}
		if c.lineStart {
			c.lineStart, c.blank = false, ch == '\r'
		} else if ch != '\r' {
			c.blank = false
		}
		if c.blank || c.n >= len(c.name) { // past the longest name we look for
			continue
		}
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		c.name[c.n] = ch
		c.n++
		if ch == ':' {
			switch string(c.name[:c.n]) {
			case string(clName):
				c.sawCL = true
			case string(teName):
				c.sawTE = true
			}
			c.n = len(c.name) // the rest of the line is a value
		}
	}
}

// refuseAmbiguousFraming answers 400 and closes the connection when it has
// sent a request with both Content-Length and Transfer-Encoding.
func (s *server) refuseAmbiguousFraming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fc, ok := r.Context().Value(framingKey{}).(*framingConn); ok && fc.ambiguous.Load() {
			w.Header().Set("Connection", "close")
			writeProblem(w, r, Problem{Status: http.StatusBadRequest, Code: "ambiguous_framing",
				Detail: "the request has both Content-Length and Transfer-Encoding"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
