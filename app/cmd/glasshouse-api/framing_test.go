package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAmbiguousFramingRefused sends, over raw TCP, a request with both
// Content-Length and Transfer-Encoding (net/http alone follows
// Transfer-Encoding and keeps the connection): the answer is 400 and the
// connection is closed. The same request with chunked encoding alone is
// served, and the connection kept.
func TestAmbiguousFramingRefused(t *testing.T) {
	in := start(t, nil)
	body := `{"username":"%s","email":"%s@example.com","password":"Passw0rd!"}`
	request := func(name string, withCL bool) string {
		b := fmt.Sprintf(body, name, name)
		cl := ""
		if withCL {
			cl = "Content-Length: 3\r\n"
		}
		return "POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + cl +
			"Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(b), b)
	}
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", strings.TrimPrefix(in.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(30 * time.Second)) // hang guard
		return c, bufio.NewReader(c)
	}
	send := func(c net.Conn, br *bufio.Reader, req string) (*http.Response, string) {
		t.Helper()
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	c, br := dial()
	resp, b := send(c, br, request("smuggler", true))
	var p struct{ Code string }
	json.Unmarshal([]byte(b), &p)
	if resp.StatusCode != 400 || p.Code != "ambiguous_framing" || !resp.Close {
		t.Errorf("Content-Length with Transfer-Encoding: %d %s (Connection: close %v), want 400 ambiguous_framing and close", resp.StatusCode, b, resp.Close)
	}
	if n, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the 400 the connection is open (read %q, %v), want EOF", n, err)
	}

	c, br = dial()
	for _, name := range []string{"chunked1", "chunked2"} {
		if resp, b := send(c, br, request(name, false)); resp.StatusCode != 201 || resp.Close {
			t.Errorf("chunked signup %s: %d %s (close %v), want 201 on a kept connection", name, resp.StatusCode, b, resp.Close)
		}
	}
}
