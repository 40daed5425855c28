//! Links libpython and its archives, and packs the compiled standard library into the
//! module (the component carries its own stdlib; nothing is mounted at run time).

use std::fs;
use std::path::{Path, PathBuf};

/// Static archives of the CPython build, in link order.
const ARCHIVES: &[&str] = &[
    "python3.13",
    "mpdec",
    "expat",
    "Hacl_Hash_SHA2",
    "sqlite3",
    "lzma",
    "bz2",
    "z",
];

/// wasi-libc's emulation libraries that CPython and sqlite use.
const WASI_EMULATION: &[&str] = &[
    "wasi-emulated-signal",
    "wasi-emulated-getpid",
    "wasi-emulated-process-clocks",
    "wasi-emulated-mman",
    "dl",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let cpython = std::env::var_os("PYEVAL_CPYTHON_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../target/cpython"));
    let cpython = cpython.canonicalize().unwrap_or_else(|_| {
        panic!(
            "no CPython build at {}: run `just build-cpython` first",
            cpython.display()
        )
    });
    println!("cargo:rerun-if-env-changed=PYEVAL_CPYTHON_DIR");
    println!(
        "cargo:rerun-if-changed={}",
        cpython.join("manifest.json").display()
    );

    println!(
        "cargo:rustc-link-search=native={}",
        cpython.join("lib").display()
    );
    println!(
        "cargo:rustc-link-search=native={}",
        cpython.join("sysroot/lib/wasm32-wasip1").display()
    );
    for archive in ARCHIVES {
        println!("cargo:rustc-link-lib=static={archive}");
    }
    for lib in WASI_EMULATION {
        println!("cargo:rustc-link-lib={lib}");
    }
    // CPython's C stack lives in linear memory; deep recursion needs more than Rust's 1 MiB.
    println!("cargo:rustc-link-arg=-zstack-size=8388608");

    compile_c(&cpython);
    wrap_wasi_calls();

    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let blob = pack_stdlib(&cpython.join("stdlib"));
    fs::write(out.join("stdlib.bin"), blob).unwrap();

    let packages = std::env::var_os("PYEVAL_PACKAGES_DIR").map(PathBuf::from);
    println!("cargo:rerun-if-env-changed=PYEVAL_PACKAGES_DIR");
    link_packages(&cpython, packages.as_deref(), &out);

    let tzdata = std::env::var_os("PYEVAL_TZDATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../target/tzdata"));
    println!("cargo:rerun-if-env-changed=PYEVAL_TZDATA_DIR");
    println!("cargo:rerun-if-changed={}", tzdata.join("zones").display());
    fs::write(out.join("tzdata.bin"), pack_tzdata(&tzdata)).unwrap();
}

