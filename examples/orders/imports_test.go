package main

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps the command comment true: from this repository orders
// imports only telemetry. It reads the imports with go/build, not a helper
// of this repository, so that orders can be copied out with its tests.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkg.Imports {
		first, _, _ := strings.Cut(p, "/")
		if strings.Contains(first, ".") && p != "github.com/glasshouse-dev/glasshouse/telemetry" {
			t.Errorf("orders imports %s; it should need only telemetry and the standard library", p)
		}
	}
}
