//! Finding the `switchyard` binary to measure.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

/// The binary named by `--gateway`, or else the `switchyard` next to this
/// executable. Under `cargo run` (which sets `CARGO`) that one is built
/// first, with this executable's profile, so the measured gateway is never
/// stale.
pub fn binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--gateway {}: no such file", path.display());
        }
        return Ok(path.to_owned());
    }
    let this = std::env::current_exe().context("locating this executable")?;
    let directory = this.parent().context("this executable's directory")?;
    let gateway = directory.join("switchyard");
    if let Ok(cargo) = std::env::var("CARGO") {
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "switchyard", "--bin", "switchyard"]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build.status().context("running cargo build")?;
        if !status.success() {
            bail!("building the gateway failed");
        }
    }
    if !gateway.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release`, or run the benchmark with `cargo run --release -p switchyard-bench`",
            gateway.display()
        );
    }
    Ok(gateway)
}
