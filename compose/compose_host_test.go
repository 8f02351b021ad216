package compose_test

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/glasshouse-dev/glasshouse/internal/testenv"
)

// startIntervalFile is merged over compose.yaml only on engines with API 1.44+.
const startIntervalFile = "compose.start-interval.yaml"

// loadComposeFiles loads compose.yaml merged with more files, with every
// profile enabled and env as the only environment.
func loadComposeFiles(t *testing.T, env map[string]string, files ...string) *types.Project {
	t.Helper()
	var configs []types.ConfigFile
	for _, f := range append([]string{"compose.yaml"}, files...) {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		configs = append(configs, types.ConfigFile{Filename: abs})
	}
	wd, _ := filepath.Abs(".")
	p, err := loader.LoadWithContext(t.Context(), types.ConfigDetails{WorkingDir: wd, ConfigFiles: configs, Environment: env},
		func(o *loader.Options) {
			o.ResolvePaths = true
			o.Profiles = []string{"*"}
		})
	if err != nil {
		t.Fatalf("load compose.yaml with %v: %v", files, err)
	}
	return p
}

func withEnv(extra map[string]string) map[string]string {
	env := maps.Clone(testSecrets)
	maps.Copy(env, extra)
	return env
}

// TestComposeStartIntervalGated: Docker Engine before 25.0 (API 1.44) and
// Podman's Docker API refuse every container whose healthcheck has
// start_interval. compose.yaml must run there, so start_interval lives only
// in the overlay that stack.sh merges after checking the engine's API
// version (TestStackShEngineAPIGate).
func TestComposeStartIntervalGated(t *testing.T) {
	base, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^\s*start_interval:`).Match(base) {
		t.Errorf("compose.yaml sets start_interval; it belongs in %s, which stack.sh merges only on API 1.44+", startIntervalFile)
	}
	for _, s := range mustLoadCompose(t).Services {
		if hc := s.HealthCheck; hc != nil && hc.StartInterval != nil {
			t.Errorf("%s: start_interval set without the overlay", s.Name)
		}
	}

	// The overlay only adds start_interval, to services compose.yaml has.
	var overlay struct {
		Services map[string]map[string]map[string]any `yaml:"services"`
	}
	testenv.ReadYAML(t, startIntervalFile, &overlay)
	merged := loadComposeFiles(t, testSecrets, startIntervalFile)
	baseNames := mustLoadCompose(t).ServiceNames()
	for name, svc := range overlay.Services {
		if !slices.Contains(baseNames, name) {
			t.Errorf("%s names service %s, which compose.yaml lacks", startIntervalFile, name)
		}
		if keys := slices.Sorted(maps.Keys(svc)); !slices.Equal(keys, []string{"healthcheck"}) {
			t.Errorf("%s: %s sets %v; it may only set healthcheck.start_interval", startIntervalFile, name, keys)
		}
		if keys := slices.Sorted(maps.Keys(svc["healthcheck"])); !slices.Equal(keys, []string{"start_interval"}) {
			t.Errorf("%s: %s healthcheck sets %v; want start_interval only", startIntervalFile, name, keys)
		}
	}
	for _, s := range merged.Services {
		if s.HealthCheck == nil || s.HealthCheck.StartInterval == nil {
			t.Errorf("%s: no start_interval with the overlay merged (every healthcheck should probe fast while starting)", s.Name)
		}
		if s.HealthCheck != nil && s.HealthCheck.Interval == nil {
			t.Errorf("%s: the overlay lost the healthcheck's interval", s.Name)
		}
	}

	// stack.sh gates the overlay on the version the engine must speak.
	sh, err := os.ReadFile("stack.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(sh, []byte("start_interval_api=1.44")) || !bytes.Contains(sh, []byte("-f compose/"+startIntervalFile)) {
		t.Error("stack.sh does not gate " + startIntervalFile + " on API 1.44")
	}
}

// TestComposeDockerSocket: rootless Docker and Podman keep the engine's
// socket elsewhere. Alloy, the only service that mounts it, takes it from
// DOCKER_SOCK and sits in profile "logs", so the core stack starts without
// it.
func TestComposeDockerSocket(t *testing.T) {
	const rootless = "/run/user/1000/podman/podman.sock"
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "/var/run/docker.sock"},
		{map[string]string{"DOCKER_SOCK": rootless}, rootless},
	} {
		p := loadComposeFiles(t, withEnv(tc.env))
		var found bool
		for _, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Target != "/var/run/docker.sock" {
					continue
				}
				found = true
				if s.Name != "alloy" {
					t.Errorf("%s mounts the engine socket; only alloy may", s.Name)
				}
				if v.Source != tc.want || !v.ReadOnly {
					t.Errorf("DOCKER_SOCK=%q: alloy mounts %s (read-only %v), want %s read-only", tc.env["DOCKER_SOCK"], v.Source, v.ReadOnly, tc.want)
				}
				if v.Bind != nil && v.Bind.SELinux != "" {
					t.Error("the engine socket is relabelled for SELinux; never relabel the engine's socket")
				}
			}
		}
		if !found {
			t.Error("no service mounts the engine socket at /var/run/docker.sock (alloy/config.alloy reads it there)")
		}
	}
	raw, _ := os.ReadFile("compose.yaml")
	if !bytes.Contains(raw, []byte("${DOCKER_SOCK:-/var/run/docker.sock}:/var/run/docker.sock:ro")) {
		t.Error("compose.yaml does not take the socket from ${DOCKER_SOCK:-/var/run/docker.sock}")
	}

	alloy := service(t, mustLoadCompose(t), "alloy")
	if !slices.Equal(alloy.Profiles, []string{"logs"}) {
		t.Errorf("alloy profiles = %v, want [logs]", alloy.Profiles)
	}
	core, err := loadCompose(t, testSecrets)
	if err != nil {
		t.Fatalf("the core stack (no profile) does not load: %v", err)
	}
	if _, ok := core.Services["alloy"]; ok {
		t.Error("alloy runs without --profile logs")
	}
	for _, s := range core.Services {
		if _, ok := s.DependsOn["alloy"]; ok {
			t.Errorf("%s depends on alloy, so the core stack cannot start without the socket", s.Name)
		}
	}
}

// TestComposeSELinuxRelabel: on SELinux hosts a container reads a bind mount
// only when it is relabelled. SELINUX_RELABEL=z adds :z to every
// configuration mount from the repository (shared: alerts/ is mounted by
// three services) and leaves them read-only.
func TestComposeSELinuxRelabel(t *testing.T) {
	root := repo(t)
	for _, want := range []string{"", "z"} {
		p := loadComposeFiles(t, withEnv(map[string]string{"SELINUX_RELABEL": want}))
		var n int
		for _, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeBind || !strings.HasPrefix(v.Source, root+string(filepath.Separator)) {
					continue
				}
				n++
				got := ""
				if v.Bind != nil {
					got = v.Bind.SELinux
				}
				if got != want || !v.ReadOnly {
					t.Errorf("SELINUX_RELABEL=%q: %s mounts %s with label %q (read-only %v), want %q read-only", want, s.Name, v.Source, got, v.ReadOnly, want)
				}
			}
		}
		if n == 0 {
			t.Fatal("no bind mounts from the repository found")
		}
	}
}

// parseGoMemLimit parses a GOMEMLIMIT value (a number with an optional
// B, KiB, MiB or GiB suffix) into bytes.
func parseGoMemLimit(s string) (int64, bool) {
	m := regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB)?$`).FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	shift := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30}[m[2]]
	return n << shift, true
}

