# pyeval tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments := true

# Build CPython 3.13 for wasm32-wasip1 from pinned sources (cached outside the tree).
build-cpython:
    python3 tools/build_cpython.py

# Run pyeval with python's arguments, e.g. `just run -c "print('hello')"`.
run *args: build-cpython
    cargo run -q -p pyeval -- "$@"

# Lints and every test.
test: build-cpython
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace
