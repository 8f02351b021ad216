// Package integration holds the one policy every integration test follows
// when a real service or binary it needs is missing: skip with a message that
// says how to provide it, except under GLASSHOUSE_REQUIRE_SERVICES=1 (set by
// .ci/run), where the same message fails the test, so a green CI run cannot
// hide a missing install step.
//
// It also holds the policy for -short (`make test-short`, the fast inner
// loop): Short skips a test that needs a real service or binary, and Skip
// never fails under -short, since a short run asks for no services.
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

// Skip skips t with the formatted message, or fails it when RequireEnv is "1"
// and the run is not -short.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) == "1" && !testing.Short() {
		t.Fatalf("%s (%s=1: .ci/run requires every integration test to run)", msg, RequireEnv)
	}
	t.Skip(msg)
}

// URL returns the value of the environment variable env, the URL of a test
// server, or skips t through Skip with a message saying to set it to a
// what URL such as example (the one .ci/run sets).
func URL(t testing.TB, env, what, example string) string {
	t.Helper()
	u := os.Getenv(env)
	if u == "" {
		Skip(t, "%s not set; set it to a %s URL (for example %s, as .ci/run does) to run this integration test", env, what, example)
	}
	return u
}

// Short skips t under -short, saying it needs what (a real service or
// binary, e.g. "a real Prometheus"). Call it first in every test, or test
// helper, that starts or connects to a real server, so `make test-short` runs
// the unit tests only.
func Short(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs %s; skipped with -short (make test-short runs the unit tests only)", what)
	}
}
