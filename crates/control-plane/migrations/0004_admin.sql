-- The admin API's tables: who may call it, and what every caller did.

-- Admin tokens besides the bootstrap token of the config file. Only the
-- SHA-256 of a token is stored; `hint` is its prefix and last four characters.
CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    -- 'admin', 'operator' or 'viewer'.
    role TEXT NOT NULL,
    hint TEXT NOT NULL,
    -- Unix seconds.
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);

-- One row per admin action on one object (an apply writes one per object it
-- changes). Written in the transaction that makes the change.
CREATE TABLE audit_log (
    sequence BIGINT PRIMARY KEY,
    -- Unix milliseconds.
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    -- 0 when the object did not exist before, or does not after.
    before_revision BIGINT NOT NULL,
    after_revision BIGINT NOT NULL,
    -- The config version the action produced; 0 when it changed none.
    version BIGINT NOT NULL,
    -- The object before and after as JSON, key hashes left out; empty when absent.
    before_body TEXT NOT NULL,
    after_body TEXT NOT NULL
);
