// Package slacksink is a stand-in for Slack's incoming webhooks: it accepts
// the POSTs Alertmanager (or anything else) would send to
// https://hooks.slack.com/services/..., answers "ok" like Slack, prints each
// message readably, and lists what it received as JSON. A user without a
// Slack workspace sees exactly what would have been posted, and tests can
// assert on it.
//
// It imports only the standard library (TestImports).
package slacksink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Payload is the part of a Slack incoming-webhook message the sink
// understands. Unknown fields are kept in Message.Raw.
type Payload struct {
	Channel     string          `json:"channel,omitempty"`
	Username    string          `json:"username,omitempty"`
	IconEmoji   string          `json:"icon_emoji,omitempty"`
	IconURL     string          `json:"icon_url,omitempty"`
	Text        string          `json:"text,omitempty"`
	Attachments []Attachment    `json:"attachments,omitempty"`
	Blocks      json.RawMessage `json:"blocks,omitempty"`
}

// Attachment is a legacy Slack attachment, which Alertmanager's Slack
// notifier uses for every message.
type Attachment struct {
	Fallback  string  `json:"fallback,omitempty"`
	Color     string  `json:"color,omitempty"`
	Pretext   string  `json:"pretext,omitempty"`
	Title     string  `json:"title,omitempty"`
	TitleLink string  `json:"title_link,omitempty"`
	Text      string  `json:"text,omitempty"`
	Footer    string  `json:"footer,omitempty"`
	Fields    []Field `json:"fields,omitempty"`
}

// Field is a short key/value shown in an attachment.
type Field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short,omitempty"`
}

// Message is one accepted webhook call.
type Message struct {
	// ID counts accepted messages from 1; GET /messages?after=ID lists newer ones.
	ID       int64     `json:"id"`
	Received time.Time `json:"received"`
	// Path is the webhook path, e.g. /hooks/T000/B000/XXXX or /services/...
	Path    string          `json:"path"`
	Payload Payload         `json:"payload"`
	Raw     json.RawMessage `json:"raw"`
}

// Text returns everything a reader would see: the message text and each
// attachment's title and text, one per line.
func (m Message) Text() string {
	var b strings.Builder
	add := func(s string) {
		if s != "" {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	}
	add(m.Payload.Text)
	for _, a := range m.Payload.Attachments {
		add(a.Pretext)
		add(a.Title)
		add(a.Text)
		for _, f := range a.Fields {
			add(f.Title + ": " + f.Value)
		}
		add(a.Footer)
	}
	return b.String()
}

// Options configures New. The zero value is usable.
type Options struct {
	// Out receives each message printed readably; nil prints nothing.
	Out io.Writer
	// Max is how many messages are kept (oldest dropped first); default 1000.
	Max int
	// MaxBody is the largest accepted request body in bytes; default 1 MiB.
	MaxBody int64
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Sink is the webhook receiver. It is an http.Handler and is safe for
// concurrent use.
type Sink struct {
	opt    Options
	mux    *http.ServeMux
	mu     sync.Mutex
	msgs   []Message
	nextID int64
	outMu  sync.Mutex
}

// New returns a Sink serving:
//
//	POST   /hooks/..., /services/..., /     accept a Slack webhook message, answer "ok"
//	GET    /messages[?after=ID]             the kept messages as a JSON array, oldest first
//	DELETE /messages                        forget every message
//	GET    /healthz                         "ok"
func New(opt Options) *Sink {
	if opt.Max <= 0 {
		opt.Max = 1000
	}
	if opt.MaxBody <= 0 {
		opt.MaxBody = 1 << 20
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Sink{opt: opt, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /hooks/", s.handlePost)
	s.mux.HandleFunc("POST /services/", s.handlePost)
	s.mux.HandleFunc("POST /{$}", s.handlePost)
	s.mux.HandleFunc("GET /messages", s.handleList)
	s.mux.HandleFunc("DELETE /messages", s.handleClear)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return s
}

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Messages returns a copy of the kept messages with ID > after, oldest first.
func (s *Sink) Messages(after int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Message{}
	for _, m := range s.msgs {
		if m.ID > after {
			out = append(out, m)
		}
	}
	return out
}

// slackError answers the way Slack does: a status and a short plain-text code.
func slackError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, code)
}

func (s *Sink) handlePost(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			slackError(w, http.StatusRequestEntityTooLarge, "request_too_large")
			return
		}
		slackError(w, http.StatusBadRequest, "invalid_payload")
		return
	}
	// Slack also accepts a form field payload=<json>.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("payload") == "" {
			slackError(w, http.StatusBadRequest, "invalid_payload")
			return
		}
		body = []byte(form.Get("payload"))
	}
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		slackError(w, http.StatusBadRequest, "invalid_payload")
		return
	}
	if p.Text == "" && len(p.Attachments) == 0 && len(p.Blocks) == 0 {
		slackError(w, http.StatusBadRequest, "no_text")
		return
	}
	s.mu.Lock()
	s.nextID++
	m := Message{ID: s.nextID, Received: s.opt.Now(), Path: r.URL.Path, Payload: p, Raw: json.RawMessage(body)}
	s.msgs = append(s.msgs, m)
	if len(s.msgs) > s.opt.Max {
		s.msgs = append([]Message(nil), s.msgs[len(s.msgs)-s.opt.Max:]...)
	}
	s.mu.Unlock()
	s.print(m)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}

