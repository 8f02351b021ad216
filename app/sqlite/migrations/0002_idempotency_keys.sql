-- Idempotency keys of POST /api/v1/items: per owner, remembered for 24 h
-- (older rows are ignored and deleted as the owner creates more). The row
-- keeps the item as first created, so a retry gets the same answer even
-- after the item changed or was deleted.
CREATE TABLE idempotency_keys (
	owner_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	key         TEXT    NOT NULL,
	fingerprint TEXT    NOT NULL,
	item_id     INTEGER NOT NULL,
	name        TEXT    NOT NULL,
	description TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	PRIMARY KEY (owner_id, key)
) STRICT;
