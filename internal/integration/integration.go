// Package integration holds the one policy every integration test follows
// when a real service or binary it needs is missing: skip with a message that
// says how to provide it, except under GLASSHOUSE_REQUIRE_SERVICES=1 (set by
// .ci/run), where the same message fails the test, so a green CI run cannot
// hide a missing install step.
//
// It imports only the standard library (TestImports).
package integration

import (
	"fmt"
	"os"
	"testing"
)

// RequireEnv is the variable that turns Skip into a failure when set to "1".
const RequireEnv = "GLASSHOUSE_REQUIRE_SERVICES"

// Skip skips t with the formatted message, or fails it when RequireEnv is "1".
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1: .ci/run requires every integration test to run)", msg, RequireEnv)
	}
	t.Skip(msg)
}
