-- Users and their items. Times are Unix microseconds, UTC (PostgreSQL's
-- timestamptz precision, so both stores round-trip the same values).
-- username_key and email_key hold the lower-cased values the store compares,
-- so uniqueness is case-insensitive for any script, not only ASCII.
CREATE TABLE users (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	username      TEXT    NOT NULL,
	username_key  TEXT    NOT NULL,
	email         TEXT    NOT NULL,
	email_key     TEXT    NOT NULL,
	password_hash TEXT    NOT NULL,
	created_at    INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE UNIQUE INDEX users_email_key ON users (email_key);

CREATE TABLE items (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	owner_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name        TEXT    NOT NULL,
	description TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX items_owner_id ON items (owner_id, id);
