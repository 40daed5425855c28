//! `pyeval-componentize GUEST.wasm STDLIB_DIR OUT.wasm [--no-precompile]`: the last steps
//! of `just build-component` (and, without step 4, of `just build-component-with`).
//!
//! 1. Check that the guest module imports nothing but `wasi_snapshot_preview1` functions
//!    and the world's own imports (rustc links wasm with `--allow-undefined`, so a
//!    missing C symbol would otherwise become an import that no host provides).
//! 2. Pre-initialize it with wasmtime-wizer: run `pyeval_init` (Python starts, the common
//!    stdlib is imported) with the stdlib mounted read-only, and snapshot the result.
//! 3. Wrap the snapshot with the preview1 reactor adapter into a component.
//! 4. Compile the component with the library's engine settings into `OUT.cwasm` (and
//!    `OUT.cwasm.source`, the SHA-256 of the component it is compiled from on its first
//!    line, then that of this program, whose engine settings compiled it), which the
//!    library embeds so a first run on a machine does not compile.
//!
//! The output is rewritten only when an input changed: a hash of the inputs is kept beside
//! it in `OUT.wasm.inputs`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
use wasmtime::{Config, Engine, Linker, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{Deterministic, FsPerms, HostMonotonicClock, HostWallClock, WasiCtxBuilder};
use wasmtime_wizer::Wizer;

use pyeval_engine::GUEST_STDLIB;

fn main() -> Result<()> {
    let mut args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    // Only the embedded component needs its compiled form made here; the library compiles
    // (and caches) a component loaded from a file on first use.
    let compile = match args.iter().position(|a| a == "--no-precompile") {
        Some(at) => {
            args.remove(at);
            false
        }
        None => true,
    };
    let [guest, stdlib, out] = args.as_slice() else {
        bail!("usage: pyeval-componentize GUEST.wasm STDLIB_DIR OUT.wasm [--no-precompile]");
    };
    let module = std::fs::read(guest).with_context(|| format!("reading {}", guest.display()))?;
    // This program's own hash: its snapshot code and its engine settings are inputs too.
    let tool = hex::encode(Sha256::digest(std::fs::read(std::env::current_exe()?)?));
    let inputs = inputs_hash(&module, stdlib, &tool)?;
    let stamp = out.with_extension("wasm.inputs");
    let built = out.is_file() && portable_path(out).is_file();
    if built && std::fs::read_to_string(&stamp).ok().as_deref() == Some(inputs.as_str()) {
        println!("[pyeval] component up to date: {}", out.display());
        if !compile {
            return Ok(());
        }
        let component = std::fs::read(out).with_context(|| format!("reading {}", out.display()))?;
        return precompile(out, &component, &tool);
    }

    check_imports(&module)?;
    let started = Instant::now();
    let snapshot = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(preinitialize(&module, stdlib))
        .context("pre-initializing the guest")?;
    check_restorable(&snapshot)?;
    println!(
        "[pyeval] snapshot taken ({:.1}s, {:.1} MB)",
        started.elapsed().as_secs_f64(),
        snapshot.len() as f64 / 1e6
    );
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let component = encode(&snapshot, out, false)?;
    encode(&snapshot, &portable_path(out), true)?;
    std::fs::write(&stamp, &inputs)?;
    if !compile {
        return Ok(());
    }
    precompile(out, &component, &tool)
}

/// Where the portable form of the component `out` goes: `NAME-portable.wasm` beside it.
fn portable_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().unwrap_or_default().to_string_lossy();
    out.with_file_name(format!("{stem}-portable.wasm"))
}

/// The core module's import of `host-tools`, which the portable form answers itself.
const HOST_TOOLS: &str = "pyeval:sandbox/host-tools@0.1.0";

/// `host-tools` for a host that grants no tools, as an adapter module (it writes into the
/// guest's memory, which adapters import): every call is refused with an empty message,
/// `wait` finds nothing, `cancel` does nothing. The results follow the canonical ABI:
/// `result<u64, refusal>` is a byte tag at 0 (1: err) with the refusal at 8 (tag 1,
/// `refused`, then its string as pointer and length); `list<finished>` is a pointer and a
/// length.
const NO_TOOLS_ADAPTER: &str = r#"
(module
  (import "env" "memory" (memory 0))
  (func (export "start") (param i32 i32 i32 i32 i32)
    (i32.store8 (local.get 4) (i32.const 1))
    (i32.store8 offset=8 (local.get 4) (i32.const 1))
    (i32.store offset=12 (local.get 4) (i32.const 0))
    (i32.store offset=16 (local.get 4) (i32.const 0)))
  (func (export "wait") (param i32 i64 i32)
    (i32.store (local.get 2) (i32.const 0))
    (i32.store offset=4 (local.get 2) (i32.const 0)))
  (func (export "cancel") (param i64)))
