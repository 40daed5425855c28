# pyeval tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments := true

target_dir := env("CARGO_TARGET_DIR", justfile_directory() / "target")
# The wasm32 crates (the guest, the example calculator) build in a directory of their own,
# so they never wait for the lock of a host build running beside them.
wasm_target := target_dir / "wasm32"
guest := wasm_target / "wasm32-wasip1/release/pyeval_guest.wasm"
guest_with_packages := wasm_target / "wasm32-wasip1/packages/pyeval_guest.wasm"
calculator := wasm_target / "wasm32-wasip1/release/pyeval_calculator.wasm"
# Where every expensive output is cached: the same rule as the library's default cache
# directory, made explicit for the tools the recipes run.
export PYEVAL_CACHE_DIR := env("PYEVAL_CACHE_DIR", env("XDG_CACHE_HOME", env("HOME") / ".cache") / "pyeval")
venv := target_dir / "python-venv"
# The debug builds of the workspace's binaries (`cargo build` puts them here).
bin := target_dir / "debug"
# Announces a step with the time of day, as `just --timestamp` prints recipe lines (for
# the steps of the recipes below that run several things at once).
step := 'step() { echo "[$(date +%T)] $*" >&2; }; step'

# Build CPython 3.13 for wasm32-wasip1 from pinned sources (cached outside the tree).
build-cpython:
    python3 tools/cpython.py

# (While CPython and the guest build, cargo builds the componentizer and the `pyeval`
# binary beside them: on two cores neither keeps both busy alone. Release builds of the
# library embed the component and its compiled form, target/pyeval.cwasm; debug builds
# read them from target/ when they start.)
# Build target/pyeval.wasm: the guest module, pre-initialized and componentized.
build-component:
    #!/usr/bin/env bash
    set -euo pipefail
    {{step}} "cargo build -p pyeval-componentize -p pyeval-cli (in the background)"
    cargo build --quiet -p pyeval-componentize -p pyeval-cli & host=$!
    trap 'kill $host 2>/dev/null || true' EXIT
    {{step}} "python3 tools/cpython.py"
    python3 tools/cpython.py
    python3 tools/tzdata.py
    {{step}} "guest-adapter: cargo build --release"
    # (The build named by its directory: cargo relinks the guest whenever target/cpython
    # points elsewhere, even to an older build, which a file's timestamp would not show.)
    (cd guest-adapter && PYEVAL_CPYTHON_DIR="$(readlink -f ../target/cpython)" CARGO_TARGET_DIR="{{wasm_target}}" cargo build --release --quiet)
    {{step}} "waiting for the host build"
    wait $host
    trap - EXIT
    {{step}} "pyeval-componentize"
    "{{bin}}/pyeval-componentize" "{{guest}}" target/cpython/stdlib target/pyeval.wasm

# (LOCK names each package, version and SHA-256, see packages/sci.toml; numpy is
# cross-compiled, the others are pure-Python wheels; all cached outside the tree.)
# Build a component with the packages of LOCK into OUT (load it with `pyeval --component`).
build-component-with LOCK OUT: build-cpython
    python3 tools/tzdata.py
    packages="$(python3 tools/packages.py "{{LOCK}}")" && cd guest-adapter && PYEVAL_CPYTHON_DIR="$(readlink -f ../target/cpython)" PYEVAL_PACKAGES_DIR="$packages" CARGO_TARGET_DIR="{{wasm_target}}" cargo build --profile packages --quiet
    cargo build --quiet -p pyeval-componentize
    "{{bin}}/pyeval-componentize" "{{guest_with_packages}}" target/cpython/stdlib "{{OUT}}" --no-precompile

# Build target/pyeval-sci.wasm: the `sci` profile (numpy, sympy, dateutil, ...).
build-sci: (build-component-with "packages/sci.toml" "target/pyeval-sci.wasm")

# Run pyeval with python's arguments, e.g. `just run -c "print('hello')"`.
run *args: build-component
    cargo run --quiet -p pyeval-cli --bin pyeval -- "$@"

# (The wasmtime CLI's `run` at our wasmtime version, built with the workspace; the Node
# example transpiled with jco; the composed calculator.)
# Prepare what the tests of other hosts need.
other-hosts: build-component
    cargo build --quiet -p pyeval-wasmtime
    cd examples/node && npm install --no-audit --no-fund --silent && npm run --silent transpile > /dev/null
    cd examples/calculator && CARGO_TARGET_DIR="{{wasm_target}}" cargo build --release --quiet
    cargo build --quiet -p pyeval-componentize
    "{{bin}}/pyeval-compose" "{{calculator}}" target/pyeval-portable.wasm target/calculator.wasm

# MCP servers for the tests to take tools from (npm, pinned by package-lock.json's hashes).
mcp-servers:
    cd tests/mcp-servers && npm ci --no-audit --no-fund --silent

# (A virtual environment in the target directory, with maturin and pytest pinned by hash;
# PROFILE is `dev` for tests, `release` for the bench.)
# Build the Python package (python/) and install it into target's python-venv.
python PROFILE="dev": build-component
    [ -x "{{venv}}/bin/python" ] || python3 -m venv "{{venv}}"
    "{{venv}}/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r python/requirements-dev.txt
    rm -rf "{{target_dir}}/wheels"
    "{{venv}}/bin/maturin" build --quiet --strip --profile "{{PROFILE}}" -m python/Cargo.toml --out "{{target_dir}}/wheels"
    "{{venv}}/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "{{target_dir}}"/wheels/pyeval-*.whl

