package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLogCorrelation(t *testing.T) {
	e := newTestEnv(t, nil)
	rec := e.do(t, http.MethodGet, "/items/9?secret=x", "User-Agent", "probe/1.0")
	spans := e.spans.Ended()
	server := spanNamed(t, spans, "GET /items/{id}")
	child := spanNamed(t, spans, "db.query")
	reqID := rec.Header().Get(RequestIDHeader)

	lines := logLines(t, e.logs.String())
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2 (handler + access):\n%s", len(lines), e.logs.String())
	}
	handler, access := lines[0], lines[1]

	if handler["msg"] != "item read" || handler["item_id"] != "9" {
		t.Errorf("handler record %v", handler)
	}
	if got, want := handler["trace_id"], server.SpanContext().TraceID().String(); got != want {
		t.Errorf("handler record trace_id %v, want %v", got, want)
	}
	if got, want := handler["span_id"], child.SpanContext().SpanID().String(); got != want {
		t.Errorf("handler record span_id %v, want the db.query span %v", got, want)
	}
	if handler["request_id"] != reqID {
		t.Errorf("handler record request_id %v, want %v", handler["request_id"], reqID)
	}

	want := map[string]any{
		"level":       "INFO",
		"msg":         "http request",
		"method":      "GET",
		"route":       "/items/{id}",
		"path":        "/items/9", // no query string: it may carry secrets
		"status":      float64(200),
		"duration_ms": float64(30),
		"bytes":       float64(len(`{"id":"9"}`)),
		"client_ip":   "192.0.2.1", // httptest's RemoteAddr
		"user_agent":  "probe/1.0",
		"request_id":  reqID,
		"trace_id":    server.SpanContext().TraceID().String(),
		"span_id":     server.SpanContext().SpanID().String(),
	}
	for k, v := range want {
		if access[k] != v {
			t.Errorf("access log %s = %#v, want %#v", k, access[k], v)
		}
	}
	if _, ok := access["time"]; !ok {
		t.Error("access log has no time")
	}

	// The Grafana Loki datasource's derived field (dashboards/provisioning)
	// finds the trace ID in the raw line with this regex.
	derived := regexp.MustCompile(`"trace_id":"([0-9a-f]{32})"`)
	for line := range strings.Lines(e.logs.String()) {
		if m := derived.FindStringSubmatch(line); m == nil || m[1] != server.SpanContext().TraceID().String() {
			t.Errorf("derived-field regex finds %q in %s", m, line)
		}
	}
}

func TestLogWithoutContext(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(NewJSONHandler(&buf, slog.LevelInfo))
	l.Info("plain")
	l.InfoContext(WithRequestID(context.Background(), "r1"), "with id")
	lines := logLines(t, buf.String())
	if _, ok := lines[0]["trace_id"]; ok {
		t.Errorf("record without span has trace_id: %v", lines[0])
	}
	if lines[1]["request_id"] != "r1" {
		t.Errorf("request_id %v, want r1", lines[1]["request_id"])
	}
}

// secrets holds values that must never reach a log line.
var secrets = []string{"hunter2", "Bearer eyJhbGciOi", "s3cr3t-jwt-key", "tok-123", "sid=abc", "pa55word", "ak-999"}

func logEverySecret(l *slog.Logger) {
	l.Info("login",
		"password", "hunter2",
		"Authorization", "Bearer eyJhbGciOi",
		"user_id", "u1",
	)
	l.With("jwt_secret", "s3cr3t-jwt-key").Info("config loaded")
	l.Info("nested", slog.Group("req", slog.String("access_token", "tok-123"), slog.String("Cookie", "sid=abc")))
	l.WithGroup("user").Info("change", "new_password", "pa55word", "X-Api-Key", "ak-999")
	l.Info("secret type", "key", Secret("s3cr3t-jwt-key"))
	l.Info("headers", "headers", http.Header{"Authorization": {"Bearer eyJhbGciOi"}, "Accept": {"*/*"}})
	u, _ := url.Parse("postgres://app:hunter2@db:5432/app")
	l.Info("url", "dsn_url", u)
	l.Info("form", "form", url.Values{"password": {"hunter2"}, "email": {"a@b.c"}})
	l.Info("err", "err", fmt.Errorf("connect: %v", Secret("hunter2")))
}

