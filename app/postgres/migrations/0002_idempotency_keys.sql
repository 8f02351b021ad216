-- Idempotency keys of POST /api/v1/items: per owner, remembered for 24 h
-- (older rows are ignored and deleted as the owner creates more). The row
-- keeps the item as first created, so a retry gets the same answer even
-- after the item changed or was deleted.
CREATE TABLE idempotency_keys (
	owner_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	key         text        NOT NULL,
	fingerprint text        NOT NULL,
	item_id     bigint      NOT NULL,
	name        text        NOT NULL,
	description text        NOT NULL,
	created_at  timestamptz NOT NULL,
	PRIMARY KEY (owner_id, key)
);
