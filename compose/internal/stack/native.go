package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"
)

// NeedsDocker lists what the native stack cannot run, printed on every Up.
const NeedsDocker = "Grafana (dashboards), Tempo (traces), Loki + Alloy (logs), PostgreSQL and Redis"

// InstallHint tells a Debian/Ubuntu user how to get the missing binaries.
const InstallHint = "sudo apt-get install prometheus prometheus-alertmanager"

// Timeouts for one Up; generous because the first `go build` of the API
// compiles every dependency.
const (
	readyTimeout = 45 * time.Second
	stopGrace    = 10 * time.Second
)

// component is one process of the native stack.
type component struct {
	name  string
	args  []string
	env   []string
	dir   string
	ready string // URL that answers 2xx once the process serves
}

// Up starts the native stack: it builds the API and the Slack sink into the
// run directory, renders the Prometheus and Alertmanager configs, starts each
// process on loopback and waits until it answers, then prints the URLs to
// out. Parts whose binaries or sources are missing are skipped with a clear
// note; a part that is present but fails to start stops everything Up started
// and returns an error with the tail of its log. Progress goes to log.
func Up(ctx context.Context, c Config, out, log io.Writer) error {
	unlock, err := lock(c.RunDir)
	if err != nil {
		return err
	}
	defer unlock()

	prev, err := loadState(c.statePath())
	if err != nil {
		return err
	}
	if live := prev.running(); len(live) > 0 {
		fmt.Fprintf(out, "The native stack is already running (started %s); `make stack-down` stops it.\n", prev.StartedAt.Format(time.RFC3339))
		printURLs(out, prev.URLs)
		return nil
	}

	var missing []string
	apiPkg := filepath.Join(c.RepoDir, "app", "cmd", "glasshouse-api")
	if !isDir(apiPkg) {
		return fmt.Errorf("the API (%s) is not in this checkout: nothing to start", c.rel(apiPkg))
	}
	sinkPkg := filepath.Join(c.RepoDir, "alerts", "cmd", "slacksink")
	haveSink := isDir(sinkPkg)
	if !haveSink {
		missing = append(missing, fmt.Sprintf("Slack sink: %s is not in this checkout; Alertmanager's Slack messages will fail to deliver", c.rel(sinkPkg)))
	}
	promBin, err := findBin(c.PrometheusBin, "prometheus")
	if err != nil {
		missing = append(missing, fmt.Sprintf("Prometheus: %v; install it with `%s` or set PROMETHEUS_BIN", err, InstallHint))
	}
	amBin, err := findBin(c.AlertmanagerBin, "prometheus-alertmanager", "alertmanager")
	if err != nil {
		missing = append(missing, fmt.Sprintf("Alertmanager: %v; install it with `%s` or set ALERTMANAGER_BIN", err, InstallHint))
	}
	amConfig := filepath.Join(c.RepoDir, "alerts", "alertmanager.yml")
	if amBin != "" && !isFile(amConfig) {
		missing = append(missing, fmt.Sprintf("Alertmanager: %s is not in this checkout", c.rel(amConfig)))
		amBin = ""
	}

	ports := []struct {
		env  string
		port int
		use  bool
	}{
		{"STACK_API_PORT", c.APIPort, true},
		{"STACK_API_ADMIN_PORT", c.APIAdminPort, true},
		{"STACK_SLACKSINK_PORT", c.SlackSinkPort, haveSink},
		{"STACK_PROMETHEUS_PORT", c.PrometheusPort, promBin != ""},
		{"STACK_ALERTMANAGER_PORT", c.AlertmanagerPort, amBin != ""},
	}
	var busy []error
	for _, p := range ports {
		if !p.use {
			continue
		}
		l, err := net.Listen("tcp", c.addr(p.port))
		if err != nil {
			busy = append(busy, fmt.Errorf("%s is in use (%v): set %s to a free port", c.addr(p.port), err, p.env))
			continue
		}
		l.Close()
	}
	if err := errors.Join(busy...); err != nil {
		return err
	}

	for _, d := range []string{c.binDir(), c.logDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	fmt.Fprintf(log, "building the API into %s (the first build compiles every dependency)...\n", c.rel(c.binDir()))
	apiBin, err := goBuild(ctx, c, "./app/cmd/glasshouse-api", log)
	if err != nil {
		return err
	}
	sinkBin := ""
	if haveSink {
		if sinkBin, err = goBuild(ctx, c, "./alerts/cmd/slacksink", log); err != nil {
			return err
		}
	}

	var comps []component
	urls := []NamedURL{
		{"API docs", c.url(c.APIPort, "/docs")},
		{"API health", c.url(c.APIPort, "/health")},
		{"API metrics", c.url(c.APIAdminPort, "/metrics")},
	}
	if haveSink {
		comps = append(comps, component{
			name:  "slacksink",
			args:  []string{sinkBin, "-addr", c.addr(c.SlackSinkPort)},
			env:   baseEnv(),
			dir:   c.RunDir,
			ready: c.url(c.SlackSinkPort, "/messages"),
		})
		urls = append(urls, NamedURL{"Slack sink", c.url(c.SlackSinkPort, "/messages")})
	}
	if amBin != "" {
		comp, err := alertmanager(c, amBin, amConfig)
		if err != nil {
			return err
		}
		comps = append(comps, comp)
		urls = append(urls, NamedURL{"Alertmanager", c.url(c.AlertmanagerPort, "/")})
	}
	apiDir := filepath.Join(c.RunDir, "api")
	if err := os.MkdirAll(apiDir, 0o755); err != nil {
		return err
	}
	apiEnv := append(baseEnv(),
		"ADDR="+c.addr(c.APIPort),
		"ADMIN_ADDR="+c.addr(c.APIAdminPort),
		"APP_ENV=development",
		"LOG_FORMAT=json",
		"DATA_DIR="+filepath.Join(apiDir, "data"),
		"SHUTDOWN_TIMEOUT=5s",
		"OTEL_SERVICE_NAME=glasshouse-api",
	)
	comps = append(comps, component{
		name:  "api",
		args:  []string{apiBin},
		env:   append(apiEnv, c.APIEnv...),
		dir:   apiDir, // so a .env in the repository does not change the stack
		ready: c.url(c.APIPort, "/health/ready"),
	})
	if promBin != "" {
		comp, err := prometheus(c, promBin)
		if err != nil {
			return err
		}
		comps = append(comps, comp)
		urls = append(urls, NamedURL{"Prometheus", c.url(c.PrometheusPort, "/")})
	}

	st := &State{StartedAt: time.Now().UTC(), URLs: urls, Missing: missing}
	for _, comp := range comps {
		logPath := filepath.Join(c.logDir(), comp.name+".log")
		fmt.Fprintf(log, "starting %s (log %s)\n", comp.name, c.rel(logPath))
		p, err := start(comp.name, comp.dir, logPath, comp.env, comp.args)
		if err == nil {
			st.Processes = append(st.Processes, p)
			if err = st.save(c.statePath()); err == nil {
				err = waitReady(ctx, p, comp.ready)
			}
		}
		if err != nil {
			fmt.Fprintf(log, "%s failed; stopping what was started\n", comp.name)
			stopAll(ctx, st.Processes, io.Discard)
			_ = os.Remove(c.statePath())
			return fmt.Errorf("%w\n--- last lines of %s:\n%s", err, c.rel(logPath), tail(logPath, 15))
		}
	}

	fmt.Fprintln(out, "glasshouse native stack is up (no Docker engine; processes on loopback):")
	printURLs(out, urls)
	fmt.Fprintf(out, "Run directory: %s (logs in logs/, PIDs in stack.json). Stop it with `make stack-down`.\n", c.rel(c.RunDir))
	fmt.Fprintf(out, "Needs Docker (not started): %s. The native API uses embedded SQLite and in-memory rate limits.\n", NeedsDocker)
	for _, m := range missing {
		fmt.Fprintf(out, "Not started: %s\n", m)
	}
	if promBin != "" {
		fmt.Fprintf(out, "Load generator: `make load` is scraped (job %s) only while it runs.\n", LoadJob)
		if hosts := dashboardHosts(filepath.Join(c.RunDir, "prometheus", "prometheus.yml")); len(hosts) > 0 {
			fmt.Fprintf(out, "Alert links: the alerts' dashboard_url points at Grafana (%s), which the native stack does not run: those links open nothing here; see firing alerts at %s.\n",
				strings.Join(hosts, ", "), c.url(c.PrometheusPort, "/alerts"))
		}
	}
	return nil
}

// dashboardHosts returns the distinct scheme://host of every dashboard_url
// annotation in the rule files that the rendered Prometheus config at
// promConfig loads, so the output names the address the alerts really link
// to. Unreadable files are skipped: Prometheus reports those itself.
func dashboardHosts(promConfig string) []string {
	var cfg struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	if b, err := os.ReadFile(promConfig); err != nil || yaml.Unmarshal(b, &cfg) != nil {
		return nil
	}
	var hosts []string
	for _, g := range cfg.RuleFiles {
		files, _ := filepath.Glob(g)
		for _, f := range files {
			var rules struct {
				Groups []struct {
					Rules []struct {
						Annotations map[string]string `yaml:"annotations"`
					} `yaml:"rules"`
				} `yaml:"groups"`
			}
			b, err := os.ReadFile(f)
			if err != nil || yaml.Unmarshal(b, &rules) != nil {
				continue
			}
			for _, g := range rules.Groups {
				for _, r := range g.Rules {
					if u, err := url.Parse(r.Annotations["dashboard_url"]); err == nil && u.Host != "" {
						hosts = append(hosts, u.Scheme+"://"+u.Host)
					}
				}
			}
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

// Down stops the processes recorded by Up, verifying each PID still belongs
// to the process that was started, and removes the state file. With
// removeData it also deletes the data directories (like compose's -v).
func Down(ctx context.Context, c Config, out io.Writer, removeData bool) error {
	unlock, err := lock(c.RunDir)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(c.statePath())
	if err != nil {
		return err
	}
	if st == nil {
		fmt.Fprintf(out, "No native stack recorded in %s: nothing to stop.\n", c.rel(c.RunDir))
	} else {
		if err := stopAll(ctx, st.Processes, out); err != nil {
			return err
		}
		if err := os.Remove(c.statePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if removeData {
		for _, d := range []string{"api", "prometheus", "alertmanager"} {
			if err := os.RemoveAll(filepath.Join(c.RunDir, d)); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "Removed the data under %s.\n", c.rel(c.RunDir))
	}
	return nil
}

// Status prints each recorded process and whether it still runs. It returns
// an error when a recorded process has died.
func Status(c Config, out io.Writer) error {
	st, err := loadState(c.statePath())
	if err != nil {
		return err
	}
	if st == nil {
		fmt.Fprintf(out, "No native stack recorded in %s.\n", c.rel(c.RunDir))
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	dead := 0
	for _, p := range st.Processes {
		state := "running"
		if !p.Alive() {
			state = "NOT RUNNING (see " + c.rel(p.Log) + ")"
			dead++
		}
		fmt.Fprintf(tw, "  %s\tpid %d\t%s\n", p.Name, p.PID, state)
	}
	tw.Flush()
	printURLs(out, st.URLs)
	if dead > 0 {
		return fmt.Errorf("%d of %d processes are not running", dead, len(st.Processes))
	}
	return nil
}

// stopAll stops ps in reverse start order and reports each outcome.
func stopAll(ctx context.Context, ps []Process, out io.Writer) error {
	var errs []error
	for i := len(ps) - 1; i >= 0; i-- {
		p := ps[i]
		res, err := stop(ctx, p, stopGrace)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("stop %s (pid %d): %w", p.Name, p.PID, err))
		case res == stopped:
			fmt.Fprintf(out, "stopped %s (pid %d)\n", p.Name, p.PID)
		case res == killed:
			fmt.Fprintf(out, "killed %s (pid %d): it ignored SIGTERM for %s\n", p.Name, p.PID, stopGrace)
		case res == alreadyGone:
			fmt.Fprintf(out, "%s (pid %d) had already exited\n", p.Name, p.PID)
		case res == notOurs:
			fmt.Fprintf(out, "pid %d is no longer the %s started by stack-up (the PID was reused): left alone\n", p.PID, p.Name)
		}
	}
	return errors.Join(errs...)
}

func prometheus(c Config, bin string) (component, error) {
	src := filepath.Join(c.RepoDir, "compose", "prometheus", "prometheus.yml")
	raw, err := os.ReadFile(src)
	if err != nil {
		return component{}, err
	}
	rendered, err := RenderPrometheus(raw, c.Mapping())
	if err != nil {
		return component{}, fmt.Errorf("render %s for the native stack: %w", c.rel(src), err)
	}
	dir := filepath.Join(c.RunDir, "prometheus")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return component{}, err
	}
	// Targets left by a load that was killed before it could remove them
	// would show as down: start with none.
	if err := os.RemoveAll(c.targetsDir()); err != nil {
		return component{}, err
	}
	if err := os.MkdirAll(filepath.Join(c.targetsDir(), LoadJob), 0o755); err != nil {
		return component{}, err
	}
	return promServer(c, "prometheus", bin, dir, rendered, "--storage.tsdb.path", c.PrometheusPort,
		"--storage.tsdb.retention.time=2d",
		"--enable-feature=exemplar-storage",
		"--web.enable-lifecycle",
	)
}

func alertmanager(c Config, bin, src string) (component, error) {
	raw, err := os.ReadFile(src)
	if err != nil {
		return component{}, err
	}
	m := c.Mapping()
	rendered, err := RenderAlertmanager(raw, m, filepath.Dir(src))
	if err != nil {
		return component{}, fmt.Errorf("render %s for the native stack: %w", c.rel(src), err)
	}
	dir := filepath.Join(c.RunDir, "alertmanager")
	secrets := m.Dirs[ContainerSecretsDir]
	for _, d := range []string{filepath.Join(dir, "data"), secrets} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return component{}, err
		}
	}
	hook := c.SlackWebhookURL
	if hook == "" {
		hook = "http://slacksink:9095/hooks/glasshouse"
	}
	if err := os.WriteFile(filepath.Join(secrets, SlackWebhookFile), []byte(m.MapURL(hook)+"\n"), 0o600); err != nil {
		return component{}, err
	}
	return promServer(c, "alertmanager", bin, dir, rendered, "--storage.path", c.AlertmanagerPort,
		// A single instance: no gossip listener on the network.
		"--cluster.listen-address=",
	)
}

// promServer writes rendered as dir/NAME.yml and returns the component that
// runs bin, a server of the Prometheus family (Prometheus, Alertmanager: the
// same config and web flags, the same /-/ready), as name in dir with that
// config, its data in dir/data (storageFlag), on port, and the extra flags.
func promServer(c Config, name, bin, dir string, rendered []byte, storageFlag string, port int, extra ...string) (component, error) {
	cfg := filepath.Join(dir, name+".yml")
	if err := os.WriteFile(cfg, rendered, 0o644); err != nil {
		return component{}, err
	}
	args := append([]string{bin,
		"--config.file=" + cfg,
		storageFlag + "=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + c.addr(port),
		"--web.external-url=" + c.url(port, "/"),
	}, extra...)
	return component{name: name, args: args, env: baseEnv(), dir: dir, ready: c.url(port, "/-/ready")}, nil
}

// goBuild builds pkg (a ./path in the repository) into the run directory's
// bin/ as a static binary and returns its path.
func goBuild(ctx context.Context, c Config, pkg string, log io.Writer) (string, error) {
	out := filepath.Join(c.binDir(), filepath.Base(pkg))
	// The same flags as compose/Dockerfile, so the build cache is shared.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "timetzdata", "-o", out, pkg)
	cmd.Dir = c.RepoDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout = log
	cmd.Stderr = log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	return out, nil
}

// waitReady polls url until it answers 2xx, the process dies, or the
// timeout passes.
func waitReady(ctx context.Context, p Process, url string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if !p.Alive() {
			return fmt.Errorf("%s (pid %d) exited before %s answered", p.Name, p.PID, url)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not become ready within %s at %s (last: %s)", p.Name, readyTimeout, url, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// findBin returns explicit if set (it must be executable), else the first
// of names found on PATH.
func findBin(explicit string, names ...string) (string, error) {
	if explicit != "" {
		p, err := exec.LookPath(explicit)
		if err != nil {
			return "", fmt.Errorf("%s is not an executable file", explicit)
		}
		return p, nil
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH", strings.Join(names, " or "))
}

// baseEnv is the environment every native process gets: only what programs
// need to run, so the caller's shell (an exported ADDR or DATABASE_URL, say)
// does not change the stack behind its back.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_ALL"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// lock takes an exclusive lock on the run directory so two stack-up or
// stack-down runs do not interleave.
func lock(runDir string) (func(), error) {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(runDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another stack-up or stack-down is running on %s", runDir)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func printURLs(out io.Writer, urls []NamedURL) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, u := range urls {
		fmt.Fprintf(tw, "  %s\t%s\n", u.Name, u.URL)
	}
	tw.Flush()
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
