package stack

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadArgs(t *testing.T) {
	c := testConfig(t) // load port 19096
	for _, tc := range []struct {
		name       string
		args       []string
		wantArgs   []string
		wantTarget string
	}{
		{"adds both flags", []string{"load", "-scenario", "smoke"},
			[]string{"load", "-prometheus", "-prometheus-addr=127.0.0.1:19096", "-scenario", "smoke"}, "127.0.0.1:19096"},
		{"keeps an explicit address", []string{"load", "-prometheus-addr", "127.0.0.1:7000"},
			[]string{"load", "-prometheus", "-prometheus-addr", "127.0.0.1:7000"}, "127.0.0.1:7000"},
		{"scrapes a wildcard address on loopback", []string{"load", "--prometheus", "--prometheus-addr=0.0.0.0:7001"},
			[]string{"load", "--prometheus", "--prometheus-addr=0.0.0.0:7001"}, "127.0.0.1:7001"},
		{"scrapes an empty host on loopback", []string{"load", "-prometheus=true", "-prometheus-addr=:7002"},
			[]string{"load", "-prometheus=true", "-prometheus-addr=:7002"}, "127.0.0.1:7002"},
		{"metrics switched off", []string{"load", "-prometheus=false"},
			[]string{"load", "-prometheus=false"}, ""},
		{"prometheus-linger is another flag", []string{"load", "-prometheus-linger=5s"},
			[]string{"load", "-prometheus", "-prometheus-addr=127.0.0.1:19096", "-prometheus-linger=5s"}, "127.0.0.1:19096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotArgs, gotTarget := loadArgs(tc.args, c)
			if !slices.Equal(gotArgs, tc.wantArgs) || gotTarget != tc.wantTarget {
				t.Errorf("loadArgs(%q) = %q, %q; want %q, %q", tc.args, gotArgs, gotTarget, tc.wantArgs, tc.wantTarget)
			}
		})
	}
}

// loadConfig is a native stack config in a temporary run directory.
func loadConfig(t *testing.T) Config {
	t.Helper()
	c := testConfig(t)
	c.RepoDir = t.TempDir()
	c.RunDir = t.TempDir()
	return c
}

// recordPrometheus records a running stack whose "prometheus" is a real
// process (a sleep), as Up would.
func recordPrometheus(t *testing.T, c Config) {
	t.Helper()
	p := sleeper(t)
	p.Name = "prometheus"
	st := &State{StartedAt: time.Now().UTC(), Processes: []Process{p}}
	if err := st.save(c.statePath()); err != nil {
		t.Fatal(err)
	}
}

