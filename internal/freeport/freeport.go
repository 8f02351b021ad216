// Package freeport hands tests free loopback addresses that no other caller
// in the same process has been given, and that no other process is handed
// by the kernel in the meantime.
//
// Asking the kernel for port 0 and closing the listener is not enough: the
// port goes back to the kernel's ephemeral range, from which every
// outgoing connection and every port-0 listener of every process on the
// machine draws, so between the hand-out and the server's bind another
// test binary can take it (and two calls in a row can return the same port:
// seen in CI, a test's API and Prometheus ports collided). So ports are
// drawn at random from below the ephemeral range, where the kernel never
// allocates on its own, checked free by binding them, and remembered for
// the life of the test binary, the one state this package keeps because
// ports are a process-wide resource. Two test binaries could still draw the
// same port at the same moment, by a chance of one in the size of the range
// (12,768 ports below Linux's default). When the ephemeral range leaves no
// room below it, Port falls back to asking the kernel.
//
// It imports only the standard library (TestImports).
package freeport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lowest is the lowest port drawn: below it are the ports services are
// commonly configured on (5432, 6379, 8080, 9090, ...).
const lowest = 20000

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Port returns a free TCP port on 127.0.0.1 not returned before in this
// process, outside the kernel's ephemeral port range when it can.
func Port(t testing.TB) int {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if hi := ephemeralFirst(); hi-lowest >= 1000 {
		for range 100 {
			p := lowest + rand.IntN(hi-lowest)
			if !given[p] && free(p) {
				given[p] = true
				return p
			}
		}
	}
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

// free reports whether a listener can bind 127.0.0.1:p now.
func free(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// ephemeralFirst is ephemeralStart, read once per process.
var ephemeralFirst = sync.OnceValue(ephemeralStart)

// ephemeralStart is the first port of the kernel's ephemeral range: Linux's
// setting, or 32768 (Linux's default, below the 49152 of other systems)
// where it cannot be read.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b)) // "32768\t60999\n"
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}
