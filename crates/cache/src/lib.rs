//! The response cache: exact match, in memory or in Redis.