func targetFiles(t *testing.T, c Config) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(c.targetsDir(), LoadJob, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestRunLoadWithoutStackRunsTheCommandUnchanged(t *testing.T) {
	c := loadConfig(t)
	var out bytes.Buffer
	err := RunLoad(t.Context(), c, []string{"sh", "-c", `echo "$@"`, "sh", "-scenario", "smoke"}, &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out.String()), "-scenario smoke"; got != want {
		t.Errorf("the command saw %q, want %q (no flags added without a native stack)", got, want)
	}
	if _, err := os.Stat(c.targetsDir()); !os.IsNotExist(err) {
		t.Errorf("a load without a native stack touched %s (err %v)", c.targetsDir(), err)
	}
}

// TestRunLoadRegistersTheTargetOnlyWhileItRuns runs a command that prints the
// discovery files present while it runs: there must be exactly one, naming
// the load address, and none once RunLoad returns, also when the command
// fails.
func TestRunLoadRegistersTheTargetOnlyWhileItRuns(t *testing.T) {
	c := loadConfig(t)
	recordPrometheus(t, c)
	// A stand-in for glasshouse-load: it prints the discovery files and
	// its arguments, and exits with $EXIT.
	show := filepath.Join(t.TempDir(), "load")
	script := "#!/bin/sh\ncat \"$TARGETS\"/*.json; echo; echo \"$@\"; exit \"$EXIT\"\n"
	if err := os.WriteFile(show, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TARGETS", filepath.Join(c.targetsDir(), LoadJob))
	for _, tc := range []struct {
		exit    string
		wantErr error
	}{
		{"0", nil},
		{"3", &ExitError{Code: 3}},
	} {
		t.Run("exit "+tc.exit, func(t *testing.T) {
			t.Setenv("EXIT", tc.exit)
			var out, errOut bytes.Buffer
			err := RunLoad(t.Context(), c, []string{show}, &out, &errOut)
			var exit *ExitError
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("RunLoad: %v", err)
			case tc.wantErr != nil && (!errors.As(err, &exit) || exit.Code != 3):
				t.Fatalf("RunLoad error = %v, want %v", err, tc.wantErr)
			}
			if got, want := out.String(), `[{"targets":["127.0.0.1:19096"]}]`; !strings.Contains(got, want) {
				t.Errorf("while the load ran the target files held %q, want %s", got, want)
			}
			if got, want := out.String(), "-prometheus -prometheus-addr=127.0.0.1:19096"; !strings.Contains(got, want) {
				t.Errorf("the command saw %q, want the flags %q", got, want)
			}
			if !strings.Contains(errOut.String(), "Prometheus scrapes this load at 127.0.0.1:19096") {
				t.Errorf("no note that Prometheus scrapes the load: %q", errOut.String())
			}
			if files := targetFiles(t, c); len(files) != 0 {
				t.Errorf("target files left after the load ended: %v", files)
			}
		})
	}
}

func TestRunLoadWithMetricsOffRegistersNothing(t *testing.T) {
	c := loadConfig(t)
	recordPrometheus(t, c)
	var out, errOut bytes.Buffer
	err := RunLoad(t.Context(), c, []string{"sh", "-c", `ls "$0" 2>/dev/null | wc -l`, filepath.Join(c.targetsDir(), LoadJob), "-prometheus=false"}, &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "0" {
		t.Errorf("%s target files while a load without metrics ran, want 0", got)
	}
	if !strings.Contains(errOut.String(), "will not scrape this run") {
		t.Errorf("no note that the run is not scraped: %q", errOut.String())
	}
}

func TestRunLoadReportsACommandThatCannotStart(t *testing.T) {
	c := loadConfig(t)
	recordPrometheus(t, c)
	err := RunLoad(t.Context(), c, []string{filepath.Join(t.TempDir(), "no-such-load")}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no-such-load") {
		t.Errorf("err = %v, want it to name the missing program", err)
	}
	if files := targetFiles(t, c); len(files) != 0 {
		t.Errorf("target files left after a failed start: %v", files)
	}
}

func TestDashboardHostsOfTheRepositoryAlerts(t *testing.T) {
	src, err := os.ReadFile("../../prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	c := testConfig(t)
	c.RepoDir, err = filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := RenderPrometheus(src, c.Mapping())
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(cfg, rendered, 0o644); err != nil {
		t.Fatal(err)
	}
	got := dashboardHosts(cfg)
	if want := []string{"http://localhost:3000"}; !slices.Equal(got, want) {
		t.Errorf("dashboardHosts = %q, want %q (where the alerts' dashboard_url points)", got, want)
	}
	if got := dashboardHosts(filepath.Join(t.TempDir(), "missing.yml")); got != nil {
		t.Errorf("dashboardHosts of a missing config = %q, want none", got)
	}
}

// TestRunLoadPassesTheInterruptOn cancels RunLoad's context (what Ctrl-C
// does through the command's signal handling) while the load runs: the
// load must get exactly one SIGINT, be waited for, and its target removed.
func TestRunLoadPassesTheInterruptOn(t *testing.T) {
	c := loadConfig(t)
	recordPrometheus(t, c)
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	load := filepath.Join(dir, "load")
	script := "#!/bin/sh\nn=0\ntrap 'n=$((n+1)); echo \"interrupt $n\"' INT\ntouch \"$READY\"\n" +
		"while [ \"$n\" = 0 ]; do sleep 0.05; done\nsleep 0.3\nexit 7\n"
	if err := os.WriteFile(load, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("READY", ready)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out bytes.Buffer // read only after RunLoad returned
	errc := make(chan error, 1)
	go func() { errc <- RunLoad(ctx, c, []string{load}, &out, &out) }()
	guard := time.After(30 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case <-guard:
			t.Fatal("the load never started")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if files := targetFiles(t, c); len(files) != 1 {
		t.Errorf("target files while the load runs = %v, want one", files)
	}
	cancel()
	var err error
	select {
	case err = <-errc:
	case <-guard:
		t.Fatal("RunLoad did not return after the interrupt")
	}
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 7 {
		t.Errorf("RunLoad = %v, want the load's own exit status 7 (it was waited for)", err)
	}
	if got := strings.Count(out.String(), "interrupt "); got != 1 {
		t.Errorf("the load got %d interrupts, want 1:\n%s", got, out.String())
	}
	if files := targetFiles(t, c); len(files) != 0 {
		t.Errorf("target files left after the interrupted load: %v", files)
	}
}
