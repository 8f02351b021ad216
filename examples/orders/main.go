// Command orders is a minimal second service on the glasshouse stack: it
// imports only the telemetry package (TestImports) and gets traces, RED
// metrics with exemplars, system gauges, correlated logs and an admin
// listener from it.
// Its SLO spec (slo.yaml) renders its rules, alerts, dashboards and load
// thresholds into generated/ (make fork-rules).
//
// The block between the quickstart markers is the quick start at the top of
// telemetry/README.md; a test keeps the two identical.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/glasshouse-dev/glasshouse/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	addr := fs.String("addr", or(getenv("ADDR"), ":8090"), "public listener (env ADDR)")
	adminAddr := fs.String("admin-addr", or(getenv("ADMIN_ADDR"), "127.0.0.1:8091"), "admin listener: /metrics, /debug/fault (env ADMIN_ADDR)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var orders store
	var fault fault

	// quickstart:begin
	tel, err := telemetry.New(ctx, telemetry.Config{ServiceName: "orders", LogWriter: stdout, Getenv: getenv})
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) // flushes queued spans

	mux := http.NewServeMux()
	mux.Handle("POST /orders", fault.wrap(handleOrderCreate(tel, &orders)))
	mux.Handle("GET /orders/{id}", fault.wrap(handleOrderGet(tel, &orders)))
	public := &http.Server{Addr: *addr, Handler: tel.Middleware(mux), ReadHeaderTimeout: 5 * time.Second} // spans, RED metrics, access log

	admin := http.NewServeMux()                        // keep it on loopback
	admin.Handle("GET /metrics", tel.MetricsHandler()) // OpenMetrics with trace exemplars
	admin.Handle("PUT /debug/fault", handleFault(&fault))
	// quickstart:end

	return serve(ctx, tel, public, &http.Server{Addr: *adminAddr, Handler: admin, ReadHeaderTimeout: 5 * time.Second})
}

// serve runs both servers until ctx ends or one fails, then shuts both down.
// Both addresses are bound before anything is served or logged, so a
// taken port fails at once, and "listening" is true when it is logged.
func serve(ctx context.Context, tel *telemetry.Telemetry, public, admin *http.Server) error {
	pl, err := net.Listen("tcp", public.Addr)
	if err != nil {
		return err
	}
	al, err := net.Listen("tcp", admin.Addr)
	if err != nil {
		pl.Close()
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- public.Serve(pl) }()
	go func() { errc <- admin.Serve(al) }()
	tel.Logger.InfoContext(ctx, "orders listening", "addr", pl.Addr().String(), "admin_addr", al.Addr().String())
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = errors.Join(err, public.Shutdown(shutdownCtx), admin.Shutdown(shutdownCtx))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

type order struct {
	ID       int    `json:"id"`
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

// store keeps orders in memory (ID i at index i-1); safe for concurrent use.
type store struct {
	mu     sync.Mutex
	orders []order
}

func handleOrderCreate(tel *telemetry.Telemetry, s *store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var o order
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&o); err != nil || o.Item == "" || o.Quantity < 1 {
			http.Error(w, `{"error":"want {\"item\": non-empty, \"quantity\": >= 1}"}`, http.StatusUnprocessableEntity)
			return
		}
		_, span := tel.Span(r.Context(), "orders.insert") // a child of the server span
		s.mu.Lock()
		o.ID = len(s.orders) + 1
		s.orders = append(s.orders, o)
		s.mu.Unlock()
		span.End()
		tel.Logger.InfoContext(r.Context(), "order created", "order_id", o.ID) // carries trace_id, span_id, request_id
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(o)
	})
}

func handleOrderGet(tel *telemetry.Telemetry, s *store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.PathValue("id"))
		_, span := tel.Span(r.Context(), "orders.get")
		s.mu.Lock()
		found := id >= 1 && id <= len(s.orders)
		var o order
		if found {
			o = s.orders[id-1]
		}
		s.mu.Unlock()
		span.End()
		if !found {
			http.Error(w, `{"error":"no such order"}`, http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(o)
	})
}

// fault makes a share of requests fail with 500 or wait longer, on demand
// (PUT /debug/fault?errors=0.5&delay=300ms on the admin listener), so the
// alerts and dashboards can be seen working.
type fault struct{ permille, delay atomic.Int64 }

func (f *fault) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(f.delay.Load()))
		if rand.Int64N(1000) < f.permille.Load() {
			http.Error(w, `{"error":"injected fault"}`, http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func handleFault(f *fault) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ratio, err1 := strconv.ParseFloat(or(r.URL.Query().Get("errors"), "0"), 64)
		delay, err2 := time.ParseDuration(or(r.URL.Query().Get("delay"), "0s"))
		if errors.Join(err1, err2) != nil || ratio < 0 || ratio > 1 || delay < 0 || delay > time.Minute {
			http.Error(w, "want errors=0..1 and delay=0s..1m", http.StatusBadRequest)
			return
		}
		f.permille.Store(int64(ratio * 1000))
		f.delay.Store(int64(delay))
		fmt.Fprintf(w, "errors=%v delay=%s\n", ratio, delay)
	})
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
