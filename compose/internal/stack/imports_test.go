package stack

import (
	"testing"

	"github.com/glasshouse-dev/glasshouse/internal/imports"
)

// TestImports keeps the package comment true: nothing from the rest of
// the repository, only the standard library and a YAML decoder.
func TestImports(t *testing.T) {
	imports.Allowed(t, "gopkg.in/yaml.v3")
}
