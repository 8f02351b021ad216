-- Users and their items. username_key and email_key hold the lower-cased
-- values (Go's strings.ToLower, as the SQLite store does), so uniqueness is
-- case-insensitive for any script and both stores agree on what collides.
CREATE TABLE users (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	username      text        NOT NULL,
	username_key  text        NOT NULL,
	email         text        NOT NULL,
	email_key     text        NOT NULL,
	password_hash text        NOT NULL,
	created_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE UNIQUE INDEX users_email_key ON users (email_key);

CREATE TABLE items (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	owner_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name        text        NOT NULL,
	description text        NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);
-- Serves "WHERE owner_id = $1 ORDER BY id" (list pages and counts) and the
-- owner check of single-item reads.
CREATE INDEX items_owner_id ON items (owner_id, id);
