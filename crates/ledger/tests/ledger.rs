//! Integration tests of the ledger against real SQLite files and a real
//! ClickHouse server (`SWITCHYARD_TEST_CLICKHOUSE_URL`, default
//! `http://127.0.0.1:8123`). Every scenario runs against both sinks.

mod ledger {
    pub mod backend;
    pub mod clickhouse;
    pub mod scenarios;
    pub mod sqlite;
}
