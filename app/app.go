// Package app holds the glasshouse API's domain: users, items, their
// validation rules, the Store interface every storage adapter implements and
// the sentinel errors adapters translate their driver errors into.
//
// It imports only the standard library (TestImports). Adapters (sqlite, postgres,
// rediscache, ...) import app; app never imports them.
package app

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Adapters wrap driver errors into these at their boundary;
// httpapi maps them to status codes in one table.
var (
	// ErrNotFound means the record does not exist or is not visible to the
	// caller (another user's item is "not found", never "forbidden").
	ErrNotFound = errors.New("not found")
	// ErrConflict means a uniqueness constraint failed (username or email taken).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable means a dependency (database, cache) cannot be reached
	// right now; handlers answer 503 quickly instead of hanging.
	ErrUnavailable = errors.New("dependency unavailable")
	// ErrUnknownOwner means a write names an owner that does not exist: the
	// user was deleted after its still-valid access token was issued.
	// httpapi answers 401 invalid_token, as for any token that no longer
	// names a user.
	ErrUnknownOwner = errors.New("owner does not exist")
	// ErrIdempotencyKeyReused means an idempotency key already names a
	// different request of the same owner; httpapi answers 422.
	ErrIdempotencyKeyReused = errors.New("idempotency key reused with a different request")
)

// IdempotencyWindow is how long a store remembers an idempotency key: a
// retry within it returns the first result, a later one creates anew.
const IdempotencyWindow = 24 * time.Hour

// IdempotencyKey makes an item creation happen at most once per key.
type IdempotencyKey struct {
	// Key is the client's Idempotency-Key; keys are per owner.
	Key string
	// Fingerprint is a digest of the request's content. The same Key with
	// another Fingerprint is ErrIdempotencyKeyReused.
	Fingerprint string
}

// IdempotentStore is implemented by stores that can create an item at most
// once per idempotency key (sqlite and postgres do). It is optional: a
// decorator that does not forward it hides it.
type IdempotentStore interface {
	// CreateItemOnce creates it as CreateItem does and records key for
	// it.OwnerID in the same transaction, so a retry after a lost answer
	// finds the key whenever the item was committed. If the owner used
	// key.Key within IdempotencyWindow nothing is created: with the same
	// Fingerprint, it is set to the item as it was first created and
	// replayed is true; with another, the error wraps
	// ErrIdempotencyKeyReused. Concurrent calls with one key create one
	// item. An OwnerID that names no user wraps ErrUnknownOwner.
	CreateItemOnce(ctx context.Context, it *Item, key IdempotencyKey) (replayed bool, err error)
}

// User is a registered account. PasswordHash is never serialised.
type User struct {
	ID           int64     `json:"id"`
	Username     string    `json:"username"`
	Email        string    `json:"email"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}

// Item is a record owned by exactly one user.
type Item struct {
	ID          int64     `json:"id"`
	OwnerID     int64     `json:"owner_id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Page selects a window of a list ordered by ascending ID (a stable order).
// Limit is already clamped by the caller to 1..MaxPageLimit.
type Page struct {
	Limit  int
	Offset int
}

// Page size bounds for list endpoints.
const (
	DefaultPageLimit = 20
	MaxPageLimit     = 100
)

// Store is the persistence contract. Every implementation (sqlite, postgres,
// and decorators such as rediscache) passes the app/storetest suite.
//
// All methods are safe for concurrent use. Methods return ErrNotFound,
// ErrConflict or ErrUnavailable (possibly wrapped) for those conditions.
type Store interface {
	// CreateUser inserts u and sets its ID and CreatedAt. A taken username or
	// email (case-insensitive) returns an error wrapping ErrConflict.
	CreateUser(ctx context.Context, u *User) error
	// UserByID returns the user with that ID or ErrNotFound.
	UserByID(ctx context.Context, id int64) (User, error)
	// UserByUsername returns the user with that username (case-insensitive)
	// or ErrNotFound.
	UserByUsername(ctx context.Context, username string) (User, error)

	// CreateItem inserts it (OwnerID must be set) and sets ID, CreatedAt and
	// UpdatedAt. An OwnerID that names no user returns an error wrapping
	// ErrUnknownOwner.
	CreateItem(ctx context.Context, it *Item) error
	// Item returns the item id if ownerID owns it, otherwise ErrNotFound.
	Item(ctx context.Context, ownerID, id int64) (Item, error)
	// ListItems returns ownerID's items ordered by ascending ID within p, and
	// the owner's total item count.
	ListItems(ctx context.Context, ownerID int64, p Page) ([]Item, int, error)
	// UpdateItem replaces Name and Description of the item it.ID owned by
	// it.OwnerID, sets UpdatedAt (and fills the other fields), or returns
	// ErrNotFound.
	UpdateItem(ctx context.Context, it *Item) error
	// DeleteItem deletes the item id owned by ownerID or returns ErrNotFound.
	DeleteItem(ctx context.Context, ownerID, id int64) error

	// Ping checks the store can serve queries; used by /health/ready.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// Check is one named dependency check run by /health/ready and
// /health/detailed. Check must honour ctx's deadline.
//
// A failing required check makes /health/ready answer 503 naming it. An
// Optional check (for example Redis, whose outage only degrades the service)
// never fails readiness; /health/detailed reports it as "unhealthy: <reason>"
// and the service as "degraded".
type Check struct {
	Name     string
	Optional bool
	Check    func(ctx context.Context) error
}