func (s *Sink) handleList(w http.ResponseWriter, r *http.Request) {
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"type": "about:blank", "title": "Bad Request", "status": http.StatusBadRequest,
				"detail": fmt.Sprintf("after: %q is not a non-negative message ID", v),
			})
			return
		}
		after = n
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.Messages(after))
}

func (s *Sink) handleClear(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.msgs = nil
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// slackLink matches Slack's <url|label> and <url> markup.
var slackLink = regexp.MustCompile(`<([^<>|]+)(?:\|([^<>]+))?>`)

// Readable turns Slack markup into plain text: <url|label> becomes
// "label (url)" and the &amp; &lt; &gt; escapes are undone.
func Readable(s string) string {
	s = slackLink.ReplaceAllStringFunc(s, func(m string) string {
		sub := slackLink.FindStringSubmatch(m)
		if sub[2] == "" {
			return sub[1]
		}
		return sub[2] + " (" + sub[1] + ")"
	})
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(s)
}

func (s *Sink) print(m Message) {
	if s.opt.Out == nil {
		return
	}
	var b strings.Builder
	header := fmt.Sprintf("── #%d %s %s", m.ID, m.Received.Format("15:04:05"), m.Path)
	if m.Payload.Channel != "" {
		header += " " + m.Payload.Channel
	}
	if m.Payload.Username != "" {
		header += " (as " + m.Payload.Username + ")"
	}
	b.WriteString(header + " ──\n")
	indent := func(s string) {
		for line := range strings.SplitSeq(strings.TrimRight(Readable(s), "\n"), "\n") {
			b.WriteString("  " + line + "\n")
		}
	}
	if m.Payload.Text != "" {
		indent(m.Payload.Text)
	}
	for _, a := range m.Payload.Attachments {
		if a.Color != "" {
			b.WriteString("  [" + a.Color + "]\n")
		}
		for _, s := range []string{a.Pretext, a.Title, a.TitleLink, a.Text} {
			if s != "" {
				indent(s)
			}
		}
		for _, f := range a.Fields {
			indent(f.Title + ": " + f.Value)
		}
		if a.Footer != "" {
			indent(a.Footer)
		}
	}
	if len(m.Payload.Blocks) > 0 {
		b.WriteString("  (blocks: " + strconv.Itoa(len(m.Payload.Blocks)) + " bytes of Block Kit JSON, see GET /messages)\n")
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	_, _ = io.WriteString(s.opt.Out, b.String())
}
