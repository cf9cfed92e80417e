//! Integration tests of the response cache against its in-memory store and a
//! real Redis (`SWITCHYARD_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
//! Every scenario runs against both stores.

mod cache {
    pub mod memory;
    pub mod redis;
    pub mod scenarios;
}
