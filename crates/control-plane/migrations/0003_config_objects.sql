-- Every configuration object in one table: providers, deployments, routes,
-- keys, teams, users, budgets and rate limits. The body is the object's
-- protobuf encoding (base64), so fields added to the contract need no schema
-- change. Objects declared in the config file are owned by `file`; objects
-- created through the admin API by `api`, and the file never touches them.
-- The tables this replaces held only file-owned objects, which the next
-- start writes again from the file.
DROP TABLE api_keys;
DROP TABLE models;
DROP TABLE providers;

CREATE TABLE config_objects (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    -- 'file' or 'api'.
    owner TEXT NOT NULL,
    -- Starts at 1; bumped with every change of the object.
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
