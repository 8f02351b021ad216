package integration

import (
	"os"
	"os/exec"
	"strconv"
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

// TestShortChild is run by TestShort in a child process; on its own it skips.
func TestShortChild(t *testing.T) {
	if os.Getenv("INTEGRATION_CHILD") == "" {
		t.Skip("run by TestShort")
	}
	Short(t, "a real Redis")
	t.Log("ran past Short")
}

func TestSkip(t *testing.T) {
	for _, tc := range []struct {
		require  string
		short    bool
		wantFail bool
		wantOut  string
	}{
		{"", false, false, "--- SKIP: TestSkipChild"},
		{"1", false, true, "redis missing (GLASSHOUSE_REQUIRE_SERVICES=1"},
		// A short run asks for no services: a missing one is no failure.
		{"1", true, false, "--- SKIP: TestSkipChild"},
	} {
		out, err := child(t, "TestSkipChild", tc.require, tc.short)
		if failed := err != nil; failed != tc.wantFail {
			t.Errorf("%s=%q short=%v: failed = %v, want %v\n%s", RequireEnv, tc.require, tc.short, failed, tc.wantFail, out)
		}
		if !strings.Contains(out, tc.wantOut) {
			t.Errorf("%s=%q short=%v: output lacks %q:\n%s", RequireEnv, tc.require, tc.short, tc.wantOut, out)
		}
	}
}

func TestShort(t *testing.T) {
	for _, tc := range []struct {
		require string
		short   bool
		wantOut string
	}{
		{"", false, "ran past Short"},
		{"1", false, "ran past Short"},
		{"", true, "needs a real Redis; skipped with -short"},
		{"1", true, "needs a real Redis; skipped with -short"},
	} {
		out, err := child(t, "TestShortChild", tc.require, tc.short)
		if err != nil {
			t.Errorf("%s=%q short=%v: failed: %v\n%s", RequireEnv, tc.require, tc.short, err, out)
		}
		if !strings.Contains(out, tc.wantOut) {
			t.Errorf("%s=%q short=%v: output lacks %q:\n%s", RequireEnv, tc.require, tc.short, tc.wantOut, out)
		}
	}
}

// child runs one test of this binary in a child process with RequireEnv set
// to require, under -short when short is true.
func child(t *testing.T, test, require string, short bool) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.short="+strconv.FormatBool(short))
	cmd.Env = append(os.Environ(), "INTEGRATION_CHILD=1", RequireEnv+"="+require)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestURLChild is run by TestURL in a child process; on its own it skips.
func TestURLChild(t *testing.T) {
	if os.Getenv("INTEGRATION_CHILD") == "" {
		t.Skip("run by TestURL")
	}
	t.Setenv("INTEGRATION_TEST_URL", "")
	URL(t, "INTEGRATION_TEST_URL", "Redis", "redis://127.0.0.1:1/0")
	t.Log("ran past URL")
}

func TestURL(t *testing.T) {
	t.Setenv("INTEGRATION_TEST_URL", "redis://example:6379/0")
	if got, want := URL(t, "INTEGRATION_TEST_URL", "Redis", "redis://127.0.0.1:1/0"), "redis://example:6379/0"; got != want {
		t.Errorf("URL with the variable set = %q, want %q", got, want)
	}

	out, err := child(t, "TestURLChild", "", false)
	if err != nil {
		t.Errorf("unset variable: failed: %v\n%s", err, out)
	}
	want := "INTEGRATION_TEST_URL not set; set it to a Redis URL (for example redis://127.0.0.1:1/0, as .ci/run does)"
	if !strings.Contains(out, want) || !strings.Contains(out, "--- SKIP: TestURLChild") {
		t.Errorf("unset variable: output lacks a skip with %q:\n%s", want, out)
	}
}
