package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// batchProcessor is a span processor with a bounded queue that never blocks
// the goroutine ending a span: when the queue is full (the collector is slow
// or gone) the span is dropped and counted. One goroutine exports batches of
// up to batchSize spans every scheduleDelay, each export bounded by
// exportTimeout; a failed export counts its spans as dropped.
//
// The SDK's BatchSpanProcessor behaves the same way but keeps its drop count
// private; this one feeds app_trace_spans_dropped_total{reason}.
type batchProcessor struct {
	exp           sdktrace.SpanExporter
	queue         chan sdktrace.ReadOnlySpan
	batchSize     int
	scheduleDelay time.Duration
	exportTimeout time.Duration
	log           *slog.Logger

	queueFull, exportFailed, afterShutdown prometheus.Counter

	flushReq chan chan struct{}
	quit     chan struct{} // closed by Shutdown
	done     chan struct{} // closed when run returns
	stopped  atomic.Bool
	stopOnce sync.Once
	stopCtx  context.Context // set before quit is closed
	failing  bool            // only the export goroutine touches it
}

var _ sdktrace.SpanProcessor = (*batchProcessor)(nil)

func newBatchProcessor(exp sdktrace.SpanExporter, tc traceConfig, dropped *prometheus.CounterVec, log *slog.Logger) *batchProcessor {
	bp := &batchProcessor{
		exp:           exp,
		queue:         make(chan sdktrace.ReadOnlySpan, tc.queueSize),
		batchSize:     tc.batchSize,
		scheduleDelay: tc.scheduleDelay,
		exportTimeout: tc.exportTimeout,
		log:           log,
		queueFull:     dropped.WithLabelValues("queue_full"),
		exportFailed:  dropped.WithLabelValues("export_failed"),
		afterShutdown: dropped.WithLabelValues("shutdown"),
		flushReq:      make(chan chan struct{}),
		quit:          make(chan struct{}),
		done:          make(chan struct{}),
	}
	go bp.run()
	return bp
}

// OnStart does nothing.
func (bp *batchProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a sampled span for export, or drops it when the queue is full.
func (bp *batchProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	if bp.stopped.Load() {
		bp.afterShutdown.Inc()
		return
	}
	select {
	case bp.queue <- s:
	default:
		bp.queueFull.Inc()
	}
}

// ForceFlush exports everything queued so far, waiting at most until ctx is done.
func (bp *batchProcessor) ForceFlush(ctx context.Context) error {
	if bp.stopped.Load() {
		return nil
	}
	reply := make(chan struct{})
	select {
	case bp.flushReq <- reply:
	case <-bp.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued and shuts the exporter down, waiting at
// most until ctx is done; it then returns ctx's error and the export
// goroutine finishes in the background, counting what it could not export
// as dropped (reason "shutdown"). Spans ended after Shutdown are dropped too.
func (bp *batchProcessor) Shutdown(ctx context.Context) error {
	bp.stopOnce.Do(func() {
		bp.stopCtx = ctx
		bp.stopped.Store(true)
		close(bp.quit)
	})
	select {
	case <-bp.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (bp *batchProcessor) run() {
	defer close(bp.done)
	batch := make([]sdktrace.ReadOnlySpan, 0, bp.batchSize)
	timer := time.NewTimer(bp.scheduleDelay)
	defer timer.Stop()
	export := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, bp.exportTimeout)
		err := bp.exp.ExportSpans(ctx, batch)
		cancel()
		if err != nil {
			bp.exportFailed.Add(float64(len(batch)))
			if !bp.failing {
				bp.log.Warn("trace export failing; spans are dropped until it recovers", "err", err, "spans", len(batch))
			}
			bp.failing = true
		} else if bp.failing {
			bp.log.Info("trace export recovered")
			bp.failing = false
		}
		clear(batch) // let the spans be collected
		batch = batch[:0]
	}
	// drain moves everything queued right now into batches and exports them.
	drain := func(ctx context.Context) {
		for {
			select {
			case s := <-bp.queue:
				batch = append(batch, s)
				if len(batch) == bp.batchSize {
					export(ctx)
				}
			default:
				export(ctx)
				return
			}
		}
	}
	for {
		select {
		case s := <-bp.queue:
			batch = append(batch, s)
			if len(batch) == bp.batchSize {
				export(context.Background())
				timer.Reset(bp.scheduleDelay)
			}
		case <-timer.C:
			export(context.Background())
			timer.Reset(bp.scheduleDelay)
		case reply := <-bp.flushReq:
			drain(context.Background())
			close(reply)
		case <-bp.quit:
			ctx := bp.stopCtx
			if ctx.Err() != nil {
				// Too late to export: count what is left.
				bp.afterShutdown.Add(float64(len(batch) + len(bp.queue)))
				batch = batch[:0]
			} else {
				drain(ctx)
			}
			if err := bp.exp.Shutdown(ctx); err != nil {
				bp.log.Warn("trace exporter shutdown", "err", err)
			}
			return
		}
	}
}
