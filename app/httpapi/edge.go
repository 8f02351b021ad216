package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// This file holds the defences that keep one client from filling the
// ConcurrencyLimit slots, by holding many requests open (slow bodies) or
// by sending many cheap ones, and from filling the password hasher.

// DefaultMinBodyRate is the body rate (bytes/s) below which a request
// body times out with 408, and DefaultBodyRateGrace the time a body gets
// before the rate applies.
const (
	DefaultMinBodyRate   = 1024
	DefaultBodyRateGrace = 2 * time.Second
)

// DefaultHashQueue is Options.HashQueue when it is 0.
const DefaultHashQueue = 16

// inFlightPerIP counts the requests of each client IP between limitClient
// and the end of the handler. A plain mutex and map: the critical section
// is a map update, far cheaper than the request around it.
type inFlightPerIP struct {
	mu    sync.Mutex
	count map[string]int
}

// acquire takes a slot for ip unless it already holds limit.
func (g *inFlightPerIP) acquire(ip string, limit int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.count[ip] >= limit {
		return false
	}
	g.count[ip]++
	return true
}

func (g *inFlightPerIP) release(ip string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.count[ip] <= 1 {
		delete(g.count, ip) // the map holds only IPs with requests in flight
		return
	}
	g.count[ip]--
}

// limitClient is the per-client edge, in front of the body read and the
// concurrency limit (health probes exempt):
//
//   - at most ConcurrencyLimitPerIP requests of one client IP in flight,
//     bodies still arriving included (429 beyond);
//   - the rate limit: per user for a request with a valid access token,
//     per client IP for every other request (anonymous routes, unknown
//     routes, and missing or invalid tokens alike).
//
// A valid token's user ID is put in the context so requireAuth does not
// verify it twice.
func (s *server) limitClient(next http.Handler) http.Handler {
	perIP := s.opts.ConcurrencyLimitPerIP
	gate := &inFlightPerIP{count: map[string]int{}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/health") {
			next.ServeHTTP(w, r)
			return
		}
		ip := clientIP(r)
		if perIP > 0 {
			if !gate.acquire(ip, perIP) {
				s.metrics.rateLimited(s.route(r), "in_flight")
				rejectEarly(w, r, Problem{Status: http.StatusTooManyRequests, Code: "too_many_in_flight",
					Detail: fmt.Sprintf("this client already has %d requests in flight; retry when one completes", perIP)})
				return
			}
			defer gate.release(ip)
		}
		if token, ok := bearer(firstHeader(r.Header, "Authorization")); ok {
			if id, err := s.opts.Tokens.Verify(token); err == nil {
				r = r.WithContext(context.WithValue(r.Context(), userIDKey, id))
				var buf [32]byte
				key := strconv.AppendInt(append(buf[:0], "user:user:"...), id, 10)
				if s.allow(w, r, "user", string(key), s.opts.Limits.User) {
					next.ServeHTTP(w, r)
				}
				return
			}
		}
		if s.allow(w, r, "anonymous", "anonymous:ip:"+ip, s.opts.Limits.Anonymous) {
			next.ServeHTTP(w, r)
		}
	})
}

