// Package freeport hands tests free loopback addresses that no other caller
// in the same process has been given. Asking the kernel for port 0 and
// closing the listener is not enough on its own: two such calls in a row
// can return the same port (seen in CI: a test's API and Prometheus ports
// collided), so the ports handed out are remembered for the life of the
// test binary, the one state this package keeps because ports are a
// process-wide resource.
//
// It imports only the standard library (TestImports).
package freeport

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Port returns a free TCP port on 127.0.0.1 not returned before in this
// process.
func Port(t testing.TB) int {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("freeport: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given[p] {
			given[p] = true
			return p
		}
	}
	t.Fatal("freeport: 100 tries gave only ports already handed out")
	return 0
}

// Addr returns "127.0.0.1:PORT" for a Port.
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t)))
}
