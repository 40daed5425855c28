#!/usr/bin/env python3
"""Check that every cargo invocation of the recipes resolves the same features.

Cargo enables a dependency's features according to the packages a command selects, so
`cargo build -p pyeval-cli` and `cargo test --workspace` could each compile wasmtime, and
everything that depends on it, with a different feature set: once per selection instead of
once per profile. `tools/workspace-hack` pins the union; this check fails, naming the package
and the features that differ, when a new dependency or feature breaks that.
"""

import subprocess
import sys

# The package selections the justfile's cargo commands use (maturin builds pyeval-python).
SELECTIONS = {
    "build-component": ["-p", "pyeval-componentize", "-p", "pyeval-cli"],
    "componentizer": ["-p", "pyeval-componentize"],
    "run": ["-p", "pyeval-cli"],
    "wasmtime CLI": ["-p", "pyeval-wasmtime"],
    "python": ["-p", "pyeval-python"],
    "test": ["--workspace", "--exclude", "pyeval-python"],
    "clippy": ["--workspace"],
}
DEV = {"test", "clippy"}


def features(name, args):
    """{package: its feature sets} as cargo resolves them for the selection (a package
    built both for build scripts and proc-macros and for the target may have two)."""
    edges = "normal,build,dev" if name in DEV else "normal,build"
    out = subprocess.run(
        ["cargo", "tree", *args, "-e", edges, "--prefix", "none", "--format", "{p}|{f}"],
        capture_output=True, text=True, check=True).stdout
    resolved = {}
    for line in out.splitlines():
        package, _, feats = line.removesuffix(" (*)").partition("|")
        if package.endswith(")") and "(/" in package:
            continue  # a workspace member: compiled for its own targets anyway
        resolved.setdefault(package, set()).add(frozenset(f for f in feats.split(",") if f))
    return resolved


def main():
    resolved = {name: features(name, args) for name, args in SELECTIONS.items()}
    differ = 0
    for package in sorted(set().union(*resolved.values())):
        seen = {name: frozenset(r[package]) for name, r in resolved.items() if package in r}
        if len(set(seen.values())) > 1:
            differ += 1
            shown = {name: sorted(sorted(f) for f in sets) for name, sets in seen.items()}
            print(f"{package}: feature sets differ: {shown}", file=sys.stderr)
    if differ:
        print(f"{differ} shared dependencies are built with different features by different "
              "recipes; add the union to tools/workspace-hack/Cargo.toml", file=sys.stderr)
        return 1
    print(f"one feature set for each of {len(set().union(*resolved.values()))} dependencies "
          f"across {len(SELECTIONS)} cargo selections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
