//! Files crossing between the host and evaluated code through the working directory:
//! written in before an evaluation, listed (with their bytes) when an evaluation changed
//! them, read by path.

use std::cell::Cell;

use super::tree::{self, DirRef, Errno, Node};
use super::{SCRATCH, TMP};

thread_local! {
    /// The tree's last change when the current evaluation started.
    static EVAL_START: Cell<u64> = const { Cell::new(0) };
}

/// A changed file: its path under the working directory, size, and bytes if they fit.
pub struct Changed {
    pub path: String,
    pub size: u64,
    pub data: Option<Vec<u8>>,
}

/// Notes the start of an evaluation, which [`changed`] reports on.
pub fn evaluation_starts() {
    EVAL_START.with(|start| start.set(tree::last_change()));
}

/// The working directory (`/tmp`), unless code removed it.
fn working_dir() -> Option<DirRef> {
    SCRATCH.with(|scratch| {
        let root = scratch.borrow().root.clone();
        match tree::lookup(&root, &TMP.to_bytes()[1..]) {
            Ok(Node::Dir(dir)) => Some(dir),
            _ => None,
        }
    })
}

/// Whether the current evaluation changed anything of the tree (see [`changed`]).
pub fn any_changed() -> bool {
    tree::last_change() != EVAL_START.with(Cell::get)
}

/// Why `path` is not a plain relative path under the working directory, if it is not.
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("a file's path is empty".into());
    }
    if path.starts_with('/') {
        return Err(format!("{path}: the path is absolute"));
    }
    if path.contains('\0') {
        return Err(format!("{path:?}: the path holds a NUL byte"));
    }
    if path.split('/').any(|part| matches!(part, "" | "." | "..")) {
        return Err(format!(
            "{path}: a path's parts may not be empty, `.` or `..`"
        ));
    }
    Ok(())
}

/// What `errno` means for a file given or asked for.
fn reason(errno: Errno) -> &'static str {
    match errno {
        tree::NOSPC => "the memory limit leaves no room for it",
        tree::ISDIR => "a directory is there",
        tree::NOTDIR => "part of its path is a file",
        tree::NOENT => "no such file",
        tree::NAMETOOLONG => "a name in its path is too long",
        tree::FBIG => "it is too large",
        _ => "it cannot be written there",
    }
}

/// Writes `data` at `path` under the working directory, making the directories above it.
pub fn put(path: &str, data: &[u8]) -> Result<(), String> {
    check_path(path)?;
    let dir = working_dir().ok_or("the working directory is gone")?;
    let fail = |errno| format!("{path}: {}", reason(errno));
    if let Some((parent, _)) = path.rsplit_once('/') {
        tree::mkdir_all(&dir, parent.as_bytes());
    }
    let Node::File(file) = tree::open(&dir, path.as_bytes(), true, false).map_err(fail)? else {
        return Err(fail(tree::ISDIR));
    };
    let written = {
        let mut file = file.borrow_mut();
        file.set_size(0).and_then(|()| file.write_at(0, data))
    };
    written.map_err(|errno| {
        // Half a file is worse than none.
        let _ = tree::unlink(&dir, path.as_bytes());
        fail(errno)
    })
}

/// The longest path returned (Linux's `PATH_MAX`, as the host checks).
const PATH_MAX: usize = 4096;

/// Memory set aside while the changed files are gathered, and given back before they are
/// handed to the host, whose copy of the list needs some: code may have filled the memory.
const HEADROOM: usize = 64 * 1024;

/// The files the current evaluation changed (see [`evaluation_starts`]): the first
/// `max_files`, each with its bytes while their sum stays within `max_bytes`, and how many
/// more there were. Without memory to list a file, it is counted among the more.
pub fn changed(max_files: u32, max_bytes: u64) -> (Vec<Changed>, u32) {
    let since = EVAL_START.with(Cell::get);
    let mut files: Vec<Changed> = Vec::new();
    let mut more = 0u32;
    if tree::last_change() == since {
        return (files, more);
    }
    let Some(dir) = working_dir() else {
        return (files, more);
    };
    let mut headroom: Vec<u8> = Vec::new();
    if headroom.try_reserve_exact(HEADROOM).is_err() {
        tree::changed_since(&dir, since, |_, _| more = more.saturating_add(1));
        return (files, more);
    }
    let mut room = max_bytes;
    tree::changed_since(&dir, since, |path, file| {
        // A path the host would not take (longer than Linux's, or not UTF-8) is counted.
        let path = path.filter(|path| path.len() <= PATH_MAX).and_then(|path| {
            let path = std::str::from_utf8(path).ok()?;
            let mut owned = String::new();
            owned.try_reserve_exact(path.len()).ok()?;
            owned.push_str(path);
            Some(owned)
        });
        let (Some(path), true) = (path, files.len() < max_files as usize) else {
            more = more.saturating_add(1);
            return;
        };
        if files.try_reserve(1).is_err() {
            more = more.saturating_add(1);
            return;
        }
        let file = file.borrow();
        let size = file.len();
        let data = (size <= room).then(|| read_all(&file)).flatten();
        if data.is_some() {
            room -= size;
        }
        files.push(Changed { path, size, data });
    });
    drop(headroom);
    (files, more)
}

/// The bytes of `file`, unless the memory limit leaves no room for a copy.
fn read_all(file: &tree::File) -> Option<Vec<u8>> {
    let len = usize::try_from(file.len()).ok()?;
    let mut data = Vec::new();
    data.try_reserve_exact(len).ok()?;
    data.resize(len, 0);
    file.read_at(0, &mut data);
    Some(data)
}

/// The bytes of the file at `path` under the working directory, if no larger than
/// `max_bytes`.
pub fn read(path: &str, max_bytes: u64) -> Result<Vec<u8>, String> {
    check_path(path)?;
    let dir = working_dir().ok_or("the working directory is gone")?;
    let fail = |errno| format!("{path}: {}", reason(errno));
    let Node::File(file) = tree::lookup(&dir, path.as_bytes()).map_err(fail)? else {
        return Err(fail(tree::ISDIR));
    };
    let file = file.borrow();
    if file.len() > max_bytes {
        return Err(format!(
            "{path}: it is {} bytes, more than the {max_bytes} asked for",
            file.len()
        ));
    }
    read_all(&file).ok_or_else(|| fail(tree::NOSPC))
}
