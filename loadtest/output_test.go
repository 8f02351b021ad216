package loadtest

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzJSONString checks the hand-written JSON string encoder of the JSON
// lines output against encoding/json: the result always parses, and to the
// input when the input is valid UTF-8.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "tab\tnewline\n\x00\x1f", "p(95)<300 & >", "é✓ 𝄞", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, b, err)
		}
		switch {
		case utf8.ValidString(s) && got != s:
			t.Fatalf("%q round-trips to %q", s, got)
		case !utf8.ValidString(s) && got != strings.ToValidUTF8(s, "\ufffd") && !utf8.ValidString(got):
			t.Fatalf("%q decodes to invalid UTF-8 %q", s, got)
		}
	})
}
