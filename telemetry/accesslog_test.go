package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"sync"
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
		status: 200, durationUS: 1234, bytes: 123,
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
		"zero duration":  func(a *accessRecord) { a.durationUS = 0 },
		"microseconds":   func(a *accessRecord) { a.durationUS = 7 },
		"whole ms":       func(a *accessRecord) { a.durationUS = 2000 },
		"tenths":         func(a *accessRecord) { a.durationUS = 1500 },
		"hundredths":     func(a *accessRecord) { a.durationUS = 1050 },
		"largest exact":  func(a *accessRecord) { a.durationUS = 1e15 - 1 },
		"huge duration":  func(a *accessRecord) { a.durationUS = math.MaxInt64 },
		"negative":       func(a *accessRecord) { a.durationUS, a.bytes, a.status = -500, -1, -1 },
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

func FuzzAccessRecordMatchesSlog(f *testing.F) {
	f.Add("GET", "/items/{id}", "/items/1", 200, int64(1500), int64(10), "192.0.2.1", "curl/8", "", "id-1", int64(1700000000123456789))
	f.Add("BREW", "unmatched", "/a\"\\\n\u2028\xff", -1, int64(-7), int64(-5), "::1", "\x00\x7f", "0123456789abcdef0123456789abcdef", "", int64(0))
	f.Fuzz(func(t *testing.T, method, route, path string, status int, dur, n int64, ip, ua, traceID, reqID string, nanos int64) {
		a := accessRecord{
			// Years 0..9999: RFC 3339 cannot hold others, and slog then
			// writes an error instead of the time.
			time:   time.Unix(0, nanos).UTC(),
			method: method, route: route, path: path, status: status, durationUS: dur, bytes: n,
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
		durationUS: 500, bytes: 10, clientIP: "::1", userAgent: "ua", traceID: "t", spanID: "s", requestID: "r"}
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

// BenchmarkAccessRecord formats a typical access record (the line
// Middleware writes for an authenticated item read).
func BenchmarkAccessRecord(b *testing.B) {
	a := accessRecord{
		time:   time.Now(),
		method: "GET", route: "/api/v1/items/{id}", path: "/api/v1/items/42",
		status: 200, durationUS: 107, bytes: 149,
		clientIP: "127.0.0.1", userAgent: "Go-http-client/1.1",
		traceID: "4751f8c429eb735da9b24a2f872b4f1f", spanID: "423d2c2e15dc26e8", requestID: "acc8fd4bc5b8bf9c",
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendAccessJSON(buf[:0], &a)
	}
}

// TestAppendRFC3339Nano compares the cached formatter with AppendFormat
// for records in the same second and in turn across seconds, locations
// (with daylight saving changes) and out-of-range years, and from many
// goroutines at once.
func TestAppendRFC3339Nano(t *testing.T) {
	locs := []*time.Location{time.UTC, time.Local, time.FixedZone("X", -(3*3600 + 1800)), time.FixedZone("Z0", 0)}
	for _, name := range []string{"America/New_York", "Europe/London", "Australia/Lord_Howe"} {
		if loc, err := time.LoadLocation(name); err == nil {
			locs = append(locs, loc)
		}
	}
	var times []time.Time
	for _, base := range []time.Time{
		time.Date(2026, 3, 8, 6, 59, 59, 0, time.UTC),   // New York's spring change at 07:00 UTC
		time.Date(2026, 10, 25, 0, 59, 59, 0, time.UTC), // London's autumn change at 01:00 UTC
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Now(),
	} {
		for _, d := range []time.Duration{0, 1, 10, 100_000, 120_000_000, 999_999_999, time.Second, time.Second + 5} {
			times = append(times, base.Add(d))
		}
	}
	check := func(t *testing.T, tm time.Time) {
		got := appendRFC3339Nano([]byte("x"), tm)
		want := tm.AppendFormat([]byte("x"), time.RFC3339Nano)
		if !bytes.Equal(got, want) {
			t.Errorf("%v: got %s, want %s", tm, got, want)
		}
	}
	for _, loc := range locs {
		for _, tm := range times {
			check(t, tm.In(loc))
			check(t, tm.In(loc)) // the cached second
			check(t, tm.In(locs[0]))
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				tm := times[(g+i)%len(times)].In(locs[i%len(locs)])
				check(t, tm)
			}
		})
	}
	wg.Wait()
}

func FuzzAppendRFC3339Nano(f *testing.F) {
	f.Add(int64(1700000000), int64(123456789), int64(5), -12600)
	f.Add(int64(-62135596800), int64(0), int64(999999999), 0)
	f.Fuzz(func(t *testing.T, sec, ns1, ns2 int64, offset int) {
		loc := time.FixedZone("F", offset%(24*3600))
		for _, ns := range []int64{ns1, ns2} {
			tm := time.Unix(sec, 0).Add(time.Duration(ns % 1e9)).In(loc)
			got := appendRFC3339Nano(nil, tm)
			if want := tm.AppendFormat(nil, time.RFC3339Nano); !bytes.Equal(got, want) {
				t.Errorf("%v: got %s, want %s", tm, got, want)
			}
		}
	})
}
