package httpapi

import (
	"testing"

	"github.com/glasshouse-dev/glasshouse/internal/imports"
)

// TestImports keeps the package comment's account of the imports true:
// the standard library and the allow-list below.
func TestImports(t *testing.T) {
	imports.Allowed(t,
		"github.com/glasshouse-dev/glasshouse/app",
		"github.com/glasshouse-dev/glasshouse/app/auth",
		"github.com/glasshouse-dev/glasshouse/app/errtrack",
		"github.com/glasshouse-dev/glasshouse/app/ratelimit",
		"github.com/glasshouse-dev/glasshouse/telemetry",
		"go.opentelemetry.io/otel/trace",
		"github.com/prometheus/client_golang/prometheus",
		"github.com/klauspost/compress/gzhttp",
		"github.com/klauspost/compress/gzip",
	)
}
