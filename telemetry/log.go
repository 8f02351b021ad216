package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/lmittmann/tint"
	"github.com/mattn/go-isatty"
	"go.opentelemetry.io/otel/trace"
	"gopkg.in/natefinch/lumberjack.v2"
)

// Redacted replaces the value of every sensitive attribute.
const Redacted = "[REDACTED]"

// Secret is a string that never appears in logs or fmt output: its
// LogValue, String and GoString return "[REDACTED]". Use Reveal where the
// value is really needed.
type Secret string

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// String implements fmt.Stringer.
func (Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer, so %#v redacts too.
func (Secret) GoString() string { return Redacted }

// MarshalText keeps encoding/json and friends from printing the value.
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// IsSensitiveKey reports whether the handler redacts values logged under
// key: the keys authorization, proxy_authorization, password, passwd,
// token, access_token, refresh_token, id_token, secret, client_secret,
// jwt_secret, cookie, set_cookie, api_key, apikey, x_api_key, private_key,
// database_url and redis_url, and keys ending in _password, _token,
// _secret or _key (as in new_password, refresh_token, signing_key); case is
// ignored and '-' reads as '_'. It does not allocate for keys up to 64
// bytes: it runs on every attribute of every record.
func IsSensitiveKey(key string) bool {
	var buf [64]byte
	if len(key) > len(buf) {
		return isSensitiveNormalized([]byte(strings.ToLower(strings.ReplaceAll(key, "-", "_"))))
	}
	k := buf[:len(key)]
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '-':
			c = '_'
		}
		k[i] = c
	}
	return isSensitiveNormalized(k)
}

func isSensitiveNormalized(k []byte) bool {
	switch string(k) { // compiled to comparisons: no allocation, no hashing
	case "authorization", "proxy_authorization", "password", "passwd", "token", "access_token",
		"refresh_token", "id_token", "secret", "client_secret", "jwt_secret", "cookie", "set_cookie",
		"api_key", "apikey", "x_api_key", "private_key", "database_url", "redis_url":
		return true
	}
	return bytes.HasSuffix(k, []byte("_password")) || bytes.HasSuffix(k, []byte("_token")) ||
		bytes.HasSuffix(k, []byte("_secret")) || bytes.HasSuffix(k, []byte("_key"))
}

// redact is the ReplaceAttr of every handler New builds: it runs on all
// attributes, including those added with Logger.With and inside groups, so
// callers cannot forget it.
func redact(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
		return a // the built-ins, on every record
	}
	if IsSensitiveKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	if a.Value.Kind() != slog.KindAny {
		return a
	}
	switch v := a.Value.Any().(type) {
	case http.Header:
		return slog.Any(a.Key, redactHeader(v))
	case *url.URL:
		if v != nil {
			return slog.String(a.Key, v.Redacted())
		}
	case url.Values:
		c := make(url.Values, len(v))
		for k, vs := range v {
			if IsSensitiveKey(k) {
				vs = []string{Redacted}
			}
			c[k] = vs
		}
		return slog.Any(a.Key, c)
	}
	return a
}

func redactHeader(h http.Header) http.Header {
	c := make(http.Header, len(h))
	for k, vs := range h {
		if IsSensitiveKey(k) {
			vs = []string{Redacted}
		}
		c[k] = vs
	}
	return c
}

// NewJSONHandler returns the JSON handler New uses in production: records
// carry trace_id, span_id and request_id from their context, and sensitive
// attributes are redacted. Tests use it to decode log lines.
//
// Middleware's access record, whose keys are fixed and not sensitive, skips
// slog's generic path: it is encoded straight into a pooled buffer, the
// same bytes slog would write, and written with one Write under the lock
// the handler also takes for every other record.
func NewJSONHandler(w io.Writer, level slog.Leveler) slog.Handler {
	out := &lockedWriter{w: w}
	return &jsonHandler{
		contextHandler: contextHandler{slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level, ReplaceAttr: redact})},
		out:            out,
	}
}

