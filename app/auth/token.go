package auth

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DevelopmentKey is the JWT key used when none is configured outside
// production. Anyone can read it here, so tokens signed with it prove
// nothing; cmd refuses it when APP_ENV=production.
const DevelopmentKey = "glasshouse-INSECURE-development-jwt-key-do-not-use-in-production"

// MinKeyLen is the shortest HS256 key accepted (RFC 7518 3.2: at least the
// hash output size, 256 bits).
const MinKeyLen = 32

const (
	issuer     = "glasshouse"
	accessType = "access"
	maxToken   = 4096 // bytes; longer bearer strings are rejected unparsed
)

// Leeway is how much longer than the configured lifetime a token may claim
// to stay valid (clock skew between instances). A token whose exp lies
// further from now, or from its own iat, was not issued by this
// configuration (or a forged or leaked signing key made it): it is invalid,
// so an absurd exp such as 2^62 cannot mint a token that never expires.
const Leeway = time.Minute

// ErrInvalidToken is returned for every token that must not authenticate:
// malformed, wrong algorithm or key, expired, not yet valid, valid for longer
// than the configured lifetime plus Leeway, wrong type or subject. The cause is wrapped for logs; callers answer 401 regardless.
var ErrInvalidToken = errors.New("invalid token")

// Claims are an access token's claims: sub (user ID), iat, exp, iss and
// type "access".
type Claims struct {
	Type string `json:"type"`
	jwt.RegisteredClaims
}

// Tokens issues and verifies HS256 access tokens. It is safe for concurrent
// use.
type Tokens struct {
	key    []byte
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser
	cache  verified
}

// verified remembers tokens that passed Verify until they expire, so a
// client sending the same token on every request costs one map lookup
// instead of base64, JSON and HMAC work. Only tokens this key signed (and
// that passed every check) ever enter it; it is bounded by evicting
// arbitrary entries when full.
type verified struct {
	mu sync.RWMutex
	m  map[string]verifiedToken
}

type verifiedToken struct {
	userID int64
	exp    time.Time
}

const verifiedMax = 16384

// NewTokens returns a Tokens signing with key, tokens valid for ttl, time
// read from now (time.Now if nil). key must be at least MinKeyLen bytes.
func NewTokens(key []byte, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("jwt key is %d bytes, want at least %d", len(key), MinKeyLen)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("token lifetime %v must be positive", ttl)
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{
		key: append([]byte(nil), key...),
		ttl: ttl,
		now: now,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithIssuer(issuer),
			jwt.WithTimeFunc(now),
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// TTL returns how long issued tokens are valid.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a signed access token for userID.
func (t *Tokens) Issue(userID int64) (string, error) {
	now := t.now()
	c := Claims{
		Type: accessType,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   strconv.FormatInt(userID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// Verify returns the user ID of a valid access token, or an error wrapping
// ErrInvalidToken.
func (t *Tokens) Verify(token string) (int64, error) {
	if token == "" || len(token) > maxToken {
		return 0, fmt.Errorf("%w: length %d", ErrInvalidToken, len(token))
	}
	t.cache.mu.RLock()
	v, ok := t.cache.m[token]
	t.cache.mu.RUnlock()
	if ok && t.now().Before(v.exp) {
		return v.userID, nil
	}
	id, exp, err := t.verify(token)
	if err != nil {
		return 0, err
	}
	t.cache.mu.Lock()
	if t.cache.m == nil {
		t.cache.m = make(map[string]verifiedToken)
	}
	if len(t.cache.m) >= verifiedMax {
		for k := range t.cache.m { // map order is random: evict a few arbitrary entries
			delete(t.cache.m, k)
			if len(t.cache.m) < verifiedMax*7/8 {
				break
			}
		}
	}
	t.cache.m[token] = verifiedToken{userID: id, exp: exp}
	t.cache.mu.Unlock()
	return id, nil
}

func (t *Tokens) verify(token string) (int64, time.Time, error) {
	var c Claims
	_, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.key, nil })
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	exp := c.ExpiresAt.Time
	if limit := t.ttl + Leeway; exp.Sub(t.now()) > limit || (c.IssuedAt != nil && exp.Sub(c.IssuedAt.Time) > limit) {
		return 0, time.Time{}, fmt.Errorf("%w: lifetime beyond %v", ErrInvalidToken, limit)
	}
	if c.Type != accessType {
		return 0, time.Time{}, fmt.Errorf("%w: type %q", ErrInvalidToken, c.Type)
	}
	id, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || id <= 0 {
		return 0, time.Time{}, fmt.Errorf("%w: subject %q", ErrInvalidToken, c.Subject)
	}
	return id, exp, nil
}
