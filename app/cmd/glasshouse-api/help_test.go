package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpExitsZero proves -h lists the settings and is not an error: a
// newcomer asking for help must not see "exit status 1".
func TestHelpExitsZero(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			getenv := func(string) string { return "" }
			if err := run(t.Context(), []string{"glasshouse-api", arg}, getenv, strings.NewReader(""), &stdout, &stderr); err != nil {
				t.Fatalf("run %s: %v, want nil", arg, err)
			}
			for _, want := range []string{"CONCURRENCY_LIMIT", "JWT_SECRET", "-addr"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("run %s printed no %q in its usage:\n%s", arg, want, stderr.String())
				}
			}
		})
	}
}
