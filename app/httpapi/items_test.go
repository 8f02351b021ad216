package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/glasshouse-dev/glasshouse/app"
)

func TestItemsCRUD(t *testing.T) {
	f := newFixture(t)
	owner, token := f.signup(t, "ivy")
	_, other := f.signup(t, "jack")

	w := f.do(t, req{method: "POST", path: "/api/v1/items", token: token, body: `{"name":"Milk","description":"two litres"}`})
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	it := decodeJSON[app.Item](t, w)
	if it.ID <= 0 || it.OwnerID != owner.ID || it.Name != "Milk" || it.Description != "two litres" {
		t.Errorf("created %+v", it)
	}
	if loc := w.Header().Get("Location"); loc != fmt.Sprintf("/api/v1/items/%d", it.ID) {
		t.Errorf("Location = %q", loc)
	}
	if got := metric(t, f.tel.Registry, "app_items_created_total", nil); got != 1 {
		t.Errorf("app_items_created_total = %v, want 1", got)
	}
	path := fmt.Sprintf("/api/v1/items/%d", it.ID)

	if w := f.do(t, req{method: "GET", path: path, token: token}); w.Code != 200 || decodeJSON[app.Item](t, w) != it {
		t.Errorf("get: %d %s", w.Code, w.Body)
	}
	// Another user's item is a 404 for every verb, and is left untouched.
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		w := f.do(t, req{method: m, path: path, token: other, body: map[string]string{"PUT": `{"name":"x"}`}[m]})
		if w.Code != 404 || problemOf(t, w).Code != "not_found" {
			t.Errorf("%s another user's item: %d, want 404", m, w.Code)
		}
	}
	w = f.do(t, req{method: "PUT", path: path, token: token, body: `{"name":"Oat milk"}`})
	if w.Code != 200 {
		t.Fatalf("update: %d %s", w.Code, w.Body)
	}
	upd := decodeJSON[app.Item](t, w)
	if upd.Name != "Oat milk" || upd.Description != "" || upd.ID != it.ID || !upd.CreatedAt.Equal(it.CreatedAt) {
		t.Errorf("updated %+v", upd)
	}
	if w := f.do(t, req{method: "PUT", path: path, token: token, body: `{"name":""}`}); w.Code != 422 {
		t.Errorf("invalid update: %d, want 422", w.Code)
	}
	if w := f.do(t, req{method: "PUT", path: "/api/v1/items/999999", token: token, body: `{"name":"x"}`}); w.Code != 404 {
		t.Errorf("update missing: %d, want 404", w.Code)
	}
	if w := f.do(t, req{method: "DELETE", path: path, token: token}); w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Errorf("delete: %d %q", w.Code, w.Body)
	}
	if w := f.do(t, req{method: "DELETE", path: path, token: token}); w.Code != 404 {
		t.Errorf("delete again: %d, want 404", w.Code)
	}
	if w := f.do(t, req{method: "GET", path: path, token: token}); w.Code != 404 {
		t.Errorf("get deleted: %d, want 404", w.Code)
	}
	for _, bad := range []string{"abc", "0", "-1", "1.5", "99999999999999999999"} {
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			w := f.do(t, req{method: m, path: "/api/v1/items/" + bad, token: token, body: map[string]string{"PUT": `{"name":"x"}`}[m]})
			if w.Code != 404 {
				t.Errorf("%s /api/v1/items/%s: %d, want 404", m, bad, w.Code)
			}
		}
	}
	if w := f.do(t, req{method: "GET", path: path}); w.Code != 401 {
		t.Errorf("without a token: %d, want 401", w.Code)
	}
	if w := f.do(t, req{method: "POST", path: "/api/v1/items", token: token, body: `{"name":"  ","description":"` + strings.Repeat("x", 2001) + `"}`}); w.Code != 422 || len(problemOf(t, w).Errors) != 2 {
		t.Errorf("invalid create: %d %s, want 422 listing name and description", w.Code, w.Body)
	}
}

