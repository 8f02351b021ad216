package compose_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/glasshouse-dev/glasshouse/compose/internal/stack"
	"github.com/glasshouse-dev/glasshouse/internal/testenv"
)

// The stack's services; loadgen is the optional "load" profile, alloy the
// "logs" profile that stack-up enables when the engine's socket exists.
var wantServices = []string{
	"alertmanager", "alloy", "api", "grafana", "loadgen", "loki",
	"nginx", "postgres", "prometheus", "redis", "slacksink", "tempo",
}

func TestComposeLoadsWithEveryService(t *testing.T) {
	p := mustLoadCompose(t)
	if p.Name != "glasshouse" {
		t.Errorf("project name = %q, want glasshouse (Alloy filters containers by it)", p.Name)
	}
	got := p.ServiceNames()
	sort.Strings(got)
	if !slices.Equal(got, wantServices) {
		t.Errorf("services = %v, want %v", got, wantServices)
	}

	// Without --profile load the load generator stays out.
	def, err := loadCompose(t, testSecrets)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := def.Services["loadgen"]; ok {
		t.Error("loadgen runs without --profile load; it should be optional")
	}
	if s := service(t, p, "loadgen"); !slices.Equal(s.Profiles, []string{"load"}) {
		t.Errorf("loadgen profiles = %v, want [load]", s.Profiles)
	}
}

func TestComposeRequiresSecrets(t *testing.T) {
	for _, name := range []string{"POSTGRES_PASSWORD", "JWT_SECRET", "GRAFANA_ADMIN_PASSWORD"} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range testSecrets {
				if k != name {
					env[k] = v
				}
			}
			_, err := loadCompose(t, env)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("loading without %s: err = %v, want an error naming it", name, err)
			}
		})
	}
}

var pinnedImage = regexp.MustCompile(`^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9._/-]+:v?[0-9]+\.[0-9]+\.[0-9]+(?:-[a-z0-9.]+)?$`)

// pinnedTwoPart accepts images whose releases have two-part versions:
// PostgreSQL's 17.6 is exact (17 alone would float).
var pinnedTwoPart = regexp.MustCompile(`^postgres:[0-9]+\.[0-9]+(?:-[a-z0-9.]+)?$`)

func TestComposeImagesPinned(t *testing.T) {
	p := mustLoadCompose(t)
	built := map[string]string{} // image -> service that builds it
	for _, s := range p.Services {
		if s.Build != nil {
			built[s.Image] = s.Name
			df := filepath.Join(s.Build.Context, s.Build.Dockerfile)
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s: build Dockerfile %s: %v", s.Name, df, err)
			}
			if s.Build.Context != repo(t) {
				t.Errorf("%s: build context = %s, want the repository root", s.Name, s.Build.Context)
			}
		}
	}
	for _, s := range p.Services {
		switch {
		case s.Build != nil:
		case built[s.Image] != "":
			// Reuses the locally built image: it must never be pulled.
			if s.PullPolicy != types.PullPolicyNever {
				t.Errorf("%s: uses the image built by %s but pull_policy = %q, want never", s.Name, built[s.Image], s.PullPolicy)
			}
		case !pinnedImage.MatchString(s.Image) && !pinnedTwoPart.MatchString(s.Image):
			t.Errorf("%s: image %q is not pinned to an exact version (want name:X.Y.Z)", s.Name, s.Image)
		}
	}
}

