// Package pgtest gives integration tests their own empty PostgreSQL database
// on the server named by TEST_DATABASE_URL, so tests (and other packages'
// tests sharing the server) never see each other's rows.
//
// It imports pgx, internal/integration and the standard library only
// (TestImports).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/internal/integration"
	"github.com/jackc/pgx/v5"
)

// EnvVar names the variable holding the admin URL of the test server.
const EnvVar = "TEST_DATABASE_URL"

// AdminURL returns TEST_DATABASE_URL, or skips t with a message saying how
// to run the test when it is unset.
func AdminURL(t testing.TB) string {
	t.Helper()
	return integration.URL(t, EnvVar, "PostgreSQL", "postgres://postgres@127.0.0.1:55432/glasshouse_test?sslmode=disable")
}

// NewDatabase creates a database with a random name on the test server and
// returns its URL; it is dropped (with any open connections) when t ends.
// It skips t when TEST_DATABASE_URL is unset.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvVar, err)
	}
	defer conn.Close(ctx)

	b := make([]byte, 8)
	rand.Read(b)
	name := "gh_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("pgtest: %s is not a URL: %v", EnvVar, err)
	}
	u.Path = "/" + name
	return u.String()
}

// WithHost returns rawURL with its host:port replaced by hostport, for
// pointing a store at a proxy in front of the test server.
func WithHost(t testing.TB, rawURL, hostport string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("pgtest: %q is not a URL: %v", rawURL, err)
	}
	u.Host = hostport
	return u.String()
}

// Host returns the host:port of rawURL.
func Host(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("pgtest: %q is not a URL: %v", rawURL, err)
	}
	return u.Host
}
