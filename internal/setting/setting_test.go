package setting

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

type conf struct {
	name    string
	n       int
	d       time.Duration
	on      bool
	mode    string
	tags    []string
	derived int
}

func (c *conf) table() []Setting {
	return []Setting{
		Text(&c.name, "name", "NAME", "def", "a name"),
		Int(&c.n, "n", "N", 3, 1, "a count"),
		Duration(&c.d, "d", "", time.Minute, time.Second, "a duration"),
		Bool(&c.on, "on", "ON", false, "a switch"),
		Choice(&c.mode, "mode", "MODE", "a", []string{"a", "b", "c"}, "a mode"),
		List(&c.tags, "tag", "TAGS", "tags", func(s string) (string, error) {
			if s == "bad" {
				return "", errors.New("bad tag")
			}
			return strings.ToUpper(s), nil
		}),
		Optional(Int(&c.derived, "derived", "DERIVED", 0, 0, "derived"), "twice -n", func() { c.derived = 2 * c.n }),
	}
}

func parse(t *testing.T, args []string, sources ...Source) (conf, error) {
	t.Helper()
	var c conf
	table := c.table()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	given := Register(fs, table)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if p := Resolve(table, given, sources...); p != nil {
		return c, p
	}
	return c, nil
}

func TestResolve(t *testing.T) {
	env := Map(map[string]string{"NAME": "env", "N": "5", "MODE": "b"})
	dotenv := Map(map[string]string{"NAME": "dotenv", "N": "7", "ON": "true", "TAGS": "x"})
	for _, tt := range []struct {
		name    string
		args    []string
		sources []Source
		want    string
	}{
		{"defaults", nil, nil, "def 3 1m0s false a [] 6"},
		{"first source wins", nil, []Source{env, dotenv}, "env 5 1m0s true b [X] 10"},
		{"flag wins", []string{"-name=flag", "-n", "9", "-mode=c"}, []Source{env, dotenv}, "flag 9 1m0s true c [X] 18"},
		{"empty flag wins", []string{"-name="}, []Source{env}, " 5 1m0s false b [] 10"},
		{"bool flag alone", []string{"-on"}, nil, "def 3 1m0s true a [] 6"},
		{"repeated flag", []string{"-tag", "a,b", "-tag", "c"}, nil, "def 3 1m0s false a [A B C] 6"},
		{"optional given", []string{"-derived=0"}, nil, "def 3 1m0s false a [] 0"},
		{"env-less setting ignores sources", nil, []Source{Map(map[string]string{"": "5s", "D": "5s"})}, "def 3 1m0s false a [] 6"},
		{"empty environment value is unset", nil, []Source{Getenv(func(string) string { return "" }), dotenv}, "dotenv 7 1m0s true a [X] 14"},
	} {
		c, err := parse(t, tt.args, tt.sources...)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := fmt.Sprintf("%s %d %v %v %s %v %d", c.name, c.n, c.d, c.on, c.mode, c.tags, c.derived); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestResolveReportsEveryProblem(t *testing.T) {
	_, err := parse(t, []string{"-d", "1ms", "-tag", "ok,bad,bad"},
		Map(map[string]string{"N": "0", "ON": "maybe", "MODE": "z", "DERIVED": "-1"}))
	var p Problems
	if !errors.As(err, &p) {
		t.Fatalf("err = %v, want Problems", err)
	}
	want := []string{
		`N: "0" is not an integer >= 1`,
		`-d: "1ms" is not a duration >= 1s (like 30s or 5m)`,
		`ON: "maybe" is not true or false`,
		`MODE: "z" is not a, b or c`,
		`TAGS: bad tag`,
		`TAGS: bad tag`,
		`DERIVED: "-1" is not an integer >= 0`,
	}
	if got := strings.Split(p.Error(), "\n  "); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAfterRunsOnceEverySettingIsSet(t *testing.T) {
	var a, b int
	var seen int
	table := []Setting{
		Int(&a, "a", "", 1, 0, "a").Then(func() error {
			seen = b // b comes later in the table
			if a > b {
				return errors.New("exceeds -b")
			}
			return nil
		}),
		Int(&b, "b", "", 2, 0, "b"),
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	given := Register(fs, table)
	if err := fs.Parse([]string{"-a", "5", "-b", "4"}); err != nil {
		t.Fatal(err)
	}
	p := Resolve(table, given)
	if seen != 4 || len(p) != 1 || p[0].Error() != "-a: exceeds -b" {
		t.Errorf("after saw b = %d, problems %v; want 4 and one -a problem", seen, p)
	}
}

func TestUsage(t *testing.T) {
	var c conf
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	fs.String("env-file", ".env", "a file")
	Register(fs, c.table())
	if err := fs.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{
		"  -d duration\n    \ta duration (default \"1m\")\n",
		"  -derived int\n    \tderived (empty: twice -n) (env DERIVED, default \"\")\n",
		"  -env-file string\n    \ta file (default \".env\")\n",
		"  -n int\n    \ta count (env N, default \"3\")\n",
		"  -on\n    \ta switch (env ON, default \"false\")\n",
		"  -mode string\n    \ta mode (env MODE, default \"a\")\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 100 * time.Millisecond: "100ms", 90 * time.Second: "1m30s", time.Minute: "1m",
		2 * time.Hour: "2h", 90 * time.Minute: "1h30m", time.Hour + time.Second: "1h0m1s",
	} {
		got := FormatDuration(d)
		if got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, back, err, d)
		}
	}
}
