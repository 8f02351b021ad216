package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/glasshouse-dev/glasshouse/app/internal/redistest"
	"github.com/glasshouse-dev/glasshouse/app/postgres/pgtest"
)

// TestBulkCreateThroughRun sends POST /api/v1/items/bulk to the API as run
// wires it (the store behind the fault injector, and the Redis cache when
// configured), on SQLite and PostgreSQL: one answer per item, the valid
// ones stored and counted one by one in app_items_created_total, and an
// injected database outage failing the whole request with 503 and
// storing nothing, as a real outage would.
func TestBulkCreateThroughRun(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres+redis"} {
		t.Run(db, func(t *testing.T) {
			env := map[string]string{}
			if db == "postgres+redis" {
				env["DATABASE_URL"] = pgtest.NewDatabase(t)
				env["REDIS_URL"] = redistest.URL(t)
				env["REDIS_KEY_PREFIX"] = redistest.Prefix(t)
			}
			api := startDepAPI(t, env)
			token := api.signup(t, "bulk")
			elems := make([]string, 60)
			for i := range elems {
				elems[i] = fmt.Sprintf(`{"name":"item %d"}`, i)
			}
			elems[7] = `{"name":""}`
			body := `{"items":[` + strings.Join(elems, ",") + `]}`

			st, _, b := api.do(t, "POST", "/api/v1/items/bulk", token, body)
			if st != http.StatusMultiStatus {
				t.Fatalf("bulk: %d %.300s", st, b)
			}
			var got struct {
				Results []struct {
					Status int `json:"status"`
					Item   *struct {
						ID int64 `json:"id"`
					} `json:"item"`
				} `json:"results"`
				Created, Failed int
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.Created != 59 || got.Failed != 1 || len(got.Results) != 60 || got.Results[7].Status != 422 {
				t.Fatalf("bulk: created %d failed %d, %d results: %.300s", got.Created, got.Failed, len(got.Results), b)
			}
			if st, _, b := api.get(t, fmt.Sprintf("/api/v1/items/%d", got.Results[59].Item.ID), token); st != http.StatusOK {
				t.Errorf("GET the last created item: %d %s", st, b)
			}
			if v, _ := api.metric(t, "app_items_created_total", nil); v != 59 {
				t.Errorf("app_items_created_total = %v, want 59", v)
			}

			req, err := http.NewRequest("PUT", api.admin+"/debug/fault", strings.NewReader(`{"outages":["database"]}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json") // /debug/fault takes JSON only
			resp, err := depClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT /debug/fault: %v %v", resp, err)
			}
			resp.Body.Close()
			st, _, b = api.do(t, "POST", "/api/v1/items/bulk", token, body)
			if st != http.StatusServiceUnavailable || !strings.Contains(string(b), `"code":"unavailable"`) {
				t.Errorf("bulk during an injected database outage: %d %.300s, want 503 unavailable", st, b)
			}
			req, _ = http.NewRequest("DELETE", api.admin+"/debug/fault", nil)
			if resp, err := depClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("DELETE /debug/fault: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
			if st, _, b := api.get(t, "/api/v1/items?limit=1", token); st != http.StatusOK || !strings.Contains(string(b), `"total":59`) {
				t.Errorf("list after the outage: %d %.300s; want total 59 (nothing stored during it)", st, b)
			}
		})
	}
}
