package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunArguments(t *testing.T) {
	runDir := t.TempDir()
	getenv := func(k string) string {
		if k == "STACK_RUN_DIR" {
			return runDir
		}
		return ""
	}
	for _, tc := range []struct {
		args    []string
		wantErr string
		wantOut string
	}{
		{args: nil, wantErr: "want exactly one command"},
		{args: []string{"-repo", "../../..", "restart"}, wantErr: `unknown command "restart"`},
		{args: []string{"-repo", t.TempDir(), "up"}, wantErr: "not the repository root"},
		{args: []string{"-bogus"}, wantErr: "flag provided but not defined"},
		{args: []string{"-repo", "../../..", "status"}, wantOut: "No native stack recorded"},
		{args: []string{"-repo", "../../..", "down"}, wantOut: "nothing to stop"},
		{args: []string{"-repo", "../../..", "load"}, wantErr: "want the load generator command"},
		{args: []string{"-repo", "../../..", "load", "--"}, wantErr: "want the load generator command"},
		{args: []string{"-repo", "../../..", "load", "--", "echo", "ran"}, wantOut: "ran"},
		{args: []string{"-repo", "../../..", "load", "--", "false"}, wantErr: "exit status 1"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), tc.args, getenv, &out, &errOut)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Errorf("err = %v", err)
			case !strings.Contains(out.String(), tc.wantOut):
				t.Errorf("stdout = %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}

func TestRunReportsBadPorts(t *testing.T) {
	getenv := func(k string) string {
		return map[string]string{"STACK_API_PORT": "99999", "STACK_HOST": "10.0.0.1"}[k]
	}
	err := run(t.Context(), []string{"-repo", "../../..", "status"}, getenv, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "STACK_API_PORT") || !strings.Contains(err.Error(), "STACK_HOST") {
		t.Errorf("err = %v, want both problems reported", err)
	}
}
