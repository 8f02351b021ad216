package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/glasshouse-dev/glasshouse/app"
)

// brokenStore wraps a real store; while err is set every data method
// returns it.
type brokenStore struct {
	app.Store
	mu  sync.Mutex
	err error
}

func (s *brokenStore) set(err error) { s.mu.Lock(); s.err = err; s.mu.Unlock() }
func (s *brokenStore) get() error    { s.mu.Lock(); defer s.mu.Unlock(); return s.err }

func (s *brokenStore) CreateUser(ctx context.Context, u *app.User) error {
	if err := s.get(); err != nil {
		return err
	}
	return s.Store.CreateUser(ctx, u)
}

func (s *brokenStore) UserByID(ctx context.Context, id int64) (app.User, error) {
	if err := s.get(); err != nil {
		return app.User{}, err
	}
	return s.Store.UserByID(ctx, id)
}

func (s *brokenStore) UserByUsername(ctx context.Context, name string) (app.User, error) {
	if err := s.get(); err != nil {
		return app.User{}, err
	}
	return s.Store.UserByUsername(ctx, name)
}

func (s *brokenStore) CreateItem(ctx context.Context, it *app.Item) error {
	if err := s.get(); err != nil {
		return err
	}
	return s.Store.CreateItem(ctx, it)
}

func (s *brokenStore) Item(ctx context.Context, owner, id int64) (app.Item, error) {
	if err := s.get(); err != nil {
		return app.Item{}, err
	}
	return s.Store.Item(ctx, owner, id)
}

func (s *brokenStore) ListItems(ctx context.Context, owner int64, p app.Page) ([]app.Item, int, error) {
	if err := s.get(); err != nil {
		return nil, 0, err
	}
	return s.Store.ListItems(ctx, owner, p)
}

func (s *brokenStore) UpdateItem(ctx context.Context, it *app.Item) error {
	if err := s.get(); err != nil {
		return err
	}
	return s.Store.UpdateItem(ctx, it)
}

func (s *brokenStore) DeleteItem(ctx context.Context, owner, id int64) error {
	if err := s.get(); err != nil {
		return err
	}
	return s.Store.DeleteItem(ctx, owner, id)
}

// TestStoreErrorsOnEveryRoute: on every route that reads or writes the
// store, an unavailable store is a 503 with Retry-After, an unexpected error
// a safe 500, logged once. In particular a database outage during login is
// never answered as "wrong password" (401), nor a sign-up as a conflict.
func TestStoreErrorsOnEveryRoute(t *testing.T) {
	bs := &brokenStore{}
	f := newFixture(t, func(o *Options) { bs.Store = o.Store; o.Store = bs })
	_, token := f.signup(t, "olga")
	it := f.createItem(t, token, "kept")
	itemPath := fmt.Sprintf("/api/v1/items/%d", it.ID)

	routes := []req{
		{method: "POST", path: "/api/v1/users", body: `{"username":"pavel","email":"pavel@example.com","password":"Passw0rd!"}`},
		{method: "POST", path: "/api/v1/auth/login", body: `{"username":"olga","password":"Passw0rd!"}`},
		{method: "GET", path: "/api/v1/users/me", token: token},
		{method: "GET", path: "/api/v1/items", token: token},
		{method: "POST", path: "/api/v1/items", token: token, body: `{"name":"n"}`},
		{method: "GET", path: itemPath, token: token},
		{method: "PUT", path: itemPath, token: token, body: `{"name":"n"}`},
		{method: "DELETE", path: itemPath, token: token},
	}
	for _, tt := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("db: %w", app.ErrUnavailable), http.StatusServiceUnavailable, "unavailable"},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, "unavailable"},
		{errors.New("disk on fire at /var/lib/secret"), http.StatusInternalServerError, "internal"},
	} {
		for _, rq := range routes {
			t.Run(fmt.Sprintf("%s %s %d", rq.method, rq.path, tt.status), func(t *testing.T) {
				before := strings.Count(f.logs.String(), "disk on fire")
				bs.set(tt.err)
				defer bs.set(nil)
				w := f.do(t, rq)
				p := problemOf(t, w)
				if w.Code != tt.status || p.Code != tt.code {
					t.Fatalf("%v: %d %s, want %d %s (%s)", tt.err, w.Code, p.Code, tt.status, tt.code, w.Body)
				}
				if strings.Contains(w.Body.String(), "disk") || strings.Contains(w.Body.String(), "secret") {
					t.Errorf("internal error text reached the client: %s", w.Body)
				}
				if tt.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
				if tt.status == http.StatusInternalServerError {
					if n := strings.Count(f.logs.String(), "disk on fire") - before; n != 1 {
						t.Errorf("the 500's error was logged %d times, want once", n)
					}
				}
			})
		}
	}
	// The item survived every failed write.
	if w := f.do(t, req{method: "GET", path: itemPath, token: token}); w.Code != 200 || !strings.Contains(w.Body.String(), "kept") {
		t.Errorf("after the store errors: %d %s", w.Code, w.Body)
	}
}

// TestClientClosedRequest: a store call that fails because the client went
// away is answered 499 (not a 5xx the availability SLO would count) and is
// not logged as an error.
func TestClientClosedRequest(t *testing.T) {
	fs := &faultStore{}
	f := newFixture(t, func(o *Options) { fs.Store = o.Store; o.Store = fs })
	_, token := f.signup(t, "quinn")
	ctx, cancel := context.WithCancel(t.Context())
	fs.listItems = func(context.Context, int64, app.Page) ([]app.Item, int, error) {
		cancel() // the client hangs up while the query runs
		return nil, 0, fmt.Errorf("list items: %w", context.Canceled)
	}
	r := httptest.NewRequestWithContext(ctx, "GET", "/api/v1/items", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	checkResponse(t, "GET", "GET /api/v1/items", w.Code, w.Header(), w.Body.Bytes())
	if w.Code != StatusClientClosedRequest || problemOf(t, w).Code != "client_closed_request" {
		t.Fatalf("canceled request: %d %s, want 499 client_closed_request", w.Code, w.Body)
	}
	if logs := f.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("a client hang-up was logged as an error:\n%s", logs)
	}
	if got := metric(t, f.tel.Registry, "http_server_request_duration_seconds", map[string]string{"route": "/api/v1/items", "code": "499"}); got != 1 {
		t.Errorf("requests with code 499 = %v, want 1", got)
	}
}
