-- Sunset shifts the control plane made: from the sunset of a deployment
-- with a successor, its traffic goes to the successor. One row per shift,
-- written with the version it was published in and its audit row.
CREATE TABLE lifecycle_shifts (
    deployment_id TEXT PRIMARY KEY,
    successor TEXT NOT NULL,
    -- Unix milliseconds.
    shifted_at_ms BIGINT NOT NULL
);
