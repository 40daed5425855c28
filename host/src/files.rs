//! Files crossing the sandbox's edge without a mount: given to evaluated code in its
//! working directory (`/tmp` of the scratch file system), and returned when an evaluation
//! creates or changes them there.
//!
//! ```no_run
//! use pyeval::{Evaluator, Grants, Limits};
//!
//! let grants = Grants::new().with_file("data.csv", b"x\n1\n2\n".to_vec());
//! let code = "import csv\nrows = list(csv.DictReader(open('data.csv')))\n\
//!             open('total.txt', 'w').write(str(sum(int(r['x']) for r in rows)))";
//! let outcome = Evaluator::new()?.eval_with(code, &Limits::default(), &grants)?;
//! assert_eq!(outcome.files[0].path, "total.txt");
//! assert_eq!(outcome.files[0].data.as_deref(), Some(&b"3"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use bytes::Bytes;
use serde::{Serialize, Serializer};

use crate::error::EvalError;

/// Default number of files given to an evaluation, and returned from one.
pub const DEFAULT_MAX_FILES: u32 = 100;
/// Default bytes of files given to an evaluation, and returned from one, in all.
pub const DEFAULT_FILE_BYTES: u64 = 16 << 20;

/// The longest path of a file given or returned, and of one name in it (Linux's).
pub(crate) const PATH_MAX: usize = 4096;
const NAME_MAX: usize = 255;

/// How many files, of how many bytes in all, cross the sandbox's edge each way per
/// evaluation: given to it (more is refused before anything runs) and returned from it
/// (the first ones are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileLimits {
    /// Most files.
    pub max_files: u32,
    /// Most bytes of their contents together.
    pub max_bytes: u64,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            max_files: DEFAULT_MAX_FILES,
            max_bytes: DEFAULT_FILE_BYTES,
        }
    }
}

impl FileLimits {
    /// At most `max_files` files of at most `max_bytes` bytes in all, each way.
    pub fn new(max_files: u32, max_bytes: u64) -> Self {
        FileLimits {
            max_files,
            max_bytes,
        }
    }
}

/// A file given to evaluated code: `path` under its working directory, with `data`.
/// Cloning it shares the bytes (grants are cloned into every fresh instance).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InputFile {
    /// Relative and `/`-separated, with no empty, `.` or `..` part: `data.csv`, `in/a.csv`.
    pub path: String,
    /// Its contents.
    pub data: Bytes,
}

impl InputFile {
    /// The file `path` holding `data` (a `Vec<u8>`, `String` or static bytes, taken
    /// without a copy).
    pub fn new(path: impl Into<String>, data: impl Into<Bytes>) -> Self {
        InputFile {
            path: path.into(),
            data: data.into(),
        }
    }
}

/// A file an evaluation created or changed under its working directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct OutputFile {
    /// Its path under the working directory, as [`InputFile::path`].
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type, guessed from its name (`text/csv`, `image/png`), or
    /// `application/octet-stream`.
    pub media_type: String,
    /// Its contents; `None` when they did not fit in what was left of
    /// [`FileLimits::max_bytes`] (the file is named, its bytes are not returned).
    #[serde(serialize_with = "base64_or_null")]
    pub data: Option<Vec<u8>>,
}

impl OutputFile {
    pub(crate) fn new(path: String, size: u64, data: Option<Vec<u8>>) -> Self {
        let media_type = media_type(&path);
        OutputFile {
            path,
            size,
            media_type,
            data,
        }
    }
}

/// The media type of a file named `path`, from its extension.
pub fn media_type(path: &str) -> String {
    mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_owned()
}

fn base64_or_null<S: Serializer>(data: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    match data {
        Some(bytes) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes)),
        None => s.serialize_none(),
    }
}

/// Why `path` cannot name a file under the working directory, if it cannot.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("a file's path is empty".into());
    }
    if path.contains('\0') {
        return Err(format!("{path:?}: a file's path may not hold a NUL byte"));
    }
    if path.starts_with('/') {
        return Err(format!(
            "{path}: a file's path is relative to the working directory, not absolute"
        ));
    }
    if path.len() > PATH_MAX {
        return Err(format!("a file's path is longer than {PATH_MAX} bytes"));
    }
    for part in path.split('/') {
        match part {
            "" | "." | ".." => {
                return Err(format!(
                    "{path}: a file's path may not have an empty, `.` or `..` part"
                ))
            }
            long if long.len() > NAME_MAX => {
                return Err(format!("{path}: a name is longer than {NAME_MAX} bytes"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses `files` that cannot all be given: a bad path, the same path twice, more files
/// or bytes than `limits` allow, more bytes than an instance of `memory_bytes` holds.
pub(crate) fn check(
    files: &[InputFile],
    limits: FileLimits,
    memory_bytes: usize,
) -> Result<(), EvalError> {
    let refuse = |why: String| Err(EvalError::InvalidFiles(why));
    if files.len() > limits.max_files as usize {
        return refuse(format!(
            "{} files given, more than the limit of {}",
            files.len(),
            limits.max_files
        ));
    }
    let total: u64 = files.iter().map(|f| f.data.len() as u64).sum();
    if total > limits.max_bytes {
        return refuse(format!(
            "the files given hold {total} bytes, more than the limit of {}",
            limits.max_bytes
        ));
    }
    if total > memory_bytes as u64 {
        return refuse(format!(
            "the files given hold {total} bytes, more than the memory limit of {memory_bytes}"
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for file in files {
        check_path(&file.path).or_else(refuse)?;
        if !seen.insert(file.path.as_str()) {
            return refuse(format!("{}: given twice", file.path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_working_directory() {
        for good in ["a.csv", "in/a.csv", "x y/ü.txt", ".hidden", "a..b"] {
            assert_eq!(check_path(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/",
            "./a",
            "a\0b",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_path(&"a".repeat(256)).is_err());
        assert!(check_path(&["a"; 2100].join("/")).is_err());
    }

    #[test]
    fn counts_bytes_and_duplicates_are_refused() {
        let limits = FileLimits::new(2, 10);
        let file = |path: &str, n| InputFile::new(path, vec![0; n]);
        assert!(check(&[file("a", 5), file("b", 5)], limits, 100).is_ok());
        for (files, words) in [
            (vec![file("a", 1), file("b", 1), file("c", 1)], "3 files"),
            (vec![file("a", 6), file("b", 5)], "11 bytes"),
            (vec![file("a", 1), file("a", 1)], "given twice"),
        ] {
            match check(&files, limits, 100) {
                Err(EvalError::InvalidFiles(why)) => assert!(why.contains(words), "{why}"),
                other => panic!("{other:?}"),
            }
        }
        match check(&[file("a", 9)], limits, 8) {
            Err(EvalError::InvalidFiles(why)) => assert!(why.contains("memory limit"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn media_types_come_from_names() {
        assert_eq!(media_type("chart.png"), "image/png");
        assert_eq!(media_type("out/data.csv"), "text/csv");
        assert_eq!(media_type("blob"), "application/octet-stream");
    }
}
