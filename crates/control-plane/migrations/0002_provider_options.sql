-- Provider-specific settings and further named secret references, as JSON
-- objects (`{"api_version": "2024-10-21"}`, `{"aws_secret_access_key": {"env": "…"}}`).
ALTER TABLE providers ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
ALTER TABLE providers ADD COLUMN secrets TEXT NOT NULL DEFAULT '{}';
