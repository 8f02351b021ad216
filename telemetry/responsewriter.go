package telemetry

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// responseWriter records the final status code and the body bytes
// written. It keeps the optional interfaces handlers rely on: Flush
// (a no-op when the connection cannot flush), io.ReaderFrom and
// io.StringWriter (delegated when the underlying writer has them), Hijack
// (through hijackWriter, only when the underlying writer can), and Unwrap
// for http.ResponseController.
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64

	// With WithProcessTimeHeader: the header's name, the clock, the
	// request's start and the header's value slice.
	timeHeader string
	now        func() time.Time
	start      time.Time
	timeValue  []string
}

// begin records the final status just before the header is written and
// sets the process-time header, if any.
func (rw *responseWriter) begin(code int) {
	rw.status = code
	if rw.timeHeader != "" {
		var buf [32]byte
		rw.timeValue[0] = string(strconv.AppendFloat(buf[:0], rw.now().Sub(rw.start).Seconds(), 'f', 6, 64))
		rw.Header()[rw.timeHeader] = rw.timeValue
	}
}

// hijackWriter adds http.Hijacker for writers that support it (HTTP/1).
type hijackWriter struct{ *responseWriter }

func (rw *responseWriter) wrap() http.ResponseWriter {
	if _, ok := rw.ResponseWriter.(http.Hijacker); ok {
		return hijackWriter{rw}
	}
	return rw
}

func (rw *responseWriter) WriteHeader(code int) {
	// 1xx responses (103 Early Hints) are not the final status.
	if rw.status == 0 {
		switch {
		case code >= 200:
			rw.begin(code)
		case code == http.StatusSwitchingProtocols:
			rw.status = code
		}
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *responseWriter) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.begin(http.StatusOK)
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.bytes += int64(n)
	return n, err
}

func (rw *responseWriter) WriteString(s string) (int, error) {
	if rw.status == 0 {
		rw.begin(http.StatusOK)
	}
	n, err := io.WriteString(rw.ResponseWriter, s)
	rw.bytes += int64(n)
	return n, err
}

func (rw *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if rw.status == 0 {
		rw.begin(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := rw.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src) // sendfile/splice on a TCP connection
	} else {
		n, err = io.Copy(writerOnly{rw.ResponseWriter}, src)
	}
	rw.bytes += n
	return n, err
}

func (rw *responseWriter) Flush() {
	if rw.status == 0 {
		rw.begin(http.StatusOK)
	}
	_ = http.NewResponseController(rw.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Hijack hands the connection over; the request is recorded with status
// 101 unless a status was written before.
func (hw hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := hw.ResponseWriter.(http.Hijacker).Hijack()
	if err == nil && hw.status == 0 {
		hw.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// writerOnly hides ReadFrom so io.Copy does not recurse into it.
type writerOnly struct{ io.Writer }
