package rediscache

import (
	"testing"

	"github.com/glasshouse-dev/glasshouse/internal/imports"
)

// TestImports keeps the package comment's account of the imports true:
// the standard library and the allow-list below.
func TestImports(t *testing.T) {
	imports.Allowed(t,
		"github.com/glasshouse-dev/glasshouse/app",
		"github.com/glasshouse-dev/glasshouse/app/internal/cooldown",
		"github.com/redis/go-redis/v9",
		"github.com/prometheus/client_golang/prometheus",
	)
}