"#;

/// Makes the snapshot a component (with the preview1 adapter), stamps it and writes it to
/// `out`. A `portable` one answers `host-tools` itself, so it imports only WASI and runs
/// in any host; the other imports `host-tools` from the host that grants tools.
fn encode(snapshot: &[u8], out: &Path, portable: bool) -> Result<Vec<u8>> {
    let mut encoder = wit_component::ComponentEncoder::default()
        .module(snapshot)?
        .adapter(
            "wasi_snapshot_preview1",
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?;
    if portable {
        encoder = encoder.adapter(HOST_TOOLS, &wat::parse_str(NO_TOOLS_ADAPTER)?)?;
    }
    let mut component = encoder
        .validate(true)
        .encode()
        .context("building the component")?;
    add_stamp(&mut component);
    std::fs::write(out, &component).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "[pyeval] component written: {} ({:.1} MB)",
        out.display(),
        component.len() as f64 / 1e6
    );
    Ok(component)
}

/// Appends the custom section naming the pyeval this component is built for.
fn add_stamp(component: &mut Vec<u8>) {
    let name = pyeval_engine::STAMP_SECTION.as_bytes();
    let stamp = pyeval_engine::stamp();
    let mut body = leb128(name.len());
    body.extend_from_slice(name);
    body.extend_from_slice(stamp.as_bytes());
    component.push(0); // custom section id
    component.extend(leb128(body.len()));
    component.extend(body);
}

/// `n` as unsigned LEB128.
fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Writes the compiled form of `component` (the bytes of `out`) beside it, unless it is
/// there already. Beside it goes the component's SHA-256 (which the library's build
/// checks) and `tool`, the hash of this program, whose engine settings compiled it:
/// settings changed make it stale too.
fn precompile(out: &Path, component: &[u8], tool: &str) -> Result<()> {
    let digest = hex::encode(Sha256::digest(component));
    let stamp = format!("{digest}\n{tool}\n");
    let compiled = out.with_extension("cwasm");
    let source = out.with_extension("cwasm.source");
    if compiled.is_file() && std::fs::read_to_string(&source).ok().as_deref() == Some(&stamp) {
        return Ok(());
    }
    let started = Instant::now();
    let bytes =
        pyeval_engine::precompile_evaluator(component).context("compiling the component")?;
    std::fs::write(&compiled, &bytes).with_context(|| format!("writing {}", compiled.display()))?;
    std::fs::write(&source, &stamp)?;
    println!(
        "[pyeval] compiled form written: {} ({:.1} MB, {:.1}s)",
        compiled.display(),
        bytes.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Hash of the guest module, the stdlib it is initialized with, and `tool`, this
/// program's hash.
fn inputs_hash(module: &[u8], stdlib: &Path, tool: &str) -> Result<String> {
    let mut sha = Sha256::new();
    sha.update(module);
    let manifest = stdlib.join("../manifest.json");
    sha.update(
        std::fs::read(&manifest).with_context(|| format!("reading {}", manifest.display()))?,
    );
    sha.update(tool);
    Ok(hex::encode(sha.finalize()))
}

/// Where the guest's imports may come from: preview1 (through the adapter), and the
/// interfaces the `python` world imports itself.
const ALLOWED_IMPORTS: &[&str] = &[
    "wasi_snapshot_preview1",
    "wasi:cli/exit@0.2.12",
    "wasi:http/types@0.2.12",
    "wasi:http/outgoing-handler@0.2.12",
    "wasi:io/error@0.2.12",
    "wasi:io/poll@0.2.12",
    "wasi:io/streams@0.2.12",
    "pyeval:sandbox/host-tools@0.1.0",
];

/// Fails unless every import is a function of [`ALLOWED_IMPORTS`].
fn check_imports(module: &[u8]) -> Result<()> {
    let mut strays = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        if let wasmparser::Payload::ImportSection(reader) = payload? {
            for import in reader.into_imports() {
                let import = import?;
                let is_func = matches!(import.ty, wasmparser::TypeRef::Func(_));
                if !ALLOWED_IMPORTS.contains(&import.module) || !is_func {
                    strays.push(format!("{}::{}", import.module, import.name));
                }
            }
        }
    }
    if !strays.is_empty() {
        bail!(
            "the guest module has imports no WASI host provides (unresolved symbols at link \
             time?): {}",
            strays.join(", ")
        );
    }
    Ok(())
}

/// Fails unless the module's only mutable global is its stack pointer: a session's dump
/// is its memory alone (wit/pyeval.wit, `state`), which holds only if every other global
/// is the same in every instance between calls.
fn check_restorable(module: &[u8]) -> Result<()> {
    let mut mutable = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        if let wasmparser::Payload::GlobalSection(reader) = payload? {
            for global in reader {
                let ty = global?.ty;
                if ty.mutable {
                    mutable.push(ty.content_type);
                }
            }
        }
    }
    if mutable != [wasmparser::ValType::I32] {
        bail!(
            "the guest module defines the mutable globals {mutable:?}, not only the stack \
             pointer: a session's dump would not hold its state"
        );
    }
    Ok(())
}

