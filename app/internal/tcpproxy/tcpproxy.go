// Package tcpproxy is a loopback TCP proxy for failure tests: it forwards
// connections to a real server (PostgreSQL, Redis) and can be cut and
// restored from the test, which makes the server look down to the code under
// test without disturbing anyone else using that server.
//
// It imports only the standard library (TestImports) and is meant for tests.
package tcpproxy

import (
	"errors"
	"net"
	"sync"
)

// Mode is what the proxy does with connections.
type Mode int

const (
	// Forward passes bytes both ways (the server is up).
	Forward Mode = iota
	// Refuse closes every connection, existing and new, as soon as it is
	// accepted: the server looks down (connection reset / EOF).
	Refuse
	// Blackhole is a network partition: new connections are accepted and
	// never answered, and open ones stay open but go silent (bytes both
	// ways are dropped). Only the client's own timeouts end its calls.
	Blackhole
)

// Proxy forwards 127.0.0.1:<port> to a target address. Its zero value is not
// usable; call Start. It is safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  Mode
	conns map[net.Conn]struct{}
	done  bool
	wg    sync.WaitGroup
}

// Start listens on a free loopback port and forwards to target. Close it
// when done.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's listen address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set switches the mode. Every change closes the open connections (clients
// notice at their next read or write and reconnect), except from Forward to
// Blackhole, which leaves them open and silent.
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m == p.mode {
		return
	}
	old := p.mode
	p.mode = m
	if old == Forward && m == Blackhole {
		return
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.done = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// track registers c unless the proxy is closing or has left mode m; it
// reports whether c was registered (an unregistered c has been closed).
func (p *Proxy) track(c net.Conn, m Mode) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done || p.mode != m {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		switch mode {
		case Refuse:
			c.Close()
		case Blackhole:
			// Hold the connection open without a reply until the mode
			// changes or the proxy closes.
			p.track(c, Blackhole)
		default:
			p.wg.Add(1)
			go p.forward(c)
		}
	}
}

func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	if !p.track(c, Forward) {
		return
	}
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		p.untrack(c)
		return
	}
	if !p.track(s, Forward) {
		p.untrack(c)
		return
	}
	var once sync.Once
	stop := func() { once.Do(func() { p.untrack(c, s) }) }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(s, c); stop() }()
	go func() { defer wg.Done(); p.pump(c, s); stop() }()
	wg.Wait()
}

// pump copies src to dst while the proxy forwards, and drops what it reads
// while it is blackholed.
func (p *Proxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			forward := p.mode == Forward
			p.mu.Unlock()
			if forward {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}