func TestRedactionJSON(t *testing.T) {
	var buf bytes.Buffer
	logEverySecret(slog.New(NewJSONHandler(&buf, slog.LevelInfo)))
	out := buf.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("log output contains secret %q:\n%s", s, out)
		}
	}
	lines := logLines(t, out)
	if lines[0]["user_id"] != "u1" || lines[0]["password"] != Redacted {
		t.Errorf("first record %v: want user_id kept and password redacted", lines[0])
	}
	for _, keep := range []string{`"Accept":["*/*"]`, `"email":["a@b.c"]`, `postgres://app:xxxxx@db:5432/app`} {
		if !strings.Contains(out, keep) {
			t.Errorf("log output lacks non-secret %s:\n%s", keep, out)
		}
	}
}

func TestRedactionText(t *testing.T) {
	var buf bytes.Buffer
	logEverySecret(slog.New(NewTextHandler(&buf, slog.LevelInfo, false)))
	out := buf.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("text log output contains secret %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, Redacted) {
		t.Errorf("text output has no %s:\n%s", Redacted, out)
	}
}

func TestSecretEverywhere(t *testing.T) {
	s := Secret("hunter2")
	b, err := json.Marshal(struct{ S Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []string{fmt.Sprint(s), fmt.Sprintf("%s %v %+v %#v %q", s, s, s, s, s), string(b)} {
		if strings.Contains(got, "hunter2") {
			t.Errorf("secret printed: %s", got)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Errorf("Reveal = %q", s.Reveal())
	}
}

func TestIsSensitiveKey(t *testing.T) {
	for key, want := range map[string]bool{
		"password": true, "Password": true, "AUTHORIZATION": true, "set-cookie": true, "refresh_token": true,
		"x-api-key": true, "JWT_SECRET": true, "db_password": true, "signing_key": true,
		"user_id": false, "token_type": false, "route": false, "keyboard": false, "max_tokens": false,
	} {
		if got := IsSensitiveKey(key); got != want {
			t.Errorf("IsSensitiveKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestLogFormats(t *testing.T) {
	for _, tc := range []struct {
		name, format, env string
		json              bool
	}{
		{"auto on a non-terminal writer is JSON", "auto", "development", true},
		{"empty means auto", "", "", true},
		{"json forced", "json", "development", true},
		{"text forced", "text", "production", false},
		{"tint alias", "tint", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tel, err := New(t.Context(), Config{LogFormat: tc.format, Environment: tc.env, LogWriter: &buf, Getenv: envMap()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
			tel.Logger.Info("hello", "k", "v")
			if got := json.Valid(bytes.TrimSpace(buf.Bytes())); got != tc.json {
				t.Errorf("JSON = %v, want %v: %q", got, tc.json, buf.String())
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	var buf bytes.Buffer
	tel, err := New(t.Context(), Config{LogLevel: slog.LevelWarn, LogWriter: &buf, Getenv: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	tel.Logger.Info("dropped")
	tel.Logger.Warn("kept")
	if out := buf.String(); strings.Contains(out, "dropped") || !strings.Contains(out, "kept") {
		t.Errorf("level warn output: %q", out)
	}
}

func TestBadConfigReportsEverything(t *testing.T) {
	_, err := New(t.Context(), Config{
		LogFormat: "xml",
		Getenv:    envMap("OTEL_TRACES_SAMPLER", "sometimes", "OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
	})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{`log format "xml"`, `OTEL_TRACES_SAMPLER="sometimes"`, `OTEL_EXPORTER_OTLP_PROTOCOL="carrier-pigeon"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestLogFile: with LogFile the records go to the file only (one write
// each); LogFileTee keeps the console copy too.
func TestLogFile(t *testing.T) {
	for _, tee := range []bool{false, true} {
		t.Run(fmt.Sprintf("tee=%v", tee), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "logs", "api.log")
			var console bytes.Buffer
			tel, err := New(t.Context(), Config{LogFormat: "text", LogWriter: &console, LogFile: path, LogFileMaxSizeMB: 1,
				LogFileMaxBackups: 2, LogFileTee: tee, Getenv: envMap()})
			if err != nil {
				t.Fatal(err)
			}
			ctx := WithRequestID(context.Background(), "rid-1")
			tel.Logger.InfoContext(ctx, "a record", "password", "hunter2")
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := logLines(t, string(b))
			if len(lines) != 1 || lines[0]["msg"] != "a record" || lines[0]["request_id"] != "rid-1" || lines[0]["password"] != Redacted {
				t.Errorf("log file lines %v", lines)
			}
			if got := strings.Contains(console.String(), "a record"); got != tee {
				t.Errorf("console has the record: %v, want %v (LogFileTee); console %q", got, tee, console.String())
			}
			if strings.Contains(console.String(), "hunter2") {
				t.Errorf("console shows the secret: %q", console.String())
			}
		})
	}
}

func TestLogFileUnwritable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(t.Context(), Config{LogWriter: &bytes.Buffer{}, LogFile: filepath.Join(blocker, "api.log"), Getenv: envMap()})
	if err == nil || !strings.Contains(err.Error(), "log file") {
		t.Errorf("New with a log file under a regular file: err %v, want a log file error", err)
	}
	var pathErr *os.PathError
	if err != nil && !errors.As(err, &pathErr) {
		t.Logf("error is %T", errors.Unwrap(err))
	}
}

func TestIsSensitiveKeyDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { IsSensitiveKey("X-Upstream-Request-Authorization-Header-For-Proxy"); IsSensitiveKey("Short") }); n != 0 {
		t.Errorf("IsSensitiveKey allocates %v times per call", n)
	}
}

// TestAccessLogToConsoleAndFile: with a log file and LogFileTee the access record reaches
// both sinks, the JSON file through the fast path and tint's console
// output as an ordinary record, each once.
func TestAccessLogToConsoleAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.log")
	console := &syncBuffer{}
	tel, err := New(t.Context(), Config{LogFormat: "text", LogWriter: console, LogFile: path, LogFileTee: true, Getenv: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/items/7", nil)
	req.Header.Set("User-Agent", "probe/2")
	tel.Middleware(mux).ServeHTTP(rec, req)
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := logLines(t, string(b))
	if len(lines) != 1 {
		t.Fatalf("log file has %d lines, want the access record:\n%s", len(lines), b)
	}
	a := lines[0]
	if a["msg"] != "http request" || a["route"] != "/items/{id}" || a["path"] != "/items/7" || a["status"] != float64(200) ||
		a["bytes"] != float64(2) || a["user_agent"] != "probe/2" || a["request_id"] != rec.Header().Get(RequestIDHeader) {
		t.Errorf("access record in the file: %v", a)
	}
	if tr := rec.Header().Get(TraceResponseHeader); a["trace_id"] == nil || !strings.Contains(tr, a["trace_id"].(string)) {
		t.Errorf("access record trace_id %v, traceresponse %q", a["trace_id"], tr)
	}
	if n := strings.Count(console.String(), "http request"); n != 1 || !strings.Contains(console.String(), "route=/items/{id}") {
		t.Errorf("console has %d access records, want 1 with the route:\n%s", n, console)
	}
}

// TestLogFileRotates: past LogFileMaxSizeMB the file is rotated, and at
// most LogFileMaxBackups old files are kept.
func TestLogFileRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api.log")
	tel, err := New(t.Context(), Config{LogFormat: "json", LogWriter: io.Discard, LogFile: path,
		LogFileMaxSizeMB: 1, LogFileMaxBackups: 2, DisableAccessLog: true, Getenv: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1000)
	for i := range 4500 { // about 4.5 MB: four rotations
		tel.Logger.Info("filler", "i", i, "pad", pad)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	logFiles := func() (names []string) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	// lumberjack removes surplus backups in a background goroutine: wait
	// for it rather than assume it has run (30 s only guards a hang).
	var names []string
	for range 3000 {
		if names = logFiles(); len(names) <= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(names) != 3 || !slices.Contains(names, "api.log") {
		t.Fatalf("log directory holds %v, want api.log and 2 rotated backups", names)
	}
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over the 1 MB limit", n, fi.Size())
		}
	}
}
