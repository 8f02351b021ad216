package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRun starts the real command on a free loopback port, posts a message
// like Alertmanager would, reads it back, and stops the command.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"slacksink", "-addr", "127.0.0.1:0"}, func(string) string { return "" }, nil, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no start-up line: %v", <-done)
	}
	first := lines.Text()
	base, ok := strings.CutPrefix(first, "slacksink listening on ")
	base, _, _ = strings.Cut(base, " ")
	if !ok {
		t.Fatalf("start-up line = %q", first)
	}
	printed := make(chan string, 16)
	go func() {
		for lines.Scan() {
			printed <- lines.Text()
		}
		close(printed)
	}()

	resp, err := http.Post(base+"/hooks/glasshouse", "application/json", strings.NewReader(`{"text":"disk <https://x.example|full>"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("POST = %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get(base + "/messages")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []struct {
		Payload struct{ Text string }
	}
	err = json.NewDecoder(resp.Body).Decode(&msgs)
	resp.Body.Close()
	if err != nil || len(msgs) != 1 || msgs[0].Payload.Text != "disk <https://x.example|full>" {
		t.Fatalf("GET /messages = %+v, %v", msgs, err)
	}
	var out []string
	timeout := time.After(10 * time.Second)
	for len(out) < 2 {
		select {
		case l := <-printed:
			out = append(out, l)
		case <-timeout:
			t.Fatalf("printed only %q", out)
		}
	}
	if !strings.HasPrefix(out[0], "── #1 ") || out[1] != "  disk full (https://x.example)" {
		t.Errorf("printed %q", out)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("run returned %v after cancel, want nil", err)
	}
}

func TestRunBadArgs(t *testing.T) {
	for _, args := range [][]string{{"-max", "0"}, {"extra"}, {"-addr", "256.0.0.1:99999"}, {"-nope"}} {
		err := run(t.Context(), append([]string{"slacksink"}, args...), func(string) string { return "" }, nil, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("run %v succeeded, want an error", args)
		}
	}
}
