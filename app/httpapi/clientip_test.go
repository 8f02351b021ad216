package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
)

func TestClientOf(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.168.1.7 ,fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	ps := trusted
	for _, tc := range []struct {
		name, remote string
		xff          []string
		realIP       string
		want         string // "" means the TCP peer
	}{
		{name: "untrusted peer ignores headers", remote: "203.0.113.5:1", xff: []string{"198.51.100.1"}, realIP: "198.51.100.2"},
		{name: "trusted peer, one hop", remote: "10.1.2.3:1", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "forged left entries skipped", remote: "10.1.2.3:1", xff: []string{"1.1.1.1, 2.2.2.2, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "trusted hops skipped", remote: "10.1.2.3:1", xff: []string{"6.6.6.6, 198.51.100.1, 10.9.9.9, 192.168.1.7"}, want: "198.51.100.1"},
		{name: "several header lines", remote: "10.1.2.3:1", xff: []string{"6.6.6.6", "198.51.100.1, 10.0.0.2"}, want: "198.51.100.1"},
		{name: "all trusted: left-most", remote: "10.1.2.3:1", xff: []string{"10.0.0.9, 10.0.0.2"}, want: "10.0.0.9"},
		{name: "garbage stops the walk", remote: "10.1.2.3:1", xff: []string{"6.6.6.6, nonsense, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "garbage first: X-Real-IP", remote: "10.1.2.3:1", xff: []string{"nonsense"}, realIP: "198.51.100.3", want: "198.51.100.3"},
		{name: "X-Real-IP without X-Forwarded-For", remote: "10.1.2.3:1", realIP: "198.51.100.3", want: "198.51.100.3"},
		{name: "no headers", remote: "10.1.2.3:1"},
		{name: "entry with port", remote: "10.1.2.3:1", xff: []string{"198.51.100.1:5555"}, want: "198.51.100.1"},
		{name: "ipv6 peer and entry", remote: "[fd00::1]:1", xff: []string{"[2001:db8::7]"}, want: "2001:db8::7"},
		{name: "mapped ipv4 peer", remote: "[::ffff:10.0.0.1]:1", xff: []string{"::ffff:198.51.100.1"}, want: "198.51.100.1"},
		{name: "unix socket peer", remote: "@", xff: []string{"198.51.100.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tc.realIP != "" {
				r.Header.Set("X-Real-IP", tc.realIP)
			}
			got, ok := ps.clientOf(r)
			if tc.want == "" {
				if ok {
					t.Errorf("clientOf = %q, want the TCP peer", got)
				}
				return
			}
			if got != tc.want {
				t.Errorf("clientOf = %q (%v), want %q", got, ok, tc.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	ps, err := ParseTrustedProxies(" 10.0.0.0/8,127.0.0.1,, ::1 , 172.16.5.4/12, unix")
	if err != nil {
		t.Fatal(err)
	}
	if !ps.Unix {
		t.Error("unix not parsed")
	}
	got := ps.Prefixes
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("172.16.0.0/12")}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("prefix %d = %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted", bad)
		}
	}
}

// TestTrustedProxyOverHTTP drives the real chain over a real listener
// (the peer is 127.0.0.1): behind a trusted proxy, two clients named by
// X-Forwarded-For get separate rate-limit buckets and are logged as
// themselves; from an untrusted peer the header is ignored, so forging
// it cannot buy a fresh bucket.
func TestTrustedProxyOverHTTP(t *testing.T) {
	for _, tc := range []struct {
		name      string
		trusted   string
		wantCodes []int // for clients a, b, a
		wantIPs   []string
	}{
		{name: "trusted", trusted: "127.0.0.0/8", wantCodes: []int{200, 200, 429},
			wantIPs: []string{"203.0.113.1", "203.0.113.2", "203.0.113.1"}},
		{name: "untrusted", trusted: "10.0.0.0/8", wantCodes: []int{200, 429, 429},
			wantIPs: []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}},
		{name: "none", trusted: "", wantCodes: []int{200, 429, 429},
			wantIPs: []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefixes, err := ParseTrustedProxies(tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, func(o *Options) {
				o.TrustedProxies = prefixes
				o.Limits.Anonymous = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 1}
			})
			srv := httptest.NewServer(f.h)
			t.Cleanup(srv.Close)
			for i, client := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.1"} {
				r, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/openapi.json", nil)
				// The left entry is what a client could forge; the proxy
				// appends the address it saw.
				r.Header.Set("X-Forwarded-For", "198.51.100.66, "+client)
				resp, err := srv.Client().Do(r)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.wantCodes[i] {
					t.Errorf("request %d from %s: status %d, want %d", i, client, resp.StatusCode, tc.wantCodes[i])
				}
			}
			// The access record is written when the handler returns,
			// which may be after the client has read a body of known
			// length.
			var got []string
			for deadline := time.Now().Add(10 * time.Second); len(got) < 3 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				got = accessClientIPs(f.logs.String())
			}
			slices.Sort(got)
			slices.Sort(tc.wantIPs)
			if !slices.Equal(got, tc.wantIPs) {
				t.Errorf("access log client_ip = %q, want %q\n%s", got, tc.wantIPs, f.logs)
			}
		})
	}
}

// accessClientIPs lists the client_ip of every access record in logs.
func accessClientIPs(logs string) []string {
	var got []string
	for line := range strings.Lines(logs) {
		var rec struct {
			Msg      string `json:"msg"`
			ClientIP string `json:"client_ip"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "http request" {
			got = append(got, rec.ClientIP)
		}
	}
	return got
}