func TestComposeHealthchecks(t *testing.T) {
	p := mustLoadCompose(t)
	urlPort := regexp.MustCompile(`https?://(?:127\.0\.0\.1|localhost):([0-9]+)`)
	tcpPort := regexp.MustCompile(`/dev/tcp/127\.0\.0\.1/([0-9]+)`)
	for _, s := range p.Services {
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("%s: no healthcheck", s.Name)
			continue
		}
		if hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL" {
			t.Errorf("%s: healthcheck test %v: want CMD or CMD-SHELL form", s.Name, hc.Test)
		}
		if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil || hc.StartPeriod == nil {
			t.Errorf("%s: healthcheck needs interval, timeout, retries and start_period", s.Name)
		}
		// The port a healthcheck probes must be one the service listens on.
		cmd := strings.Join(hc.Test[1:], " ")
		var ports []string
		for _, m := range urlPort.FindAllStringSubmatch(cmd, -1) {
			ports = append(ports, m[1])
		}
		for _, m := range tcpPort.FindAllStringSubmatch(cmd, -1) {
			ports = append(ports, m[1])
		}
		listen := listenPorts(s)
		for _, port := range ports {
			if !listen[port] {
				t.Errorf("%s: healthcheck probes port %s, but the service listens on %v", s.Name, port, keys(listen))
			}
		}
		if len(ports) == 0 && s.Name != "postgres" && s.Name != "redis" {
			t.Errorf("%s: healthcheck %v probes no HTTP port", s.Name, hc.Test)
		}
	}
}

func TestComposeDependsOnHealthy(t *testing.T) {
	p := mustLoadCompose(t)
	for _, s := range p.Services {
		for dep, cfg := range s.DependsOn {
			if cfg.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s depends on %s with condition %q, want %s", s.Name, dep, cfg.Condition, types.ServiceConditionHealthy)
			}
			if d, ok := p.Services[dep]; !ok || d.HealthCheck == nil {
				t.Errorf("%s depends on %s, which has no healthcheck", s.Name, dep)
			}
		}
	}
	// The API must not start before its stores answer.
	api := service(t, p, "api")
	for _, dep := range []string{"postgres", "redis"} {
		if _, ok := api.DependsOn[dep]; !ok {
			t.Errorf("api does not depend on %s", dep)
		}
	}
}

// hostPathsOutsideRepo are the only bind mounts allowed outside the
// repository, each with its reason.
var hostPathsOutsideRepo = map[string]string{
	"/var/run/docker.sock": "Alloy discovers containers and reads their logs through the Docker API",
}

func TestComposeBindMountsExist(t *testing.T) {
	p := mustLoadCompose(t)
	root := repo(t)
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if !v.ReadOnly {
					t.Errorf("%s: bind mount %s -> %s is writable; mount configuration read-only", s.Name, v.Source, v.Target)
				}
				if _, ok := hostPathsOutsideRepo[v.Source]; ok {
					continue
				}
				rel, err := filepath.Rel(root, v.Source)
				if err != nil || strings.HasPrefix(rel, "..") {
					t.Errorf("%s: bind mount source %s is outside the repository", s.Name, v.Source)
					continue
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: bind mount source %s does not exist in the repository", s.Name, rel)
				}
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s: named volume %q is not declared", s.Name, v.Source)
				}
			}
		}
	}
}

func TestComposePortsLoopbackOnly(t *testing.T) {
	p := mustLoadCompose(t)
	published := map[string]string{}
	for _, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d is published on %q, want 127.0.0.1 only", s.Name, port.Target, port.HostIP)
			}
			if other, dup := published[port.Published]; dup {
				t.Errorf("%s and %s both publish host port %s", other, s.Name, port.Published)
			}
			published[port.Published] = s.Name
		}
	}
}

func TestComposeMemoryBudget(t *testing.T) {
	// About 1.5 GB for the whole stack, so it runs on a laptop.
	const budget = 1536 << 20
	p, err := loadCompose(t, testSecrets, "logs") // what stack-up starts where the engine socket exists
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range mustLoadCompose(t).Services {
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes == 0 {
			t.Errorf("%s: no memory limit (deploy.resources.limits.memory)", s.Name)
			continue
		}
		if _, on := p.Services[s.Name]; on {
			total += int64(s.Deploy.Resources.Limits.MemoryBytes)
		}
	}
	t.Logf("memory limits of the services stack-up starts: %d MiB (budget %d MiB)", total>>20, budget>>20)
	if total > budget {
		t.Errorf("memory limits add up to %d MiB, over the %d MiB budget", total>>20, budget>>20)
	}
}

