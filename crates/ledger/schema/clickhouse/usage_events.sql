-- Usage events, one row per request. Same columns as schema/sqlite/.
-- Must stay within what ClickHouse 18.16 (Debian 12) accepts and still work on
-- current releases: no DateTime64, no Nullable. ReplacingMergeTree collapses
-- re-sent events (same created_at and event_id) at merge time; read with FINAL
-- or count(DISTINCT event_id) for exact numbers.
-- `{database}` is replaced by the validated database name. Columns added after
-- the first release are also listed in `ADDED_COLUMNS` (src/sink/clickhouse.rs),
-- which adds them to older tables (18.16 has no ADD COLUMN IF NOT EXISTS).
CREATE TABLE IF NOT EXISTS `{database}`.usage_events (
    event_id String,
    request_id String,
    key_id String,
    team_id String,
    end_user String,
    model String,
    provider String,
    upstream_model String,
    prompt_tokens UInt32,
    completion_tokens UInt32,
    total_tokens UInt32,
    cached_prompt_tokens UInt32,
    reasoning_tokens UInt32,
    cache_write_tokens UInt32,
    cost_nanos Int64,
    currency String,
    cache_hit UInt8,
    stream UInt8,
    error_class String,
    latency_ms UInt64,
    ttft_ms UInt64,
    created_at DateTime,
    created_at_ms UInt64,
    route_id String,
    deployment_id String,
    snapshot_version UInt64,
    tags String,
    attempts String,
    user_id String,
    operation String,
    decision String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(created_at)
ORDER BY (created_at, event_id)
