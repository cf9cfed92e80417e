-- Costs in nano-units (10^-9) instead of micro-units, cache-write tokens, and
-- what routing decided: route, answering deployment, snapshot version, tags
-- and every attempt (JSON). SQLite cannot change a column's meaning in
-- place, so the table is rebuilt; old costs are converted exactly.
CREATE TABLE usage_events_v2 (
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
    cache_write_tokens   INTEGER NOT NULL,
    cost_nanos           INTEGER NOT NULL,
    currency             TEXT    NOT NULL,
    cache_hit            INTEGER NOT NULL,
    stream               INTEGER NOT NULL,
    error_class          TEXT    NOT NULL,
    latency_ms           INTEGER NOT NULL,
    ttft_ms              INTEGER NOT NULL,
    -- Unix epoch seconds (ClickHouse DateTime) and milliseconds.
    created_at           INTEGER NOT NULL,
    created_at_ms        INTEGER NOT NULL,
    route_id             TEXT    NOT NULL,
    deployment_id        TEXT    NOT NULL,
    snapshot_version     INTEGER NOT NULL,
    -- JSON object of the request's tags.
    tags                 TEXT    NOT NULL,
    -- JSON array: one object per attempt.
    attempts             TEXT    NOT NULL,
    user_id              TEXT    NOT NULL,
    operation            TEXT    NOT NULL
) STRICT;

INSERT INTO usage_events_v2
SELECT event_id, request_id, key_id, team_id, end_user, model, provider, upstream_model,
       prompt_tokens, completion_tokens, total_tokens, cached_prompt_tokens, reasoning_tokens,
       0, cost_micros * 1000, currency, cache_hit, stream, error_class, latency_ms, ttft_ms,
       created_at, created_at_ms, model, '', 0, '{}', '[]', '', 'chat'
FROM usage_events;

DROP TABLE usage_events;
ALTER TABLE usage_events_v2 RENAME TO usage_events;

CREATE INDEX IF NOT EXISTS usage_events_created_at ON usage_events (created_at_ms);
CREATE INDEX IF NOT EXISTS usage_events_team_created_at ON usage_events (team_id, created_at_ms);
