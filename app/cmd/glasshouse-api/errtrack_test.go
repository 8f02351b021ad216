package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/alerts/slacksink"
)

// TestErrorTrackingThroughTheBinary: with ERROR_WEBHOOK_URL_FILE and
// SENTRY_DSN set, a 5xx from the running server (an injected database
// outage under login) is counted in app_errors_total, alerted to the Slack
// sink with its request and trace IDs, and sent to a stand-in for Sentry's
// ingest by shutdown.
func TestErrorTrackingThroughTheBinary(t *testing.T) {
	sink := slacksink.New(slacksink.Options{})
	hook := httptest.NewServer(sink)
	t.Cleanup(hook.Close)
	var mu sync.Mutex
	var envelopes []string
	ingest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		envelopes = append(envelopes, r.URL.Path+"\n"+string(b))
		mu.Unlock()
		io.WriteString(w, "{}")
	}))
	t.Cleanup(ingest.Close)
	secret := filepath.Join(t.TempDir(), "error_webhook_url")
	if err := os.WriteFile(secret, []byte(hook.URL+"/hooks/T0/B0/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := start(t, map[string]string{
		"ERROR_WEBHOOK_URL_FILE": secret,
		"SENTRY_DSN":             strings.Replace(ingest.URL, "http://", "http://key@", 1) + "/7",
	})
	if resp := call(t, "PUT", in.admin+"/debug/fault", "", `{"outages":["database"]}`, nil); resp.StatusCode != 200 {
		t.Fatalf("PUT outage = %d", resp.StatusCode)
	}
	resp := call(t, "POST", in.base+"/api/v1/auth/login", "", `{"username":"nobody","password":"Passw0rd!"}`, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("login during a database outage = %d, want 503", resp.StatusCode)
	}
	requestID := resp.Header.Get("X-Request-Id")
	traceID := strings.Split(resp.Header.Get("Traceresponse"), "-")[1]
	if want := `app_errors_total{error_type="unavailable",route="/api/v1/auth/login"} 1`; !strings.Contains(scrape(t, in.admin), want) {
		t.Errorf("/metrics lacks %s", want)
	}
	var alert string
	for deadline := time.Now().Add(30 * time.Second); alert == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, m := range sink.Messages(0) {
			if strings.Contains(m.Text(), requestID) {
				alert = m.Text()
			}
		}
	}
	if !strings.Contains(alert, traceID) || !strings.Contains(alert, "/api/v1/auth/login") {
		t.Errorf("alert for request %s (trace %s):\n%s", requestID, traceID, alert)
	}
	in.cancel()
	select {
	case err := <-in.done:
		in.done <- err // for start's cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(envelopes) != 1 || !strings.HasPrefix(envelopes[0], "/api/7/envelope/\n") || !strings.Contains(envelopes[0], `"trace_id":"`+traceID+`"`) {
		t.Errorf("Sentry ingest got %d envelopes, want one tagged trace_id %s:\n%s", len(envelopes), traceID, strings.Join(envelopes, "\n---\n"))
	}
}

// TestFormLoginAndHealthThroughTheBinary: the OAuth2 password-grant form
// logs in, and the health endpoints answer in FastAPI's vocabulary.
func TestFormLoginAndHealthThroughTheBinary(t *testing.T) {
	in := start(t, nil)
	if resp := call(t, "POST", in.base+"/api/v1/users", "", `{"username":"sam","email":"sam@example.com","password":"Passw0rd!"}`, nil); resp.StatusCode != 201 {
		t.Fatalf("signup = %d", resp.StatusCode)
	}
	form := url.Values{"grant_type": {"password"}, "username": {"sam"}, "password": {"Passw0rd!"}}
	resp, err := http.PostForm(in.base+"/api/v1/auth/login", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || tok.TokenType != "bearer" {
		t.Fatalf("form login = %d %+v (%v)", resp.StatusCode, tok, err)
	}
	if resp := call(t, "GET", in.base+"/api/v1/users/me", tok.AccessToken, "", nil); resp.StatusCode != 200 {
		t.Errorf("GET /users/me with the form login's token = %d", resp.StatusCode)
	}
	for path, want := range map[string]string{"/health": "healthy", "/health/live": "alive", "/health/ready": "ready", "/health/detailed": "healthy"} {
		var body struct {
			Status string `json:"status"`
		}
		if resp := call(t, "GET", in.base+path, "", "", &body); resp.StatusCode != 200 || body.Status != want {
			t.Errorf("%s = %d status %q, want 200 %q", path, resp.StatusCode, body.Status, want)
		}
	}
}
