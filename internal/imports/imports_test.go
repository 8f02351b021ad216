package imports

import (
	"path/filepath"
	"slices"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"github.com/a/b", "github.com/a/b", true},
		{"github.com/a/b", "github.com/a/b/c", false},
		{"github.com/a/b/...", "github.com/a/b", true},
		{"github.com/a/b/...", "github.com/a/b/c/d", true},
		{"github.com/a/b/...", "github.com/a/bc", false},
	} {
		if got := match(tc.pattern, tc.path); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
	for path, want := range map[string]bool{"fmt": true, "net/http": true, "golang.org/x/crypto/argon2": false, "gopkg.in/yaml.v3": false} {
		if got := Standard(path); got != want {
			t.Errorf("Standard(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestImports: this package imports only the standard library.
func TestImports(t *testing.T) { Allowed(t) }

// TestOutside: imports outside the allow-list are reported, standard ones
// never.
func TestOutside(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		want     []string
	}{
		{nil, []string{"example.com/other", "example.com/x/y"}},
		{[]string{"example.com/x/..."}, []string{"example.com/other"}},
		{[]string{"example.com/x/...", "example.com/other"}, nil},
	} {
		got, err := outside(filepath.Join("testdata", "pkg"), tc.patterns)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("outside(%q) = %q, want %q", tc.patterns, got, tc.want)
		}
	}
}
