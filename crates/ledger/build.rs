//! Rebuilds the crate when a SQLite migration is added or changed:
//! `sqlx::migrate!` embeds `schema/sqlite/` but cannot tell Cargo to watch it.

fn main() {
    println!("cargo:rerun-if-changed=schema/sqlite");
}