/// Links the packages of PYEVAL_PACKAGES_DIR (made by tools/packages.py), if set: their
/// extension modules registered as built-in modules under their dotted names
/// (`packages.c`), their Python files packed (`packages.bin`, the layout of the stdlib's,
/// with data files flagged 2 and keyed by path), the modules to import before the
/// snapshot (`preload.txt`) and the code run then (`warmup.py`). Without it all are empty.
fn link_packages(cpython: &Path, dir: Option<&Path>, out: &Path) {
    let mut extensions = Vec::new();
    let mut preload = String::new();
    let mut warmup = String::new();
    let mut blob = pack(b"PYEVPKG1", Vec::new());
    if let Some(dir) = dir {
        println!("cargo:rerun-if-changed={}", dir.join("lock.toml").display());
        let listed = fs::read_to_string(dir.join("extensions.txt"))
            .unwrap_or_else(|e| panic!("{}: {e}; run tools/packages.py", dir.display()));
        println!(
            "cargo:rustc-link-search=native={}",
            dir.join("lib").display()
        );
        for line in listed.lines() {
            let (module, archive) = line.split_once(' ').expect("`module archive.a` lines");
            let lib = archive
                .strip_prefix("lib")
                .and_then(|a| a.strip_suffix(".a"));
            println!("cargo:rustc-link-lib=static={}", lib.expect("libNAME.a"));
            extensions.push(module.to_owned());
        }
        if !extensions.is_empty() {
            // numpy's C++ parts, long double in printf (numpy prints float128), and
            // compiler-rt's long double arithmetic (Rust's builtins lack the complex ones).
            let builtins = cpython.join("toolchain/clang-resource/lib/wasm32-unknown-wasip1");
            println!("cargo:rustc-link-search=native={}", builtins.display());
            for lib in [
                "c++",
                "c++abi",
                "c-printscan-long-double",
                "clang_rt.builtins",
            ] {
                println!("cargo:rustc-link-lib=static={lib}");
            }
        }
        preload = fs::read_to_string(dir.join("preload.txt")).unwrap();
        warmup = fs::read_to_string(dir.join("warmup.py")).unwrap();
        blob = pack_site(&dir.join("site"));
    }
    fs::write(out.join("packages.bin"), blob).unwrap();
    fs::write(out.join("preload.txt"), preload).unwrap();
    fs::write(out.join("warmup.py"), warmup).unwrap();

    let mut c = String::from("#include <Python.h>\n");
    for module in &extensions {
        let short = module.rsplit('.').next().unwrap();
        c += &format!("extern PyObject *PyInit_{short}(void);\n");
    }
    c += "static struct _inittab packages[] = {\n";
    for module in &extensions {
        let short = module.rsplit('.').next().unwrap();
        c += &format!("    {{\"{module}\", PyInit_{short}}},\n");
    }
    c += "    {0, 0}\n};\n";
    c += "int pyeval_packages_register(void) { return PyImport_ExtendInittab(packages); }\n";
    let source = out.join("packages.c");
    fs::write(&source, c).unwrap();
    let mut build = cc::Build::new();
    build
        .compiler(cpython.join("toolchain/bin/clang"))
        .archiver(cpython.join("toolchain/bin/llvm-ar"))
        .file(&source)
        .include(cpython.join("include/python3.13"))
        .opt_level(2);
    if !extensions.is_empty() {
        println!("cargo:rerun-if-changed=src/cxx_throw.c");
        build.file("src/cxx_throw.c");
    }
    build.compile("pyeval_packages");
}

/// Has the link send wasi-libc's calls of each `__wasi_X` that src/scratch/calls.rs
/// defines a `__wrap___wasi_X` for to that function (the scratch file system).
fn wrap_wasi_calls() {
    const CALLS: &str = "src/scratch/calls.rs";
    println!("cargo:rerun-if-changed={CALLS}");
    let source = fs::read_to_string(CALLS).unwrap();
    for line in source.lines() {
        if let Some(rest) = line.split("fn __wrap_").nth(1) {
            let name = rest.split('(').next().unwrap();
            println!("cargo:rustc-link-arg=--wrap={name}");
        }
    }
}

/// Builds src/compile_split.c and src/mt19937_seed.c against CPython's headers, internal
/// ones included, and src/sqlite_vfs.c against SQLite's.
fn compile_c(cpython: &Path) {
    println!("cargo:rerun-if-changed=src/compile_split.c");
    println!("cargo:rerun-if-changed=src/sqlite_vfs.c");
    println!("cargo:rerun-if-changed=src/mt19937_seed.c");
    let include = cpython.join("include/python3.13");
    cc::Build::new()
        .compiler(cpython.join("toolchain/bin/clang"))
        .archiver(cpython.join("toolchain/bin/llvm-ar"))
        .file("src/compile_split.c")
        .file("src/sqlite_vfs.c")
        .file("src/mt19937_seed.c")
        .include(&include)
        .include(include.join("internal"))
        .opt_level(2)
        .define("NDEBUG", None)
        .warnings(true)
        .extra_warnings(false)
        .compile("pyeval_c");
}

/// Packs the zone files that `zones` (one key a line) lists under `zoneinfo/`, keyed by
/// zone (flag 0), in the layout of [`pack`].
fn pack_tzdata(dir: &Path) -> Vec<u8> {
    let zones = fs::read_to_string(dir.join("zones")).unwrap_or_else(|e| {
        panic!(
            "no time-zone data at {}: {e}; run `just build-component`",
            dir.display()
        )
    });
    // The files of the `tzdata` package, keyed by their path in it.
    let mut entries: Vec<_> = zones
        .split_whitespace()
        .map(|key| {
            let data = fs::read(dir.join("zoneinfo").join(key)).unwrap();
            (format!("zoneinfo/{key}"), 0, data)
        })
        .collect();
    entries.push(("zones".to_owned(), 0, zones.into_bytes()));
    pack(b"PYEVTZD1", entries)
}

