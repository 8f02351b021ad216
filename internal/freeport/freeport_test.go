package freeport

import "testing"

func TestPortsAreDistinct(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := Port(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// TestPortsAreBelowTheEphemeralRange: the kernel never hands a port below
// its ephemeral range to another process's connection or port-0 listener,
// so a port from Port stays free until its server binds it.
func TestPortsAreBelowTheEphemeralRange(t *testing.T) {
	start := ephemeralFirst()
	if start-lowest < 1000 {
		t.Skipf("the ephemeral range starts at %d: no room below it, Port asks the kernel", start)
	}
	for range 50 {
		if p := Port(t); p < lowest || p >= start {
			t.Fatalf("port %d, want one in [%d, %d): below the ephemeral range", p, lowest, start)
		}
	}
}
