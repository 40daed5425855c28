#!/usr/bin/env python3
"""Gather the packages a lock file names, for a component built with them.

    python3 tools/packages.py LOCK.toml     (prints the output directory)

The lock file (see packages/sci.toml) names each package, its version and the SHA-256 of
what is fetched: a pure-Python wheel (`py3-none-any`), fetched with pip; or, for the
packages with native code tools/native_wasi.py knows (numpy, pandas, matplotlib, ...), its
sdist, cross-compiled there, after the packages it compiles against. Other wheels with native
code are refused. The result goes to `<cache>/packages-<lock name>-<hash>/`, the hash
covering every input, and is what guest-adapter/build.rs reads from PYEVAL_PACKAGES_DIR:

    site/            the packages' Python files, with .pyc compiled for 3.13
    lib/             static archives to link (extension modules, libc++)
    extensions.txt   `dotted.module.name archive.a` per extension module
    preload.txt      modules imported before the snapshot, one a line
    warmup.py        code run once before the snapshot (after the imports)
    tests/           the compiled packages' own tests (not in the component)
"""

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpython  # noqa: E402
import native_wasi  # noqa: E402

# Packages built from source by a recipe of ours, by name.
NATIVE = native_wasi.SPECS


class LockError(Exception):
    """The lock file is malformed or names something this build cannot include."""


def read_lock(path):
    try:
        lock = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise LockError(f"{path}: {e}") from e
    packages = lock.get("package", [])
    if not packages:
        raise LockError(f"{path}: no [[package]] entries")
    for p in packages:
        missing = {"name", "version", "sha256"} - p.keys()
        if missing:
            raise LockError(f"{path}: package {p.get('name', '?')!r} lacks {sorted(missing)}")
        for need in NATIVE[p["name"]].needs if p["name"] in NATIVE else ():
            if need not in [q["name"] for q in packages[:packages.index(p)]]:
                raise LockError(f"{path}: {p['name']} is compiled against {need}, "
                                f"which must come before it")
        if len(p["sha256"]) != 64:
            raise LockError(f"{path}: package {p['name']!r}: sha256 is not 64 hex digits")
    preload = lock.get("preload", [])
    if not all(isinstance(m, str) for m in preload):
        raise LockError(f"{path}: preload must be a list of module names")
    warmup = lock.get("warmup", "")
    if not isinstance(warmup, str):
        raise LockError(f"{path}: warmup must be a string of Python code")
    try:
        compile(warmup, f"{path}: warmup", "exec")
    except SyntaxError as e:
        raise LockError(f"{path}: warmup: {e}") from e
    return packages, preload, warmup


def fetch_wheel(package, downloads):
    """A pure-Python wheel of `package`, fetched with pip and checked against its hash."""
    downloads.mkdir(parents=True, exist_ok=True)
    for wheel in downloads.glob("*.whl"):
        if cpython.sha256(wheel) == package["sha256"]:
            return wheel
    req = downloads / f"{package['name']}.req"
    req.write_text(f"{package['name']}=={package['version']} --hash=sha256:{package['sha256']}\n")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--only-binary", ":all:", "--require-hashes", "-r", req, "-d", downloads],
        capture_output=True, text=True)
    if done.returncode != 0:
        raise LockError(f"fetching {package['name']} {package['version']} (a pure-Python "
                        f"wheel with the locked hash):\n{done.stdout}{done.stderr}")
    for wheel in downloads.glob("*.whl"):
        if cpython.sha256(wheel) == package["sha256"]:
            return wheel
    raise LockError(f"pip fetched no wheel of {package['name']} with the locked hash")


def unpack_wheel(wheel, site):
    if not wheel.name.endswith(("-py3-none-any.whl", "-py2.py3-none-any.whl")):
        raise LockError(f"{wheel.name} is not a pure-Python wheel; only "
                        f"{', '.join(sorted(NATIVE))} are compiled")
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            top = name.split("/", 1)[0]
            if top.endswith((".dist-info", ".data")):
                continue
            z.extract(name, site)


def guest_stdlib():
    """Where the guest has its stdlib (pyeval-engine's GUEST_STDLIB, the one source)."""
    engine = (Path(__file__).resolve().parent.parent / "engine/src/lib.rs").read_text()
    return re.search(r'pub const GUEST_STDLIB: &str = "([^"]+)";', engine).group(1)


