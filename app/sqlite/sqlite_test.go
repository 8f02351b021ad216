package sqlite_test

import (
	"context"
	"path/filepath"
		"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/sqlite"
	"github.com/glasshouse-dev/glasshouse/app/storetest"
)

func open(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) app.Store { return open(t) })
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "re.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	u := app.User{Username: "alice", Email: "a@example.com", PasswordHash: "h"}
	if err := s.CreateUser(t.Context(), &u); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if _, err := s2.UserByUsername(t.Context(), "alice"); err != nil {
		t.Errorf("user lost across reopen: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, path := range []string{"", ":memory:", filepath.Join(t.TempDir(), "missing-dir", "x.db")} {
		if s, err := sqlite.Open(context.Background(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func TestCollector(t *testing.T) {
	s := open(t)
	defer s.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	// The writer connection plus the reader pool; both opened by Open's pings.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "app_db_pool_connections" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "state" {
					states[lp.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	if states["max"] < 5 || states["total"] < 2 || states["in_use"] != 0 || states["idle"] != states["total"] {
		t.Errorf("pool states = %v; want max >= 5 (1 writer + >= 4 readers), total >= 2, none in use", states)
	}
	n, err := testutil.GatherAndCount(reg, "app_db_pool_connections", "app_db_pool_wait_total", "app_db_pool_wait_seconds_total")
	if err != nil || n != 6 {
		t.Errorf("series = %d (err %v), want 4 connection states + 2 wait counters", n, err)
	}
}
