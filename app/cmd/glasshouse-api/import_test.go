package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/postgres"
	"github.com/glasshouse-dev/glasshouse/app/postgres/pgtest"
	"github.com/glasshouse-dev/glasshouse/app/sqlite"
)

// importFile writes n valid item lines, with the given bad lines inserted
// after the first valid one, and returns the file's path.
func importFile(t *testing.T, n int, bad ...string) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"name":"item %d","description":"line %d"}`+"\n", i, i)
		if i == 0 {
			for _, l := range bad {
				b.WriteString(l + "\n")
			}
		}
	}
	path := filepath.Join(t.TempDir(), "items.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestImportCommand runs `glasshouse-api import` through run on SQLite and
// PostgreSQL: valid lines are stored for the user, each invalid line is
// named on stderr and makes the exit non-zero, and nothing else is stored.
func TestImportCommand(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			env := map[string]string{"DATA_DIR": t.TempDir()}
			var open func() app.Store
			if db == "postgres" {
				env["DATABASE_URL"] = pgtest.NewDatabase(t)
				open = func() app.Store {
					s, err := postgres.Open(t.Context(), postgres.Config{URL: env["DATABASE_URL"], MinConns: 1, MaxConns: 2})
					if err != nil {
						t.Fatal(err)
					}
					return s
				}
			} else {
				open = func() app.Store {
					s, err := sqlite.Open(t.Context(), filepath.Join(env["DATA_DIR"], "glasshouse.db"))
					if err != nil {
						t.Fatal(err)
					}
					return s
				}
			}
			s := open()
			u := app.User{Username: "Importer", Email: "importer@example.com", PasswordHash: "h"}
			if err := s.CreateUser(t.Context(), &u); err != nil {
				t.Fatal(err)
			}
			s.Close()

			file := importFile(t, 250, `{"name":""}`, `{"name":"x","colour":"red"}`, `not json`, ``, `   `)
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{"glasshouse-api", "import", "-file", file, "-user", "importer",
				"-chunk", "40", "-concurrency", "3", "-env-file="}, envOf(env), strings.NewReader(""), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), "3 invalid lines") {
				t.Errorf("run import = %v, want an error counting 3 invalid lines", err)
			}
			if !strings.Contains(stdout.String(), "imported 250 items for Importer in 7 chunks") {
				t.Errorf("stdout %q", stdout.String())
			}
			for _, want := range []string{file + ":2: invalid input: name: is required", file + `:3: not an item object: json: unknown field "colour"`, file + ":4: not an item object"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			s = open()
			defer s.Close()
			names := map[string]bool{}
			for offset := 0; offset < 300; offset += 100 {
				items, total, err := s.ListItems(t.Context(), u.ID, app.Page{Limit: 100, Offset: offset})
				if err != nil || total != 250 {
					t.Fatalf("stored %d items (%v), want 250", total, err)
				}
				for _, it := range items {
					names[it.Name] = true
				}
			}
			for i := range 250 {
				if !names[fmt.Sprintf("item %d", i)] {
					t.Errorf("item %d was not stored", i)
				}
			}
		})
	}
}

func TestImportCommandErrors(t *testing.T) {
	env := map[string]string{"DATA_DIR": t.TempDir()}
	file := importFile(t, 1)
	var help bytes.Buffer
	if err := run(t.Context(), []string{"glasshouse-api", "import", "-h"}, envOf(env), strings.NewReader(""), &help, &help); err != nil ||
		!strings.Contains(help.String(), "-concurrency") {
		t.Errorf("import -h = %v, printing %q; want the flags and no error", err, help.String())
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"-file is required", "-user is required"}},
		{[]string{"-file", file, "-user", "x", "-chunk", "0", "-concurrency", "100"}, []string{"-chunk 0: want 1 to 1000", "-concurrency 100: want 1 to 64"}},
		{[]string{"-file", file, "-user", "nobody"}, []string{`user "nobody" does not exist`}},
		{[]string{"-file", filepath.Join(t.TempDir(), "missing.jsonl"), "-user", "x"}, []string{"no such file"}},
		{[]string{"-file", file, "-user", "x", "extra"}, []string{`unexpected arguments ["extra"]`}},
		{[]string{"-bogus"}, []string{"flag provided but not defined: -bogus"}},
	} {
		var out bytes.Buffer
		args := append([]string{"glasshouse-api", "import", "-env-file="}, tc.args...)
		err := run(t.Context(), args, envOf(env), strings.NewReader(""), &out, &out)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("import %q = %v, want an error containing %q", tc.args, err, w)
			}
		}
	}
}

// failingBulk stores through a real store but fails the CreateItems calls
// whose number (from 1) is in fail.
type failingBulk struct {
	app.Store
	mu    sync.Mutex
	calls int
	fail  map[int]error
}

func (s *failingBulk) CreateItems(ctx context.Context, items []*app.Item) error {
	s.mu.Lock()
	s.calls++
	err := s.fail[s.calls]
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return app.CreateItems(ctx, s.Store, items)
}

// TestImportStopsAtTheFirstFailedChunk: the failed chunk's lines are named,
// the rest of the file is not read, and what was committed stays.
func TestImportStopsAtTheFirstFailedChunk(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u := app.User{Username: "u1", Email: "u1@example.com", PasswordHash: "h"}
	if err := st.CreateUser(t.Context(), &u); err != nil {
		t.Fatal(err)
	}
	down := fmt.Errorf("create items: %w", app.ErrUnavailable)
	fs := &failingBulk{Store: st, fail: map[int]error{2: down}}
	var lines strings.Builder
	for i := range 100 {
		fmt.Fprintf(&lines, `{"name":"n%d"}`+"\n", i)
	}
	var report bytes.Buffer
	res, err := importItems(t.Context(), fs, u.ID, strings.NewReader(lines.String()), "f", 10, 1, &report)
	if !errors.Is(err, app.ErrUnavailable) {
		t.Errorf("importItems = %v, want the storage error", err)
	}
	// Lines read while the second chunk was being stored (up to a third
	// chunk's worth) are not attempted; the rest is not read.
	if res.created != 10 || res.failed < 10 || res.failed > 20 {
		t.Errorf("created %d failed %d, want 10 and 10 to 20", res.created, res.failed)
	}
	for _, want := range []string{"f:11-20: not imported: create items: dependency unavailable", ": not read: the import stops"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
	if _, total, _ := st.ListItems(t.Context(), u.ID, app.Page{Limit: 1}); total != 10 {
		t.Errorf("stored %d, want the first chunk's 10", total)
	}
	if fs.calls != 2 {
		t.Errorf("%d CreateItems calls, want 2 (the import stops at the failure)", fs.calls)
	}
}
