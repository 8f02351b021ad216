package nginxtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplace(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		rs         []Replacement
		want       string
		wantErr    string
	}{
		{"every occurrence", "a b a", []Replacement{{"a", "c"}}, "c b c", ""},
		{"in order", "a", []Replacement{{"a", "b"}, {"b", "c"}}, "c", ""},
		{"missing", "a", []Replacement{{"a", "b"}, {"x", "y"}}, "", `site.conf no longer contains "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Replace("site.conf", tc.conf, tc.rs)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Replace = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  Run
		want []string
	}{
		{"access log", Run{Workers: 1, WorkerConnections: 64, AccessLog: true},
			[]string{"worker_processes 1;", "events { worker_connections 64; }", "/logs/access.log;"}},
		{"no access log", Run{Workers: 2, WorkerConnections: 512},
			[]string{"worker_processes 2;", "events { worker_connections 512; }", "access_log off;"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.run
			r.Prefix = t.TempDir()
			mainPath, err := r.Write("server {}\n")
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(mainPath)
			if err != nil {
				t.Fatal(err)
			}
			main := string(b)
			for _, w := range append(tc.want, "pid "+r.Prefix+"/nginx.pid;", "include "+filepath.Join(r.Prefix, "glasshouse.conf")+";") {
				if !strings.Contains(main, w) {
					t.Errorf("nginx.conf lacks %q:\n%s", w, main)
				}
			}
			if strings.Contains(main, "%!") {
				t.Errorf("nginx.conf has a formatting error:\n%s", main)
			}
			for _, d := range []string{"logs", "tmp", "acme"} {
				if fi, err := os.Stat(filepath.Join(r.Prefix, d)); err != nil || !fi.IsDir() {
					t.Errorf("%s: not a directory (%v)", d, err)
				}
			}
			site, err := os.ReadFile(filepath.Join(r.Prefix, "glasshouse.conf"))
			if err != nil || string(site) != "server {}\n" {
				t.Errorf("glasshouse.conf = %q, %v; want the site as given", site, err)
			}
		})
	}
}