func TestComposeEnvDocumented(t *testing.T) {
	raw, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for _, line := range strings.Split(string(example), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			documented[k] = v
		}
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`).FindAllStringSubmatch(string(raw), -1) {
		used[m[1]] = true
	}
	p := mustLoadCompose(t)
	for _, s := range p.Secrets {
		if s.Environment != "" {
			used[s.Environment] = true
		}
	}
	for v := range used {
		if _, ok := documented[v]; !ok {
			t.Errorf("compose.yaml uses ${%s}, which .env.example does not document", v)
		}
	}
	// Secrets have no default anywhere: compose fails without them and the
	// example leaves them empty.
	secretName := regexp.MustCompile(`PASSWORD|SECRET|TOKEN`)
	for v := range used {
		if !secretName.MatchString(v) {
			continue
		}
		if documented[v] != "" {
			t.Errorf(".env.example gives %s a value; leave secrets empty", v)
		}
		if regexp.MustCompile(`\$\{` + v + `:?-`).Match(raw) {
			t.Errorf("compose.yaml gives ${%s} a default; a secret must be required (${%s:?...})", v, v)
		}
	}
}

// secretPatterns match credentials that must never be committed.
var secretPatterns = map[string]*regexp.Regexp{
	"Slack webhook":     regexp.MustCompile(`hooks\.slack\.com/services/T[0-9A-Z]+/`),
	"Slack token":       regexp.MustCompile(`xox[abpr]-[0-9A-Za-z-]{10,}`),
	"private key":       regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`),
	"AWS access key":    regexp.MustCompile(`AKIA[0-9A-Z]{16}`),
	"password in a URL": regexp.MustCompile(`://[A-Za-z0-9_.-]+:[^$@/\s{<]+@`),
}

func TestNoSecretsCommitted(t *testing.T) {
	root := repo(t)
	var files []string
	for _, dir := range []string{"compose", ".github"} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			name := d.Name()
			if d.IsDir() {
				return nil
			}
			// .env is git-ignored (compose/.gitignore) and holds the real
			// secrets; tests hold the patterns themselves.
			if name == ".env" || strings.HasSuffix(name, "_test.go") {
				return nil
			}
			// So is the nginx edge's local certificate that make stack-up
			// generates (nginx/certs/.gitignore).
			if filepath.Base(filepath.Dir(path)) == "certs" && strings.HasSuffix(name, ".pem") {
				return nil
			}
			files = append(files, path)
			return nil
		})
	}
	files = append(files, filepath.Join(root, ".dockerignore"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for what, re := range secretPatterns {
			if loc := re.FindIndex(b); loc != nil {
				t.Errorf("%s contains what looks like a %s: %q", f, what, b[loc[0]:loc[1]])
			}
		}
	}
	gi, err := os.ReadFile(".gitignore")
	if err != nil || !regexp.MustCompile(`(?m)^/?\.env$`).Match(gi) {
		t.Errorf("compose/.gitignore must ignore .env (err %v)", err)
	}
	di, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil || !strings.Contains(string(di), "**/.env") {
		t.Errorf(".dockerignore must keep .env files out of the build context (err %v)", err)
	}
}

