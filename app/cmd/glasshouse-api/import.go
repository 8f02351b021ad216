package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/postgres"
	"github.com/glasshouse-dev/glasshouse/app/sqlite"
)

// Bounds of the import flags.
const (
	maxImportChunk       = 1000
	maxImportConcurrency = 64
	maxImportLine        = 64 << 10 // an item's JSON is at most about 9 KiB
)

// runImport is `glasshouse-api import`: it creates the items of a JSON Lines
// file ({"name":..., "description":...} per line) for one user, straight
// into the store the server would use (DATABASE_URL, or SQLite in
// DATA_DIR, read as the server reads them).
//
// It shows the batch pattern bulk writes want: lines are validated one by
// one (an invalid line is reported and skipped, never fatal), valid items
// are grouped into chunks of -chunk, and the chunks are written with at
// most -concurrency in flight, each in one transaction. Reading waits while
// that many chunks are in flight, so memory stays bounded by
// concurrency × chunk whatever the file's size. The first chunk that fails
// to store stops the import: the chunks already committed stay, and the
// report names the lines that were not imported, so a fixed file can be
// imported again from there.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", `JSON Lines file of items, {"name":...,"description":...} per line; "-" reads standard input`)
	user := fs.String("user", "", "username that will own the items")
	chunk := fs.Int("chunk", app.MaxBulkItems, "items per transaction")
	concurrency := fs.Int("concurrency", 4, "chunks written at once")
	envFile := fs.String("env-file", ".env", "optional KEY=VALUE file read before the environment (for DATABASE_URL, DATA_DIR)")
	if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		return nil // -h printed the flags: asking for help is not a failure
	} else if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	var errs []error
	if *file == "" {
		errs = append(errs, errors.New("-file is required"))
	}
	if *user == "" {
		errs = append(errs, errors.New("-user is required"))
	}
	if *chunk < 1 || *chunk > maxImportChunk {
		errs = append(errs, fmt.Errorf("-chunk %d: want 1 to %d", *chunk, maxImportChunk))
	}
	if *concurrency < 1 || *concurrency > maxImportConcurrency {
		errs = append(errs, fmt.Errorf("-concurrency %d: want 1 to %d", *concurrency, maxImportConcurrency))
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if len(errs) > 0 {
		return fmt.Errorf("import: %w", errors.Join(errs...))
	}
	cfg, err := parseConfig([]string{"import", "-env-file=" + *envFile}, getenv, stderr)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}

	in := stdin
	name := "stdin"
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		in, name = f, *file
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer store.Close()
	owner, err := store.UserByUsername(ctx, *user)
	if errors.Is(err, app.ErrNotFound) {
		return fmt.Errorf("import: user %q does not exist", *user)
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}

	start := time.Now()
	res, err := importItems(ctx, store, owner.ID, in, name, *chunk, *concurrency, stderr)
	fmt.Fprintf(stdout, "imported %d items for %s in %d chunks in %v; %d invalid lines skipped, %d valid lines not stored\n",
		res.created, owner.Username, res.chunks, time.Since(start).Round(100*time.Microsecond), res.invalid, res.failed)
	switch {
	case err != nil:
		return fmt.Errorf("import: %w", err)
	case res.invalid > 0:
		return fmt.Errorf("import: %d invalid lines were skipped (listed above)", res.invalid)
	}
	return nil
}

// openStore opens the database the server would use, without the cache or
// the telemetry around it.
func openStore(ctx context.Context, cfg config) (app.Store, error) {
	switch u := cfg.DatabaseURL.Reveal(); {
	case u == "":
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("DATA_DIR: %w", err)
		}
		return sqlite.Open(ctx, sqlitePath(cfg))
	case strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://"):
		s, err := postgres.Open(ctx, postgresConfig(cfg))
		if err != nil {
			return nil, fmt.Errorf("DATABASE_URL: %w", err)
		}
		return s, nil
	}
	return nil, errors.New("DATABASE_URL: want a postgres:// URL, or unset it to use SQLite in DATA_DIR")
}

// importResult counts what importItems did.
type importResult struct {
	created, invalid, failed, chunks int
}

// pendingChunk is a chunk of items and the line each came from.
type pendingChunk struct {
	items []*app.Item
	lines []int
}

// importItems reads items from in (named name in messages), creating them
// for owner in chunks of size with at most concurrency chunks in flight. It
// reports each invalid or unimported line on report. The error is a read
// error, or the first storage error (which stops the import).
func importItems(ctx context.Context, store app.Store, owner int64, in io.Reader, name string, size, concurrency int, report io.Writer) (importResult, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	var (
		mu  sync.Mutex
		res importResult
	)
	// write stores one chunk. errgroup's context stops the chunks not yet
	// started after the first failure; the failure is the group's error.
	write := func(c pendingChunk) error {
		err := gctx.Err()
		if err != nil {
			err = errors.New("not attempted: an earlier chunk failed")
		} else {
			err = app.CreateItems(gctx, store, c.items)
		}
		mu.Lock()
		defer mu.Unlock()
		res.chunks++
		for i, it := range c.items {
			if it.ID != 0 {
				res.created++
				continue
			}
			res.failed++
			if i == 0 || c.items[i-1].ID != 0 {
				fmt.Fprintf(report, "%s:%d-%d: not imported: %v\n", name, c.lines[i], c.lines[len(c.lines)-1], err)
			}
		}
		return err
	}

	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), maxImportLine)
	var (
		cur     pendingChunk
		line    int
		stopped bool // a chunk failed: the rest of the file was not read
	)
	for sc.Scan() {
		line++
		if gctx.Err() != nil {
			stopped = true
			break
		}
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		in, err := decodeImportLine(raw)
		if err != nil {
			mu.Lock()
			res.invalid++
			mu.Unlock()
			fmt.Fprintf(report, "%s:%d: %v\n", name, line, err)
			continue
		}
		cur.items = append(cur.items, &app.Item{OwnerID: owner, Name: in.Name, Description: in.Description})
		cur.lines = append(cur.lines, line)
		if len(cur.items) == size {
			c := cur
			cur = pendingChunk{}
			g.Go(func() error { return write(c) }) // waits while concurrency chunks are in flight
		}
	}
	if len(cur.items) > 0 {
		c := cur
		g.Go(func() error { return write(c) }) // after a failure, fails at once on gctx
	}
	err := g.Wait()
	if stopped {
		fmt.Fprintf(report, "%s:%d-: not read: the import stops at the first chunk that fails\n", name, line)
	}
	if rerr := sc.Err(); rerr != nil && !stopped {
		return res, fmt.Errorf("%s:%d: %w", name, line+1, rerr)
	}
	if err != nil {
		return res, fmt.Errorf("storing a chunk failed, so the import stopped: %w", err)
	}
	return res, nil
}

// decodeImportLine decodes and validates one line as the API decodes an
// item: an object with name and description only.
func decodeImportLine(raw []byte) (app.ItemInput, error) {
	var v struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return app.ItemInput{}, fmt.Errorf("not an item object: %w", err)
	}
	if dec.More() {
		return app.ItemInput{}, errors.New("not an item object: more than one JSON value on the line")
	}
	in := app.ItemInput{Name: v.Name, Description: v.Description}
	return in, in.Validate()
}