// NewTextHandler returns tint's coloured console handler with the same
// redaction and context attributes as NewJSONHandler; color toggles ANSI
// colours.
func NewTextHandler(w io.Writer, level slog.Leveler, color bool) slog.Handler {
	return NewContextHandler(tint.NewTextHandler(w, &tint.Options{
		Level:       level,
		ReplaceAttr: redact,
		TimeFormat:  "15:04:05.000",
		NoColor:     !color,
	}))
}

// NewContextHandler wraps h so that every record logged with a context
// gains trace_id and span_id (when the context holds a valid span) and
// request_id (when it holds one). Under Logger.WithGroup the keys are
// nested in the open group, as any attribute would be.
func NewContextHandler(h slog.Handler) slog.Handler { return contextHandler{h} }

type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.Handler.Handle(ctx, r)
	}
	info, _ := ctx.Value(requestInfoKey).(*requestInfo)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		if info != nil && info.spanID == sc.SpanID() && info.traceHex != "" {
			r.AddAttrs(slog.String("trace_id", info.traceHex), slog.String("span_id", info.spanHex))
		} else {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	id, _ := ctx.Value(requestIDKey).(string)
	if id == "" && info != nil {
		id = info.id
	}
	if id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// newLogger builds the logger described by cfg and, when it writes a log
// file, a func that closes it and one that reopens it.
func newLogger(cfg Config) (*slog.Logger, func(context.Context) error, func() error, error) {
	w := cfg.LogWriter
	if w == nil {
		w = os.Stdout
	}
	var closers []func() error
	closeAll := func(context.Context) error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	// buffered wraps a sink in a flushWriter when LogBufferBytes asks for one.
	buffered := func(w io.Writer) io.Writer {
		if cfg.LogBufferBytes <= 0 {
			return w
		}
		fw := newFlushWriter(w, cfg.LogBufferBytes, logFlushInterval)
		closers = append(closers, fw.Close)
		return fw
	}
	level := cfg.LogLevel
	terminal := false
	if f, ok := w.(*os.File); ok {
		terminal = isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
	}
	var base slog.Handler
	if cfg.LogFile == "" || cfg.LogFileTee {
		w = buffered(w)
	}
	switch strings.ToLower(cfg.LogFormat) {
	case "", "auto":
		if terminal && cfg.Environment != "production" {
			base = NewTextHandler(w, level, true)
		} else {
			base = NewJSONHandler(w, level)
		}
	case "json":
		base = NewJSONHandler(w, level)
	case "text", "tint":
		base = NewTextHandler(w, level, terminal)
	default:
		return nil, nil, nil, fmt.Errorf("log format %q: want auto, json or text", cfg.LogFormat)
	}
	if cfg.LogFile == "" {
		if len(closers) == 0 {
			return slog.New(base), nil, nil, nil
		}
		return slog.New(base), closeAll, nil, nil
	}
	size, backups := cfg.LogFileMaxSizeMB, cfg.LogFileMaxBackups
	if size <= 0 {
		size = 100
	}
	if backups <= 0 {
		backups = 5
	}
	lj := &lumberjack.Logger{Filename: cfg.LogFile, MaxSize: size, MaxBackups: backups}
	// Fail at start-up, not on the first record, when the file is unwritable.
	if _, err := lj.Write(nil); err != nil {
		return nil, nil, nil, fmt.Errorf("log file %q: %w", cfg.LogFile, err)
	}
	file := NewJSONHandler(buffered(lj), level)
	closers = append(closers, lj.Close) // after the buffer's flush
	// Closing lumberjack's file makes its next write open LOG_FILE again:
	// after logrotate has renamed it, a new file at the same path.
	reopen := lj.Close
	if !cfg.LogFileTee {
		return slog.New(file), closeAll, reopen, nil
	}
	return slog.New(newTeeHandler(base, file)), closeAll, reopen, nil
}