// notGo are the services whose process is not a Go program, so GOMEMLIMIT
// would do nothing.
var notGo = map[string]string{
	"postgres": "PostgreSQL (C): shared_buffers sizes it",
	"redis":    "Redis (C): --maxmemory sizes it",
	"nginx":    "nginx (C): one worker and a 1 MB limit_req zone",
}

// TestComposeGoMemLimit: a Go process sizes its heap to the host unless
// GOMEMLIMIT says otherwise, and is OOM-killed at the container's limit
// before its GC works hard. Every Go service sets GOMEMLIMIT at 75-90% of
// its memory limit.
func TestComposeGoMemLimit(t *testing.T) {
	for _, s := range mustLoadCompose(t).Services {
		if _, skip := notGo[s.Name]; skip {
			continue
		}
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes == 0 {
			t.Errorf("%s: no memory limit", s.Name)
			continue
		}
		limit := int64(s.Deploy.Resources.Limits.MemoryBytes)
		v := envValue(s, "GOMEMLIMIT")
		got, ok := parseGoMemLimit(v)
		switch {
		case v == "":
			t.Errorf("%s: memory limit %d MiB but no GOMEMLIMIT", s.Name, limit>>20)
		case !ok:
			t.Errorf("%s: GOMEMLIMIT=%q is not a size", s.Name, v)
		case got*100 < limit*75 || got*100 > limit*90:
			t.Errorf("%s: GOMEMLIMIT=%s is %d%% of the %d MiB limit, want 75-90%%", s.Name, v, got*100/limit, limit>>20)
		}
	}
}

