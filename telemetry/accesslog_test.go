package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// slogAccessLine is what slog's JSONHandler, with the redaction and the
// context handler NewJSONHandler used before the fast path, writes for a:
// the reference the fast path must match byte for byte.
func slogAccessLine(t testing.TB, a *accessRecord) []byte {
	t.Helper()
	var buf bytes.Buffer
	ref := NewContextHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: redact}))
	ctx := context.Background()
	info := &requestInfo{route: a.route, id: a.requestID, traceHex: a.traceID, spanHex: a.spanID}
	if a.traceID != "" {
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled,
		})
		info.spanID = sc.SpanID()
		ctx = trace.ContextWithSpanContext(ctx, sc)
	}
	ctx = &requestCtx{Context: ctx, info: info}
	logAccess(ctx, ref, a) // ref has no fast path: an ordinary slog record
	if buf.Len() == 0 {
		t.Fatal("slog wrote nothing")
	}
	return buf.Bytes()
}

func fastAccessLine(a *accessRecord) []byte {
	var buf bytes.Buffer
	h := NewJSONHandler(&buf, slog.LevelInfo).(*jsonHandler)
	h.logAccess(context.Background(), a)
	return buf.Bytes()
}

func TestAccessRecordMatchesSlog(t *testing.T) {
	base := accessRecord{
		time:   time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC),
		method: "GET", route: "/api/v1/items/{id}", path: "/api/v1/items/42",
		status: 200, durationMS: 1.234, bytes: 123,
		clientIP: "192.0.2.1", userAgent: "Go-http-client/1.1",
		traceID: "0123456789abcdef0123456789abcdef", spanID: "0123456789abcdef", requestID: "c0ffee",
	}
	for name, mod := range map[string]func(*accessRecord){
		"typical":        func(*accessRecord) {},
		"no span":        func(a *accessRecord) { a.traceID, a.spanID = "", "" },
		"no request id":  func(a *accessRecord) { a.requestID = "" },
		"nothing":        func(a *accessRecord) { *a = accessRecord{time: a.time} },
		"local time":     func(a *accessRecord) { a.time = a.time.In(time.FixedZone("X", -(3*3600 + 1800))) },
		"monotonic":      func(a *accessRecord) { a.time = time.Now() },
		"whole seconds":  func(a *accessRecord) { a.time = time.Unix(1700000000, 0).UTC() },
		"zero duration":  func(a *accessRecord) { a.durationMS = 0 },
		"tiny duration":  func(a *accessRecord) { a.durationMS = 1e-7 },
		"huge duration":  func(a *accessRecord) { a.durationMS = 3e21 },
		"negative":       func(a *accessRecord) { a.durationMS, a.bytes, a.status = -0.5, -1, -1 },
		"big ints":       func(a *accessRecord) { a.bytes, a.status = math.MaxInt64, math.MinInt32 },
		"escapes":        func(a *accessRecord) { a.path = "/a\"b\\c\n\r\t\x00\x1f\x7f</script>&" },
		"bad utf-8":      func(a *accessRecord) { a.userAgent = "ok\xff\xfe\xc3(é€😀" },
		"line separator": func(a *accessRecord) { a.userAgent = "a\u2028b\u2029c" },
		"ipv6":           func(a *accessRecord) { a.clientIP = "2001:db8::1" },
		"other method":   func(a *accessRecord) { a.method, a.route = "BREW", Unmatched },
	} {
		t.Run(name, func(t *testing.T) {
			a := base
			mod(&a)
			want := slogAccessLine(t, &a)
			got := fastAccessLine(&a)
			if !bytes.Equal(got, want) {
				t.Errorf("fast path differs from slog:\n got %s\nwant %s", got, want)
			}
			if !json.Valid(bytes.TrimSpace(got)) {
				t.Errorf("not valid JSON: %s", got)
			}
		})
	}
}

func TestAccessRecordNaN(t *testing.T) {
	// Durations are never NaN or infinite, but the encoder says so as
	// slog would rather than writing invalid JSON.
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		a := accessRecord{time: time.Unix(0, 0).UTC(), durationMS: f}
		if got, want := fastAccessLine(&a), slogAccessLine(t, &a); !bytes.Equal(got, want) {
			t.Errorf("duration %v: got %s, want %s", f, got, want)
		}
	}
}

func FuzzAccessRecordMatchesSlog(f *testing.F) {
	f.Add("GET", "/items/{id}", "/items/1", 200, 1.5, int64(10), "192.0.2.1", "curl/8", "", "id-1", int64(1700000000123456789))
	f.Add("BREW", "unmatched", "/a\"\\\n\u2028\xff", -1, 1e-9, int64(-5), "::1", "\x00\x7f", "0123456789abcdef0123456789abcdef", "", int64(0))
	f.Fuzz(func(t *testing.T, method, route, path string, status int, dur float64, n int64, ip, ua, traceID, reqID string, nanos int64) {
		a := accessRecord{
			// Years 0..9999: RFC 3339 cannot hold others, and slog then
			// writes an error instead of the time.
			time:   time.Unix(0, nanos).UTC(),
			method: method, route: route, path: path, status: status, durationMS: dur, bytes: n,
			clientIP: ip, userAgent: ua, requestID: reqID,
		}
		if traceID != "" {
			a.traceID, a.spanID = traceID, strings.ToUpper(traceID)
		}
		if got, want := fastAccessLine(&a), slogAccessLine(t, &a); !bytes.Equal(got, want) {
			t.Errorf("fast path differs from slog:\n got %q\nwant %q", got, want)
		}
	})
}

func TestAccessRecordFastPathAllocs(t *testing.T) {
	h := NewJSONHandler(discard{}, slog.LevelInfo).(*jsonHandler)
	a := accessRecord{time: time.Now(), method: "GET", route: "/r", path: "/r", status: 200,
		durationMS: 0.5, bytes: 10, clientIP: "::1", userAgent: "ua", traceID: "t", spanID: "s", requestID: "r"}
	ctx := context.Background()
	h.logAccess(ctx, &a) // fill the pool
	if n := testing.AllocsPerRun(100, func() { h.logAccess(ctx, &a) }); n != 0 {
		t.Errorf("logAccess allocates %v times per record, want 0", n)
	}
}

// TestAccessRecordLevel: the access record is at Info, so a Warn-level
// handler drops it on both paths.
func TestAccessRecordLevel(t *testing.T) {
	var buf bytes.Buffer
	a := accessRecord{time: time.Now(), method: "GET"}
	logAccess(context.Background(), NewJSONHandler(&buf, slog.LevelWarn), &a)
	logAccess(context.Background(), NewTextHandler(&buf, slog.LevelWarn, false), &a)
	if buf.Len() != 0 {
		t.Errorf("access record written above its level: %q", buf.String())
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
