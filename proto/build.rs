//! Compiles every `.proto` under `proto/` with the pure-Rust `protox` parser (no system
//! `protoc` needed) and writes the encoded descriptor set that server reflection serves.

use prost::Message;

const PROTO_FILES: &[&str] = &[
    "proto/directory.proto",
    "proto/dispatcher.proto",
    "proto/scraper.proto",
    "proto/archiver.proto",
    "proto/telemetry.proto",
];

fn main() -> anyhow::Result<()> {
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(PROTO_FILES, ["proto"])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("owlmesh_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .compile_fds(descriptors)?;
    Ok(())
}
