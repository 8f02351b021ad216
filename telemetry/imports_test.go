package telemetry

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps the package comment true: telemetry imports nothing
// from this repository (so nothing from app/), and a service can copy it
// alone. It reads the imports with go/build rather than a shared helper
// for the same reason.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkg.Imports {
		if strings.HasPrefix(p, "github.com/glasshouse-dev/glasshouse/") {
			t.Errorf("telemetry imports %s: it must import nothing from this repository", p)
		}
	}
}
