package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// fakeExporter records batches; when block is set, ExportSpans waits for
// its context.
type fakeExporter struct {
	mu       sync.Mutex
	batches  [][]string
	block    bool
	fail     error
	shutdown bool
}

func (f *fakeExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	f.mu.Lock()
	block, fail := f.block, f.fail
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	if fail != nil {
		return fail
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	f.mu.Lock()
	f.batches = append(f.batches, names)
	f.mu.Unlock()
	return nil
}

func (f *fakeExporter) Shutdown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdown = true
	return nil
}

func (f *fakeExporter) got() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.batches...)
}

func roSpan(name string, sampled bool) sdktrace.ReadOnlySpan {
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	return tracetest.SpanStub{
		Name: name,
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: flags,
		}),
	}.Snapshot()
}

type bpFixture struct {
	bp      *batchProcessor
	exp     *fakeExporter
	dropped *prometheus.CounterVec
}

func newBP(exp *fakeExporter) bpFixture {
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dropped_total", Help: "x"}, []string{"reason"})
	tc := traceConfig{queueSize: 4, batchSize: 2, scheduleDelay: time.Second, exportTimeout: 3 * time.Second}
	return bpFixture{newBatchProcessor(exp, tc, dropped, slog.New(slog.DiscardHandler)), exp, dropped}
}

func (f bpFixture) drops(reason string) float64 {
	return testutil.ToFloat64(f.dropped.WithLabelValues(reason))
}

func TestBatchProcessorSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newBP(&fakeExporter{})
		f.bp.OnEnd(roSpan("a", true))
		f.bp.OnEnd(roSpan("unsampled", false))
		synctest.Wait()
		if got := f.exp.got(); len(got) != 0 {
			t.Fatalf("exported %v before the schedule delay", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := f.exp.got(); len(got) != 1 || len(got[0]) != 1 || got[0][0] != "a" {
			t.Fatalf("after the delay exported %v, want [[a]]", got)
		}
		// A full batch goes out at once.
		f.bp.OnEnd(roSpan("b", true))
		f.bp.OnEnd(roSpan("c", true))
		synctest.Wait()
		if got := f.exp.got(); len(got) != 2 || len(got[1]) != 2 {
			t.Fatalf("full batch not exported at once: %v", got)
		}
		if err := f.bp.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !f.exp.shutdown {
			t.Error("exporter not shut down")
		}
	})
}

func TestBatchProcessorQueueFullAndExportTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newBP(&fakeExporter{block: true})
		f.bp.OnEnd(roSpan("1", true))
		f.bp.OnEnd(roSpan("2", true)) // batch full: export starts and blocks
		synctest.Wait()
		for range 10 {
			f.bp.OnEnd(roSpan("x", true)) // never blocks
		}
		if got := f.drops("queue_full"); got != 6 {
			t.Errorf("queue_full = %v, want 6 (10 spans, queue of 4)", got)
		}
		time.Sleep(3 * time.Second) // the export timeout
		synctest.Wait()
		// The first batch timed out; the next one (from the queue) is now stuck.
		if got := f.drops("export_failed"); got != 2 {
			t.Errorf("export_failed = %v, want 2 after one timed-out export", got)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := f.bp.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown with a blocked exporter: %v, want deadline exceeded", err)
		}
		f.bp.OnEnd(roSpan("late", true))
		if got := f.drops("shutdown"); got < 1 {
			t.Errorf("span after Shutdown not counted: shutdown = %v", got)
		}
		// Let the background goroutine finish inside the bubble.
		f.exp.mu.Lock()
		f.exp.block = false
		f.exp.mu.Unlock()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		select {
		case <-f.bp.done:
		default:
			t.Error("export goroutine still running after Shutdown gave up and the exporter recovered")
		}
	})
}

func TestBatchProcessorFlushAndFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newBP(&fakeExporter{})
		f.bp.OnEnd(roSpan("a", true))
		if err := f.bp.ForceFlush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := f.exp.got(); len(got) != 1 {
			t.Errorf("ForceFlush exported %v, want one batch", got)
		}
		f.exp.mu.Lock()
		f.exp.fail = errors.New("collector said no")
		f.exp.mu.Unlock()
		f.bp.OnEnd(roSpan("b", true))
		f.bp.OnEnd(roSpan("c", true))
		synctest.Wait()
		if got := f.drops("export_failed"); got != 2 {
			t.Errorf("export_failed = %v, want 2", got)
		}
		// Shutdown exports what is still queued.
		f.exp.mu.Lock()
		f.exp.fail = nil
		f.exp.mu.Unlock()
		f.bp.OnEnd(roSpan("d", true))
		if err := f.bp.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := f.exp.got(); len(got) != 2 || got[1][0] != "d" {
			t.Errorf("Shutdown did not flush: %v", got)
		}
		if err := f.bp.ForceFlush(t.Context()); err != nil {
			t.Errorf("ForceFlush after Shutdown: %v", err)
		}
	})
}
