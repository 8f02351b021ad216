package telemetry

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
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
	durationUS          int64 // microseconds; the line has milliseconds
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
		slog.Float64("duration_ms", float64(a.durationUS)/1000),
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
	b = appendRFC3339Nano(b, a.time)
	b = append(b, `","level":"INFO","msg":"`+accessMessage+`","method":"`...)
	b = appendJSONString(b, a.method)
	b = append(b, `","route":"`...)
	b = appendJSONString(b, a.route)
	b = append(b, `","path":"`...)
	b = appendJSONString(b, a.path)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(a.status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, a.durationUS)
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
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
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

// jsonPlain marks the bytes appendJSONString copies as they are: ASCII
// from space up, except '"' and '\\'. A lookup per byte instead of three
// comparisons saves about 10 ns of a typical record's 120
// (BenchmarkAccessRecord).
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendMillis appends us microseconds as milliseconds, exactly as slog's
// JSON handler writes float64(us)/1000 (encoding/json's shortest 'f'
// form, which it uses for any magnitude from 1e-6 to 1e21), without the
// float formatting: below 10^15 us the quotient has at most 15 significant
// digits, so its shortest form is the decimal itself, trailing zeros
// dropped. That saves about 15 ns a record (BenchmarkAccessRecord).
func appendMillis(b []byte, us int64) []byte {
	if us < 0 || us >= 1e15 {
		return strconv.AppendFloat(b, float64(us)/1000, 'f', -1, 64)
	}
	b = strconv.AppendInt(b, us/1000, 10)
	f := us % 1000
	if f == 0 {
		return b
	}
	b = append(b, '.', byte('0'+f/100))
	if f%100 != 0 {
		b = append(b, byte('0'+f/10%10))
		if f%10 != 0 {
			b = append(b, byte('0'+f%10))
		}
	}
	return b
}

// secondText is the RFC 3339 text of one second in one location: the date
// and time ("2006-01-02T15:04:05") and the zone ("Z" or "-07:00").
type secondText struct {
	unix      int64
	loc       *time.Location
	datetime  []byte
	zone      []byte
	formatted bool // false when the year is outside RFC 3339's
}

// lastSecond caches the second most records fall in, shared by all
// goroutines.
var lastSecond atomic.Pointer[secondText]

// appendRFC3339Nano appends t as t.AppendFormat(b, time.RFC3339Nano)
// does, formatting the date, time and zone once per second rather than
// once per record, which saves about 20 ns a record
// (BenchmarkAccessRecord).
func appendRFC3339Nano(b []byte, t time.Time) []byte {
	sec, loc := t.Unix(), t.Location()
	st := lastSecond.Load()
	if st == nil || st.unix != sec || st.loc != loc {
		st = &secondText{unix: sec, loc: loc}
		if y := t.Year(); y >= 0 && y <= 9999 {
			st.datetime = t.AppendFormat(nil, "2006-01-02T15:04:05")
			st.zone = t.AppendFormat(nil, "Z07:00")
			st.formatted = true
		}
		lastSecond.Store(st)
	}
	if !st.formatted {
		return t.Round(0).AppendFormat(b, time.RFC3339Nano)
	}
	b = append(b, st.datetime...)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, st.zone...)
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