func TestComposeAPIWiring(t *testing.T) {
	p := mustLoadCompose(t)
	api := service(t, p, "api")

	admin := envValue(api, "ADMIN_ADDR")
	if !strings.HasPrefix(admin, "0.0.0.0:") {
		t.Errorf("api ADMIN_ADDR = %q: inside a container it must listen on 0.0.0.0 for Prometheus to scrape it", admin)
	}
	if addr := envValue(api, "ADDR"); portOf(addr) != "8080" {
		t.Errorf("api ADDR = %q, want port 8080", addr)
	}
	for _, k := range []string{"DATABASE_URL", "REDIS_URL", "JWT_SECRET", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if envValue(api, k) == "" {
			t.Errorf("api: %s is not set", k)
		}
	}
	if !strings.Contains(envValue(api, "DATABASE_URL"), "@postgres:5432/") {
		t.Errorf("api DATABASE_URL = %q, want the postgres service", envValue(api, "DATABASE_URL"))
	}
	if !strings.HasPrefix(envValue(api, "REDIS_URL"), "redis://redis:6379/") {
		t.Errorf("api REDIS_URL = %q, want the redis service", envValue(api, "REDIS_URL"))
	}

	shutdown, err := time.ParseDuration(envValue(api, "SHUTDOWN_TIMEOUT"))
	if err != nil {
		t.Fatalf("api SHUTDOWN_TIMEOUT: %v", err)
	}
	var drain time.Duration
	if v := envValue(api, "SHUTDOWN_DRAIN_DELAY"); v != "" {
		if drain, err = time.ParseDuration(v); err != nil {
			t.Fatalf("api SHUTDOWN_DRAIN_DELAY: %v", err)
		}
	}
	if api.StopGracePeriod == nil || time.Duration(*api.StopGracePeriod) <= shutdown+drain {
		t.Errorf("api stop_grace_period = %v, want more than SHUTDOWN_DRAIN_DELAY %v + SHUTDOWN_TIMEOUT %v so in-flight requests finish before SIGKILL", api.StopGracePeriod, drain, shutdown)
	}

	// Traces go to Tempo's OTLP/HTTP receiver.
	var tempo struct {
		Server struct {
			HTTPListenPort int `yaml:"http_listen_port"`
		} `yaml:"server"`
		Distributor struct {
			Receivers struct {
				OTLP struct {
					Protocols struct {
						HTTP struct{ Endpoint string } `yaml:"http"`
						GRPC struct{ Endpoint string } `yaml:"grpc"`
					} `yaml:"protocols"`
				} `yaml:"otlp"`
			} `yaml:"receivers"`
		} `yaml:"distributor"`
	}
	testenv.ReadYAML(t, "tempo/tempo.yaml", &tempo)
	otlp := envValue(api, "OTEL_EXPORTER_OTLP_ENDPOINT")
	if want := "http://tempo:" + portOf(tempo.Distributor.Receivers.OTLP.Protocols.HTTP.Endpoint); otlp != want {
		t.Errorf("api OTEL_EXPORTER_OTLP_ENDPOINT = %q, want %q (Tempo's OTLP/HTTP receiver)", otlp, want)
	}
	if ep := tempo.Distributor.Receivers.OTLP.Protocols.HTTP.Endpoint; !strings.HasPrefix(ep, "0.0.0.0:") {
		t.Errorf("tempo OTLP/HTTP endpoint %q must bind 0.0.0.0 to be reachable from the api container", ep)
	}
	if envValue(api, "OTEL_EXPORTER_OTLP_PROTOCOL") != "http/protobuf" {
		t.Errorf("api OTEL_EXPORTER_OTLP_PROTOCOL = %q, want http/protobuf to match port 4318", envValue(api, "OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	if !listenPorts(service(t, p, "tempo"))[itoa(tempo.Server.HTTPListenPort)] {
		t.Errorf("tempo http_listen_port %d is not a port the tempo service publishes", tempo.Server.HTTPListenPort)
	}
}

// promConfig is the part of prometheus.yml the tests cross-check.
type promConfig struct {
	RuleFiles []string `yaml:"rule_files"`
	Alerting  struct {
		Alertmanagers []struct {
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"alertmanagers"`
	} `yaml:"alerting"`
	ScrapeConfigs []struct {
		JobName       string                       `yaml:"job_name"`
		MetricsPath   string                       `yaml:"metrics_path"`
		StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		DNSSDConfigs  []struct {
			Names []string
			Port  int
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

func TestPrometheusConfigMatchesCompose(t *testing.T) {
	p := mustLoadCompose(t)
	prom := service(t, p, "prometheus")
	var cfg promConfig
	testenv.ReadYAML(t, "prometheus/prometheus.yml", &cfg)

	if !slices.Contains(prom.Command, "--enable-feature=exemplar-storage") {
		t.Error("prometheus: exemplar storage is not enabled (--enable-feature=exemplar-storage)")
	}
	if got := hostPathOf(prom, "/etc/prometheus/prometheus.yml"); got != filepath.Join(repo(t), "compose", "prometheus", "prometheus.yml") {
		t.Errorf("prometheus mounts its config from %q, want compose/prometheus/prometheus.yml", got)
	}

	// Every static target names a compose service and a port it listens on.
	jobs := map[string]bool{}
	check := func(where, target string) {
		host, port := strings.Split(target, ":")[0], portOf(target)
		name := host
		if host == "localhost" {
			name = "prometheus" // Prometheus scraping itself
		}
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("%s: target %s is not a compose service", where, target)
			return
		}
		if !listenPorts(s)[port] {
			t.Errorf("%s: target %s: service %s listens on %v", where, target, name, keys(listenPorts(s)))
		}
	}
	for _, am := range cfg.Alerting.Alertmanagers {
		for _, sc := range am.StaticConfigs {
			for _, tg := range sc.Targets {
				check("alerting", tg)
			}
		}
	}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				check("job "+sc.JobName, tg)
			}
		}
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				check("job "+sc.JobName, n+":"+itoa(d.Port))
			}
		}
	}

	// The SLO selector is job="glasshouse-api": the job scrapes the API's
	// admin listener, the port ADMIN_ADDR names.
	api := service(t, p, "api")
	adminPort := portOf(envValue(api, "ADMIN_ADDR"))
	found := false
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != "glasshouse-api" {
			continue
		}
		found = true
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("glasshouse-api metrics_path = %q, want /metrics", sc.MetricsPath)
		}
		want := []string{"api:" + adminPort}
		for _, st := range sc.StaticConfigs {
			if !slices.Equal(st.Targets, want) {
				t.Errorf("glasshouse-api targets = %v, want %v (ADMIN_ADDR=%s)", st.Targets, want, envValue(api, "ADMIN_ADDR"))
			}
		}
	}
	if !found {
		t.Error("no scrape job glasshouse-api (the SLO selector is job=\"glasshouse-api\")")
	}
	// The load-test dashboard reads job="glasshouse-load".
	if !jobs["glasshouse-load"] {
		t.Error("no scrape job glasshouse-load for the load generator")
	}
	if ma := listenPorts(service(t, p, "loadgen")); !ma[itoa(stack.DefaultLoadPort)] {
		t.Errorf("loadgen listens on %v, want the load generator's metrics port %d", keys(ma), stack.DefaultLoadPort)
	}
}

// TestPrometheusRuleGlobs checks the rule_files globs, seen through the
// container's mount of alerts/, load every rules file in alerts/ and nothing
// that is not one (the SLO spec, Alertmanager's config, promtool tests).
func TestPrometheusRuleGlobs(t *testing.T) {
	p := mustLoadCompose(t)
	prom := service(t, p, "prometheus")
	var cfg promConfig
	testenv.ReadYAML(t, "prometheus/prometheus.yml", &cfg)
	if got := hostPathOf(prom, stack.ContainerAlertsDir); got != filepath.Join(repo(t), "alerts") {
		t.Fatalf("prometheus mounts %s from %q, want the repository's alerts/", stack.ContainerAlertsDir, got)
	}
	loaded := map[string]bool{}
	for _, rf := range cfg.RuleFiles {
		host := hostPathOf(prom, rf)
		if host == "" {
			t.Errorf("rule_files %q is not under a mounted directory", rf)
			continue
		}
		matches, err := filepath.Glob(host)
		if err != nil {
			t.Errorf("rule_files %q: %v", rf, err)
		}
		for _, m := range matches {
			loaded[m] = true
		}
	}
	alerts := filepath.Join(repo(t), "alerts")
	_ = filepath.WalkDir(alerts, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir // test fixtures, not the stack's rules
		}
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return nil
		}
		var top map[string]any
		b, err := os.ReadFile(path)
		if err != nil || yaml.Unmarshal(b, &top) != nil {
			return nil
		}
		_, isRules := top["groups"]
		_, isTest := top["rule_files"] // promtool test files name rule files
		rel, _ := filepath.Rel(repo(t), path)
		switch {
		case isRules && !isTest && !loaded[path]:
			t.Errorf("%s holds alerting/recording rules but no rule_files glob in compose/prometheus/prometheus.yml loads it", rel)
		case (!isRules || isTest) && loaded[path]:
			t.Errorf("rule_files loads %s, which is not a rules file", rel)
		}
		return nil
	})
	if len(loaded) == 0 {
		t.Log("no rules files in alerts/ yet; the globs are in place for when they land")
	}
}

// grafanaProvisioning mirrors the parts of Grafana's provisioning files the
// tests cross-check.
type datasourceFile struct {
	Datasources []struct {
		Name     string         `yaml:"name"`
		UID      string         `yaml:"uid"`
		Type     string         `yaml:"type"`
		URL      string         `yaml:"url"`
		JSONData map[string]any `yaml:"jsonData"`
	} `yaml:"datasources"`
}

func TestGrafanaProvisioning(t *testing.T) {
	p := mustLoadCompose(t)
	g := service(t, p, "grafana")
	root := repo(t)

	dsDir := hostPathOf(g, "/etc/grafana/provisioning/datasources")
	dbDir := hostPathOf(g, "/etc/grafana/provisioning/dashboards")
	for what, dir := range map[string]string{"datasource provisioning": dsDir, "dashboard provisioning": dbDir} {
		if dir == "" {
			t.Fatalf("grafana does not mount %s", what)
		}
		if rel, _ := filepath.Rel(root, dir); !strings.HasPrefix(rel, "dashboards"+string(filepath.Separator)) {
			t.Errorf("grafana %s comes from %s, want a folder under dashboards/", what, rel)
		}
	}

	// Datasources: fixed UIDs, URLs naming compose services and their ports.
	uids := map[string]string{} // uid -> type
	files, _ := filepath.Glob(filepath.Join(dsDir, "*.y*ml"))
	for _, f := range files {
		var df datasourceFile
		testenv.ReadYAML(t, f, &df)
		for _, ds := range df.Datasources {
			uids[ds.UID] = ds.Type
			host := strings.TrimPrefix(strings.TrimPrefix(ds.URL, "http://"), "https://")
			host = strings.TrimSuffix(host, "/")
			s, ok := p.Services[strings.Split(host, ":")[0]]
			if !ok {
				t.Errorf("datasource %s: url %s is not a compose service", ds.UID, ds.URL)
				continue
			}
			if !listenPorts(s)[portOf(host)] {
				t.Errorf("datasource %s: url %s: service %s listens on %v", ds.UID, ds.URL, s.Name, keys(listenPorts(s)))
			}
		}
		// Every cross-link (exemplars, trace->logs, log->trace) points at a
		// provisioned datasource.
		raw, _ := os.ReadFile(f)
		for _, m := range regexp.MustCompile(`datasourceUid:\s*(\S+)`).FindAllStringSubmatch(string(raw), -1) {
			defer func(uid string) {
				if _, ok := uids[uid]; !ok {
					t.Errorf("%s links to datasource uid %q, which is not provisioned", filepath.Base(f), uid)
				}
			}(strings.Trim(m[1], `"'`))
		}
	}
	if len(files) == 0 {
		t.Fatalf("no datasource provisioning in %s: Grafana would start without datasources", dsDir)
	}
	for _, uid := range []string{"prometheus", "tempo", "loki"} {
		if _, ok := uids[uid]; !ok {
			t.Errorf("datasource uid %q is not provisioned (have %v)", uid, keys(uidSet(uids)))
		}
	}

	// The dashboard provider reads the folder compose mounts the JSON into.
	var prov struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	pfiles, _ := filepath.Glob(filepath.Join(dbDir, "*.y*ml"))
	var jsonDir string
	for _, f := range pfiles {
		testenv.ReadYAML(t, f, &prov)
		for _, pr := range prov.Providers {
			jsonDir = hostPathOf(g, pr.Options.Path)
			if jsonDir == "" {
				t.Errorf("dashboard provider path %s is not mounted into grafana", pr.Options.Path)
			} else if _, err := os.Stat(jsonDir); err != nil {
				t.Errorf("dashboard provider path %s -> %s: %v", pr.Options.Path, jsonDir, err)
			}
		}
	}
	if jsonDir == "" {
		t.Fatal("no dashboard provider found")
	}

	// The home dashboard is one of the mounted dashboards.
	if home := envValue(g, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"); home != "" {
		if h := hostPathOf(g, home); h == "" || !fileExists(h) {
			t.Errorf("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH %s is not a mounted dashboard (host path %q)", home, h)
		}
	}

	// Every datasource a dashboard uses is provisioned, directly or through
	// a datasource template variable.
	dashboards, _ := filepath.Glob(filepath.Join(jsonDir, "*.json"))
	for _, f := range dashboards {
		checkDashboardDatasources(t, f, uids)
	}
	t.Logf("%d datasources, %d dashboards checked", len(uids), len(dashboards))
}

func checkDashboardDatasources(t *testing.T, path string, uids map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Templating struct {
			List []struct {
				Name    string `json:"name"`
				Type    string `json:"type"`
				Query   any    `json:"query"`
				Current struct {
					Value any `json:"value"`
				} `json:"current"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	vars := map[string]string{} // datasource variable -> uid it selects
	for _, v := range d.Templating.List {
		if v.Type != "datasource" {
			continue
		}
		uid, _ := v.Current.Value.(string)
		plugin, _ := v.Query.(string)
		if typ, ok := uids[uid]; !ok || typ != plugin {
			t.Errorf("%s: datasource variable $%s selects uid %q of type %q; provisioned: %v", filepath.Base(path), v.Name, uid, plugin, uids)
		}
		vars[v.Name] = uid
	}
	var walk func(any)
	walk = func(n any) {
		switch n := n.(type) {
		case map[string]any:
			if ds, ok := n["datasource"].(map[string]any); ok {
				uid, _ := ds["uid"].(string)
				switch {
				case uid == "" || uid == "-- Grafana --" || ds["type"] == "grafana" || uid == "-- Mixed --":
				case strings.HasPrefix(uid, "$"):
					name := strings.Trim(uid, "${}")
					if _, ok := vars[name]; !ok {
						t.Errorf("%s: datasource %q is not a datasource template variable", filepath.Base(path), uid)
					}
				default:
					if _, ok := uids[uid]; !ok {
						t.Errorf("%s: datasource uid %q is not provisioned", filepath.Base(path), uid)
					}
				}
			}
			for _, v := range n {
				walk(v)
			}
		case []any:
			for _, v := range n {
				walk(v)
			}
		}
	}
	var all any
	_ = json.Unmarshal(b, &all)
	walk(all)
}

func TestLogPipeline(t *testing.T) {
	p := mustLoadCompose(t)
	raw, err := os.ReadFile("alloy/config.alloy")
	if err != nil {
		t.Fatal(err)
	}
	alloy := string(raw)
	checkAlloyReferences(t, alloy)

	// Alloy pushes to the loki service on the port Loki listens on.
	m := regexp.MustCompile(`url\s*=\s*"http://([a-z0-9-]+):([0-9]+)/loki/api/v1/push"`).FindStringSubmatch(alloy)
	if m == nil {
		t.Fatal("config.alloy has no loki.write endpoint url")
	}
	if s, ok := p.Services[m[1]]; !ok || !listenPorts(s)[m[2]] {
		t.Errorf("config.alloy pushes to %s:%s, which is not a compose service port", m[1], m[2])
	}
	var loki struct {
		Server struct {
			HTTPListenPort int `yaml:"http_listen_port"`
		} `yaml:"server"`
		Limits struct {
			AllowStructuredMetadata bool `yaml:"allow_structured_metadata"`
		} `yaml:"limits_config"`
	}
	testenv.ReadYAML(t, "loki/loki.yaml", &loki)
	if itoa(loki.Server.HTTPListenPort) != m[2] {
		t.Errorf("loki listens on %d, Alloy pushes to port %s", loki.Server.HTTPListenPort, m[2])
	}
	if !loki.Limits.AllowStructuredMetadata {
		t.Error("loki must allow structured metadata: Alloy sends trace_id as structured metadata")
	}
	// Alloy selects this project's containers.
	if !strings.Contains(alloy, `"com.docker.compose.project=`+p.Name+`"`) {
		t.Errorf("config.alloy does not filter on compose project %q", p.Name)
	}
	// The API's lines keep trace_id, and the stack label is the one the
	// Tempo datasource's trace-to-logs query selects.
	for _, want := range []string{`selector = "{service=\"api\"}"`, `trace_id`, `"stack" = "glasshouse"`} {
		if !strings.Contains(alloy, want) {
			t.Errorf("config.alloy lacks %s", want)
		}
	}
	g := service(t, p, "grafana")
	if dsDir := hostPathOf(g, "/etc/grafana/provisioning/datasources"); dsDir != "" {
		files, _ := filepath.Glob(filepath.Join(dsDir, "*.y*ml"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			for _, q := range regexp.MustCompile(`\{(stack="[^"]*")\}`).FindAllStringSubmatch(string(b), -1) {
				if q[1] != `stack="glasshouse"` {
					t.Errorf("%s selects logs with %s; Alloy labels them stack=\"glasshouse\"", filepath.Base(f), q[1])
				}
			}
		}
	}
	alloySvc := service(t, p, "alloy")
	if hostPathOf(alloySvc, "/var/run/docker.sock") != "/var/run/docker.sock" {
		t.Error("alloy needs the Docker socket mounted to read container logs")
	}
}

// checkAlloyReferences is a small lint of Alloy's configuration syntax: braces
// balance, and every component an expression refers to
// (kind.name.label.export) is declared as a block `kind.name "label"`.
func checkAlloyReferences(t *testing.T, src string) {
	t.Helper()
	// Strip comments and strings before counting braces.
	noComments := regexp.MustCompile(`(?m)//.*$`).ReplaceAllString(src, "")
	noStrings := regexp.MustCompile(`"(?:[^"\\]|\\.)*"`).ReplaceAllString(noComments, `""`)
	if o, c := strings.Count(noStrings, "{"), strings.Count(noStrings, "}"); o != c {
		t.Errorf("config.alloy: %d opening and %d closing braces", o, c)
	}
	declared := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z_]+\.[a-z_.]+)\s+"([a-z0-9_]+)"\s*\{`).FindAllStringSubmatch(noComments, -1) {
		declared[m[1]+"."+m[2]] = true
	}
	if len(declared) == 0 {
		t.Fatal("config.alloy declares no components")
	}
	refs := regexp.MustCompile(`=\s*\[?\s*((?:discovery|loki|otelcol|prometheus)\.[a-z_.]+)\.(targets|rules|receiver|output|input)\b`)
	for _, m := range refs.FindAllStringSubmatch(noComments, -1) {
		if !declared[m[1]] {
			t.Errorf("config.alloy refers to %s.%s, but declares no %s (declared: %v)", m[1], m[2], m[1], keys(declared))
		}
	}
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func uidSet(m map[string]string) map[string]bool {
	s := map[string]bool{}
	for k := range m {
		s[k] = true
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }
