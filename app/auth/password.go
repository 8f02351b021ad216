// Package auth holds the API's credentials: argon2id password hashes and
// HS256 access tokens (JWT).
//
// Its imports outside the standard library are golang.org/x/crypto/argon2
// and github.com/golang-jwt/jwt/v5 (TestImports); never app's adapters or
// httpapi.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id parameters. Memory is in KiB.
type Params struct {
	Memory  uint32
	Time    uint32
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// OWASP is the OWASP Password Storage Cheat Sheet's first argon2id
// configuration: 19 MiB of memory, 2 iterations, 1 degree of parallelism.
var OWASP = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// ErrMalformedHash means a stored hash is not a PHC argon2id string.
var ErrMalformedHash = errors.New("malformed argon2id hash")

// Hasher hashes and verifies passwords. At most a few hashes run at once
// (each holds Params.Memory KiB), so a burst of logins queues instead of
// exhausting memory. It is safe for concurrent use.
type Hasher struct {
	p     Params
	slots chan struct{}
	dummy string // a hash of a random password, verified for unknown users
}

// NewHasher returns a Hasher using p, running at most concurrency hashes at
// once (<= 0 means 2*GOMAXPROCS).
func NewHasher(p Params, concurrency int) *Hasher {
	if concurrency <= 0 {
		concurrency = 2 * runtime.GOMAXPROCS(0)
	}
	h := &Hasher{p: p, slots: make(chan struct{}, concurrency)}
	var pw [16]byte
	rand.Read(pw[:])
	h.dummy = h.hash(base64.RawStdEncoding.EncodeToString(pw[:]))
	return h
}

// Params returns the parameters new hashes use.
func (h *Hasher) Params() Params { return h.p }

func (h *Hasher) acquire(ctx context.Context) error {
	if ctx.Err() != nil { // select would pick at random between a free slot and Done
		return fmt.Errorf("wait for a hashing slot: %w", context.Cause(ctx))
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for a hashing slot: %w", context.Cause(ctx))
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns password's PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key> (unpadded base64).
// It fails only when ctx ends while waiting for a slot.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash(password), nil
}

func (h *Hasher) hash(password string) string {
	salt := make([]byte, h.p.SaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.p.Memory, h.p.Time, h.p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Verify reports whether password matches encoded, using the parameters
// stored in encoded (so hashes made with older parameters keep working).
// An encoded of "" verifies against a dummy hash and returns false: call it
// for unknown users so they take as long as wrong passwords.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	dummy := encoded == ""
	if dummy {
		encoded = h.dummy
	}
	p, salt, key, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1 && !dummy, nil
}

// maxMemoryKiB bounds the memory a stored hash may ask for (1 GiB), so a
// tampered row cannot make Verify allocate without limit.
const maxMemoryKiB = 1 << 20

func decodeHash(s string) (Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Params{}, nil, nil, fmt.Errorf("%w: version %q", ErrMalformedHash, parts[2])
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory == 0 || p.Memory > maxMemoryKiB || p.Time == 0 || p.Threads == 0 {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters %q", ErrMalformedHash, parts[3])
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return Params{}, nil, nil, fmt.Errorf("%w: salt", ErrMalformedHash)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 {
		return Params{}, nil, nil, fmt.Errorf("%w: key", ErrMalformedHash)
	}
	return p, salt, key, nil
}
