#!/usr/bin/env python3
"""Cross-compile packages with native code (numpy, pandas, matplotlib and what it needs) for
wasm32-wasip1, for static linking into the evaluator.

    python3 tools/native_wasi.py NAME VERSION SHA256 [--with DIR ...]   (prints the output)

The package's sdist (fetched with pip, checked against SHA256) is configured with meson
(numpy's vendored one for numpy) and a cross file for the toolchain of `just build-cpython`
(clang-19 and wasi-libc), with LLVM's libc++ for wasm32 from Debian's archive (pinned
.debs). numpy has no BLAS (its bundled lapack-lite), no threads, no SIMD dispatch; pandas
is compiled against that numpy's headers (`--with` numpy's output). Packages that build
with setuptools (kiwisolver, Pillow) get a meson.build of packages/meson/; matplotlib's
Qhull comes from Debian's source archive, its FreeType from a crate of the Rust package
registry (fetched with cargo). Each extension module
is "linked" into a static archive instead of a shared object, and listed with its dotted
name, so the guest can register it as a built-in module.

The result goes to `<cache>/NAME-VERSION-<hash>/`, the hash covering every input (the
outputs given with `--with` included):

    site/            the package's Python files (tests left out)
    tests/           its test packages, in the same layout
    include/         C headers for packages compiled against it (numpy's)
    lib/             one archive per extension module, plus libc++ and libc++abi
    extensions.txt   `dotted.module.name archive.a` per extension module
    manifest.json    name, versions, hashes, flags

A C++ `throw` cannot be caught in this build (wasm exceptions are not used): the guest's
`__cxa_throw` ends the evaluation; see the README.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpython  # noqa: E402  (the CPython build this one compiles against)

# (Debian binary package, .deb, SHA-256): LLVM's C++ library for wasm32, at clang's version.
CXX_DEBS = [
    ("libc++-19-dev-wasm32", "libc++-19-dev-wasm32_1%3a19.1.7-3~deb12u1_all.deb",
     "e2c3a1ec97f42ff660688e7a435dab7cb785211d9e9559eef86192a218c24ce8"),
    ("libc++abi-19-dev-wasm32", "libc++abi-19-dev-wasm32_1%3a19.1.7-3~deb12u1_all.deb",
     "a0835ee4cf44d41ee988e77be30d023134160a80bdea02b03a6a384c3f048e4d"),
]
# Tools the build runs on the build machine, pinned by hash.
BUILD_REQUIREMENTS = Path(__file__).resolve().parent / "native-build-requirements.txt"
# The archives of LLVM's C++ library every package's lib/ carries (the same files).
CXX_LIBS = ("libc++.a", "libc++abi.a")


class Spec:
    """How one package builds: its meson (a path in the sdist, or the requirements' one),
    its options and compiler flags, the native packages it compiles against, the header
    directory it gives those that compile against it and what it leaves out (relative to
    its site/), and which of meson's install tags it installs (None: all). A package that
    builds with setuptools gets its `meson_build` from packages/meson/; `subprojects` are
    C libraries it compiles in, unpacked into its subprojects/;
    `first` names headers of packages/include/ its C++ files include before anything."""

    def __init__(self, options, meson=None, flags=(), needs=(), headers=None, drop=(),
                 tags="runtime,python-runtime,tests,devel", meson_build=None, subprojects=(),
                 first=()):
        self.options, self.meson, self.flags, self.needs = options, meson, list(flags), needs
        self.headers, self.drop, self.tags = headers, drop, tags
        self.meson_build, self.subprojects, self.first = meson_build, subprojects, first

    def cxx_flags(self):
        """The C++ compiler's flags of this package, beyond CXXFLAGS."""
        return [*self.flags, *(f for h in self.first for f in ("-include", INCLUDES / h))]


class Subproject:
    """A C library from a Debian orig tarball (source package, file, SHA-256), unpacked as
    subprojects/DIRECTORY, with the files of the sdist's OVERLAY directory (its meson.build)
    copied in, then its patch applied; with WRAP, a wrap file of that name written that
    points meson at DIRECTORY. `from_crate` makes one from a crate instead."""

    def __init__(self, package, file, digest, directory, overlay=None, wrap=None):
        self.package, self.file, self.digest = package, file, digest
        self.directory, self.overlay, self.wrap = directory, overlay, wrap
        self.crate, self.inner = None, None

    @classmethod
    def from_crate(cls, name, version, digest, inner, directory, **kwargs):
        """From version VERSION of the crate NAME of the Rust package registry, whose `inner`
        directory holds the library."""
        sub = cls(name, f"{name}-{version}.crate", digest, directory, **kwargs)
        sub.crate, sub.inner = version, inner
        return sub

    def patch(self):
        """packages/patches/DIRECTORY.diff: applied to the unpacked tree, if it exists."""
        return PATCHES / f"{self.directory}.diff"


RELEASE = ["-Dbuildtype=release", "-Db_ndebug=true"]
# FreeType for matplotlib's text, built by matplotlib's meson.build for the FreeType 2.6.1 its
# wheels carry and its test images are drawn with. No package registry here has 2.6.1; the
# nearest release one has is 2.6.5, inside the servo-freetype-sys crate (upstream's tree).
FREETYPE = Subproject.from_crate(
    "servo-freetype-sys", "4.0.5",
    "2c4ccb6d0d32d277d3ef7dea86203d8210945eb7a45fba89dd445b3595dd0dfc", "freetype2",
    "freetype-2.6.5", overlay="subprojects/packagefiles/freetype-2.6.1-meson",
    wrap="freetype-2.6.1")
# Qhull 2020.2 (8.0.2, as matplotlib's wrap asks), with matplotlib's meson.build for it.
QHULL = Subproject(
    "qhull", "qhull_2020.2.orig.tar.gz",
    "b5c2d7eb833278881b952c8a52d20179eab87766b00b865000469a45c1838b7e", "qhull-8.0.2",
    overlay="subprojects/packagefiles/qhull-8.0.2")


SPECS = {
    # The bundled fallbacks, one code path (no runtime CPU dispatch); its static libraries
    # (npymath) are for other builds, not the component.
    "numpy": Spec(
        ["-Dallow-noblas=true", "-Dblas=none", "-Dlapack=none",
         "-Ddisable-threading=true", "-Ddisable-optimization=true", "-Ddisable-svml=true",
         "-Ddisable-highway=true", "-Ddisable-intel-sort=true",
         "-Dcpu-baseline=none", "-Dcpu-dispatch=none",
         "-Dbuildtype=release", "-Db_ndebug=true"],
        meson="vendored-meson/meson/meson.py", headers="numpy/_core/include",
        drop=["numpy/_core/lib"]),
    # (Its SIMD kernels fall back to scalar code on a CPU family it does not know; its
    # Python packages are installed without a tag.) All extension modules link into one
    # binary here: the functions pandas' copy of numpy's datetime code shares with numpy's
    # are renamed (one more by its patch; tools/packages.py refuses any other clash).
    "pandas": Spec(
        RELEASE, needs=("numpy",), tags=None,
        flags=[f"-D{f}=pandas_{f}" for f in (
            "is_leapyear", "add_minutes_to_datetimestruct", "get_datetimestruct_days")]),
    "kiwisolver": Spec(RELEASE, meson_build="kiwisolver.build", tags=None),
    # (Its threaded algorithm runs on the one thread there is.)
    "contourpy": Spec([*RELEASE, "-Dwerror=false"], tags=None, first=["single_thread.h"]),
    "pillow": Spec(RELEASE, meson_build="pillow.build", tags=None),
    # Agg and the file backends; FreeType and Qhull compiled in; no link-time optimisation
    # (its objects go into archives the guest's link takes as they are).
    "matplotlib": Spec(
        [*RELEASE, "-Db_lto=false", "-DrcParams-backend=Agg"],
        tags=None, subprojects=(FREETYPE, QHULL),
        # (`long` is 32 bits here: image sizes given as `unsigned` narrow.)
        flags=["-Wno-c++11-narrowing"]),
}
CFLAGS = ["-O3", "-msimd128", "-DNDEBUG", "-D_WASI_EMULATED_SIGNAL", "-D_WASI_EMULATED_PROCESS_CLOCKS",
          "-D_WASI_EMULATED_MMAN"]
# Exceptions are compiled as calls (`throw` becomes `__cxa_throw`) so C++ code builds.
CXXFLAGS = [*CFLAGS, "-fexceptions"]
WASI_SYSCONFIG = "_sysconfigdata__wasi_wasm32-wasi"
# Changes packages need to build or run here: NAME-VERSION.diff, applied with `patch -p1`
# (each says why at its top).
PATCHES = Path(__file__).resolve().parent.parent / "packages" / "patches"
# meson.build files for packages that build with setuptools (Spec.meson_build).
MESON_BUILDS = PATCHES.parent / "meson"
# Headers included first (Spec.first).
INCLUDES = PATCHES.parent / "include"


def patch_file(name, version):
    return PATCHES / f"{name}-{version}.diff"


def apply_patch(name, version, tree):
    """Applies packages/patches/NAME-VERSION.diff to `tree`, if there is one."""
    diff = patch_file(name, version)
    if diff.is_file():
        apply_diff(diff, tree)


def apply_diff(diff, tree):
    """Applies a diff of packages/patches/ to `tree`."""
    done = subprocess.run(["patch", "-p1", "--quiet", "-d", tree, "-i", diff],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"[pyeval] {diff} does not apply:\n{done.stdout}{done.stderr}")


def inputs_hash(name, version, digest, cpython_dir, needs):
    """The key of a build: this script, its tools, the sdist, its patch, the C++ library,
    CPython's build and the outputs (keyed themselves) it compiles against."""
    sha = hashlib.sha256()
    sha.update(Path(__file__).read_bytes())
    sha.update(BUILD_REQUIREMENTS.read_bytes())
    sha.update(f"{name} {version} {digest}\n".encode())
    if patch_file(name, version).is_file():
        sha.update(patch_file(name, version).read_bytes())
    if SPECS[name].meson_build:
        sha.update((MESON_BUILDS / SPECS[name].meson_build).read_bytes())
    for header in SPECS[name].first:
        sha.update((INCLUDES / header).read_bytes())
    for sub in SPECS[name].subprojects:
        if sub.patch().is_file():
            sha.update(sub.patch().read_bytes())
    for need in needs:
        sha.update(f"with {need.name}\n".encode())
    for _, deb, d in CXX_DEBS:
        sha.update(f"{deb}={d}\n".encode())
    sha.update((cpython_dir / "manifest.json").read_bytes())
    return sha.hexdigest()[:16]


def run(cmd, log, cwd=None, env=None):
    with open(log, "a") as out:
        out.write(f"$ {' '.join(map(str, cmd))}\n")
        out.flush()
        done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, stdout=out,
                              stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = Path(log).read_text(errors="replace").splitlines()[-30:]
        sys.exit("\n".join(tail) + f"\n[pyeval] build failed: {' '.join(map(str, cmd[:3]))}"
                 f" ... (exit {done.returncode}); full log: {log}")


def fetch_sdist(package, version, digest, downloads, log, python):
    """A package's sdist from the package index, through pip, without building it
    (`python` has the build tools setuptools-based packages read their metadata with)."""
    path = downloads / f"{package}-{version}.tar.gz"
    if path.is_file() and cpython.sha256(path) == digest:
        return path
    downloads.mkdir(parents=True, exist_ok=True)
    # pip prepares an sdist's metadata before saving it, which for these means a whole
    # native build; a stand-in backend reads the metadata from PKG-INFO instead.
    shim = downloads / "pyeval-sdist-shim"
    shim.mkdir(exist_ok=True)
    (shim / "mesonpy.py").write_text(METADATA_SHIM)
    req = downloads / f"{package}-{version}.req"
    req.write_text(f"{package}=={version} --hash=sha256:{digest}\n")
    env = {**os.environ, "PYTHONPATH": str(shim)}
    run([python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-binary", package, "--no-build-isolation", "--require-hashes",
         "-r", req, "-d", downloads], log, env=env)
    if cpython.sha256(path) != digest:
        sys.exit(f"[pyeval] {path}: SHA-256 does not match the lock file")
    return path


METADATA_SHIM = '''\
"""Stand-in build backend: only reports the metadata an sdist carries in PKG-INFO."""
import os


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    with open("PKG-INFO", encoding="utf-8") as f:
        info = f.read()
    fields = dict(line.split(": ", 1) for line in info.splitlines()[:3] if ": " in line)
    name = f"{fields['Name']}-{fields['Version']}.dist-info"
    os.makedirs(os.path.join(metadata_directory, name))
    with open(os.path.join(metadata_directory, name, "METADATA"), "w", encoding="utf-8") as f:
        f.write(info)
    return name


def build_wheel(*args, **kwargs):
    raise RuntimeError("this backend only reports metadata")
'''


def fetch_sources(subprojects, downloads, log):
    """The archives of `subprojects` where not already in `downloads`: Debian orig tarballs
    through apt (with CPython's build's private configuration), crates through cargo; each
    checked against its pin."""
    apt = None
    for sub in subprojects:
        path = downloads / sub.file
        if path.is_file() and cpython.sha256(path) == sub.digest:
            continue
        if sub.crate:
            fetch_crate(sub, downloads, log)
            continue
        if apt is None:
            apt = cpython.selected_build().private_apt()
            run(["apt-get", *apt, "update"], log)
        uris = subprocess.run(["apt-get", *apt, "source", "--print-uris", sub.package],
                              capture_output=True, text=True, cwd=downloads).stdout
        uri = next((line.split()[0].strip("'") for line in uris.splitlines()
                    if len(line.split()) > 1 and line.split()[1] == sub.file), None)
        if uri is None:
            sys.exit(f"[pyeval] Debian no longer offers {sub.file} (source package "
                     f"{sub.package}); update the pin in {__file__}")
        urllib.request.urlretrieve(uri, path.with_suffix(".part"))
        path.with_suffix(".part").rename(path)
        if cpython.sha256(path) != sub.digest:
            sys.exit(f"[pyeval] {path}: SHA-256 does not match the pinned one")


def fetch_crate(sub, downloads, log):
    """A crate, fetched by cargo into its own cache through a throwaway manifest that asks for
    exactly that version, copied to `downloads` and checked (cargo checks it against the
    registry's index too)."""
    name, version = sub.package, sub.crate
    work = downloads / f"{name}-{version}-fetch"
    (work / "src").mkdir(parents=True, exist_ok=True)
    (work / "src" / "lib.rs").write_text("")
    (work / "Cargo.toml").write_text(
        f'[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n\n'
        f'[dependencies]\n{name} = "={version}"\n')
    run(["cargo", "fetch", "--manifest-path", work / "Cargo.toml"], log)
    home = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
    found = sorted((home / "registry" / "cache").glob(f"*/{sub.file}"))
    if not found:
        sys.exit(f"[pyeval] cargo fetched no {sub.file} into {home}/registry/cache")
    shutil.copyfile(found[0], downloads / sub.file)
    shutil.rmtree(work)
    if cpython.sha256(downloads / sub.file) != sub.digest:
        sys.exit(f"[pyeval] {downloads / sub.file}: SHA-256 does not match the pinned one")


def add_subprojects(spec, src, downloads):
    """Unpacks the spec's subprojects into the source tree, as its meson expects them."""
    for sub in spec.subprojects:
        dest = src / "subprojects" / sub.directory
        shutil.rmtree(dest, ignore_errors=True)
        with tarfile.open(downloads / sub.file) as tar:
            top = tar.getnames()[0].split("/")[0]
            tar.extractall(dest.parent / ".unpack", filter="data")
        (dest.parent / ".unpack" / top / (sub.inner or "")).rename(dest)
        shutil.rmtree(dest.parent / ".unpack")
        if sub.overlay:
            shutil.copytree(src / sub.overlay, dest, dirs_exist_ok=True)
        if sub.patch().is_file():
            apply_diff(sub.patch(), dest)
        if sub.wrap:
            (src / "subprojects" / f"{sub.wrap}.wrap").write_text(
                f"[wrap-file]\ndirectory = {sub.directory}\n")


def fetch_cxx(downloads, dest, log):
    """libc++ and libc++abi for wasm32 from Debian's archive, unpacked into dest."""
    for package, deb, digest in CXX_DEBS:
        path = downloads / deb
        if not (path.is_file() and cpython.sha256(path) == digest):
            run(["apt-get", "download", package], log, cwd=downloads)
            if cpython.sha256(path) != digest:
                sys.exit(f"[pyeval] {path}: SHA-256 does not match the pinned one")
        run(["dpkg-deb", "-x", path, dest], log)
    return dest / "usr/lib/llvm-19"


def write_tools(work, cpython_dir, native_python, cxx, venv, spec, needs):
    """Wrappers and the cross file meson is given."""
    bin_ = work / "bin"
    bin_.mkdir(parents=True, exist_ok=True)
    toolchain = cpython_dir / "toolchain/bin"
    # The build machine's python, answering sysconfig questions as the wasm build would.
    sysconfig_dir = work / "sysconfig"
    sysconfig_dir.mkdir(exist_ok=True)
    shutil.copy(cpython_dir / "stdlib" / f"{WASI_SYSCONFIG}.py", sysconfig_dir)
    (sysconfig_dir / "sitecustomize.py").write_text(SYSCONFIG_PATCH)
    # Build scripts it runs import the build tools (pandas' import Cython's Tempita), and
    # ask a package compiled against for its headers (`numpy.get_include()`): a module of
    # that name answers with the headers of the wasm build.
    for need in needs:
        name = json.loads((need / "manifest.json").read_text())["name"]
        (sysconfig_dir / name).mkdir(exist_ok=True)
        (sysconfig_dir / name / "__init__.py").write_text(
            f"def get_include():\n    return {str(need / 'include')!r}\n")
    tools = next(venv.glob("lib/python3*/site-packages"))
    python = bin_ / "python"
    python.write_text(
        "#!/bin/sh\n"
        f"export _PYTHON_SYSCONFIGDATA_NAME={WASI_SYSCONFIG}\n"
        f"export PYTHONPATH={sysconfig_dir}:{tools}\n"
        f"export PYEVAL_WASI_INCLUDE={cpython_dir / 'include/python3.13'}\n"
        f'exec {native_python} "$@"\n')
    link = bin_ / "link-static"
    link.write_text(LINK_STATIC.format(python=sys.executable, ar=toolchain / "llvm-ar"))
    # pybind11's own pybind11-config would add the build machine's Python headers.
    pybind11 = bin_ / "pybind11-config"
    pybind11.write_text(PYBIND11_CONFIG.format(
        version=pybind11_version(), include=next(venv.glob("lib/python3*/site-packages"))
        / "pybind11/include"))
    cxx_include = cxx / "include/wasm32-wasi/c++/v1"
    for tool in (python, link, pybind11):
        tool.chmod(0o755)

    def quoted(items):
        return "[" + ", ".join(f"'{i}'" for i in items) + "]"

    cross = work / "cross.ini"
    cross.write_text(f"""\
[binaries]
c = {quoted([link, toolchain / 'clang'])}
cpp = {quoted([link, toolchain / 'clang++', '-nostdinc++', '-isystem', cxx_include])}
ar = '{toolchain / "llvm-ar"}'
python = '{python}'
cython = '{venv / "bin/cython"}'
pybind11-config = '{pybind11}'

[host_machine]
system = 'wasi'
cpu_family = 'wasm32'
cpu = 'wasm32'
endian = 'little'

[properties]
needs_exe_wrapper = true
longdouble_format = 'IEEE_QUAD_LE'

[built-in options]
c_args = {quoted(CFLAGS + spec.flags)}
cpp_args = {quoted(CXXFLAGS + spec.cxx_flags())}
""")
    return cross


# sysconfig's paths come from the running interpreter's prefix, not its sysconfig data:
# point the include directories at the wasm build's headers.
SYSCONFIG_PATCH = '''\
import os
import sysconfig

_get_paths = sysconfig.get_paths


def get_paths(*args, **kwargs):
    paths = _get_paths(*args, **kwargs)
    paths["include"] = paths["platinclude"] = os.environ["PYEVAL_WASI_INCLUDE"]
    return paths


sysconfig.get_paths = get_paths
sysconfig.get_path = lambda name, *a, **k: get_paths(*a, **k)[name]
'''

PYBIND11_CONFIG = """\
#!/bin/sh
case "$1" in
  --version) echo {version} ;;
  --includes) echo -I{include} ;;
  *) echo "pybind11-config: $1 is not answered here" >&2; exit 2 ;;
esac
"""


def pybind11_version():
    """pybind11's version as pinned in the build requirements."""
    for line in BUILD_REQUIREMENTS.read_text().splitlines():
        if line.startswith("pybind11=="):
            return line.split("==")[1].split()[0]
    sys.exit(f"[pyeval] {BUILD_REQUIREMENTS} pins no pybind11")


# The compiler as meson calls it, except that code is not position-independent (it is
# linked statically) and a shared module (a Python extension) is made into a static
# archive of its objects and archives, for the guest to link.
LINK_STATIC = '''\
#!{python}
import os, subprocess, sys

args = [a for a in sys.argv[1:] if a not in ("-fPIC", "-fpic")]
if "-shared" not in args:
    os.execv(args[0], args)
out = args[args.index("-o") + 1]
inputs = [a for a in args[1:] if not a.startswith("-") and a != out
          and (a.endswith(".o") or a.endswith(".a") or a.endswith(".obj"))]
if os.path.exists(out):
    os.remove(out)
objects = [a for a in inputs if not a.endswith(".a")]
archives = [a for a in inputs if a.endswith(".a")]
subprocess.run(["{ar}", "qc", out, *objects], check=True)
for archive in archives:
    subprocess.run(["{ar}", "qcL", out, archive], check=True)
subprocess.run(["{ar}", "s", out], check=True)
'''


def build(name, version, digest, cache, cpython_dir, needs, out):
    spec = SPECS[name]
    work = cache / f"{name}-build-{out.name.rsplit('-', 1)[1]}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / "build.log"
    downloads = cache / "downloads"
    started = time.time()
    print(f"[pyeval] {name}: fetching sources and build tools ...", flush=True)
    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv], log)
    run([venv / "bin/pip", "install", "--quiet", "--disable-pip-version-check",
         "--require-hashes", "--no-deps", "-r", BUILD_REQUIREMENTS], log)
    sdist = fetch_sdist(name, version, digest, downloads, log, venv / "bin/python")
    fetch_sources(spec.subprojects, downloads, log)
    cxx = fetch_cxx(downloads, work / "cxx", log)
    with tarfile.open(sdist) as tar:
        tar.extractall(work, filter="data")
    src = work / f"{name}-{version}"
    apply_patch(name, version, src)
    add_subprojects(spec, src, downloads)
    if spec.meson_build:
        shutil.copy(MESON_BUILDS / spec.meson_build, src / "meson.build")
    native_python = cpython.selected_build().build_python()
    cross = write_tools(work, cpython_dir, native_python, cxx, venv, spec, needs)
    # Cython finds the .pxd files of the packages compiled against on its path.
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
           "PYTHONPATH": ":".join(str(n / "site") for n in needs)}
    meson = [venv / "bin/python", src / spec.meson] if spec.meson else [venv / "bin/meson"]
    print(f"[pyeval] {name}: configuring ...", flush=True)
    run([*meson, "setup", "--cross-file", cross, "--prefix", "/", "-Dpython.purelibdir=site",
         "-Dpython.platlibdir=site", *spec.options, work / "build", src], log, env=env)
    print(f"[pyeval] {name}: compiling (log: {log}) ...", flush=True)
    run([venv / "bin/ninja", "-C", work / "build"], log, env=env)
    stage = work / "stage"
    tags = ["--tags", spec.tags] if spec.tags else []
    run([*meson, "install", "-C", work / "build", "--destdir", stage, *tags], log, env=env)
    collect(spec, stage / "site", out, cxx)
    (out / "manifest.json").write_text(json.dumps({
        "name": name, "version": version, "sha256": digest, "meson_options": spec.options,
        "flags": spec.flags,
        "with": [n.name for n in needs], "cflags": CFLAGS, "cxxflags": CXXFLAGS,
        "cxx": [d for _, d, _ in CXX_DEBS], "seconds": round(time.time() - started),
    }, indent=2) + "\n")
    shutil.rmtree(work)