/// Packs the compiled modules of `site` as [`pack_stdlib`] does, and its data files keyed
/// by their path under `site`, flagged 2.
fn pack_site(site: &Path) -> Vec<u8> {
    let mut entries = compiled_modules(site);
    let mut data = Vec::new();
    collect_data(site, &mut data);
    data.sort();
    for path in data {
        let key = path
            .strip_prefix(site)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        entries.push((key, 2, fs::read(&path).unwrap()));
    }
    pack(b"PYEVPKG1", entries)
}

/// Files under `site` that no running package reads: source (Python, C, Cython), stubs,
/// compiled code (packed as modules), documents and images.
const NOT_DATA: &[&str] = &[
    "py", "pyc", "pyi", "typed", "h", "c", "pxd", "pyx", "md", "rst", "png", "template",
];

/// The data files under `dir`.
fn collect_data(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_data(&path, out);
        } else {
            let extension = path.extension().unwrap_or_default().to_string_lossy();
            if !NOT_DATA.contains(&extension.as_ref()) {
                out.push(path);
            }
        }
    }
}

/// Packs every compiled module of `stdlib`, keyed by module name and flagged 1 for a
/// package, its data the module's marshalled code (its .pyc minus the 16-byte header), in
/// the layout of [`pack`].
fn pack_stdlib(stdlib: &Path) -> Vec<u8> {
    pack(b"PYEVSTD1", compiled_modules(stdlib))
}

/// `(module name, 1 for a package else 0, marshalled code)` of every compiled module
/// under `root`, sorted by name.
fn compiled_modules(root: &Path) -> Vec<(String, u8, Vec<u8>)> {
    let mut modules = Vec::new();
    collect(root, root, &mut modules);
    modules.sort();
    modules
        .into_iter()
        .map(|(name, is_package, pyc)| {
            let code = fs::read(&pyc).unwrap_or_else(|e| panic!("reading {}: {e}", pyc.display()));
            (name, u8::from(is_package), code[16..].to_vec())
        })
        .collect()
}

/// `magic | u32 count | count × (u16 name length | name | u8 flag | u32 offset | u32 length)
/// | data`, offsets counted from the start of the blob, integers little-endian; bootstrap.py's
/// `read_packed` reads it.
fn pack(magic: &[u8; 8], entries: Vec<(String, u8, Vec<u8>)>) -> Vec<u8> {
    let index_len: usize = 12
        + entries
            .iter()
            .map(|(name, _, _)| 2 + name.len() + 9)
            .sum::<usize>();
    let mut index = Vec::with_capacity(index_len);
    let mut data = Vec::new();
    index.extend_from_slice(magic);
    index.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (name, flag, bytes) in &entries {
        index.extend_from_slice(&(name.len() as u16).to_le_bytes());
        index.extend_from_slice(name.as_bytes());
        index.push(*flag);
        index.extend_from_slice(&((index_len + data.len()) as u32).to_le_bytes());
        index.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        data.extend_from_slice(bytes);
    }
    assert_eq!(index.len(), index_len);
    index.extend_from_slice(&data);
    index
}

/// Finds `(module name, is package, .pyc path)` for every `.py` under `dir`.
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, bool, PathBuf)>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            let skip = name == "__pycache__" || name == "site-packages" || name == "lib-dynload";
            if !skip && path.join("__init__.py").is_file() {
                collect(root, &path, out);
            }
            continue;
        }
        let Some(stem) = name.strip_suffix(".py") else {
            continue;
        };
        let pyc = dir
            .join("__pycache__")
            .join(format!("{stem}.cpython-313.pyc"));
        if !pyc.is_file() {
            continue;
        }
        let rel = path.parent().unwrap().strip_prefix(root).unwrap();
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let is_package = stem == "__init__";
        if !is_package {
            parts.push(stem.to_owned());
        }
        if parts.is_empty() {
            continue;
        }
        out.push((parts.join("."), is_package, pyc));
    }
}
