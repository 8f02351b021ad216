package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/internal/syncbuf"
	"github.com/glasshouse-dev/glasshouse/internal/testcert"
)

// TestTLSServesHTTP2WithHSTS: with a certificate the API speaks HTTPS and
// HTTP/2 and sends Strict-Transport-Security; the health subcommand
// follows TLS_CERT_FILE to https.
func TestTLSServesHTTP2WithHSTS(t *testing.T) {
	cert, key, pool := testcert.Write(t, t.TempDir())
	addr := freeAddr(t)
	env := map[string]string{"ADDR": addr, "ADMIN_ADDR": freeAddr(t), "DATA_DIR": t.TempDir(), "LOG_FORMAT": "json",
		"TLS_CERT_FILE": cert, "TLS_KEY_FILE": key}
	logs := &syncbuf.Buffer{}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- run(ctx, []string{"api", "-env-file="}, envOf(env), nil, logs, logs) }()
	t.Cleanup(func() { cancel(); <-done })

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	var resp *http.Response
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := client.Get("https://" + addr + "/health/live")
		if err == nil {
			resp = r
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTPS answer: %v\n%s", err, logs)
		}
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("protocol %s, want HTTP/2.0", resp.Proto)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
		t.Errorf("Strict-Transport-Security = %q", hsts)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"api", "health"}, envOf(env), nil, &out, &out); err != nil {
		t.Errorf("health subcommand over TLS: %v", err)
	}
}
