// Command floor is the load generator benchmark's baseline for CPU per
// request: the least an open-loop generator that wakes on time for every
// arrival can spend on this machine. It is not a load generator anyone
// should use; it is hand-written because no tool measures this.
//
// One locked thread, one keep-alive connection, no Go runtime on the path:
// for each arrival it sleeps on a kernel timer until the arrival's instant,
// writes a fixed GET request and blocks reading the response, all as raw
// system calls (so that the runtime's monitor thread is never woken either).
// That is two sleeps per request (until the arrival, until the response)
// and three system calls, nothing else: no metrics, no parsing beyond
// Content-Length. It prints one line, read by loadtest/bench/report:
//
//	requests N scheduled M lag_p50_us X lag_p99_us Y duration_p50_ms Z duration_p99_ms W
//
// An arrival whose predecessor has not been answered yet starts late
// rather than on a second connection; at the benchmark's rates the target
// answers in well under the interval, and the lag columns show it if not.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	target := flag.String("url", "", "target URL (http://127.0.0.1:PORT/)")
	rate := flag.Int("rate", 5000, "arrivals per second")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	flag.Parse()
	if err := run(*target, *rate, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(target string, rate int, dur time.Duration) error {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url %q: want http://HOST:PORT/", target)
	}
	if rate <= 0 || dur <= 0 {
		return errors.New("-rate and -duration must be positive")
	}
	sa, err := loopbackAddr(u.Host)
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(sock)
	if err := unix.Connect(sock, sa); err != nil {
		return fmt.Errorf("connect %s: %w", u.Host, err)
	}
	unix.SetsockoptInt(sock, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)

	path := u.RequestURI()
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: floor\r\n\r\n")
	n := int(int64(rate) * int64(dur) / int64(time.Second))
	lags := make([]int64, 0, n)
	durs := make([]int64, 0, n)
	buf := make([]byte, 64<<10)
	var tick [8]byte
	start := monotonic() + int64(time.Millisecond)
	for i := range n {
		at := start + int64(i)*int64(time.Second)/int64(rate)
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(at)}
		if err := unix.TimerfdSettime(tfd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
			return err
		}
		if _, err := rawIO(syscall.SYS_READ, tfd, tick[:]); err != nil {
			return fmt.Errorf("timer: %w", err)
		}
		sent := monotonic()
		lags = append(lags, sent-at)
		if _, err := rawIO(syscall.SYS_WRITE, sock, req); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if err := readResponse(sock, buf); err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		durs = append(durs, monotonic()-sent)
	}
	fmt.Printf("requests %d scheduled %d lag_p50_us %.1f lag_p99_us %.1f duration_p50_ms %.3f duration_p99_ms %.3f\n",
		len(durs), n, pct(lags, 50)/1e3, pct(lags, 99)/1e3, pct(durs, 50)/1e6, pct(durs, 99)/1e6)
	return nil
}

// readResponse reads one response whose length the Content-Length header
// gives (the benchmark target always sends one).
func readResponse(sock int, buf []byte) error {
	have := 0
	for {
		k, err := rawIO(syscall.SYS_READ, sock, buf[have:])
		if err != nil {
			return err
		}
		if k == 0 {
			return errors.New("connection closed by the target")
		}
		have += k
		head, body, ok := bytes.Cut(buf[:have], []byte("\r\n\r\n"))
		if !ok {
			if have == len(buf) {
				return errors.New("response header too large")
			}
			continue
		}
		cl := -1
		for line := range bytes.SplitSeq(head, []byte("\r\n")) {
			if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
				cl, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
		}
		if cl < 0 {
			return errors.New("response without Content-Length")
		}
		if len(body) >= cl {
			return nil
		}
	}
}

// rawIO is read(2) or write(2) without the runtime's system call hooks,
// retried on EINTR.
func rawIO(trap uintptr, fd int, b []byte) (int, error) {
	for {
		r, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

func monotonic() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func pct(v []int64, p int) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return float64(s[(len(s)-1)*p/100])
}

// loopbackAddr resolves HOST:PORT, which must be an IPv4 loopback literal:
// the benchmark sends load to loopback only.
func loopbackAddr(hostport string) (*unix.SockaddrInet4, error) {
	h, p, ok := bytes.Cut([]byte(hostport), []byte(":"))
	port, err := strconv.Atoi(string(p))
	if !ok || err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("address %q: want 127.x.y.z:PORT", hostport)
	}
	var sa unix.SockaddrInet4
	sa.Port = port
	parts := bytes.Split(h, []byte("."))
	if len(parts) != 4 {
		return nil, fmt.Errorf("address %q: want an IPv4 loopback literal", hostport)
	}
	for i, b := range parts {
		v, err := strconv.Atoi(string(b))
		if err != nil || v < 0 || v > 255 {
			return nil, fmt.Errorf("address %q: want an IPv4 loopback literal", hostport)
		}
		sa.Addr[i] = byte(v)
	}
	if sa.Addr[0] != 127 {
		return nil, fmt.Errorf("address %q: the benchmark sends load to loopback (127.0.0.0/8) only", hostport)
	}
	return &sa, nil
}
