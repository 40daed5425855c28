//! Where the evaluator component (`target/pyeval.wasm`, from `just build-component`) comes
//! from at run time.
//!
//! Release builds embed it, with its SHA-256 (which keys the compiled-code cache without
//! hashing the component at every start) and its compiled form `target/pyeval.cwasm` when
//! the build made one for it: the binary is all a user needs. Other builds (debug, tests)
//! read the same files when the first evaluator is made, so the Rust build does not wait for
//! the component and no test binary carries its own copy; `PYEVAL_EMBED_COMPONENT=1`
//! embeds in those too.

use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pyeval_embedded)");
    println!("cargo:rerun-if-env-changed=PYEVAL_COMPONENT");
    println!("cargo:rerun-if-env-changed=PYEVAL_EMBED_COMPONENT");
    // A path relative to the package: a checkout made after the last run (a fresh clone
    // building into a shared target directory) runs this again, so the path printed below
    // is its own, not the earlier checkout's.
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let component = std::env::var_os("PYEVAL_COMPONENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../target/pyeval.wasm"));
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let embed = release || std::env::var_os("PYEVAL_EMBED_COMPONENT").is_some_and(|v| v == "1");
    if !embed {
        // An absolute path, so binaries run from any directory find it.
        let component = std::path::absolute(&component).unwrap();
        println!(
            "cargo:rustc-env=PYEVAL_COMPONENT_PATH={}",
            component.display()
        );
        return;
    }
    println!("cargo:rustc-cfg=pyeval_embedded");
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

    // The compiled form and, beside it, the SHA-256 of the component it was compiled from
    // on its first line (both written by pyeval-componentize). A stale or missing one
    // embeds nothing, and the library compiles at run time instead.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let compiled = component.with_extension("cwasm");
    let compiled_from = component.with_extension("cwasm.source");
    println!("cargo:rerun-if-changed={}", compiled.display());
    println!("cargo:rerun-if-changed={}", compiled_from.display());
    let fresh = std::fs::read_to_string(&compiled_from)
        .is_ok_and(|s| s.lines().next() == Some(digest.as_str()));
    let embedded = if fresh && compiled.is_file() {
        compiled
    } else {
        println!(
            "cargo:warning=no compiled form of {} (run `just build-component`): the first run \
             on each machine will compile it",
            component.display()
        );
        let empty = out_dir.join("no-compiled-form");
        std::fs::write(&empty, b"").unwrap();
        empty
    };
    println!(
        "cargo:rustc-env=PYEVAL_COMPILED_PATH={}",
        embedded.display()
    );
}