func TestItemsList(t *testing.T) {
	f := newFixture(t)
	_, token := f.signup(t, "kate")
	_, other := f.signup(t, "leo")
	var ids []int64
	for i := range 25 {
		ids = append(ids, f.createItem(t, token, fmt.Sprintf("item-%02d", i)).ID)
		if i%10 == 0 {
			f.createItem(t, other, "not kate's")
		}
	}
	list := func(query string) (itemList, int) {
		w := f.do(t, req{method: "GET", path: "/api/v1/items" + query, token: token})
		if w.Code != 200 {
			return itemList{}, w.Code
		}
		return decodeJSON[itemList](t, w), w.Code
	}
	l, _ := list("")
	if l.Total != 25 || l.Limit != app.DefaultPageLimit || l.Offset != 0 || len(l.Items) != app.DefaultPageLimit {
		t.Errorf("default page: total %d limit %d offset %d len %d", l.Total, l.Limit, l.Offset, len(l.Items))
	}
	var got []int64
	for off := 0; off < 25; off += 10 {
		l, _ := list(fmt.Sprintf("?limit=10&offset=%d", off))
		for _, it := range l.Items {
			got = append(got, it.ID)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Errorf("paged IDs %v, want %v (ascending, only kate's)", got, ids)
	}
	if l, _ := list("?limit=1000"); l.Limit != app.MaxPageLimit || len(l.Items) != 25 {
		t.Errorf("limit=1000: limit %d, %d items; want capped at %d", l.Limit, len(l.Items), app.MaxPageLimit)
	}
	if l, _ := list("?offset=100"); len(l.Items) != 0 || l.Items == nil || l.Total != 25 {
		t.Errorf("offset past the end: %+v, want an empty (not null) list and total 25", l)
	}
	for _, q := range []string{"?limit=0", "?limit=-1", "?limit=abc", "?offset=-1", "?offset=1e3", "?offset=99999999999999"} {
		if _, code := list(q); code != 400 {
			t.Errorf("%s: %d, want 400", q, code)
		}
	}
	w := f.do(t, req{method: "GET", path: "/api/v1/items", token: other})
	if l := decodeJSON[itemList](t, w); l.Total != 3 {
		t.Errorf("other user's total = %d, want 3", l.Total)
	}
}

// faultStore wraps a real store and lets a test replace single methods.
type faultStore struct {
	app.Store
	item      func(ctx context.Context, owner, id int64) (app.Item, error)
	listItems func(ctx context.Context, owner int64, p app.Page) ([]app.Item, int, error)
}

func (s *faultStore) Item(ctx context.Context, owner, id int64) (app.Item, error) {
	if s.item != nil {
		return s.item(ctx, owner, id)
	}
	return s.Store.Item(ctx, owner, id)
}

func (s *faultStore) ListItems(ctx context.Context, owner int64, p app.Page) ([]app.Item, int, error) {
	if s.listItems != nil {
		return s.listItems(ctx, owner, p)
	}
	return s.Store.ListItems(ctx, owner, p)
}

func TestStoreErrorsMapToStatus(t *testing.T) {
	fs := &faultStore{}
	f := newFixture(t, func(o *Options) { fs.Store = o.Store; o.Store = fs })
	_, token := f.signup(t, "mia")
	for _, tt := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("item 1: %w", app.ErrNotFound), 404, "not_found"},
		{fmt.Errorf("db: %w", app.ErrUnavailable), 503, "unavailable"},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), 503, "unavailable"},
		{errors.New("disk on fire at /var/lib/secret"), 500, "internal"},
	} {
		fs.item = func(context.Context, int64, int64) (app.Item, error) { return app.Item{}, tt.err }
		w := f.do(t, req{method: "GET", path: "/api/v1/items/1", token: token})
		p := problemOf(t, w)
		if w.Code != tt.status || p.Code != tt.code {
			t.Errorf("%v: %d %s, want %d %s", tt.err, w.Code, p.Code, tt.status, tt.code)
		}
		if strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), "disk") {
			t.Errorf("internal error text reached the client: %s", w.Body)
		}
		if tt.status == 503 && w.Header().Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}
	if n := strings.Count(f.logs.String(), "disk on fire"); n != 1 {
		t.Errorf("the 500's error was logged %d times, want once:\n%s", n, f.logs)
	}
}

func TestPanicRecovered(t *testing.T) {
	fs := &faultStore{}
	f := newFixture(t, func(o *Options) { fs.Store = o.Store; o.Store = fs })
	_, token := f.signup(t, "nina")
	fs.listItems = func(context.Context, int64, app.Page) ([]app.Item, int, error) { panic("boom: secret detail") }
	w := f.do(t, req{method: "GET", path: "/api/v1/items", token: token})
	if w.Code != 500 || problemOf(t, w).Code != "internal" || strings.Contains(w.Body.String(), "boom") {
		t.Fatalf("panic: %d %s, want a safe 500 problem", w.Code, w.Body)
	}
	if got := metric(t, f.tel.Registry, "app_http_panics_recovered_total", map[string]string{"route": "/api/v1/items"}); got != 1 {
		t.Errorf("app_http_panics_recovered_total{route=/api/v1/items} = %v, want 1", got)
	}
	if got := metric(t, f.tel.Registry, "http_server_request_duration_seconds", map[string]string{"route": "/api/v1/items", "code": "500"}); got != 1 {
		t.Errorf("the recovered panic was not counted as a 500 in the RED histogram (%v)", got)
	}
	logs := f.logs.String()
	if strings.Count(logs, `"panic recovered"`) != 1 || !strings.Contains(logs, "goroutine") {
		t.Errorf("want one panic log record with a stack, got:\n%s", logs)
	}
	// The server keeps serving.
	fs.listItems = nil
	if w := f.do(t, req{method: "GET", path: "/api/v1/items", token: token}); w.Code != 200 {
		t.Errorf("after the panic: %d", w.Code)
	}
}

// TestAbortHandlerPanicPropagates: http.ErrAbortHandler is net/http's way
// to abort a response on purpose; recoverPanic passes it on instead of
// answering 500 or counting it as a bug.
func TestAbortHandlerPanicPropagates(t *testing.T) {
	fs := &faultStore{}
	f := newFixture(t, func(o *Options) { fs.Store = o.Store; o.Store = fs })
	_, token := f.signup(t, "uma")
	fs.listItems = func(context.Context, int64, app.Page) ([]app.Item, int, error) { panic(http.ErrAbortHandler) }
	r := httptest.NewRequest("GET", "/api/v1/items", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	rv := func() (rv any) {
		defer func() { rv = recover() }()
		f.h.ServeHTTP(httptest.NewRecorder(), r)
		return nil
	}()
	if rv != http.ErrAbortHandler {
		t.Errorf("recovered %v, want http.ErrAbortHandler re-raised for net/http", rv)
	}
	if got := metric(t, f.tel.Registry, "app_http_panics_recovered_total", nil); got > 0 {
		t.Errorf("app_http_panics_recovered_total = %v, want 0 for an intentional abort", got)
	}
	if strings.Contains(f.logs.String(), `"panic recovered"`) {
		t.Error("an intentional abort was logged as a recovered panic")
	}
}
