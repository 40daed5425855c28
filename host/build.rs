//! Embeds the evaluator component (`target/pyeval.wasm`, from `just build-component`) and
//! its SHA-256, which keys the compiled-code cache without hashing 20 MB at every start.

use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=PYEVAL_COMPONENT");
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let component = std::env::var_os("PYEVAL_COMPONENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../target/pyeval.wasm"));
    println!("cargo:rerun-if-changed={}", component.display());
    let bytes = std::fs::read(&component).unwrap_or_else(|e| {
        panic!(
            "cannot read the evaluator component {}: {e}; run `just build-component` first",
            component.display()
        )
    });
    let digest = hex::encode(Sha256::digest(&bytes));
    let component = component.canonicalize().unwrap();
    println!(
        "cargo:rustc-env=PYEVAL_COMPONENT_PATH={}",
        component.display()
    );
    println!("cargo:rustc-env=PYEVAL_COMPONENT_SHA256={digest}");
}
