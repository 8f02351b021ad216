package main

// Attack scenarios against data integrity, each on a freshly started API
// (through run, real HTTP on loopback): a cache that could serve an item
// after it was changed or deleted, and a token that outlives its user. Each
// prints what it measured (go test -v -run 'TestAttack').

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/glasshouse-dev/glasshouse/app/internal/redistest"
	"github.com/glasshouse-dev/glasshouse/app/postgres/pgtest"
)

// TestAttackStaleCache stalls the API's Redis (SIGSTOP) while an item is
// updated and another deleted, so both invalidations fail, then resumes it.
// A successful write must never be followed by a stale read from the same
// API: afterwards reads return the new content and 404, also once the
// cache is in use again (its hit counter grows).
func TestAttackStaleCache(t *testing.T) {
	rs := redistest.StartServer(t)
	api := startDepAPI(t, map[string]string{
		"REDIS_URL": rs.URL(), "CACHE_TTL": "1m",
		// The default: stalled, Redis must make the writes' invalidations
		// fail quickly. Before the stall it can also expire on a loaded
		// machine, so the warm-up reads until both items are hits.
		"REDIS_TIMEOUT": "100ms",
	})
	token := api.signup(t, "stale")
	_, kept := api.createItem(t, token, "before")
	_, gone := api.createItem(t, token, "doomed")
	keptPath, gonePath := fmt.Sprintf("/api/v1/items/%d", kept), fmt.Sprintf("/api/v1/items/%d", gone)
	hits := func() float64 {
		v, _ := api.metric(t, "app_cache_requests_total", map[string]string{"cache": "items", "result": "hit"})
		return v
	}
	within(t, 10*time.Second, "both items cached before the stall", func() error {
		before := hits()
		for _, p := range []string{keptPath, gonePath} {
			if st, _, b := api.get(t, p, token); st != http.StatusOK {
				t.Fatalf("warm-up read %s: %d %s", p, st, b)
			}
		}
		if h := hits() - before; h != 2 {
			return fmt.Errorf("%v cache hits in a round of two reads, want 2", h)
		}
		return nil
	})

	rs.Stall(t)
	stalled := time.Now()
	st, _, b := api.do(t, "PUT", keptPath, token, `{"name":"after","description":"new"}`)
	if st != http.StatusOK {
		rs.Resume(t)
		t.Fatalf("PUT with Redis stalled: %d %s", st, b)
	}
	if st, _, b := api.do(t, "DELETE", gonePath, token, ""); st != http.StatusNoContent {
		rs.Resume(t)
		t.Fatalf("DELETE with Redis stalled: %d %s", st, b)
	}
	writes := time.Since(stalled)
	rs.Resume(t)
	t.Logf("PUT and DELETE with Redis stalled: both succeeded in %v", writes.Round(time.Millisecond))

	// Read both until the cache has served at least two more hits (Redis is
	// in use again, past the cache's cooldown); every read must be fresh.
	base := hits()
	reads, stale := 0, 0
	took := within(t, 20*time.Second, "cache in use again after Redis resumed", func() error {
		for _, tc := range []struct {
			path   string
			status int
			want   string
		}{{keptPath, http.StatusOK, `"name":"after"`}, {gonePath, http.StatusNotFound, `"code":"not_found"`}} {
			st, _, b := api.get(t, tc.path, token)
			reads++
			if st != tc.status || !strings.Contains(string(b), tc.want) {
				stale++
				t.Errorf("read %s after the stalled write: %d %s; want %d with %s", tc.path, st, b, tc.status, tc.want)
			}
		}
		if h := hits(); h < base+2 {
			return fmt.Errorf("cache hits %v, want >= %v", h, base+2)
		}
		return nil
	})
	t.Logf("after Redis resumed: %d reads, %d stale, cache serving hits again after %v", reads, stale, took.Round(time.Millisecond))
}

