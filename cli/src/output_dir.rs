//! `--output-dir`: the files an evaluation created or changed, and its charts, written on
//! the host.

use std::path::Path;

use anyhow::{Context, Result};
use pyeval::{Outcome, OutputFile};

/// Writes the files of `outcome` under `dir` at their paths and its charts as
/// `chart-N.png`, and says on stderr which were left out (over the files limits).
pub fn write(dir: &Path, outcome: &Outcome) -> Result<()> {
    write_all(dir, &outcome.files)?;
    write_all(dir, &outcome.charts)?;
    for (dropped, what) in [
        (outcome.files_dropped, "changed files"),
        (outcome.charts_dropped, "charts"),
    ] {
        if dropped > 0 {
            eprintln!(
                "pyeval: {dropped} more {what} were not written: over the limit on files \
                 (--max-files)"
            );
        }
    }
    Ok(())
}

/// Says on stderr that `outcome` has charts that are not saved (without --output-dir).
pub fn note_unsaved_charts(outcome: &Outcome) {
    let drawn = outcome.charts.len() as u32 + outcome.charts_dropped;
    if drawn > 0 {
        eprintln!("pyeval: {drawn} chart(s) drawn; --output-dir DIR saves them as chart-N.png");
    }
}

fn write_all(dir: &Path, files: &[OutputFile]) -> Result<()> {
    for file in files {
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
    Ok(())
}
