package auth

import (
	"testing"

	"github.com/glasshouse-dev/glasshouse/internal/imports"
)

// TestImports keeps the package comment's account of the imports true:
// the standard library and the allow-list below.
func TestImports(t *testing.T) {
	imports.Allowed(t,
		"golang.org/x/crypto/argon2",
		"github.com/golang-jwt/jwt/v5",
	)
}
