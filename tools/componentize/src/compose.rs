//! `pyeval-compose MODULE.wasm PYEVAL.wasm OUT.wasm`: turns a wasm32-wasip1 core module
//! whose world imports `pyeval:sandbox/evaluator` (such as examples/calculator) into a
//! component, and plugs pyeval.wasm's evaluator into it: one component, runnable alone.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [module, pyeval, out] = args.as_slice() else {
        bail!("usage: pyeval-compose MODULE.wasm PYEVAL.wasm OUT.wasm");
    };
    let bytes = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    let socket = wit_component::ComponentEncoder::default()
        .module(&bytes)?
        .adapter(
            "wasi_snapshot_preview1",
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .validate(true)
        .encode()
        .context("turning the module into a component")?;
    // The composer reads the root component from a file.
    let root = out.with_extension("socket.wasm");
    std::fs::write(&root, &socket)?;
    let config = wasm_compose::config::Config {
        definitions: vec![pyeval.clone()],
        ..Default::default()
    };
    let composed = wasm_compose::composer::ComponentComposer::new(&root, &config)
        .compose()
        .context("composing with pyeval.wasm");
    std::fs::remove_file(&root)?;
    std::fs::write(out, composed?).with_context(|| format!("writing {}", out.display()))?;
    println!("[pyeval] composed: {}", out.display());
    Ok(())
}
