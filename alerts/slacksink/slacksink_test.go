package slacksink_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/alerts/slacksink"
	"github.com/glasshouse-dev/glasshouse/internal/syncbuf"
)

// alertmanagerBody is shaped like what Alertmanager 0.25's Slack notifier posts.
const alertmanagerBody = `{"channel":"#glasshouse-alerts","username":"Alertmanager",
"attachments":[{"title":"[FIRING:1] SLOErrorBudgetBurn availability","title_link":"http://am:9093/#/alerts",
"text":"*FIRING* The availability SLO is burning.\n<https://runbooks.example/slo-availability.md|Runbook> · <http://g:3000/d/glasshouse-slo|Dashboard>",
"fallback":"x","color":"danger","footer":"glasshouse","mrkdwn_in":["fallback","pretext","text"]}]}`

func newServer(t *testing.T, opt slacksink.Options) (*httptest.Server, *syncbuf.Buffer) {
	t.Helper()
	out := &syncbuf.Buffer{}
	if opt.Out == nil {
		opt.Out = out
	}
	opt.Now = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }
	srv := httptest.NewServer(slacksink.New(opt))
	t.Cleanup(srv.Close)
	return srv, out
}

func do(t *testing.T, method, u, ctype, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func list(t *testing.T, u string) []slacksink.Message {
	t.Helper()
	code, body := do(t, "GET", u, "", "")
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", u, code, body)
	}
	var msgs []slacksink.Message
	if err := json.Unmarshal([]byte(body), &msgs); err != nil {
		t.Fatalf("decode %s: %v\n%s", u, err, body)
	}
	return msgs
}

func TestPostAndList(t *testing.T) {
	srv, out := newServer(t, slacksink.Options{})
	code, body := do(t, "POST", srv.URL+"/hooks/T000/B000/XXXX", "application/json", alertmanagerBody)
	if code != http.StatusOK || body != "ok" {
		t.Fatalf("POST = %d %q, want 200 \"ok\"", code, body)
	}
	form := url.Values{"payload": {`{"text":"hello from a form"}`}}.Encode()
	if code, body := do(t, "POST", srv.URL+"/services/abc", "application/x-www-form-urlencoded", form); code != 200 || body != "ok" {
		t.Fatalf("form POST = %d %q", code, body)
	}

	msgs := list(t, srv.URL+"/messages")
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	m := msgs[0]
	if m.ID != 1 || m.Path != "/hooks/T000/B000/XXXX" || m.Payload.Channel != "#glasshouse-alerts" {
		t.Errorf("message = %+v", m)
	}
	if len(m.Payload.Attachments) != 1 || m.Payload.Attachments[0].Color != "danger" {
		t.Errorf("attachments = %+v", m.Payload.Attachments)
	}
	if !strings.Contains(string(m.Raw), "mrkdwn_in") {
		t.Errorf("raw payload lost unknown fields: %s", m.Raw)
	}
	for _, want := range []string{"[FIRING:1] SLOErrorBudgetBurn availability", "The availability SLO is burning.", "glasshouse"} {
		if !strings.Contains(m.Text(), want) {
			t.Errorf("Text() = %q, want it to contain %q", m.Text(), want)
		}
	}
	if got := msgs[1].Payload.Text; got != "hello from a form" {
		t.Errorf("form message text = %q", got)
	}
	if got := list(t, srv.URL+"/messages?after=1"); len(got) != 1 || got[0].ID != 2 {
		t.Errorf("after=1 gave %+v, want message 2 only", got)
	}

	printed := out.String()
	for _, want := range []string{
		"── #1 03:04:05 /hooks/T000/B000/XXXX #glasshouse-alerts (as Alertmanager) ──",
		"  [danger]",
		"  Runbook (https://runbooks.example/slo-availability.md) · Dashboard (http://g:3000/d/glasshouse-slo)",
		"  hello from a form",
	} {
		if !strings.Contains(printed, want) {
			t.Errorf("printed output lacks %q:\n%s", want, printed)
		}
	}

	if code, _ := do(t, "DELETE", srv.URL+"/messages", "", ""); code != http.StatusNoContent {
		t.Errorf("DELETE = %d, want 204", code)
	}
	if got := list(t, srv.URL+"/messages"); len(got) != 0 {
		t.Errorf("after DELETE: %d messages, want 0", len(got))
	}
}

