//! `switchyard-bench`: measures what the gateway adds to every request.
//!
//! A fast mock upstream speaking OpenAI's wire format and a closed-loop load
//! generator run in this process, pinned to the first core; the gateway under
//! test runs as separate `switchyard` processes pinned to the second core
//! (when the machine has two or more). Each scenario is measured against the
//! mock directly (the baseline) and through the gateway; "added" is gateway
//! minus baseline at the same percentile. With `--baseline`, a second
//! gateway binary is measured in the same run, scenario by scenario.
//!
//! Its own crate so that the production binary links neither the mock
//! upstream nor the load generator. One command runs it:
//! `cargo run --release -p switchyard-bench -- --seconds 5`.

mod gateway;
mod load;
mod report;
mod scenarios;
mod stats;
mod system;
mod upstream;

use anyhow::Context;
use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = scenarios::BenchArgs::parse();
    // Pinned before any thread starts, so every thread inherits it.
    let cores = scenarios::pin_load_generator();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(scenarios::run(args, cores))
}
