package app

import (
	"context"
	"fmt"
)

// MaxBulkItems is how many items one bulk request may carry. It bounds the
// work and the answer of one request (the OpenAPI document repeats it).
const MaxBulkItems = 100

// BulkStore is implemented by stores that can create many items in one
// transaction (sqlite and postgres do). It is optional: CreateItems falls
// back to one CreateItem per item for a store without it.
type BulkStore interface {
	// CreateItems inserts items (each with OwnerID set) in one transaction
	// and sets their ID, CreatedAt and UpdatedAt, in order. On error
	// nothing is committed and the items are left unchanged. An OwnerID
	// that names no user wraps ErrUnknownOwner.
	CreateItems(ctx context.Context, items []*Item) error
}

// CreateItems creates items in s: in one transaction with s's CreateItems
// when s implements BulkStore, otherwise one CreateItem after another,
// stopping at the first error. Either way, after an error exactly the
// items with a non-zero ID were created. The items' IDs must be zero on
// entry.
func CreateItems(ctx context.Context, s Store, items []*Item) error {
	if len(items) == 0 {
		return nil
	}
	if b, ok := s.(BulkStore); ok {
		return b.CreateItems(ctx, items)
	}
	for i, it := range items {
		if err := s.CreateItem(ctx, it); err != nil {
			return fmt.Errorf("create item %d of %d: %w", i+1, len(items), err)
		}
	}
	return nil
}
