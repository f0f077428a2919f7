//! Generates the prost types and their proto3 JSON mapping from `proto/`.
//!
//! The protobuf compiler is `protox` (pure Rust), so no system `protoc` is
//! needed. Generated code lands in `OUT_DIR` and is never edited by hand.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest.join("../../proto");
    let files = ["gavel/v1/common.proto", "gavel/v1/events.proto", "gavel/v1/risk.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }

    let descriptors = protox::compile(files, [&proto_root])?;
    let descriptor_bytes = descriptors.encode_to_vec();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("gavel_descriptor.bin"), &descriptor_bytes)?;

    prost_build::Config::new()
        .compile_well_known_types()
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        // Like the protobuf decoder, accept fields from newer producers.
        .ignore_unknown_fields()
        .build(&[".gavel"])?;
    Ok(())
}
