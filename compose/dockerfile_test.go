package compose_test

import (
	"debug/elf"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		} else if strings.HasPrefix(trimmed, "#") {
			continue // comment inside a continued instruction
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	return out
}

// stage is one FROM ... section.
type stage struct {
	image, name string
	body        []instruction
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "Dockerfile")

	// Global ARG defaults (before the first FROM) feed FROM lines.
	args := map[string]string{}
	var stages []stage
	for _, in := range ins {
		switch {
		case in.cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case in.cmd == "FROM":
			f := strings.Fields(os.Expand(in.args, func(k string) string { return args[k] }))
			st := stage{image: f[len(f)-1]}
			if len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS") {
				st.image, st.name = f[len(f)-3], f[len(f)-1]
			}
			stages = append(stages, st)
		case len(stages) > 0:
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build (build + runtime)", len(stages))
	}

	// The Go version matches go.mod's go directive.
	gomod, err := os.ReadFile(filepath.Join(repo(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go ([0-9.]+)$`).FindSubmatch(gomod)
	if goVersion == nil || args["GO_VERSION"] != string(goVersion[1]) {
		t.Errorf("ARG GO_VERSION = %q, go.mod says %s", args["GO_VERSION"], goVersion)
	}

	names := map[string]bool{}
	for _, st := range stages {
		switch {
		case st.image == "scratch", names[st.image]:
		case !pinnedImage.MatchString(st.image):
			t.Errorf("FROM %s: base image not pinned to an exact version", st.image)
		}
		if st.name != "" {
			names[st.name] = true
		}
	}

	build, final := stages[0], stages[len(stages)-1]
	if !slices.ContainsFunc(build.body, func(in instruction) bool {
		return (in.cmd == "ENV" || in.cmd == "RUN") && strings.Contains(in.args, "CGO_ENABLED=0")
	}) {
		t.Error("the build stage does not set CGO_ENABLED=0 (static binaries for a scratch image)")
	}
	if final.image != "scratch" && !strings.Contains(final.image, "distroless") {
		t.Errorf("runtime stage FROM %s: want scratch or distroless (no shell, small)", final.image)
	}

	var user, healthcheck, entrypoint string
	var copied []string
	for _, in := range final.body {
		switch in.cmd {
		case "USER":
			user = in.args
		case "HEALTHCHECK":
			healthcheck = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "COPY":
			f := strings.Fields(in.args)
			dest := f[len(f)-1]
			for _, src := range f[:len(f)-1] {
				if !strings.HasPrefix(src, "--") {
					if strings.HasSuffix(dest, "/") {
						copied = append(copied, dest+filepath.Base(src))
					} else {
						copied = append(copied, dest)
					}
				}
			}
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); user == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: the image must run as a non-root user", user)
	}

	// HEALTHCHECK in exec form, run by a binary in the image: no shell, no curl.
	_, cmdJSON, ok := strings.Cut(healthcheck, "CMD ")
	var hc []string
	if !ok || json.Unmarshal([]byte(cmdJSON), &hc) != nil || len(hc) < 2 {
		t.Fatalf("HEALTHCHECK %q: want exec form CMD [\"/path/binary\", \"health\"]", healthcheck)
	}
	if !slices.Contains(copied, hc[0]) || hc[1] != "health" {
		t.Errorf("HEALTHCHECK runs %v: want the API binary copied into the image (%v) with its health subcommand", hc, copied)
	}
	var ep []string
	if json.Unmarshal([]byte(entrypoint), &ep) != nil || len(ep) == 0 || !slices.Contains(copied, ep[0]) {
		t.Errorf("ENTRYPOINT %q: want exec form naming a binary copied into the image", entrypoint)
	}

	// Files COPY'd from the build context exist and are not dockerignored.
	ignore, err := os.ReadFile(filepath.Join(repo(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range build.body {
		if in.cmd != "COPY" || strings.Contains(in.args, "--from") {
			continue
		}
		f := strings.Fields(in.args)
		for _, src := range f[:len(f)-1] {
			if src == "." {
				continue
			}
			if _, err := os.Stat(filepath.Join(repo(t), src)); err != nil {
				t.Errorf("COPY %s: %v", src, err)
			}
			if regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(src) + `$`).Match(ignore) {
				t.Errorf("COPY %s, but .dockerignore excludes it", src)
			}
		}
	}
	for _, must := range []string{".git", ".env", "**/.env", ".run"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(must) + `$`).Match(ignore) {
			t.Errorf(".dockerignore does not exclude %s", must)
		}
	}
}

// dockerBuildPackages returns the packages the Dockerfile's go build names.
func dockerBuildPackages(t *testing.T) []string {
	t.Helper()
	for _, in := range parseDockerfile(t, "Dockerfile") {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			return regexp.MustCompile(`\./[a-z0-9/_-]+`).FindAllString(in.args, -1)
		}
	}
	t.Fatal("the Dockerfile runs no go build")
	return nil
}

// TestDockerfileBinariesAreStatic builds what the Dockerfile builds, the way
// it builds it (CGO_ENABLED=0, -trimpath), and checks each binary is statically
// linked, so it runs on the empty scratch base. Then it runs the API's health
// subcommand, the image's HEALTHCHECK, against a healthy and an unhealthy
// server.
func TestDockerfileBinariesAreStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries; skipped with -short")
	}
	pkgs := dockerBuildPackages(t)
	var missing []string
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join(repo(t), p)); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the Dockerfile builds packages that do not exist: %v", missing)
	}
	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "go", append([]string{"build", "-trimpath", "-tags", "timetzdata", "-o", out + "/"}, pkgs...)...)
	cmd.Dir = repo(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", pkgs, err, b)
	}
	for _, p := range pkgs {
		bin := filepath.Join(out, filepath.Base(p))
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked (has an ELF interpreter); the scratch image has no libc", filepath.Base(p))
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s needs shared libraries %v", filepath.Base(p), libs)
		}
		f.Close()
	}

	// Every flag compose passes to these binaries exists: their -h lists it.
	p := mustLoadCompose(t)
	for _, s := range p.Services {
		if len(s.Entrypoint) == 0 || !strings.HasPrefix(s.Entrypoint[0], "/usr/local/bin/") {
			continue
		}
		bin := filepath.Join(out, filepath.Base(s.Entrypoint[0]))
		help, _ := exec.CommandContext(t.Context(), bin, "-h").CombinedOutput()
		for _, arg := range s.Command {
			name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
			if !strings.HasPrefix(arg, "-") {
				continue
			}
			if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `\b`).Match(help) {
				t.Errorf("compose service %s passes %s, but %s -h does not list -%s:\n%s", s.Name, arg, filepath.Base(bin), name, help)
			}
		}
	}

	api := filepath.Join(out, "glasshouse-api")
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health/live" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"status":"alive"}`))
	}))
	defer healthy.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	for _, tc := range []struct {
		url    string
		wantOK bool
	}{
		{healthy.URL + "/health/live", true},
		{sick.URL + "/health/live", false},
		{"http://127.0.0.1:1/health/live", false},
	} {
		err := exec.CommandContext(t.Context(), api, "health", "-url", tc.url).Run()
		if (err == nil) != tc.wantOK {
			t.Errorf("glasshouse-api health -url %s: err = %v, want success %v", tc.url, err, tc.wantOK)
		}
	}
}
