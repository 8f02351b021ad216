package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/glasshouse-dev/glasshouse/app"
)

// bulkBody is a bulk request of the given raw item elements.
func bulkBody(elems ...string) string { return `{"items":[` + strings.Join(elems, ",") + `]}` }

// validItems returns n valid item elements named "item <i>".
func validItems(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"name":"item %d","description":"d"}`, i)
	}
	return out
}

func TestItemsBulkCreate(t *testing.T) {
	f := newFixture(t)
	owner, token := f.signup(t, "bulky")
	elems := []string{
		`{"name":"Milk","description":"two litres"}`,
		`{"name":"  "}`,                               // 422: blank name
		`"just a string"`,                             // 400: not an object
		`{"name":"Eggs","colour":"brown"}`,            // 400: unknown field
		`{"name":"Bread"}`,                            // description defaults to ""
		`{"name":"` + strings.Repeat("x", 201) + `"}`, // 422: too long
	}
	w := f.do(t, req{method: "POST", path: "/api/v1/items/bulk", token: token, body: bulkBody(elems...)})
	if w.Code != http.StatusMultiStatus {
		t.Fatalf("bulk: %d %s", w.Code, w.Body)
	}
	got := decodeJSON[bulkResponse](t, w)
	wantStatus := []int{201, 422, 400, 400, 201, 422}
	wantCode := []string{"", "validation_failed", "invalid_json", "invalid_json", "", "validation_failed"}
	if len(got.Results) != len(wantStatus) || got.Created != 2 || got.Failed != 4 {
		t.Fatalf("bulk: %d results, created %d, failed %d; want %d, 2, 4: %s", len(got.Results), got.Created, got.Failed, len(wantStatus), w.Body)
	}
	for i, res := range got.Results {
		if res.Index != i || res.Status != wantStatus[i] {
			t.Errorf("result %d: index %d status %d, want %d %d", i, res.Index, res.Status, i, wantStatus[i])
		}
		switch {
		case res.Status == 201 && (res.Item == nil || res.Problem != nil || res.Item.OwnerID != owner.ID || res.Item.ID == 0):
			t.Errorf("result %d: created but item %+v problem %+v", i, res.Item, res.Problem)
		case res.Status != 201 && (res.Item != nil || res.Problem == nil || res.Problem.Status != res.Status ||
			res.Problem.Code != wantCode[i] || res.Problem.Type != "about:blank" || res.Problem.Title == "" || res.Problem.RequestID == ""):
			t.Errorf("result %d: failed with item %+v problem %+v, want problem code %q", i, res.Item, res.Problem, wantCode[i])
		}
	}
	if p := got.Results[1].Problem; p != nil && (len(p.Errors) != 1 || p.Errors[0].Field != "name") {
		t.Errorf("blank name: errors %+v, want one for name", p.Errors)
	}
	for _, i := range []int{0, 4} {
		it := got.Results[i].Item
		w := f.do(t, req{method: "GET", path: fmt.Sprintf("/api/v1/items/%d", it.ID), token: token})
		if w.Code != 200 || decodeJSON[app.Item](t, w) != *it {
			t.Errorf("GET created item %d: %d %s, want %+v", it.ID, w.Code, w.Body, *it)
		}
	}
	if got := metric(t, f.tel.Registry, "app_items_created_total", nil); got != 2 {
		t.Errorf("app_items_created_total = %v, want 2 (one per created item)", got)
	}
}

// TestItemsBulkChunks: a full request spans several chunks; every item is
// created, in request order.
func TestItemsBulkChunks(t *testing.T) {
	bs := &bulkSpy{}
	f := newFixture(t, func(o *Options) { bs.Store = o.Store; o.Store = bs })
	_, token := f.signup(t, "chunky")
	w := f.do(t, req{method: "POST", path: "/api/v1/items/bulk", token: token, body: bulkBody(validItems(app.MaxBulkItems)...)})
	if w.Code != http.StatusMultiStatus {
		t.Fatalf("bulk: %d %s", w.Code, w.Body)
	}
	got := decodeJSON[bulkResponse](t, w)
	if got.Created != app.MaxBulkItems || got.Failed != 0 {
		t.Fatalf("created %d failed %d, want %d 0", got.Created, got.Failed, app.MaxBulkItems)
	}
	var prev int64
	for i, res := range got.Results {
		if res.Item == nil || res.Item.Name != fmt.Sprintf("item %d", i) || res.Item.ID <= prev {
			t.Fatalf("result %d: %+v, want item %d with an ID above %d", i, res.Item, i, prev)
		}
		prev = res.Item.ID
	}
	if want := []int{25, 25, 25, 25}; fmt.Sprint(bs.sizes()) != fmt.Sprint(want) {
		t.Errorf("CreateItems chunk sizes %v, want %v", bs.sizes(), want)
	}
	if w := f.do(t, req{method: "GET", path: "/api/v1/items?limit=1", token: token}); decodeJSON[itemList](t, w).Total != app.MaxBulkItems {
		t.Errorf("stored total %s, want %d", w.Body, app.MaxBulkItems)
	}
}

func TestItemsBulkEnvelope(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBodyBytes = 64 << 10 })
	_, token := f.signup(t, "envelope")
	tooMany := bulkBody(validItems(app.MaxBulkItems + 1)...)
	for _, tc := range []struct {
		name, body string
		hdr        []string
		status     int
		code       string
	}{
		{"no items", `{}`, nil, 422, "validation_failed"},
		{"null", `{"items":null}`, nil, 422, "validation_failed"},
		{"object", `{"items":{"name":"x"}}`, nil, 422, "validation_failed"},
		{"string", `{"items":"x"}`, nil, 422, "validation_failed"},
		{"empty", `{"items":[]}`, nil, 422, "validation_failed"},
		{"too many", tooMany, nil, 422, "validation_failed"},
		{"bare array", `[{"name":"x"}]`, nil, 400, "invalid_json"},
		{"unknown field", `{"items":[{"name":"x"}],"all":true}`, nil, 400, "invalid_json"},
		{"duplicate key in an item", `{"items":[{"name":"x","name":"y"}]}`, nil, 400, "invalid_json"},
		{"malformed", `{"items":[{"name":"x"}`, nil, 400, "invalid_json"},
		{"idempotency key", bulkBody(validItems(1)...), []string{"Idempotency-Key", "k1"}, 400, "invalid_idempotency_key"},
		{"not JSON", bulkBody(validItems(1)...), []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"over MAX_BODY_BYTES", bulkBody(`{"name":"x","description":"` + strings.Repeat("d", 70<<10) + `"}`), nil, 413, "body_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do(t, req{method: "POST", path: "/api/v1/items/bulk", token: token, body: tc.body, hdr: tc.hdr})
			if w.Code != tc.status || problemOf(t, w).Code != tc.code {
				t.Errorf("%d %s, want %d %s", w.Code, w.Body, tc.status, tc.code)
			}
			if tc.status == 422 {
				if e := problemOf(t, w).Errors; len(e) != 1 || e[0].Field != "items" {
					t.Errorf("errors %+v, want one for items", e)
				}
			}
		})
	}
	if w := f.do(t, req{method: "POST", path: "/api/v1/items/bulk", body: bulkBody(validItems(1)...)}); w.Code != 401 {
		t.Errorf("without a token: %d, want 401", w.Code)
	}
	if w := f.do(t, req{method: "GET", path: "/api/v1/items?limit=1", token: token}); decodeJSON[itemList](t, w).Total != 0 {
		t.Errorf("rejected requests stored items: %s", w.Body)
	}
}

// bulkSpy is a store that records CreateItems chunk sizes and fails the
// calls whose number (from 1) is in fail.
type bulkSpy struct {
	app.Store
	mu    sync.Mutex
	calls []int
	fail  map[int]error
}

func (s *bulkSpy) CreateItems(ctx context.Context, items []*app.Item) error {
	s.mu.Lock()
	s.calls = append(s.calls, len(items))
	err := s.fail[len(s.calls)]
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return app.CreateItems(ctx, s.Store, items)
}

func (s *bulkSpy) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.calls...)
}

// noIDs is a broken app.BulkStore that reports success without creating.
type noIDs struct{ app.Store }

func (noIDs) CreateItems(context.Context, []*app.Item) error { return nil }

// oneByOne hides the store's app.BulkStore, and fails the CreateItem calls
// whose number (from 1) is in fail.
type oneByOne struct {
	app.Store
	mu   sync.Mutex
	n    int
	fail map[int]error
}

func (s *oneByOne) CreateItem(ctx context.Context, it *app.Item) error {
	s.mu.Lock()
	s.n++
	err := s.fail[s.n]
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.Store.CreateItem(ctx, it)
}

// TestItemsBulkStorageErrors: a failed chunk fails only its own items (503
// each) once something was created; when nothing was created the whole
// request answers as a single create would.
func TestItemsBulkStorageErrors(t *testing.T) {
	down := fmt.Errorf("create items: %w", app.ErrUnavailable)
	t.Run("second chunk fails", func(t *testing.T) {
		bs := &bulkSpy{fail: map[int]error{2: down}}
		f := newFixture(t, func(o *Options) { bs.Store = o.Store; o.Store = bs; o.Errors = newTracker(t, o) })
		_, token := f.signup(t, "partial")
		w := f.do(t, req{method: "POST", path: "/api/v1/items/bulk", token: token, body: bulkBody(validItems(30)...)})
		if w.Code != http.StatusMultiStatus {
			t.Fatalf("%d %s, want 207", w.Code, w.Body)
		}
		got := decodeJSON[bulkResponse](t, w)
		if got.Created != 25 || got.Failed != 5 {
			t.Errorf("created %d failed %d, want 25 5", got.Created, got.Failed)
		}
		for i, res := range got.Results {
			want, code := 201, ""
			if i >= 25 {
				want, code = 503, "unavailable"
			}
			if res.Status != want || (code != "" && (res.Problem == nil || res.Problem.Code != code)) {
				t.Errorf("result %d: %d %+v, want %d %s", i, res.Status, res.Problem, want, code)
			}
		}
		if got := metric(t, f.tel.Registry, "app_items_created_total", nil); got != 25 {
			t.Errorf("app_items_created_total = %v, want 25", got)
		}
		if !strings.Contains(f.logs.String(), "bulk create: chunk failed") {
			t.Errorf("the failed chunk was not logged:\n%s", f.logs)
		}
		if got := metric(t, f.tel.Registry, "app_errors_total", map[string]string{"route": "/api/v1/items/bulk", "error_type": "unavailable"}); got != 1 {
			t.Errorf("app_errors_total{route=/api/v1/items/bulk,error_type=unavailable} = %v, want 1 (the failed chunk)", got)
		}
	})
	t.Run("nothing created", func(t *testing.T) {
		bs := &bulkSpy{fail: map[int]error{1: down, 2: down}}
		f := newFixture(t, func(o *Options) { bs.Store = o.Store; o.Store = bs })
		_, token := f.signup(t, "outage")
		w := f.do(t, req{method: "POST", path: "/api/v1/items/bulk", token: token, body: bulkBody(append(validItems(30), `{"name":""}`)...)})
		if w.Code != http.StatusServiceUnavailable || problemOf(t, w).Code != "unavailable" {
			t.Errorf("%d %s, want 503 unavailable", w.Code, w.Body)
		}
		if logs := f.logs.String(); strings.Count(logs, `"msg":"dependency unavailable"`) != 1 || strings.Contains(logs, "chunk failed") {
			t.Errorf("want the failure logged once, by the request:\n%s", logs)
		}
	})
	t.Run("store returns no IDs", func(t *testing.T) {
		f := newFixture(t, func(o *Options) { o.Store = noIDs{o.Store} })
		_, token := f.signup(t, "noids")
		w := f.do(t, req{method: "POST", path: "/api/v1/items/bulk", token: token, body: bulkBody(validItems(2)...)})
		if w.Code != http.StatusInternalServerError || problemOf(t, w).Code != "internal" {
			t.Errorf("%d %s, want 500 internal", w.Code, w.Body)
		}
	})
	t.Run("owner deleted", func(t *testing.T) {
		bs := &bulkSpy{fail: map[int]error{1: fmt.Errorf("create items: %w", app.ErrUnknownOwner)}}
		f := newFixture(t, func(o *Options) { bs.Store = o.Store; o.Store = bs })
		_, token := f.signup(t, "ghost")
		w := f.do(t, req{method: "POST", path: "/api/v1/items/bulk", token: token, body: bulkBody(validItems(3)...)})
		if w.Code != http.StatusUnauthorized || problemOf(t, w).Code != "invalid_token" {
			t.Errorf("%d %s, want 401 invalid_token", w.Code, w.Body)
		}
	})
	t.Run("store without BulkStore stops mid-chunk", func(t *testing.T) {
		ob := &oneByOne{}
		f := newFixture(t, func(o *Options) { ob.Store = o.Store; o.Store = ob })
		_, token := f.signup(t, "onebyone")
		ob.mu.Lock()
		ob.fail = map[int]error{ob.n + 3: errors.New("disk on fire")}
		ob.mu.Unlock()
		w := f.do(t, req{method: "POST", path: "/api/v1/items/bulk", token: token, body: bulkBody(validItems(30)...)})
		if w.Code != http.StatusMultiStatus {
			t.Fatalf("%d %s, want 207", w.Code, w.Body)
		}
		got := decodeJSON[bulkResponse](t, w)
		for i, res := range got.Results {
			want := 201
			if i >= 2 && i < 25 {
				want = 500 // the rest of the failed chunk; the next chunk succeeds
			}
			if res.Status != want {
				t.Errorf("result %d: %d, want %d", i, res.Status, want)
			}
		}
		if got.Created != 7 || got.Failed != 23 {
			t.Errorf("created %d failed %d, want 7 23", got.Created, got.Failed)
		}
		if w := f.do(t, req{method: "GET", path: "/api/v1/items?limit=1", token: token}); decodeJSON[itemList](t, w).Total != 7 {
			t.Errorf("stored %s, want total 7 (the answer says what was stored)", w.Body)
		}
	})
}

// TestItemsBulkResponseShape: the 207 body is what the OpenAPI schema
// declares (results with index and status, created, failed), checked on
// the raw JSON.
func TestItemsBulkResponseShape(t *testing.T) {
	f := newFixture(t)
	_, token := f.signup(t, "shape")
	w := f.do(t, req{method: "POST", path: "/api/v1/items/bulk", token: token, body: bulkBody(`{"name":"a"}`, `{}`)})
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	var results []map[string]json.RawMessage
	json.Unmarshal(raw["results"], &results)
	if len(raw) != 3 || string(raw["created"]) != "1" || string(raw["failed"]) != "1" || len(results) != 2 {
		t.Fatalf("body %s", w.Body)
	}
	for i, want := range [][]string{{"index", "status", "item"}, {"index", "status", "problem"}} {
		if len(results[i]) != len(want) {
			t.Errorf("result %d has keys %v, want %v", i, keys(results[i]), want)
		}
		for _, k := range want {
			if _, ok := results[i][k]; !ok {
				t.Errorf("result %d lacks %q: %s", i, k, w.Body)
			}
		}
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
