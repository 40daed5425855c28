# pyeval tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Build CPython 3.13 for wasm32-wasip1 from pinned sources (cached outside the tree).
build-cpython:
    python3 tools/build_cpython.py
