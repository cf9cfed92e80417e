-- Config state of the control plane. The same SQL runs on SQLite and
-- PostgreSQL through sqlx's Any driver, so it uses only TEXT and BIGINT
-- (the Any driver cannot read SQLite booleans: flags are 0/1).

-- One row: the version of the stored config, bumped with every change.
CREATE TABLE config_version (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);

INSERT INTO config_version (id, version) VALUES (1, 0);

CREATE TABLE providers (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    -- Empty when the adapter's default applies.
    base_url TEXT NOT NULL,
    -- At most one of these is set: where the adapters find the API key.
    api_key_env TEXT,
    api_key_file TEXT,
    -- 0 when the adapter's default applies.
    timeout_ms BIGINT NOT NULL
);

CREATE TABLE models (
    name TEXT PRIMARY KEY,
    -- JSON array of {"provider": …, "model": …}, in order of preference.
    targets TEXT NOT NULL,
    -- 0 disables caching.
    cache_ttl_ms BIGINT NOT NULL,
    -- All three are set or none: micro-units per million tokens.
    price_currency TEXT,
    input_price_micros BIGINT,
    output_price_micros BIGINT,
    owned_by TEXT NOT NULL
);

-- Only the SHA-256 of a key's secret is ever stored.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    team_id TEXT NOT NULL,
    -- JSON array of model names; empty means all.
    allowed_models TEXT NOT NULL,
    disabled BIGINT NOT NULL
);
