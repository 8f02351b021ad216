package testenv

import (
	"net/url"
	"testing"
	"time"
)

// TestStartLogPerProcess starts three processes under one name in one
// directory: they share the log file, and each one's Log is its own part.
func TestStartLogPerProcess(t *testing.T) {
	dir := t.TempDir()
	var procs []*Process
	for _, out := range []string{"first", "", "third"} {
		p := Start(t, dir, "p", "/bin/sh", []string{"-c", "test -z \"$OUT\" || echo \"$OUT\""}, []string{"OUT=" + out})
		if err := p.Wait(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	for i, want := range []string{"first\n", "", "third\n"} {
		if got := procs[i].Log(); got != want {
			t.Errorf("process %d: Log() = %q, want %q", i, got, want)
		}
	}
}

func TestRedisHangGuardURL(t *testing.T) {
	got := RedisHangGuardURL(t, "redis://127.0.0.1:6379/2?read_timeout=1s")
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Host != "127.0.0.1:6379" || u.Path != "/2" || q.Get("read_timeout") != "1s" {
		t.Errorf("%s: the address, database or a timeout the URL set was changed", got)
	}
	for _, k := range []string{"dial_timeout", "write_timeout", "pool_timeout"} {
		if q.Get(k) != RedisHangGuard.String() {
			t.Errorf("%s: %s = %q, want %s", got, k, q.Get(k), RedisHangGuard)
		}
	}
}
