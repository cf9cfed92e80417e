-- The router's decision record of each request (JSON): each tier's
-- strategy, the planned order, and the deployments left out and why.
ALTER TABLE usage_events ADD COLUMN decision TEXT NOT NULL DEFAULT '';
