package cooldown

import (
	"testing"

	"github.com/glasshouse-dev/glasshouse/internal/imports"
)

// TestImports keeps the package comment's account of the imports true:
// the standard library only.
func TestImports(t *testing.T) {
	imports.Allowed(t)
}
