package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/glasshouse-dev/glasshouse/app/auth"
)

// cheap keeps unit tests fast; TestOWASPParams checks the production values.
var cheap = auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	h := auth.NewHasher(cheap, 0)
	ctx := t.Context()
	enc, err := h.Hash(ctx, "Passw0rd!")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q is not a PHC argon2id string with the configured parameters", enc)
	}
	if strings.Contains(enc, "Passw0rd!") {
		t.Fatal("hash contains the password")
	}
	enc2, _ := h.Hash(ctx, "Passw0rd!")
	if enc == enc2 {
		t.Error("two hashes of one password are equal: salt not random")
	}
	for pw, want := range map[string]bool{"Passw0rd!": true, "passw0rd!": false, "": false, "Passw0rd!!": false} {
		ok, err := h.Verify(ctx, pw, enc)
		if err != nil || ok != want {
			t.Errorf("Verify(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	// A hash made with other parameters still verifies (parameters are read
	// from the string).
	other := auth.NewHasher(auth.Params{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, 1)
	if ok, err := other.Verify(ctx, "Passw0rd!", enc); !ok || err != nil {
		t.Errorf("Verify with different current params = %v, %v", ok, err)
	}
}

func TestVerifyUnknownUserIsFalse(t *testing.T) {
	h := auth.NewHasher(cheap, 0)
	ok, err := h.Verify(t.Context(), "anything", "")
	if ok || err != nil {
		t.Errorf("Verify against the dummy hash = %v, %v; want false, nil", ok, err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := auth.NewHasher(cheap, 0)
	for _, enc := range []string{
		"plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!!$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$",
	} {
		if ok, err := h.Verify(t.Context(), "x", enc); ok || !errors.Is(err, auth.ErrMalformedHash) {
			t.Errorf("Verify(%q) = %v, %v; want false, ErrMalformedHash", enc, ok, err)
		}
	}
}

func TestOWASPParams(t *testing.T) {
	if auth.OWASP.Memory != 19456 || auth.OWASP.Time != 2 || auth.OWASP.Threads != 1 {
		t.Fatalf("OWASP = %+v; the cheat sheet says m=19456 KiB, t=2, p=1", auth.OWASP)
	}
	if testing.Short() {
		t.Skip("one real-cost hash")
	}
	h := auth.NewHasher(auth.OWASP, 1)
	enc, err := h.Hash(t.Context(), "Passw0rd!")
	if err != nil || !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("Hash = %q, %v", enc, err)
	}
}

func TestHashHonoursContext(t *testing.T) {
	h := auth.NewHasher(cheap, 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.Hash(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := h.Verify(ctx, "x", ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := h.Hash(t.Context(), "z"); err != nil {
		t.Errorf("Hash with a live context: %v", err)
	}
}

var key = []byte("0123456789abcdef0123456789abcdef")

func TestTokensRoundTrip(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	tk, err := auth.NewTokens(key, 15*time.Minute, clock)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tk.Issue(42)
	if err != nil {
		t.Fatal(err)
	}
	id, err := tk.Verify(s)
	if err != nil || id != 42 {
		t.Fatalf("Verify = %d, %v; want 42", id, err)
	}
	var c auth.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(s, &c); err != nil {
		t.Fatal(err)
	}
	if c.Type != "access" || c.Subject != "42" || !c.IssuedAt.Equal(now) || !c.ExpiresAt.Equal(now.Add(15*time.Minute)) {
		t.Errorf("claims = %+v", c)
	}
	// Verified tokens are remembered; a cached one still expires on time.
	if id, err := tk.Verify(s); err != nil || id != 42 {
		t.Errorf("second Verify = %d, %v", id, err)
	}
	now = now.Add(15*time.Minute - time.Second)
	if _, err := tk.Verify(s); err != nil {
		t.Errorf("Verify a second before expiry: %v", err)
	}
	now = now.Add(2 * time.Second)
	if _, err := tk.Verify(s); !errors.Is(err, auth.ErrInvalidToken) || !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("Verify after expiry = %v, want ErrInvalidToken wrapping ErrTokenExpired", err)
	}
}

func TestNewTokensRejectsShortKey(t *testing.T) {
	if _, err := auth.NewTokens([]byte("short"), time.Minute, nil); err == nil {
		t.Error("NewTokens accepted a 5-byte key")
	}
	if _, err := auth.NewTokens(key, 0, nil); err == nil {
		t.Error("NewTokens accepted a zero lifetime")
	}
}

func sign(t *testing.T, m jwt.SigningMethod, k any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyRejects(t *testing.T) {
	tk, _ := auth.NewTokens(key, time.Hour, nil)
	now := time.Now()
	good := func() auth.Claims {
		return auth.Claims{Type: "access", RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "glasshouse", Subject: "7", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		}}
	}
	with := func(f func(*auth.Claims)) auth.Claims { c := good(); f(&c); return c }
	if _, err := tk.Verify(sign(t, jwt.SigningMethodHS256, key, good())); err != nil {
		t.Fatalf("control token rejected: %v", err)
	}
	// Within the leeway: a token from an instance whose clock runs ahead.
	skewed := with(func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(time.Hour + 30*time.Second)) })
	if _, err := tk.Verify(sign(t, jwt.SigningMethodHS256, key, skewed)); err != nil {
		t.Errorf("token 30 s beyond the lifetime (inside the leeway) rejected: %v", err)
	}
	cases := map[string]string{
		"empty":        "",
		"garbage":      "not.a.jwt",
		"two parts":    "abc.def",
		"huge":         strings.Repeat("a", 5000),
		"alg none":     sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good()),
		"wrong key":    sign(t, jwt.SigningMethodHS256, []byte("another-key-another-key-another-key!"), good()),
		"HS512":        sign(t, jwt.SigningMethodHS512, key, good()),
		"expired":      sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute)) })),
		"no exp":       sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) { c.ExpiresAt = nil })),
		"future iat":   sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) })),
		"refresh type": sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) { c.Type = "refresh" })),
		"no type":      sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) { c.Type = "" })),
		"other issuer": sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) { c.Issuer = "evil" })),
		"sub text":     sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) { c.Subject = "admin" })),
		"sub zero":     sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) { c.Subject = "0" })),
		"sub negative": sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) { c.Subject = "-1" })),
		"tampered":     sign(t, jwt.SigningMethodHS256, key, good()) + "x",
		"exp 2^62":     sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) { c.ExpiresAt = &jwt.NumericDate{Time: time.Unix(1<<62, 0)} })),
		"exp 2^62 no iat": sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) {
			c.IssuedAt, c.ExpiresAt = nil, &jwt.NumericDate{Time: time.Unix(1<<62, 0)}
		})),
		"lifetime ttl+2m": sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(time.Hour + 2*time.Minute)) })),
		"old iat, lifetime 2h": sign(t, jwt.SigningMethodHS256, key, with(func(c *auth.Claims) {
			c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(now.Add(-90*time.Minute)), jwt.NewNumericDate(now.Add(30*time.Minute))
		})),
	}
	for name, tok := range cases {
		if id, err := tk.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: Verify = %d, %v; want ErrInvalidToken", name, id, err)
		}
	}
}
