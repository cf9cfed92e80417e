//! Compiles `proto/switchyard/v1/*.proto` with `protox` (pure Rust, no
//! system `protoc`) and generates prost types and tonic services into `OUT_DIR`.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    // Read when the script runs, not when it is compiled: a compiled build
    // script can be reused for a checkout at another path sharing the target
    // directory (a worktree), which must compile its own contract.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "switchyard/v1/common.proto",
        "switchyard/v1/chat.proto",
        "switchyard/v1/embeddings.proto",
        "switchyard/v1/router.proto",
        "switchyard/v1/adapter.proto",
        "switchyard/v1/control_plane.proto",
        "switchyard/v1/ledger.proto",
        "switchyard/v1/cache.proto",
        "switchyard/v1/admin.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(files, [&root])?;
    // For server reflection: `grpcurl` lists and calls the services without
    // the .proto files.
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("switchyard_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        // Deterministic encoding: the cache key is a digest of encoded requests.
        .btree_map(".")
        .compile_fds(descriptors)?;
    Ok(())
}