def inputs_hash(lock_path, packages):
    sha = hashlib.sha256()
    sha.update(Path(__file__).read_bytes())
    sha.update(lock_path.read_bytes())
    for p in packages:
        diff = native_wasi.patch_file(p["name"], p["version"])
        if diff.is_file() and p["name"] not in NATIVE:
            sha.update(diff.read_bytes())
    for p in packages:
        if p["name"] in NATIVE:
            sha.update(str(native_dir(p, packages)).encode())
    return sha.hexdigest()[:16]


def native_dir(package, packages):
    """Where tools/native_wasi.py puts `package` (built or not)."""
    return native_wasi.output_dir(package["name"], package["version"], package["sha256"],
                                  native_needs(package, packages))


def native_needs(package, packages):
    """The outputs of the packages `package` is compiled against."""
    by_name = {p["name"]: p for p in packages}
    return [native_dir(by_name[n], packages) for n in NATIVE[package["name"]].needs]


def gather(lock_path, out, packages, preload, warmup):
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    site, lib = tmp / "site", tmp / "lib"
    site.mkdir(parents=True)
    lib.mkdir()
    extensions = []
    for p in packages:
        if p["name"] in NATIVE:
            needs = [a for n in native_needs(p, packages) for a in ("--with", str(n))]
            built = subprocess.run(
                [sys.executable, native_wasi.__file__, p["name"], p["version"], p["sha256"],
                 *needs], stdout=subprocess.PIPE, text=True)
            if built.returncode != 0:
                sys.exit(built.returncode)
            built = Path(built.stdout.strip().splitlines()[-1])
            shutil.copytree(built / "site", site, dirs_exist_ok=True)
            if (built / "tests").is_dir():
                shutil.copytree(built / "tests", tmp / "tests", dirs_exist_ok=True)
            for archive in (built / "lib").iterdir():
                if archive.name in native_wasi.CXX_LIBS and (lib / archive.name).exists():
                    continue  # every compiled package carries the same C++ library
                os.symlink(archive, lib / archive.name)
            extensions += (built / "extensions.txt").read_text().splitlines()
        else:
            unpack_wheel(fetch_wheel(p, cpython.cache_root() / "downloads" / "wheels"), site)
    check_symbols(lib, extensions)
    # A namespace package (a directory of packages without an __init__.py: mpl_toolkits)
    # becomes a regular package: the guest's importer serves a package by its __init__, and
    # the component holds every portion of the namespace.
    for top in site.iterdir():
        if (top.is_dir() and top.name.isidentifier() and not (top / "__init__.py").exists()
                and any(top.rglob("__init__.py"))):
            (top / "__init__.py").write_text("")
    for p in packages:
        if p["name"] not in NATIVE:
            native_wasi.apply_patch(p["name"], p["version"], site)
    native_python = cpython.selected_build().build_python()
    # Compiled as if installed, so tracebacks name the files where the guest has them.
    done = subprocess.run([native_python, "-m", "compileall", "-q", "-f", "-j0", "-s", site,
                           "-p", f"{guest_stdlib()}/site-packages", site],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"[pyeval] compiling the packages' Python files failed:\n{done.stdout}")
    (tmp / "extensions.txt").write_text("".join(f"{e}\n" for e in extensions))
    (tmp / "preload.txt").write_text("".join(f"{m}\n" for m in preload))
    (tmp / "warmup.py").write_text(warmup)
    shutil.copy(lock_path, tmp / "lock.toml")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def check_symbols(lib, extensions):
    """Refuses two packages' extension modules defining one global symbol: linked into one
    binary, a call meant for one would reach the other (the linker keeps the first)."""
    nm = cpython.selected_build().out / "toolchain/bin/nm"
    owners = {}
    for line in extensions:
        archive = line.split()[1]
        package = line.split(".", 1)[0]
        listed = subprocess.run([nm, "--defined-only", "--extern-only", lib / archive],
                                capture_output=True, text=True, check=True).stdout
        for row in listed.splitlines():
            fields = row.split()
            if len(fields) == 3 and fields[1] in "TDBR":
                other = owners.setdefault(fields[2], package)
                if other != package:
                    raise LockError(f"{package} and {other} both define `{fields[2]}`: rename "
                                    f"one (see the flags in tools/native_wasi.py)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    args = parser.parse_args()
    try:
        packages, preload, warmup = read_lock(args.lock)
        out = cpython.cache_root() / f"packages-{args.lock.stem}-{inputs_hash(args.lock, packages)}"
        if not (out / "lock.toml").is_file():
            gather(args.lock, out, packages, preload, warmup)
    except LockError as e:
        sys.exit(f"[pyeval] {e}")
    print(out)


if __name__ == "__main__":
    main()