func TestBadRequests(t *testing.T) {
	srv, _ := newServer(t, slacksink.Options{MaxBody: 64})
	for _, tt := range []struct {
		name, method, path, ctype, body string
		code                            int
		want                            string
	}{
		{"invalid json", "POST", "/hooks/x", "application/json", `{"text":`, 400, "invalid_payload"},
		{"empty message", "POST", "/hooks/x", "application/json", `{"channel":"#c"}`, 400, "no_text"},
		{"empty form", "POST", "/hooks/x", "application/x-www-form-urlencoded", `a=b`, 400, "invalid_payload"},
		{"too large", "POST", "/hooks/x", "application/json", `{"text":"` + strings.Repeat("a", 100) + `"}`, 413, "request_too_large"},
		{"bad after", "GET", "/messages?after=x", "", "", 400, `after: \"x\" is not a non-negative message ID`},
		{"negative after", "GET", "/messages?after=-1", "", "", 400, "not a non-negative"},
		{"wrong method", "GET", "/hooks/x", "", "", 405, ""},
		{"unknown path", "POST", "/elsewhere", "application/json", `{"text":"x"}`, 404, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, tt.method, srv.URL+tt.path, tt.ctype, tt.body)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, code, body, tt.code, tt.want)
			}
		})
	}
	if got := list(t, srv.URL+"/messages"); len(got) != 0 {
		t.Errorf("rejected requests were kept: %+v", got)
	}
}

func TestMaxKeepsNewest(t *testing.T) {
	srv, _ := newServer(t, slacksink.Options{Max: 3})
	for i := 1; i <= 5; i++ {
		if code, _ := do(t, "POST", srv.URL+"/", "application/json", fmt.Sprintf(`{"text":"m%d"}`, i)); code != 200 {
			t.Fatalf("POST %d = %d", i, code)
		}
	}
	msgs := list(t, srv.URL+"/messages")
	var got []string
	for _, m := range msgs {
		got = append(got, fmt.Sprintf("%d:%s", m.ID, m.Payload.Text))
	}
	if want := "3:m3 4:m4 5:m5"; strings.Join(got, " ") != want {
		t.Errorf("kept %v, want %s", got, want)
	}
}

func TestConcurrentPosts(t *testing.T) {
	srv, _ := newServer(t, slacksink.Options{})
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := http.Post(srv.URL+"/hooks/x", "application/json", strings.NewReader(fmt.Sprintf(`{"text":"%d"}`, i)))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for _, m := range list(t, srv.URL+"/messages") {
		seen[m.ID] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct IDs, want %d", len(seen), n)
	}
}

func TestReadable(t *testing.T) {
	for in, want := range map[string]string{
		"<https://a.example/x?y=1&amp;z=2|Runbook> · <http://b>": "Runbook (https://a.example/x?y=1&z=2) · http://b",
		"a &lt;b&gt; c":  "a <b> c",
		"no links here":  "no links here",
		"<broken|link":   "<broken|link",
		"*bold* `code` ": "*bold* `code` ",
	} {
		if got := slacksink.Readable(in); got != want {
			t.Errorf("Readable(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzPost(f *testing.F) {
	f.Add([]byte(alertmanagerBody))
	f.Add([]byte(`{"text":"<a|b>"}`))
	f.Add([]byte(`{"blocks":[1]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		s := slacksink.New(slacksink.Options{Out: io.Discard})
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", "/hooks/f", bytes.NewReader(body)))
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if got := len(s.Messages(0)); (rec.Code == 200) != (got == 1) {
			t.Fatalf("status %d but %d messages kept", rec.Code, got)
		}
	})
}
