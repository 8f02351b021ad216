package telemetry

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// accessRecord is the one access-log record Middleware writes per request.
// Its keys are fixed and none of them is sensitive (IsSensitiveKey), so it
// needs no redaction pass.
type accessRecord struct {
	time                time.Time
	method, route, path string
	status              int
	durationMS          float64
	bytes               int64
	clientIP, userAgent string
	// traceID and spanID are empty when the request has no valid span,
	// requestID when it has no ID; empty ones are left out, as the
	// context handler leaves them out.
	traceID, spanID, requestID string
}

// accessMessage is the access record's msg.
const accessMessage = "http request"

// attrs are the record's attributes in the order the JSON line has them,
// without the ones the context handler adds (trace_id, span_id, request_id).
func (a *accessRecord) attrs() [8]slog.Attr {
	return [8]slog.Attr{
		slog.String("method", a.method),
		slog.String("route", a.route),
		slog.String("path", a.path),
		slog.Int("status", a.status),
		slog.Float64("duration_ms", a.durationMS),
		slog.Int64("bytes", a.bytes),
		slog.String("client_ip", a.clientIP),
		slog.String("user_agent", a.userAgent),
	}
}

// logAccess writes a through h: the fast path when h has one, otherwise
// an ordinary record carrying ctx (whose handler adds the trace and
// request IDs).
func logAccess(ctx context.Context, h slog.Handler, a *accessRecord) {
	// Concrete types, not the accessLogger interface, so that a can stay
	// on the caller's stack.
	switch h := h.(type) {
	case *jsonHandler:
		h.logAccess(ctx, a)
		return
	case teeHandler:
		h.logAccess(ctx, a)
		return
	}
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	r := slog.NewRecord(a.time, slog.LevelInfo, accessMessage, 0)
	attrs := a.attrs()
	r.AddAttrs(attrs[:]...)
	_ = h.Handle(ctx, r)
}

// lockedWriter serialises writes to w. NewJSONHandler gives it to
// slog.JSONHandler (whose own lock then never waits) and writes access
// records through it too, so both kinds of line reach w whole, one Write
// each.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

// jsonHandler is the handler NewJSONHandler returns: slog's JSONHandler
// (with redaction, under the context handler) for every record, and an
// append-only encoder for the access record that writes the same bytes
// slog would (TestAccessRecordMatchesSlog, FuzzAccessRecordMatchesSlog).
// Handlers derived with WithAttrs or WithGroup are plain context handlers:
// the access record is only ever written through the root handler.
type jsonHandler struct {
	contextHandler
	out *lockedWriter
}

// bufPool holds access-log line buffers. Like slog, it keeps only small
// buffers, so that one huge record does not pin memory.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBuf = 16 << 10

func (h *jsonHandler) logAccess(ctx context.Context, a *accessRecord) {
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := appendAccessJSON((*bp)[:0], a)
	_, _ = h.out.Write(b)
	if cap(b) <= maxPooledBuf {
		*bp = b
		bufPool.Put(bp)
	}
}

// appendAccessJSON appends a as one JSON line, byte for byte what
// slog.JSONHandler writes for the same record through the context handler:
// time (RFC 3339 with nanoseconds, monotonic reading dropped), level, msg,
// the attributes in order, then trace_id, span_id and request_id.
func appendAccessJSON(b []byte, a *accessRecord) []byte {
	b = append(b, `{"time":"`...)
	b = a.time.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"`+accessMessage+`","method":"`...)
	b = appendJSONString(b, a.method)
	b = append(b, `","route":"`...)
	b = appendJSONString(b, a.route)
	b = append(b, `","path":"`...)
	b = appendJSONString(b, a.path)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(a.status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendJSONFloat(b, a.durationMS)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, a.bytes, 10)
	b = append(b, `,"client_ip":"`...)
	b = appendJSONString(b, a.clientIP)
	b = append(b, `","user_agent":"`...)
	b = appendJSONString(b, a.userAgent)
	b = append(b, '"')
	if a.traceID != "" {
		b = append(b, `,"trace_id":"`...)
		b = appendJSONString(b, a.traceID)
		b = append(b, `","span_id":"`...)
		b = appendJSONString(b, a.spanID)
		b = append(b, '"')
	}
	if a.requestID != "" {
		b = append(b, `,"request_id":"`...)
		b = appendJSONString(b, a.requestID)
		b = append(b, '"')
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s escaped as slog's JSON handler escapes
// strings (without the quotes): '"', '\\' and control characters escaped,
// '\n', '\r', '\t' by name; invalid UTF-8 bytes become \ufffd; U+2028 and
// U+2029 are escaped; HTML characters are kept.
func appendJSONString(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

const hexDigits = "0123456789abcdef"

// appendJSONFloat formats f as encoding/json does (which is what slog's
// JSON handler calls for floats): the shortest representation, in
// exponent form below 1e-6 and from 1e21, with a two-digit exponent
// shortened ("1e-07" -> "1e-7"). NaN and infinities, which JSON cannot
// hold, are written as slog writes the error it gets for them.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, `"!ERROR:json: unsupported value: `+strconv.FormatFloat(f, 'g', -1, 64)+`"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendHex appends src in lower-case hex.
func appendHex(b, src []byte) []byte { return hex.AppendEncode(b, src) }

// teeHandler is slog's MultiHandler (every record to each handler enabled
// for it) whose access record goes through each handler's fast path where
// it has one. New uses it to add the log file.
type teeHandler struct {
	*slog.MultiHandler
	hs []slog.Handler
}

func newTeeHandler(hs ...slog.Handler) teeHandler {
	return teeHandler{slog.NewMultiHandler(hs...), hs}
}

func (t teeHandler) logAccess(ctx context.Context, a *accessRecord) {
	for _, h := range t.hs {
		logAccess(ctx, h, a)
	}
}