func firstHeader(h http.Header, canonicalKey string) string {
	if vs := h[canonicalKey]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// rejectEarly answers p to a request whose body has not been read. It
// closes the connection afterwards: otherwise net/http would read the rest
// of the body (at the client's pace) to keep the connection alive.
func rejectEarly(w http.ResponseWriter, r *http.Request, p Problem) {
	if r.ContentLength != 0 && !bodyRead(r) {
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Retry-After", "1")
	writeProblem(w, r, p)
}

// route is the request's route label for metrics.
func (s *server) route(r *http.Request) string {
	if route := telemetry.Route(r.Context()); route != "" {
		return route
	}
	return telemetry.RouteFromPattern(r.Pattern)
}

// errBodyTooSlow is what bodyRateReader returns when the body falls below
// the minimum rate or is still arriving after ReadTimeout.
var errBodyTooSlow = errors.New("request body arrived too slowly")

// readBody reads the whole request body (bounded by limitBody's
// MaxBytesReader) and hands the handler an in-memory body. After
// BodyRateGrace the body must keep arriving at MinBodyRate bytes per
// second on average, or it is answered 408 and the connection closed: a
// client trickling a body holds its slots for seconds, not for
// READ_TIMEOUT. Reading here, rather than in decode, is what lets the
// timeout get its own status.
//
// Handlers read the body whole anyway (decode), so buffering it here costs
// no extra memory.
func (s *server) readBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		var rd io.Reader = r.Body
		rc := http.NewResponseController(w)
		paced := s.opts.MinBodyRate > 0
		if paced {
			br := &bodyRateReader{r: r.Body, rc: rc, start: s.opts.Now(), grace: s.opts.BodyRateGrace, rate: s.opts.MinBodyRate}
			if s.opts.ReadTimeout > 0 {
				br.last = br.start.Add(s.opts.ReadTimeout)
			}
			rd = br
		}
		var buf bytes.Buffer
		if r.ContentLength > 0 {
			buf.Grow(int(min(r.ContentLength, s.opts.MaxBodyBytes)))
		}
		_, err := buf.ReadFrom(rd)
		if paced {
			// No deadline of ours may outlive the body: net/http's
			// background read of the connection would fail with it.
			_ = rc.SetReadDeadline(time.Time{})
		}
		if err != nil {
			w.Header().Set("Connection", "close")
			_, tooBig := errors.AsType[*http.MaxBytesError](err)
			switch {
			case tooBig:
				writeProblem(w, r, Problem{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
					Detail: fmt.Sprintf("request body is larger than %d bytes", s.opts.MaxBodyBytes)})
			case errors.Is(err, os.ErrDeadlineExceeded): // errBodyTooSlow, or the server's ReadTimeout
				s.log.LogAttrs(r.Context(), slog.LevelInfo, "request body too slow",
					slog.String("client_ip", clientIP(r)), slog.String("err", err.Error()))
				writeProblem(w, r, Problem{Status: http.StatusRequestTimeout, Code: "body_timeout",
					Detail: "the request body arrived too slowly"})
			default:
				writeProblem(w, r, Problem{Status: http.StatusBadRequest, Code: "unreadable_body",
					Detail: "request body could not be read"})
			}
			return
		}
		r.Body = bufferedBody{&buf}
		next.ServeHTTP(w, r)
	})
}

// bufferedBody is a body readBody has read whole.
type bufferedBody struct{ *bytes.Buffer }

func (bufferedBody) Close() error { return nil }

// bodyRead reports whether readBody has read r's body already.
func bodyRead(r *http.Request) bool {
	_, ok := r.Body.(bufferedBody)
	return ok
}

// bodyRateReader sets the connection's read deadline before each Read so
// that byte n must have arrived by start + grace + n/rate, and the whole
// body by last: a body slower than rate on average after grace, or still
// arriving at last, fails with errBodyTooSlow. Where the
// ResponseWriter cannot set deadlines (tests with a recorder), it reads
// without them.
type bodyRateReader struct {
	r     io.Reader
	rc    *http.ResponseController
	start time.Time
	last  time.Time // no deadline later than this (ReadTimeout); zero: none
	grace time.Duration
	rate  int64 // bytes per second
	n     int64 // bytes read so far
	noDL  bool  // the writer cannot set deadlines
}

func (b *bodyRateReader) Read(p []byte) (int, error) {
	if !b.noDL {
		due := b.start.Add(b.grace + time.Duration(float64(b.n+1)/float64(b.rate)*float64(time.Second)))
		if !b.last.IsZero() && due.After(b.last) {
			due = b.last
		}
		if err := b.rc.SetReadDeadline(due); err != nil {
			b.noDL = true
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return n, fmt.Errorf("%w after %d bytes: %w", errBodyTooSlow, b.n, err)
	}
	return n, err
}

// hashGate bounds the requests hashing a password or waiting for the
// hasher, in all and per client IP (a quarter of the bound, at least one):
// past either, signups and logins get a fast 503 instead of queueing
// behind argon2id for seconds, and one client's attempts that passed its
// rate limits cannot fill the queue for everyone else.
type hashGate struct {
	limit, perIP int
	mu           sync.Mutex
	n            int
	byIP         map[string]int
}

func newHashGate(limit int) *hashGate {
	return &hashGate{limit: limit, perIP: max(limit/4, 1), byIP: map[string]int{}}
}

// enter reports whether a request from ip may queue for the hasher; call
// leave when it is done.
func (g *hashGate) enter(ip string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n >= g.limit || g.byIP[ip] >= g.perIP {
		return false
	}
	g.n++
	g.byIP[ip]++
	return true
}

func (g *hashGate) leave(ip string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.byIP[ip] <= 1 {
		delete(g.byIP, ip)
		return
	}
	g.byIP[ip]--
}

// hashBusy answers a request refused by the hash gate.
func hashBusy(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "1")
	writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable, Code: "overloaded",
		Detail: "too many password checks are queued; retry shortly"})
}
