package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName is the tracer's scope name.
const instrumentationName = "github.com/glasshouse-dev/glasshouse/app/postgres"

// tracer turns pgx's query and connect hooks into OpenTelemetry client spans
// following the database semantic conventions: span name
// "<operation> <table>", db.system.name, db.namespace, db.query.text (the
// parameterised SQL; argument values are never recorded), server.address and
// server.port, and db.response.status_code for server errors.
type tracer struct {
	t      trace.Tracer
	common []attribute.KeyValue
}

var (
	_ pgx.QueryTracer   = (*tracer)(nil)
	_ pgx.ConnectTracer = (*tracer)(nil)
	_ pgx.BatchTracer   = (*tracer)(nil)
)

func newTracer(tp trace.TracerProvider, cc *pgx.ConnConfig) *tracer {
	return &tracer{
		t: tp.Tracer(instrumentationName),
		common: []attribute.KeyValue{
			attribute.String("db.system.name", "postgresql"),
			attribute.String("db.namespace", cc.Database),
			attribute.String("server.address", cc.Host),
			attribute.Int("server.port", int(cc.Port)),
		},
	}
}

// TraceQueryStart implements pgx.QueryTracer.
func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	op, table := summarize(data.SQL)
	name := op
	if table != "" {
		name += " " + table
	}
	attrs := append(t.common[:len(t.common):len(t.common)],
		attribute.String("db.operation.name", op),
		attribute.String("db.query.text", data.SQL),
	)
	if table != "" {
		attrs = append(attrs, attribute.String("db.collection.name", table))
	}
	ctx, _ = t.t.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (t *tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	sp := trace.SpanFromContext(ctx)
	end(sp, data.Err)
}

// TraceBatchStart implements pgx.BatchTracer: a batch is one span (one
// round trip), named "BATCH <operation> <table>" when every query in it is
// the same operation on the same table, with db.operation.batch.size and
// the first query's text.
func (t *tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	var op, table, text string
	for i, q := range data.Batch.QueuedQueries {
		o, tb := summarize(q.SQL)
		if i == 0 {
			op, table, text = o, tb, q.SQL
		} else if o != op || tb != table {
			op, table = "", ""
			break
		}
	}
	name, opName := "BATCH", "BATCH"
	if op != "" {
		opName += " " + op
		name = opName
		if table != "" {
			name += " " + table
		}
	}
	attrs := append(t.common[:len(t.common):len(t.common)],
		attribute.String("db.operation.name", opName),
		attribute.Int("db.operation.batch.size", data.Batch.Len()),
	)
	if op != "" {
		attrs = append(attrs, attribute.String("db.query.text", text))
	}
	if table != "" {
		attrs = append(attrs, attribute.String("db.collection.name", table))
	}
	ctx, _ = t.t.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx
}

// TraceBatchQuery implements pgx.BatchTracer; the batch's span records the
// queries' errors when it ends.
func (t *tracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd implements pgx.BatchTracer.
func (t *tracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	end(trace.SpanFromContext(ctx), data.Err)
}

// TraceConnectStart implements pgx.ConnectTracer: dialling and
// authenticating a new pool connection is its own span, so an outage shows
// as failed connects in the trace of the request that paid for them.
func (t *tracer) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	ctx, _ = t.t.Start(ctx, "connect", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(t.common...))
	return ctx
}

// TraceConnectEnd implements pgx.ConnectTracer.
func (t *tracer) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	end(trace.SpanFromContext(ctx), data.Err)
}

// end records err on sp, unless it is an expected outcome (a uniqueness
// conflict is a 409, not a database failure), and ends sp.
func end(sp trace.Span, err error) {
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			sp.SetAttributes(attribute.String("db.response.status_code", pe.Code))
		}
		if pe == nil || pe.Code != "23505" {
			sp.RecordError(err)
			sp.SetStatus(codes.Error, err.Error())
			sp.SetAttributes(attribute.String("error.type", errorType(err, pe)))
		}
	}
	sp.End()
}

func errorType(err error, pe *pgconn.PgError) string {
	switch {
	case pe != nil:
		return pe.Code
	case pgconn.Timeout(err):
		return "timeout"
	}
	return "connection"
}

// summarize returns the statement's operation (SELECT, INSERT, ...) and the
// first table it names, from SQL this package writes itself (plain
// keywords, no quoting tricks). "WITH" statements report their main verb.
func summarize(sql string) (op, table string) {
	var f []string
	for _, line := range strings.Split(sql, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		f = append(f, strings.Fields(line)...)
	}
	if len(f) == 0 {
		return "", ""
	}
	op = strings.ToUpper(f[0])
	next := func(after ...string) string {
		for i := 0; i < len(f)-1; i++ {
			for _, a := range after {
				if !strings.EqualFold(f[i], a) {
					continue
				}
				j := i + 1
				for j < len(f)-1 && (strings.EqualFold(f[j], "IF") || strings.EqualFold(f[j], "NOT") ||
					strings.EqualFold(f[j], "EXISTS") || strings.EqualFold(f[j], "ONLY")) {
					j++
				}
				t := strings.Trim(f[j], "(),;")
				if t != "" && !strings.HasPrefix(t, "$") && !strings.EqualFold(t, "SELECT") &&
					!strings.EqualFold(t, "LATERAL") {
					if _, err := strconv.Atoi(t); err != nil {
						return t
					}
				}
			}
		}
		return ""
	}
	switch op {
	case "SELECT", "WITH", "DELETE":
		table = next("FROM")
	case "INSERT":
		table = next("INTO")
	case "UPDATE":
		table = next("UPDATE")
	case "CREATE", "ALTER", "DROP":
		table = next("TABLE")
	}
	return op, table
}