// TestAttackDeletedUserToken deletes a user whose access token is still
// valid (as an operator would, in the database: the API has no route for
// it) and then uses the token to create an item: the answer is 401
// invalid_token, not a 500, on SQLite and PostgreSQL.
func TestAttackDeletedUserToken(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			env := map[string]string{"DATA_DIR": t.TempDir()}
			var deleteUser func(name string)
			switch db {
			case "sqlite":
				path := filepath.Join(env["DATA_DIR"], "glasshouse.db")
				deleteUser = func(name string) {
					conn, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)")
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					if _, err := conn.ExecContext(t.Context(), `DELETE FROM users WHERE username = ?`, name); err != nil {
						t.Fatalf("delete user: %v", err)
					}
				}
			case "postgres":
				env["DATABASE_URL"] = pgtest.NewDatabase(t)
				deleteUser = func(name string) {
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
					defer cancel()
					conn, err := pgx.Connect(ctx, env["DATABASE_URL"])
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close(ctx)
					if _, err := conn.Exec(ctx, `DELETE FROM users WHERE username = $1`, name); err != nil {
						t.Fatalf("delete user: %v", err)
					}
				}
			}
			api := startDepAPI(t, env)
			token := api.signup(t, "ghost")
			if st, _ := api.createItem(t, token, "before"); st != http.StatusCreated {
				t.Fatalf("create item before the delete: %d", st)
			}
			deleteUser("ghost")
			statuses := map[string]int{}
			for _, rq := range []struct{ method, path, body string }{
				{"POST", "/api/v1/items", `{"name":"after"}`},
				{"GET", "/api/v1/users/me", ""},
			} {
				st, h, b := api.do(t, rq.method, rq.path, token, rq.body)
				statuses[rq.method+" "+rq.path] = st
				p := decodeProblem(t, h, b)
				if st != http.StatusUnauthorized || p.Code != "invalid_token" {
					t.Errorf("%s %s with a deleted user's token: %d %s; want 401 invalid_token", rq.method, rq.path, st, b)
				}
				if st == http.StatusUnauthorized && !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("%s %s: 401 without WWW-Authenticate error=\"invalid_token\": %q", rq.method, rq.path, h.Get("WWW-Authenticate"))
				}
			}
			if strings.Contains(api.logs.String(), `"level":"ERROR"`) {
				t.Errorf("a deleted user's request was logged at ERROR:\n%s", api.logs)
			}
			t.Logf("%s: deleted user's token: %v", db, statuses)
		})
	}
}

// TestIdempotencyKeyThroughRun retries POST /api/v1/items with one
// Idempotency-Key against the API as run wires it (the store behind the
// fault injector, and the Redis cache when configured): one item, the
// same answer twice, on SQLite and PostgreSQL.
func TestIdempotencyKeyThroughRun(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres+redis"} {
		t.Run(db, func(t *testing.T) {
			env := map[string]string{}
			if db == "postgres+redis" {
				env["DATABASE_URL"] = pgtest.NewDatabase(t)
				env["REDIS_URL"] = redistest.URL(t)
				env["REDIS_KEY_PREFIX"] = redistest.Prefix(t)
			}
			api := startDepAPI(t, env)
			token := api.signup(t, "retry")
			var bodies []string
			for range 2 {
				req, err := http.NewRequest("POST", api.base+"/api/v1/items", strings.NewReader(`{"name":"once"}`))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Idempotency-Key", "3f1c2d9e-retry")
				resp, err := depClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var b strings.Builder
				_, err = io.Copy(&b, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusCreated {
					t.Fatalf("POST with Idempotency-Key: %d %s %v", resp.StatusCode, b.String(), err)
				}
				bodies = append(bodies, b.String())
			}
			if bodies[0] != bodies[1] {
				t.Errorf("retry answered %s, first answer was %s", bodies[1], bodies[0])
			}
			st, _, b := api.get(t, "/api/v1/items", token)
			if st != http.StatusOK || !strings.Contains(string(b), `"total":1`) {
				t.Errorf("list after two POSTs with one key: %d %s; want total 1", st, b)
			}
		})
	}
}