/// Runs `pyeval_init` under wizer and returns the snapshotted module.
async fn preinitialize(module: &[u8], stdlib: &Path) -> Result<Vec<u8>> {
    let engine = Engine::new(&Config::new())?;
    // Random bytes and clocks are fixed while the snapshot is taken, so the same inputs
    // give the same component; every instance reseeds what it needs on its first call.
    let seed = Sha256::digest(b"pyeval snapshot").to_vec();
    let wasi = WasiCtxBuilder::new()
        .inherit_stdout()
        .inherit_stderr()
        .secure_random(Deterministic::new(seed.clone()))
        .insecure_random(Deterministic::new(seed))
        .insecure_random_seed(0)
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .preopened_dir(stdlib, GUEST_STDLIB, FsPerms::ReadOnly)?
        // The guest's PYTHONHOME, read once while initializing: the prefix of GUEST_STDLIB.
        .env("PYEVAL_PYTHON_HOME", python_home()?)
        .build_p1();
    let mut store = Store::new(&engine, wasi);
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |cx| cx)?;
    // The world's own import; initialization never exits.
    linker.func_wrap(
        "wasi:cli/exit@0.2.12",
        "exit-with-code",
        |_: i32| -> wasmtime::Result<()> {
            wasmtime::bail!("the guest exited while it was being pre-initialized")
        },
    )?;
    let snapshot = Wizer::new()
        .init_func("pyeval_init")
        .run(&mut store, module, async |store, module| {
            // No tool is granted while initializing: `host-tools` is never called.
            linker.define_unknown_imports_as_traps(module)?;
            linker.instantiate_async(store, module).await
        })
        .await?;
    Ok(snapshot)
}

/// The prefix under which CPython finds [`GUEST_STDLIB`] (`PREFIX/lib/pythonX.Y`).
fn python_home() -> Result<&'static str> {
    Path::new(GUEST_STDLIB)
        .parent()
        .and_then(Path::parent)
        .and_then(Path::to_str)
        .context("GUEST_STDLIB has no prefix")
}

/// A clock that always reads the same time (the epoch).
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::{check_imports, check_restorable};

    #[test]
    fn only_the_stack_pointer_may_change_between_calls() {
        let one = wat::parse_str("(module (global (mut i32) (i32.const 8)))").unwrap();
        check_restorable(&one).unwrap();
        let two = wat::parse_str(
            "(module (global (mut i32) (i32.const 8)) (global (mut i32) (i32.const 0)))",
        )
        .unwrap();
        assert!(check_restorable(&two).is_err());
        let constant =
            wat::parse_str("(module (global (mut i32) (i32.const 8)) (global i32 (i32.const 1)))")
                .unwrap();
        check_restorable(&constant).unwrap();
    }

    #[test]
    fn only_preview1_functions_may_be_imported() {
        let clean = wat::parse_str(
            r#"(module (import "wasi_snapshot_preview1" "fd_write"
                 (func (param i32 i32 i32 i32) (result i32))))"#,
        )
        .unwrap();
        check_imports(&clean).unwrap();

        let stray = wat::parse_str(r#"(module (import "env" "PyMissing_Symbol" (func)))"#).unwrap();
        let error = check_imports(&stray).unwrap_err().to_string();
        assert!(error.contains("env::PyMissing_Symbol"), "{error}");
    }
}
