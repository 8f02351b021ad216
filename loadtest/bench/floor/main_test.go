package main

import (
	"strings"
	"testing"
	"time"
)

// TestRefusesBadTargets: the baseline sends load to loopback only, and
// every bad flag gets a message saying what is wanted, before any socket
// is opened.
func TestRefusesBadTargets(t *testing.T) {
	for _, c := range []struct {
		url  string
		rate int
		want string
	}{
		{"http://10.0.0.1:80/", 5000, "loopback (127.0.0.0/8) only"},
		{"http://localhost:80/", 5000, "IPv4 loopback literal"},
		{"http://127.0.0.1/", 5000, "want 127.x.y.z:PORT"},
		{"http://127.0.0.1:99999/", 5000, "want 127.x.y.z:PORT"},
		{"https://127.0.0.1:80/", 5000, "want http://HOST:PORT/"},
		{"127.0.0.1:80", 5000, "want http://HOST:PORT/"},
		{"http://127.0.0.1:80/", 0, "must be positive"},
	} {
		err := run(c.url, c.rate, time.Second)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run(%q, %d) = %v, want an error containing %q", c.url, c.rate, err, c.want)
		}
	}
	if _, err := loopbackAddr("127.1.2.3:8080"); err != nil {
		t.Errorf("loopbackAddr(127.1.2.3:8080) = %v", err)
	}
}