// TestLokiCachesFitItsLimit: with no external cache Loki turns on an
// embedded chunk cache (100 MB unless set) and its index-stats and volume
// results caches copy the results cache's settings. Together they must stay
// under half of Loki's container limit.
func TestLokiCachesFitItsLimit(t *testing.T) {
	type embedded struct {
		Cache struct {
			Embedded *struct {
				Enabled   bool `yaml:"enabled"`
				MaxSizeMB int  `yaml:"max_size_mb"`
			} `yaml:"embedded_cache"`
		} `yaml:"cache"`
	}
	var cfg struct {
		ChunkStore struct {
			ChunkCache struct {
				Embedded *struct {
					Enabled   bool `yaml:"enabled"`
					MaxSizeMB int  `yaml:"max_size_mb"`
				} `yaml:"embedded_cache"`
			} `yaml:"chunk_cache_config"`
		} `yaml:"chunk_store_config"`
		QueryRange struct {
			Results    embedded `yaml:"results_cache"`
			IndexStats embedded `yaml:"index_stats_results_cache"`
			Volume     embedded `yaml:"volume_results_cache"`
		} `yaml:"query_range"`
	}
	testenv.ReadYAML(t, filepath.Join("loki", "loki.yaml"), &cfg)

	const defaultChunkMB = 100 // Loki 3.5's embedded chunk cache when none is configured
	chunk := defaultChunkMB
	if e := cfg.ChunkStore.ChunkCache.Embedded; e != nil && e.MaxSizeMB > 0 {
		chunk = e.MaxSizeMB
	}
	size := func(c embedded, inherit int) int {
		if c.Cache.Embedded != nil && c.Cache.Embedded.MaxSizeMB > 0 {
			return c.Cache.Embedded.MaxSizeMB
		}
		return inherit
	}
	results := size(cfg.QueryRange.Results, defaultChunkMB)
	total := chunk + results + size(cfg.QueryRange.IndexStats, results) + size(cfg.QueryRange.Volume, results)

	loki := service(t, mustLoadCompose(t), "loki")
	limitMB := int(loki.Deploy.Resources.Limits.MemoryBytes >> 20)
	t.Logf("Loki caches: %d MB of a %d MiB limit", total, limitMB)
	if total*2 > limitMB {
		t.Errorf("Loki's embedded caches add up to %d MB, more than half its %d MiB limit: set their max_size_mb in loki/loki.yaml", total, limitMB)
	}
}

// TestComposeREADMEImages: the image table in compose/README.md names the
// versions compose.yaml runs.
func TestComposeREADMEImages(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range mustLoadCompose(t).Services {
		if s.Build != nil || s.PullPolicy == types.PullPolicyNever {
			continue
		}
		if !bytes.Contains(readme, []byte("`"+s.Image+"`")) {
			t.Errorf("compose/README.md does not list %s's image `%s`", s.Name, s.Image)
		}
	}
}