def collect(spec, site, out, cxx):
    """Moves the extension archives to lib/ and the Python files to site/."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "lib").mkdir(parents=True)
    extensions = []
    for archive in sorted(site.rglob("*.so")):
        rel = archive.relative_to(site)
        dotted = ".".join(rel.parent.parts + (rel.name.split(".")[0],))
        name = f"lib{dotted.replace('.', '_')}.a"
        shutil.move(archive, tmp / "lib" / name)
        extensions.append(f"{dotted} {name}")
    for lib in CXX_LIBS:
        shutil.copy(cxx / "lib/wasm32-wasi" / lib, tmp / "lib" / lib)
    # The package's own tests stay out of the component: tests/ keeps them for its test
    # runner (`just numpy-tests`).
    for tests in sorted(site.rglob("tests"), reverse=True):
        if tests.is_dir():
            dest = tmp / "tests" / tests.relative_to(site)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(tests, dest)
    # The C headers (generated ones included) for packages compiled against this one, and
    # what only other builds use: not part of the component.
    if spec.headers:
        shutil.move(site / spec.headers, tmp / "include")
    for path in spec.drop:
        shutil.rmtree(site / path)
    shutil.move(site, tmp / "site")
    (tmp / "extensions.txt").write_text("\n".join(extensions) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def output_dir(name, version, digest, needs):
    """Where the build of this package, version and inputs goes (built or not)."""
    cpython_dir = cpython.selected_build().out
    key = inputs_hash(name, version, digest, cpython_dir, needs)
    return cpython.cache_root() / f"{name}-{version}-{key}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(SPECS))
    parser.add_argument("version")
    parser.add_argument("sha256")
    parser.add_argument("--with", dest="needs", type=Path, action="append", default=[],
                        metavar="DIR", help="the output of a package this one compiles against")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args()
    cpython_dir = cpython.selected_build().out
    if not (cpython_dir / "manifest.json").is_file():
        sys.exit("[pyeval] no CPython build for this checkout: run `just build-cpython` first")
    for need in args.needs:
        if not (need / "manifest.json").is_file():
            sys.exit(f"[pyeval] {need}: not a finished build of this tool")
    out = output_dir(args.name, args.version, args.sha256, args.needs)
    if args.force or not (out / "manifest.json").is_file():
        build(args.name, args.version, args.sha256, cpython.cache_root(), cpython_dir,
              args.needs, out)
    print(out)


if __name__ == "__main__":
    main()
