package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSkipChild is run by TestSkip in a child process; on its own it skips.
func TestSkipChild(t *testing.T) {
	if os.Getenv("INTEGRATION_CHILD") == "" {
		t.Skip("run by TestSkip")
	}
	Skip(t, "redis %s", "missing")
}

func TestSkip(t *testing.T) {
	for _, tc := range []struct {
		require  string
		wantFail bool
		wantOut  string
	}{
		{"", false, "--- SKIP: TestSkipChild"},
		{"1", true, "redis missing (GLASSHOUSE_REQUIRE_SERVICES=1"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkipChild$", "-test.v")
		cmd.Env = append(os.Environ(), "INTEGRATION_CHILD=1", RequireEnv+"="+tc.require)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail {
			t.Errorf("%s=%q: failed = %v, want %v\n%s", RequireEnv, tc.require, failed, tc.wantFail, out)
		}
		if !strings.Contains(string(out), tc.wantOut) {
			t.Errorf("%s=%q: output lacks %q:\n%s", RequireEnv, tc.require, tc.wantOut, out)
		}
	}
}
