package auth

import (
	"errors"
	"fmt"
	"strconv"
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

// ErrInvalidToken is returned for every token that must not authenticate:
// malformed, wrong algorithm or key, expired, not yet valid, wrong type or
// subject. The cause is wrapped for logs; callers answer 401 regardless.
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
}

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
	var c Claims
	_, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.key, nil })
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Type != accessType {
		return 0, fmt.Errorf("%w: type %q", ErrInvalidToken, c.Type)
	}
	id, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: subject %q", ErrInvalidToken, c.Subject)
	}
	return id, nil
}