# Lints and every test.
test: build-component build-sci other-hosts mcp-servers (python "dev")
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cd guest-adapter && cargo fmt -- --check && CARGO_TARGET_DIR="{{wasm_target}}" cargo clippy --release --quiet --target wasm32-wasip1 -- -D warnings
    # Each cargo command below and in the recipes above builds a shared dependency with the
    # same features, so none is compiled twice (tools/workspace-hack).
    python3 tools/unified_features.py
    # The library builds without what only the command line needs: no clap anywhere in its
    # tree.
    ! cargo tree -p pyeval -e normal,build --prefix none | grep -E '^clap '
    RUSTDOCFLAGS="-D warnings" cargo doc -p pyeval --no-deps --quiet
    # (The Python package's extension is built, and tested, by maturin and pytest below.)
    PYEVAL_WASMTIME="{{bin}}/wasmtime" PYEVAL_MCP_EVERYTHING="{{justfile_directory()}}/tests/mcp-servers/node_modules/.bin/mcp-server-everything" cargo test --workspace --exclude pyeval-python
    python3 tools/cpython_tests.py --pyeval "{{bin}}/pyeval" --quick
    for package in numpy pandas matplotlib; do python3 tools/package_tests.py $package --pyeval "{{bin}}/pyeval" --component target/pyeval-sci.wasm --quick; done
    # The Python package, installed, against the binary built by the tests above.
    PYEVAL_BIN="{{bin}}/pyeval" "{{venv}}/bin/pytest" -q -p no:cacheprovider python/tests

# (Lib/test of the pinned CPython source, unpacked once into the cache; `--quick` runs the
# subset `just test` runs; MODULES default to the list in tools/cpython_tests.py.)
# Run CPython's own test modules in the evaluator and on the stock python.wasm.
cpython-tests *args: build-component
    cargo build --quiet -p pyeval-cli
    python3 tools/cpython_tests.py --pyeval "{{bin}}/pyeval" "$@"

# (PACKAGE is numpy, pandas or matplotlib: its test modules listed in
# tools/package_tests.py, in the sci component and on the native wheels of the same
# versions; `--quick` runs the subset `just test` runs.)
# Run a package's own tests in the sci component and compare them with the native package.
package-tests PACKAGE *args: build-sci
    cargo build --quiet -p pyeval-cli
    python3 tools/package_tests.py "$@" --pyeval "{{bin}}/pyeval" --component target/pyeval-sci.wasm --json "target/$1-tests.json"

# (A slice of the same test runs in `just test`.)
# Fuzz the library with RUNS mutated programs under random limits, from SEED.
fuzz RUNS="100000" SEED="24301": build-component
    PYEVAL_FUZZ_RUNS={{RUNS}} PYEVAL_FUZZ_SEED={{SEED}} cargo test -p pyeval --test fuzz -- --nocapture

# Measure latency and throughput; prints a table and writes bench/results.json.
bench: build-component build-sci (python "release")
    cargo build --release --quiet -p pyeval-cli -p pyeval-bench
    # wasmtime makes an error value each time a store is dropped; a RUST_BACKTRACE set in
    # the environment would have it capture a backtrace, which is not what users run.
    # (Native numpy for the sci component's comparison: the venv package-tests prepares.)
    PYEVAL_NATIVE_NUMPY="$(python3 tools/package_tests.py --native-python)" RUST_LIB_BACKTRACE=0 cargo run --release --quiet -p pyeval-bench -- bench/results.json
    PYEVAL_PEERS_VENV="{{target_dir}}/peers-venv" RUST_LIB_BACKTRACE=0 "{{venv}}/bin/python" bench/python_bench.py bench/results.json

# (wrk from Debian's packages, installed when missing; the results also go to
# bench/results.json under "server_under_attack".)
# The HTTP server under attack: wrk's fresh evaluations alone, then while idle, slow and session-pinning clients hold it.
# pyperformance's pure-Python benchmarks in pyeval's evaluator (fuel metered and not), on
# native CPython 3.13, in eryx and in Monty: a table of times relative to native, written
# into bench/results.json under "suite" (bench/suite.py).
bench-suite: (python "release")
    PYEVAL_PEERS_VENV="{{target_dir}}/peers-venv" PYEVAL_SUITE_CACHE="{{target_dir}}/suite" RUST_LIB_BACKTRACE=0 "{{venv}}/bin/python" bench/suite.py bench/results.json

bench-attack: build-component
    command -v wrk > /dev/null || { if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq wrk; else sudo apt-get install -y -qq wrk; fi; }
    cargo build --release --quiet -p pyeval-cli
    python3 bench/attack.py --pyeval "{{target_dir}}/release/pyeval" --json bench/results.json

# (Clones REF into a temporary directory whose caches are all empty, cargo's registry
# included, and times `.ci/run` there, then again after a one-line change; `run` times the
# README's first command instead. About an hour for `ci`: see README, Build times.)
# Time a fresh machine's build and tests, per step: `just cold-check [ci|run] [--ref REF]`.
cold-check *args:
    python3 tools/cold_check.py "$@"
