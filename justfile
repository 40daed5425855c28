# pyeval tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments := true

guest := env("CARGO_TARGET_DIR", justfile_directory() / "guest-adapter/target") / "wasm32-wasip1/release/pyeval_guest.wasm"

# Build CPython 3.13 for wasm32-wasip1 from pinned sources (cached outside the tree).
build-cpython:
    python3 tools/cpython.py

# Build target/pyeval.wasm: the guest module, pre-initialized and componentized.
build-component: build-cpython
    cd guest-adapter && cargo build --release --quiet
    cargo run --quiet -p pyeval-componentize -- "{{guest}}" target/cpython/stdlib target/pyeval.wasm

# Run pyeval with python's arguments, e.g. `just run -c "print('hello')"`.
run *args: build-component
    cargo run --quiet -p pyeval -- "$@"

# Lints and every test.
test: build-component
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace

# Measure latency and throughput; prints a table and writes bench/results.json.
bench: build-component
    cargo build --release --quiet -p pyeval -p pyeval-bench
    cargo run --release --quiet -p pyeval-bench -- bench/results.json
