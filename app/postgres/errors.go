package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/glasshouse-dev/glasshouse/app"
)

// wrap turns a driver error from the call "what" into the app's sentinel
// errors. ctx is the call's context: when the caller gave up (cancelled),
// the error says so instead of blaming the database.
func (s *Store) wrap(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	switch classify(err) {
	case app.ErrNotFound:
		return fmt.Errorf("%s: %w", what, app.ErrNotFound)
	case app.ErrConflict:
		return fmt.Errorf("%s: %w", what, app.ErrConflict)
	case app.ErrUnavailable:
		if errors.Is(ctx.Err(), context.Canceled) {
			return fmt.Errorf("%s: %w", what, context.Canceled)
		}
		return fmt.Errorf("%s: %w: %w", what, app.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// classify returns app.ErrNotFound, app.ErrConflict or app.ErrUnavailable
// for errors that mean those things, and nil for the rest (bugs, bad SQL,
// constraint violations other than uniqueness), which stay 500s.
func classify(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return app.ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return app.ErrConflict
		case strings.HasPrefix(pe.Code, "08"), // connection_exception
			strings.HasPrefix(pe.Code, "53"),       // insufficient_resources (too_many_connections, disk_full, ...)
			strings.HasPrefix(pe.Code, "57"),       // operator_intervention: query_canceled (statement_timeout), admin_shutdown, cannot_connect_now
			strings.HasPrefix(pe.Code, "58"),       // system_error (I/O)
			pe.Code == "40001", pe.Code == "40P01", // serialization_failure, deadlock_detected: retryable
			pe.Code == "55P03", // lock_not_available
			pe.Code == "25006": // read_only_sql_transaction: connected to a standby after failover
			return app.ErrUnavailable
		}
		return nil
	}
	var (
		ne net.Error
		ce *pgconn.ConnectError
	)
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		err.Error() == "closed pool": // puddle.ErrClosedPool: the store is shutting down
		return app.ErrUnavailable
	}
	// pgconn reports a connection lost mid-query as "conn closed" or
	// "failed to receive message" around an error without a type.
	if msg := err.Error(); strings.Contains(msg, "conn closed") || strings.Contains(msg, "failed to receive message") ||
		strings.Contains(msg, "failed to write") {
		return app.ErrUnavailable
	}
	return nil
}
