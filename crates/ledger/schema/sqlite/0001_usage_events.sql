-- Usage events, one row per request, idempotent by event_id.
-- Same columns as schema/clickhouse/usage_events.sql.
CREATE TABLE IF NOT EXISTS usage_events (
    event_id             TEXT    NOT NULL PRIMARY KEY,
    request_id           TEXT    NOT NULL,
    key_id               TEXT    NOT NULL,
    team_id              TEXT    NOT NULL,
    end_user             TEXT    NOT NULL,
    model                TEXT    NOT NULL,
    provider             TEXT    NOT NULL,
    upstream_model       TEXT    NOT NULL,
    prompt_tokens        INTEGER NOT NULL,
    completion_tokens    INTEGER NOT NULL,
    total_tokens         INTEGER NOT NULL,
    cached_prompt_tokens INTEGER NOT NULL,
    reasoning_tokens     INTEGER NOT NULL,
    cost_micros          INTEGER NOT NULL,
    currency             TEXT    NOT NULL,
    cache_hit            INTEGER NOT NULL,
    stream               INTEGER NOT NULL,
    error_class          TEXT    NOT NULL,
    latency_ms           INTEGER NOT NULL,
    ttft_ms              INTEGER NOT NULL,
    -- Unix epoch seconds (ClickHouse DateTime) and milliseconds.
    created_at           INTEGER NOT NULL,
    created_at_ms        INTEGER NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS usage_events_created_at ON usage_events (created_at_ms);
CREATE INDEX IF NOT EXISTS usage_events_team_created_at ON usage_events (team_id, created_at_ms);
