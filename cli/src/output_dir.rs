//! `--output-dir`: the files an evaluation created or changed, written on the host.

use std::path::Path;

use anyhow::{Context, Result};
use pyeval::Outcome;

/// Writes the files of `outcome` under `dir` at their paths, and says on stderr which
/// were left out (over the files limits).
pub fn write(dir: &Path, outcome: &Outcome) -> Result<()> {
    for file in &outcome.files {
        let Some(data) = &file.data else {
            eprintln!(
                "pyeval: {} ({} bytes) was not written: over the limit on files' bytes \
                 (--max-file-bytes)",
                file.path, file.size
            );
            continue;
        };
        // The library returns only relative paths without `..`: they stay under `dir`.
        let target = dir.join(&file.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("--output-dir: cannot make {}", parent.display()))?;
        }
        std::fs::write(&target, data)
            .with_context(|| format!("--output-dir: cannot write {}", target.display()))?;
    }
    if outcome.files_dropped > 0 {
        eprintln!(
            "pyeval: {} more changed files were not written: over the limit on files \
             (--max-files)",
            outcome.files_dropped
        );
    }
    Ok(())
}
