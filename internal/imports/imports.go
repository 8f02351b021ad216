// Package imports checks a package's imports against an allow-list, so
// that a package comment's "it imports only ..." is kept true by a test
// rather than by review. It is for tests and imports only the standard
// library (its own TestImports).
package imports

import (
	"go/build"
	"slices"
	"strings"
	"testing"
)

// Allowed fails t for every import of the package in the current
// directory (the package under test; its non-test files, for this
// platform) that is neither in the standard library nor matched by one of
// patterns. A pattern is an import path, or a path ending in "/..." that
// matches the path before it and everything below.
func Allowed(t testing.TB, patterns ...string) {
	t.Helper()
	bad, err := outside(".", patterns)
	if err != nil {
		t.Fatalf("read the package's imports: %v", err)
	}
	for _, p := range bad {
		t.Errorf("the package imports %s, which its allow-list (%s) does not name", p, strings.Join(patterns, ", "))
	}
}

// outside returns the imports of the package in dir that are neither
// standard nor matched by patterns.
func outside(dir string, patterns []string) ([]string, error) {
	pkg, err := build.ImportDir(dir, 0)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, p := range pkg.Imports {
		if !Standard(p) && !slices.ContainsFunc(patterns, func(pat string) bool { return match(pat, p) }) {
			bad = append(bad, p)
		}
	}
	return bad, nil
}

// Standard reports whether path is a standard-library package: its first
// element has no dot, unlike a module path's host.
func Standard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func match(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}
