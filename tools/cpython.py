#!/usr/bin/env python3
"""Build CPython 3.13 for wasm32-wasip1 from pinned sources: the recipe of `just build-cpython`.

Every source is a Debian orig tarball (the pristine upstream release) fetched through apt
with a private configuration for Debian trixie, and checked against a pinned SHA-256. The
result goes to `<cache>/cpython-3.13.5-<hash>/`, where the hash covers every input (sources,
this recipe, the compiler's version), so a build is reused by every clone on the machine:

    python.wasm      the stock interpreter, a WASI command module
    lib/             libpython3.13.a and every archive a static link of it needs
    include/         the installed headers (python3.13/Python.h, pyconfig.h, ...)
    stdlib/          the installed standard library with compiled .pyc files, trimmed
    sysroot/         the wasi-libc sysroot it was compiled against (plus the deps)
    toolchain/       clang wrappers shaped like a WASI SDK
    manifest.json    versions, source hashes, flags, built and missing modules, sizes

<cache> is $PYEVAL_CACHE_DIR, else $XDG_CACHE_HOME/pyeval, else ~/.cache/pyeval.
`<repo>/target/cpython` is pointed at the output. Options: --print-dir, --force,
--train-profile.

The interpreter is optimized across its object files (ThinLTO, finished when the guest is
linked) and by the profile in tools/cpython.proftext: clang's counts of CPython's own PGO
task (`-m test --pgo`) run natively by a build of the same source, instrumented and
configured as the wasm build is in what shapes its functions (no computed gotos), so that
almost every function's profile matches its wasm build. Being a file of the repository, the
profile keeps the build reproducible, which training in every build would not (the task's
counts differ a little from run to run). `--train-profile` makes it anew (a few minutes),
as it must be after a change of CPython's source: a function whose code changed gets no
counts (clang's -Wprofile-instr-out-of-date, silenced here, names how many in each file).

Cross-compiling needs a native Python of the same version to freeze modules and compile
bytecode (it runs with the source tree's standard library, which an earlier 3.13 release
cannot: 3.13.0 fails on 3.13.5's linecache). An installed Python 3.13.5 is reused when one is
found ($PYEVAL_BUILD_PYTHON, `python3.13` on PATH, or pyenv's; Debian trixie's python3.13 is
this very release); otherwise one is built from the same source first, with only the
extension modules the build uses. Which one was used is one of the inputs of the hash.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

PYTHON_VERSION = "3.13.5"
MINOR_VERSION = "3.13"
REPO = Path(__file__).resolve().parent.parent

# (Debian source package, orig tarball, SHA-256)
SOURCES = {
    "python": ("python3.13", "python3.13_3.13.5.orig.tar.xz",
               "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"),
    "zlib": ("zlib", "zlib_1.3.dfsg+really1.3.1.orig.tar.gz",
             "60dd315c07f616887caa029408308a018ace66e3d142726a97db164b3b8f69fb"),
    "bzip2": ("bzip2", "bzip2_1.0.8.orig.tar.gz",
              "ab5a03176ee106d3f0fa90e381da478ddae405918153cca248e682cd0c4a2269"),
    "xz": ("xz-utils", "xz-utils_5.8.1.orig.tar.xz",
           "0b54f79df85912504de0b14aec7971e3f964491af1812d83447005807513cd9e"),
    "sqlite": ("sqlite3", "sqlite3_3.46.1.orig.tar.xz",
               "d0cdd2ece271b29e7ce18095745d892517ee26d0f270065b3a25c2e9eb11639c"),
}
# (Debian binary package, .deb, SHA-256): the C library, headers and crt files for WASI.
WASI_LIBC = ("wasi-libc", "wasi-libc_0.0~git20241209.574b88d-2_all.deb",
             "b7716260051d289248b7667f81fa2792c125d888ff51da3fa09c6272cc0bd11d")

APT_PACKAGES = ["clang-19", "lld-19", "llvm-19", "libclang-rt-19-dev-wasm32"]
TARGET = "wasm32-wasip1"
# Without -DNDEBUG -O3 the archives carry DWARF (libpython grows from 9 to 43 MB).
OPT = "-DNDEBUG -O3"
# The profile the interpreter is optimized with (see above), and where the wasm build reads
# it in its indexed form, relative to the build directory: the flags are recorded in
# sysconfig, so a path of the machine in them would make the component differ by machine.
PROFILE = REPO / "tools" / "cpython.proftext"
PROFILE_INDEXED = "../cpython.profdata"
# Only CPython's own objects (not extensions built later against its sysconfig flags).
CFLAGS_NODIST = (f"-flto=thin -fprofile-instr-use={PROFILE_INDEXED} "
                 "-Wno-profile-instr-out-of-date -Wno-profile-instr-unprofiled")
LDFLAGS_NODIST = "-flto=thin"
DEP_CFLAGS = "-O2"
SQLITE_DEFINES = ["-DSQLITE_OMIT_LOAD_EXTENSION", "-DSQLITE_THREADSAFE=0",
                  "-D_WASI_EMULATED_MMAN"]
CLANG_RESOURCE = Path("/usr/lib/llvm-19/lib/clang/19")
# Removed from the installed stdlib: tests, GUI and bootstrap tooling that cannot run here.
TRIMMED = ["test", "idlelib", "tkinter", "turtledemo", "ensurepip", "turtle.py",
           "lib2to3", "venv"]


# Extension modules of the native build Python that neither the cross build nor the package
# builds (meson's introspection, compileall of their sources) import.
NATIVE_UNUSED = ["_ctypes", "_curses", "_curses_panel", "_dbm", "_decimal", "_gdbm",
                 "_hashlib", "_interpchannels", "_interpqueues", "_interpreters", "_sqlite3",
                 "_ssl", "_tkinter", "readline"]


class PhaseFailed(Exception):
    """A build phase failed; the message names it and its log."""


def cache_root():
    if os.environ.get("PYEVAL_CACHE_DIR"):
        return Path(os.environ["PYEVAL_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "pyeval"
    return Path.home() / ".cache" / "pyeval"


def as_root(cmd):
    return cmd if os.geteuid() == 0 else ["sudo", *cmd]


def clang_version():
    try:
        out = subprocess.run(["clang-19", "--version"], capture_output=True, text=True)
        return out.stdout.splitlines()[0] if out.returncode == 0 else "missing"
    except FileNotFoundError:
        return "missing"


def python_version(python):
    """`sys.version` of the interpreter at `python`, or None if it does not run."""
    try:
        out = subprocess.run([str(python), "-c", "import sys; print(sys.version)"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def installed_build_python():
    """An installed Python of CPython's version (the cross build's build Python), and its
    `sys.version`; None if the machine has none."""
    candidates = []
    if os.environ.get("PYEVAL_BUILD_PYTHON"):
        candidates.append(Path(os.environ["PYEVAL_BUILD_PYTHON"]))
    on_path = shutil.which(f"python{MINOR_VERSION}")
    if on_path:
        candidates.append(Path(on_path))
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(pyenv.glob(f"{MINOR_VERSION}.*/bin/python{MINOR_VERSION}"),
                         reverse=True)
    for python in candidates:
        version = python_version(python)
        if version and version.split()[0] == PYTHON_VERSION:
            return python.resolve(), version
    return None


def inputs_hash(build_python):
    """Hash of everything the output depends on."""
    sha = hashlib.sha256()
    sha.update(Path(__file__).read_bytes())
    sha.update(PROFILE.read_bytes())
    for _, name, digest in [*SOURCES.values(), WASI_LIBC]:
        sha.update(f"{name}={digest}\n".encode())
    sha.update(clang_version().encode())
    # Frozen modules and bytecode come from the build Python.
    sha.update((build_python[1] if build_python else "built from source").encode())
    return sha.hexdigest()[:16]


def selected_build():
    """The build this machine's inputs select: its output directory (`.out`) and the
    native Python it builds with (`.build_python()`), which the package builds use too."""
    build_python = installed_build_python()
    return Build(cache_root(), inputs_hash(build_python), build_python)


class Build:
    """One build: its directories, logs and phases."""

    def __init__(self, cache, key, build_python=None):
        self.cache = cache
        self.installed_python = build_python[0] if build_python else None
        self.work = cache / f"build-{key}"
        self.out = cache / f"cpython-{PYTHON_VERSION}-{key}"
        self.stage = self.work / "out"
        self.logs = self.work / "logs"
        self.downloads = cache / "downloads"
        self.sysroot = self.stage / "sysroot"
        self.toolchain = self.stage / "toolchain"
        self.phase_name = None

    # -- running things ---------------------------------------------------------------

    def phase(self, name, func):
        self.phase_name = name
        self.log = self.logs / f"{name}.log"
        print(f"[pyeval] {name} ...", end="", flush=True)
        started = time.monotonic()
        func()
        print(f" done ({time.monotonic() - started:.1f}s)", flush=True)

    def run(self, cmd, cwd=None, env=None):
        with open(self.log, "a") as log:
            log.write(f"$ {' '.join(map(str, cmd))}\n")
            log.flush()
            result = subprocess.run([str(c) for c in cmd], cwd=cwd, stdout=log,
                                    stderr=subprocess.STDOUT,
                                    env={**os.environ, **(env or {})})
        if result.returncode != 0:
            raise PhaseFailed(f"{self.phase_name} failed ({cmd[0]} exited with "
                              f"{result.returncode}); see {self.log}")

    def tool(self, name):
        return str(self.toolchain / "bin" / name)

    # -- phases -----------------------------------------------------------------------

    def install_toolchain(self, extra=()):
        """Installs the compilers (and `extra` packages) from apt and the Rust target, where
        missing."""
        missing = [p for p in [*APT_PACKAGES, *extra] if subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
            text=True).stdout.find("ok installed") < 0]
        if missing:
            self.run(as_root(["apt-get", "update"]))
            self.run(as_root(["apt-get", "install", "-y", *missing]))
        targets = subprocess.run(["rustup", "target", "list", "--installed"],
                                 capture_output=True, text=True).stdout.split()
        if TARGET not in targets:
            self.run(["rustup", "target", "add", TARGET])

    def fetch_sources(self):
        self.downloads.mkdir(parents=True, exist_ok=True)
        wanted = [(pkg, name, digest, "source") for pkg, name, digest in SOURCES.values()]
        wanted.append((*WASI_LIBC, "download"))
        todo = [w for w in wanted if not self.verified(w[1], w[2])]
        if not todo:
            return
        apt = self.private_apt()
        self.run(["apt-get", *apt, "update"])
        for package, name, digest, verb in todo:
            uris = subprocess.run(["apt-get", *apt, verb, "--print-uris", package],
                                  capture_output=True, text=True, cwd=self.work).stdout
            uri = next((line.split()[0].strip("'") for line in uris.splitlines()
                        if len(line.split()) > 1 and line.split()[1] == name), None)
            if uri is None:
                raise PhaseFailed(f"fetch: Debian trixie no longer offers {name} (package "
                                  f"{package}); update the pin in {__file__}")
            partial = self.downloads / f"{name}.part"
            with open(self.log, "a") as log:
                log.write(f"GET {uri}\n")
            urllib.request.urlretrieve(uri, partial)
            if sha256(partial) != digest:
                raise PhaseFailed(f"fetch: {name} does not match its pinned SHA-256")
            partial.rename(self.downloads / name)

    def verified(self, name, digest):
        path = self.downloads / name
        return path.is_file() and sha256(path) == digest

    def private_apt(self):
        """apt options that read Debian trixie, derived from this machine's own sources."""
        root = self.cache / "apt"
        for sub in ["etc", "lists/partial", "archives/partial"]:
            (root / sub).mkdir(parents=True, exist_ok=True)
        machine = Path("/etc/apt/sources.list.d/debian.sources")
        if not machine.is_file():
            raise PhaseFailed(f"fetch: {machine} not found; pyeval derives its Debian trixie "
                              "sources from it")
        text = machine.read_text()
        text = re.sub(r"\bbookworm\b", "trixie", text)
        text = re.sub(r"^Types:.*$", "Types: deb deb-src", text, flags=re.M)
        (root / "etc" / "trixie.sources").write_text(text)
        return ["-o", "Dir::Etc::SourceList=/dev/null",
                "-o", f"Dir::Etc::SourceParts={root / 'etc'}",
                "-o", f"Dir::State::Lists={root / 'lists'}",
                "-o", f"Dir::Cache={root}",
                "-o", "APT::Sandbox::User=root"]

    def unpack(self):
        src = self.work / "src"
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        for key, (_, name, _) in SOURCES.items():
            with tarfile.open(self.downloads / name) as tar:
                top = tar.getnames()[0].split("/")[0]
                tar.extractall(src, filter="tar")
            (src / top).rename(src / key)
        libc = self.work / "wasi-libc"
        shutil.rmtree(libc, ignore_errors=True)
        self.run(["dpkg", "-x", self.downloads / WASI_LIBC[1], libc])

    def make_sysroot(self):
        libc = self.work / "wasi-libc" / "usr"
        shutil.rmtree(self.sysroot, ignore_errors=True)
        shutil.copytree(libc / "include" / "wasm32-wasi", self.sysroot / "include" / TARGET)
        shutil.copytree(libc / "lib" / "wasm32-wasi", self.sysroot / "lib" / TARGET)
        # clang looks for the wasm builtins under <resource-dir>/lib/<triple>/; Debian puts
        # them elsewhere, so the wrappers use a resource dir of their own.
        resource = self.toolchain / "clang-resource"
        (resource / "lib" / "wasm32-unknown-wasip1").mkdir(parents=True)
        (resource / "include").symlink_to(CLANG_RESOURCE / "include")
        shutil.copy(CLANG_RESOURCE / "lib" / "wasi" / "libclang_rt.builtins-wasm32.a",
                    resource / "lib" / "wasm32-unknown-wasip1" / "libclang_rt.builtins.a")
        bin_dir = self.toolchain / "bin"
        bin_dir.mkdir(parents=True)
        # Relative to the wrapper, so the output directory can be moved into place.
        root = 'root="$(cd "$(dirname "$0")/../.." && pwd)"\n'
        flags = (f'--target={TARGET} --sysroot="$root/sysroot" '
                 f'-resource-dir="$root/toolchain/clang-resource"')
        wrappers = {
            "clang": f'{root}exec clang-19 {flags} "$@"',
            "clang++": f'{root}exec clang++-19 {flags} "$@"',
            "clang-cpp": f'{root}exec clang-19 {flags} -E "$@"',
            "llvm-ar": 'exec llvm-ar-19 "$@"',
            "ranlib": 'exec llvm-ranlib-19 "$@"',
            "nm": 'exec llvm-nm-19 "$@"',
            "wasm-ld": 'exec wasm-ld-19 "$@"',
        }
        for name, body in wrappers.items():
            path = bin_dir / name
            path.write_text(f"#!/bin/sh\n{body}\n")
            path.chmod(0o755)
        (self.toolchain / "share").mkdir()
        (self.toolchain / "share" / "wasi-sysroot").symlink_to("../../sysroot")

    def compile_archive(self, srcdir, sources, archive, extra=()):
        objs = []
        for source in sources:
            obj = Path(source).with_suffix(".o").name
            self.run([self.tool("clang"), *DEP_CFLAGS.split(), *extra, "-c", source,
                      "-o", obj], cwd=srcdir)
            objs.append(obj)
        self.run([self.tool("llvm-ar"), "rcs", self.sysroot / "lib" / TARGET / archive,
                  *objs], cwd=srcdir)

    def install_headers(self, srcdir, *headers):
        for header in headers:
            dest = self.sysroot / "include" / TARGET / header
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(srcdir / header, dest)

    def build_zlib(self):
        src = self.work / "src" / "zlib"
        sources = ["adler32.c", "compress.c", "crc32.c", "deflate.c", "gzclose.c",
                   "gzlib.c", "gzread.c", "gzwrite.c", "infback.c", "inffast.c",
                   "inflate.c", "inftrees.c", "trees.c", "uncompr.c", "zutil.c"]
        self.compile_archive(src, sources, "libz.a", ["-DHAVE_UNISTD_H", "-DHAVE_STDARG_H"])
        self.install_headers(src, "zlib.h", "zconf.h")

    def build_bzip2(self):
        src = self.work / "src" / "bzip2"
        sources = ["blocksort.c", "huffman.c", "crctable.c", "randtable.c",
                   "compress.c", "decompress.c", "bzlib.c"]
        self.compile_archive(src, sources, "libbz2.a", ["-D_FILE_OFFSET_BITS=64"])
        self.install_headers(src, "bzlib.h")

    def build_xz(self):
        src = self.work / "src" / "xz"
        self.run(["./configure", "--host=wasm32-unknown-wasi", "--disable-shared",
                  "--enable-static", "--disable-threads", "--disable-xz", "--disable-xzdec",
                  "--disable-lzmadec", "--disable-lzmainfo", "--disable-lzma-links",
                  "--disable-scripts", "--disable-doc", "--disable-nls", "--disable-sandbox",
                  "--disable-microlzma", "--disable-lzip-decoder",
                  f"--prefix={self.work / 'xz-install'}"], cwd=src,
                 env={"CC": self.tool("clang"), "AR": self.tool("llvm-ar"),
                      "RANLIB": self.tool("ranlib"), "CFLAGS": DEP_CFLAGS})
        self.run(["make", f"-j{os.cpu_count()}", "-C", "src/liblzma"], cwd=src)
        shutil.copy(src / "src/liblzma/.libs/liblzma.a", self.sysroot / "lib" / TARGET)
        api = src / "src/liblzma/api"
        self.install_headers(api, "lzma.h", *[str(p.relative_to(api))
                                             for p in (api / "lzma").glob("*.h")])

    def build_sqlite(self):
        src = self.work / "src" / "sqlite"
        native = src / "native"
        native.mkdir()
        # The orig tarball is the full tree: generate the amalgamation natively first.
        self.run(["../configure", "--disable-tcl"], cwd=native)
        self.run(["make", "sqlite3.c"], cwd=native)
        self.compile_archive(native, ["sqlite3.c"], "libsqlite3.a", SQLITE_DEFINES)
        self.install_headers(native, "sqlite3.h")
        shutil.copy(src / "src" / "sqlite3ext.h" if (src / "src" / "sqlite3ext.h").exists()
                    else native / "sqlite3ext.h", self.sysroot / "include" / TARGET)

    def build_python(self):
        """The native Python that runs the cross build's tools."""
        return self.installed_python or self.work / "native-python/python"

    def build_native_python(self):
        build = self.work / "native-python"
        (build / "Modules").mkdir(parents=True)
        # The build runs this interpreter only for its tools (freezing, bytecode, sysconfig,
        # compileall's worker processes): the extension modules they do not import are not
        # built, nor is debug information.
        (build / "Modules/Setup.local").write_text(
            "*disabled*\n" + "\n".join(NATIVE_UNUSED) + "\n")
        self.run([self.work / "src/python/configure", "--disable-test-modules"], cwd=build,
                 env={"OPT": "-DNDEBUG -O1"})
        self.run(["make", f"-j{os.cpu_count()}", "all"], cwd=build)

    def train(self):
        """Runs CPython's PGO task on an instrumented native build of the source and writes
        its counts to PROFILE."""
        # At the wasm build's depth, so that static functions carry the same file names.
        build = self.work / "src/python/cross-build/profile"
        build.mkdir(parents=True)
        self.run(["../../configure", "--enable-optimizations", "--without-computed-gotos",
                  "--disable-test-modules", "CC=clang-19",
                  f"LLVM_PROFDATA={shutil.which('llvm-profdata-19')}"],
                 cwd=build, env={"OPT": OPT})
        self.run(["make", f"-j{os.cpu_count()}", "profile-run-stamp"], cwd=build)
        self.run(["llvm-profdata-19", "merge", "--text", "-o", PROFILE,
                  build / "code.profclangd"])

    def configure_host(self):
        src = self.work / "src" / "python"
        build = src / "cross-build" / TARGET
        build.mkdir(parents=True)
        self.run(["llvm-profdata-19", "merge", "-o", build / PROFILE_INDEXED, PROFILE])
        config_guess = subprocess.run([src / "config.guess"], capture_output=True,
                                      text=True).stdout.strip()
        env = {
            "CONFIG_SITE": str(src / "Tools/wasm/config.site-wasm32-wasi"),
            "CC": self.tool("clang"), "CPP": self.tool("clang-cpp"),
            "CXX": self.tool("clang++"), "AR": self.tool("llvm-ar"),
            "RANLIB": self.tool("ranlib"), "OPT": OPT,
            "CFLAGS_NODIST": CFLAGS_NODIST, "LDFLAGS_NODIST": LDFLAGS_NODIST,
            "PKG_CONFIG_PATH": "", "PKG_CONFIG_LIBDIR": str(self.sysroot / "lib/pkgconfig"),
            "ZLIB_CFLAGS": "", "ZLIB_LIBS": "-lz",
            "BZIP2_CFLAGS": "", "BZIP2_LIBS": "-lbz2",
            "LIBLZMA_CFLAGS": "", "LIBLZMA_LIBS": "-llzma",
            "LIBSQLITE3_CFLAGS": "", "LIBSQLITE3_LIBS": "-lsqlite3 -lwasi-emulated-mman",
        }
        # configure must be called by a relative path for python.wasm to find its stdlib
        # when run from the build tree.
        self.run(["../../configure", f"--host={TARGET}", f"--build={config_guess}",
                  f"--with-build-python={self.build_python()}",
                  "--prefix=/usr/local", "--disable-test-modules"], cwd=build, env=env)

    def make_host(self):
        build = self.work / "src/python/cross-build" / TARGET
        self.run(["make", f"-j{os.cpu_count()}", "all"], cwd=build)
        self.run(["make", "install", f"DESTDIR={self.work / 'install'}",
                  f"COMPILEALL_OPTS=-j{os.cpu_count()}"], cwd=build)

    def collect(self):
        build = self.work / "src/python/cross-build" / TARGET
        installed = self.work / "install/usr/local"
        shutil.copy(build / "python.wasm", self.stage / "python.wasm")
        lib = self.stage / "lib"
        lib.mkdir()
        shutil.copy(build / "libpython3.13.a", lib)
        for archive in sorted((build / "Modules").rglob("*.a")):
            shutil.copy(archive, lib)
        for archive in ["libz.a", "libbz2.a", "liblzma.a", "libsqlite3.a"]:
            shutil.copy(self.sysroot / "lib" / TARGET / archive, lib)
        shutil.copytree(installed / "include", self.stage / "include", symlinks=True)
        stdlib = self.stage / "stdlib"
        shutil.copytree(installed / "lib/python3.13", stdlib, symlinks=True)
        for name in TRIMMED:
            remove(stdlib / name)
        for config in stdlib.glob("config-3.13-*"):
            remove(config)
        for tests in [*stdlib.rglob("tests"), *stdlib.rglob("idle_test")]:
            if tests.is_dir():
                remove(tests)
        # Only unoptimized bytecode is used (no -O here).
        for pyc in [*stdlib.rglob("*.opt-1.pyc"), *stdlib.rglob("*.opt-2.pyc")]:
            pyc.unlink()
        (stdlib / "lib-dynload").mkdir(exist_ok=True)
        (stdlib / "lib-dynload" / ".keep").touch()
        self.write_manifest(build)

    def write_manifest(self, build):
        make_log = (self.logs / "make-host.log").read_text(errors="replace")
        manifest = {
            "python": PYTHON_VERSION,
            "target": TARGET,
            "sources": {name: digest for _, name, digest in [*SOURCES.values(), WASI_LIBC]},
            "opt": OPT,
            "cflags_nodist": CFLAGS_NODIST,
            "profile_sha256": sha256(PROFILE),
            "clang": clang_version(),
            "hash": self.out.name.rsplit("-", 1)[1],
            "builtin_modules": builtin_modules(build / "Modules/config.c"),
            "missing_modules": missing_modules(make_log),
            "sizes": {
                "python.wasm": (self.stage / "python.wasm").stat().st_size,
                "libpython3.13.a": (self.stage / "lib/libpython3.13.a").stat().st_size,
                "stdlib": sum(p.stat().st_size for p in (self.stage / "stdlib").rglob("*")
                              if p.is_file()),
            },
        }
        (self.stage / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def builtin_modules(config_c):
    return sorted(set(re.findall(r"PyInit_(\w+)\(void\)", config_c.read_text())))


def missing_modules(make_log):
    """Modules make reported as not found or failed: the names listed under each notice."""
    missing = set()
    for notice in re.finditer(r"(?:were not found|[Ff]ailed to build)[^\n]*:\n", make_log):
        for line in make_log[notice.end():].splitlines():
            if not line.strip() or line.startswith("To find"):
                break
            missing.update(line.split())
    return sorted(missing)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def link_into_repo(out):
    target = REPO / "target"
    target.mkdir(exist_ok=True)
    link = target / "cpython"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(out)


def run_phases(build, phases):
    """Runs each (name, function) of `phases` in turn; False, the failure told, if one fails."""
    try:
        for name, func in phases:
            build.phase(name, func)
    except PhaseFailed as failure:
        print(" failed", flush=True)
        print(f"[pyeval] error: {failure}", file=sys.stderr)
        return False
    return True


def train_profile(cache, started):
    build = Build(cache, "profile")
    shutil.rmtree(build.work, ignore_errors=True)
    build.logs.mkdir(parents=True)
    # (clang's profile runtime for the native build comes with libclang-rt-19-dev.)
    if not run_phases(build, [
            ("toolchain", lambda: build.install_toolchain(["libclang-rt-19-dev"])),
            ("fetch", build.fetch_sources), ("unpack", build.unpack), ("train", build.train)]):
        return 1
    shutil.rmtree(build.work)
    print(f"[pyeval] {PROFILE} written in {time.monotonic() - started:.0f}s")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-dir", action="store_true", help="print the output directory")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--train-profile", action="store_true",
                        help=f"write {PROFILE.relative_to(REPO)} anew")
    args = parser.parse_args()

    cache = cache_root()
    started = time.monotonic()
    if args.print_dir:
        print(selected_build().out)
        return 0
    cache.mkdir(parents=True, exist_ok=True)
    if args.train_profile:
        return train_profile(cache, started)
    # The toolchain comes first: the compiler's version is one of the inputs.
    toolchain = Build(cache, "toolchain")
    toolchain.logs = cache
    if not run_phases(toolchain, [("toolchain", toolchain.install_toolchain)]):
        return 1
    build = selected_build()
    build_python = build.installed_python
    if (build.out / "manifest.json").is_file() and not args.force:
        link_into_repo(build.out)
        print(f"[pyeval] CPython for WASI is up to date: {build.out}")
        return 0

    shutil.rmtree(build.work, ignore_errors=True)
    build.logs.mkdir(parents=True)
    build.stage.mkdir()
    if build_python:
        print(f"[pyeval] build Python: {build_python[0]} ({build_python[1].split()[0]})")
    native = [] if build_python else [("native-python", build.build_native_python)]
    if not run_phases(build, [
            ("fetch", build.fetch_sources), ("unpack", build.unpack),
            ("sysroot", build.make_sysroot), ("zlib", build.build_zlib),
            ("bzip2", build.build_bzip2), ("xz", build.build_xz),
            ("sqlite", build.build_sqlite), *native,
            ("configure-host", build.configure_host), ("make-host", build.make_host),
            ("collect", build.collect)]):
        return 1
    remove(build.out)
    build.stage.rename(build.out)
    link_into_repo(build.out)
    print(f"[pyeval] CPython for WASI built in {time.monotonic() - started:.0f}s "
          f"(logs in {build.logs})")
    print(build.out)
    return 0

if __name__ == "__main__":
    sys.exit(main())
