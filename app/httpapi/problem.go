package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/trace"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/errtrack"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// Problem is an RFC 9457 problem details body (application/problem+json).
// Type is always "about:blank" (Title is the status text); Code is a stable,
// machine-readable reason that clients branch on.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Code      string            `json:"code"`
	RequestID string            `json:"request_id,omitempty"`
	Errors    []app.FieldError  `json:"errors,omitempty"` // validation_failed: every invalid field
	Checks    map[string]string `json:"checks,omitempty"` // not_ready: each check's state
}

// writeProblem writes p (filling Type, Title and RequestID).
func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	p.Type = "about:blank"
	p.Title = http.StatusText(p.Status)
	if p.Status == StatusClientClosedRequest {
		p.Title = "Client Closed Request" // not in net/http's table
	}
	p.RequestID = telemetry.RequestID(r.Context())
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Del("Content-Length")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p) // the client may be gone; nothing to do about it
}

// writeInvalidToken answers 401 invalid_token: the token does not
// authenticate, or names a user that no longer exists.
func writeInvalidToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="glasshouse", error="invalid_token"`)
	writeProblem(w, r, Problem{Status: http.StatusUnauthorized, Code: "invalid_token",
		Detail: "the access token is invalid or expired"})
}

// StatusClientClosedRequest is nginx's non-standard 499: the client went away
// before the answer was ready. It keeps abandoned requests out of the 5xx
// that the availability SLO counts.
const StatusClientClosedRequest = 499

// errorLog is where respondErr reports a failure: the logger, and the
// tracker that counts, groups and alerts on 5xx (nil: none).
type errorLog struct {
	log   *slog.Logger
	track *errtrack.Tracker
}

// report hands a 5xx to the error tracker with the request's route, request
// ID and trace ID, and the stack of respondErr's caller.
func (el *errorLog) report(r *http.Request, errorType string, err error) {
	if el.track == nil {
		return
	}
	el.track.Report(errtrack.Event{Route: requestRoute(r), ErrorType: errorType, Err: err,
		RequestID: telemetry.RequestID(r.Context()), TraceID: traceID(r.Context()), Stack: errtrack.Callers(2)})
}

// requestRoute is r's route template for metric labels.
func requestRoute(r *http.Request) string {
	if route := telemetry.Route(r.Context()); route != "" {
		return route
	}
	return telemetry.Unmatched
}

// traceID is the request span's trace ID, or "" without one.
func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// respondErr is the one table from errors to responses. 5xx are logged here,
// once, at Error (with the trace and request IDs the logger adds), their
// cause is recorded on the request's span (the middleware sets its status),
// and they are reported to the error tracker (counted, alerted); the client
// sees only a safe message.
func respondErr(el *errorLog, w http.ResponseWriter, r *http.Request, err error) {
	log := el.log
	var p Problem
	re, isReq := errors.AsType[*requestError](err)
	ve, isInvalid := errors.AsType[*app.ValidationError](err)
	switch {
	case isReq:
		p = Problem{Status: re.status, Code: re.code, Detail: re.detail}
	case isInvalid:
		p = Problem{Status: http.StatusUnprocessableEntity, Code: "validation_failed",
			Detail: "one or more fields are invalid", Errors: ve.Fields}
	case errors.Is(err, app.ErrNotFound):
		p = Problem{Status: http.StatusNotFound, Code: "not_found", Detail: "the resource does not exist"}
	case errors.Is(err, app.ErrUnknownOwner):
		// A valid token whose user has been deleted since it was issued.
		writeInvalidToken(w, r)
		return
	case errors.Is(err, app.ErrIdempotencyKeyReused):
		p = Problem{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused",
			Detail: "this Idempotency-Key was already used with a different request body; use a new key for a new request"}
	case errors.Is(err, app.ErrConflict):
		p = Problem{Status: http.StatusConflict, Code: "conflict", Detail: "username or email is already taken"}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		log.LogAttrs(r.Context(), slog.LevelInfo, "client closed request", slog.String("err", err.Error()))
		p = Problem{Status: StatusClientClosedRequest, Code: "client_closed_request", Detail: "the client closed the request"}
	case errors.Is(err, app.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		log.LogAttrs(r.Context(), slog.LevelWarn, "dependency unavailable", slog.String("err", err.Error()))
		trace.SpanFromContext(r.Context()).RecordError(err)
		errorType := errtrack.TypeUnavailable
		if errors.Is(err, context.DeadlineExceeded) {
			errorType = errtrack.TypeTimeout
		}
		el.report(r, errorType, err)
		w.Header().Set("Retry-After", "1")
		p = Problem{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Detail: "a dependency is unavailable; retry shortly"}
	default:
		log.LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("err", err.Error()))
		trace.SpanFromContext(r.Context()).RecordError(err)
		el.report(r, errtrack.TypeInternal, err)
		p = Problem{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal server error"}
	}
	writeProblem(w, r, p)
}
