package sqlite_test

import (
	"path/filepath"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/sqlite"
)

// TestSpans: every query is a client span named "<OP> <table>" with the
// database semantic-convention attributes.
func TestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), sqlite.WithTracer(tp.Tracer("test")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	u := app.User{Username: "spans", Email: "spans@example.com", PasswordHash: "h"}
	if err := s.CreateUser(t.Context(), &u); err != nil {
		t.Fatal(err)
	}
	it := app.Item{OwnerID: u.ID, Name: "n"}
	if err := s.CreateItem(t.Context(), &it); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Item(t.Context(), u.ID, it.ID); err != nil {
		t.Fatal(err)
	}
	type span struct{ name, op, table, system string }
	var got []span
	for _, sp := range rec.Ended() {
		if sp.SpanKind() != trace.SpanKindClient {
			t.Errorf("%s: kind %v, want client", sp.Name(), sp.SpanKind())
		}
		g := span{name: sp.Name()}
		for _, a := range sp.Attributes() {
			switch a.Key {
			case "db.operation.name":
				g.op = a.Value.AsString()
			case "db.collection.name":
				g.table = a.Value.AsString()
			case "db.system.name":
				g.system = a.Value.AsString()
			}
		}
		got = append(got, g)
	}
	want := []span{
		{"INSERT users", "INSERT", "users", "sqlite"},
		{"INSERT items", "INSERT", "items", "sqlite"},
		{"SELECT items", "SELECT", "items", "sqlite"},
	}
	if len(got) != len(want) {
		t.Fatalf("spans %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("span %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
