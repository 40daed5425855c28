//! The scratch file system: a writable directory tree at `/` (with `/tmp`, the working
//! directory) in the instance's own memory. A fresh instance starts with it empty, a
//! session keeps its files between evaluations, and its bytes count against the memory
//! limit. Directories the host grants (mounts) are seen at their own paths beside it.
//!
//! wasi-libc reaches the host through its `__wasi_*` preview1 functions; the link wraps
//! those that take a descriptor or a path (build.rs passes `--wrap` for each `__wrap_*`
//! function of calls.rs), so calls on this file system's descriptors are served here and
//! every other call goes on to the host. It also wraps the lookup that maps an absolute
//! path to a preopened directory: a path no host directory holds is the tree's.

mod calls;
pub mod files;
mod tree;

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr};

use tree::{DirRef, Errno, Node, BADF, MFILE};

/// This file system's descriptors start here, far above any the host hands out.
const FIRST_FD: i32 = 0x4000_0000;
/// The root's descriptor, where every path outside the host's directories resolves.
const ROOT_FD: i32 = FIRST_FD;
/// Open descriptors at most, as Linux's usual limit.
const MAX_OPEN: usize = 1024;
/// Created in every instance (with `/dev/null`); the working directory.
const TMP: &CStr = c"/tmp";

/// An open descriptor.
struct Handle {
    node: Node,
    /// The file position.
    pos: u64,
    /// `__wasi_fdflags_t` (append matters).
    flags: u16,
    rights: u64,
    inheriting: u64,
}

/// The tree and the descriptors open on it.
struct Scratch {
    root: DirRef,
    handles: Vec<Option<Handle>>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

impl Scratch {
    fn new() -> Self {
        let root = tree::Dir::root();
        tree::mkdir(&root, &TMP.to_bytes()[1..]).expect("a new tree takes /tmp");
        // What code opens to throw output away (os.devnull), as on any POSIX system.
        tree::make_null(&root, b"dev/null");
        let handle = Handle {
            node: Node::Dir(root.clone()),
            pos: 0,
            flags: 0,
            rights: calls::ALL_RIGHTS,
            inheriting: calls::ALL_RIGHTS,
        };
        Scratch {
            root,
            handles: vec![Some(handle)],
        }
    }

    fn handle(&mut self, fd: i32) -> Result<&mut Handle, Errno> {
        let index = usize::try_from(fd - FIRST_FD).map_err(|_| BADF)?;
        self.handles
            .get_mut(index)
            .and_then(Option::as_mut)
            .ok_or(BADF)
    }

    /// The directory a path given with `fd` starts from.
    fn dir(&mut self, fd: i32) -> Result<DirRef, Errno> {
        match &self.handle(fd)?.node {
            Node::Dir(dir) => Ok(dir.clone()),
            Node::File(_) => Err(tree::NOTDIR),
        }
    }

    fn add(&mut self, handle: Handle) -> Result<i32, Errno> {
        let index = match self.handles.iter().position(Option::is_none) {
            Some(index) => index,
            None if self.handles.len() < MAX_OPEN => {
                self.handles.push(None);
                self.handles.len() - 1
            }
            None => return Err(MFILE),
        };
        self.handles[index] = Some(handle);
        Ok(FIRST_FD + index as i32)
    }

    fn close(&mut self, fd: i32) -> Result<Handle, Errno> {
        let index = usize::try_from(fd - FIRST_FD).map_err(|_| BADF)?;
        self.handles
            .get_mut(index)
            .and_then(Option::take)
            .ok_or(BADF)
    }
}

/// Whether `fd` is one of this file system's descriptors.
fn owns(fd: i32) -> bool {
    fd >= FIRST_FD
}

/// Runs `f` on the scratch file system and turns its result into an errno.
fn serve(f: impl FnOnce(&mut Scratch) -> Result<(), Errno>) -> Errno {
    SCRATCH.with(|scratch| match f(&mut scratch.borrow_mut()) {
        Ok(()) => 0,
        Err(errno) => errno,
    })
}

/// Starts the tree anew, so the snapshot holds an empty `/tmp` and nothing of the
/// snapshotting host's directories. Descriptors open on packaged files stay open (fonts
/// that matplotlib keeps open, loaded in the snapshot): they read the component's bytes.
pub fn prepare() {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let mut fresh = Scratch::new();
        for (index, slot) in scratch.handles.iter_mut().enumerate().skip(1) {
            let packaged = matches!(slot, Some(Handle { node: Node::File(file), .. })
                if file.borrow().is_packaged());
            if packaged {
                fresh
                    .handles
                    .resize_with(fresh.handles.len().max(index + 1), || None);
                fresh.handles[index] = slot.take();
            }
        }
        *scratch = fresh;
    });
}

/// Places the data files of the packed packages `blob` (build.rs's `pack`, files flagged 2
/// keyed by their path) in the tree under `site`, where packages open them by path
/// (matplotlib its fonts and settings). They read the component's own bytes, so they cost
/// an instance no memory until code changes one. A damaged blob places nothing.
pub fn place_packaged(site: &[u8], blob: &'static [u8]) {
    PACKAGED.with(|packaged| *packaged.borrow_mut() = site.to_vec());
    let word = |at: usize, n: usize| -> Option<usize> {
        let bytes = blob.get(at..at + n)?;
        Some(bytes.iter().rev().fold(0, |v, &b| v << 8 | usize::from(b)))
    };
    if blob.len() < 12 || &blob[..8] != b"PYEVPKG1" {
        return;
    }
    let root = SCRATCH.with(|scratch| scratch.borrow().root.clone());
    let (Some(count), mut at) = (word(8, 4), 12) else {
        return;
    };
    for _ in 0..count {
        let Some(name_len) = word(at, 2) else { return };
        let name = &blob[at + 2..(at + 2 + name_len).min(blob.len())];
        at += 2 + name_len;
        let (Some(flag), Some(start), Some(len)) = (word(at, 1), word(at + 1, 4), word(at + 5, 4))
        else {
            return;
        };
        at += 9;
        if let (2, Some(bytes)) = (flag, blob.get(start..start + len)) {
            let path = [site, b"/", name].concat();
            tree::place_packaged(&root, &path[1..], bytes);
        }
    }
}

thread_local! {
    /// Where the packages' data files are placed (absolute), once they are.
    static PACKAGED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Whether the absolute `path` lies in the packages' directory at a depth past a host
/// directory's prefix of `host_prefix` bytes (as wasi-libc gives it, without its leading
/// `/`): the packages are the component's own, read from the tree, even while a host
/// directory holds the standard library's (before the snapshot).
fn packaged_holds(path: &[u8], host_prefix: usize) -> bool {
    PACKAGED.with(|packaged| {
        let packaged = packaged.borrow();
        let inside = path
            .strip_prefix(packaged.as_slice())
            .is_some_and(|rest| rest.is_empty() || rest[0] == b'/');
        !packaged.is_empty() && inside && packaged.len() - 1 > host_prefix
    })
}

/// Makes `/tmp` the working directory. Runs before the snapshot, so every instance
/// starts there without a call of its own.
pub fn enter_tmp() {
    extern "C" {
        /// wasi-libc's `chdir`, which keeps the working directory as a path.
        fn chdir(path: *const c_char) -> c_int;
    }
    // SAFETY: a NUL-terminated path.
    let done = unsafe { chdir(TMP.as_ptr()) };
    assert_eq!(done, 0, "the scratch tree has /tmp");
}

/// Whether the absolute `path` lies in a directory the host grants (a mount), where other
/// instances and host programs may use the same file, rather than on the scratch tree.
///
/// # Safety
/// `path` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn pyeval_path_on_host(path: *const c_char) -> c_int {
    let (mut prefix, mut relative) = (std::ptr::null(), std::ptr::null());
    // SAFETY: a NUL-terminated path and places for the two results.
    let fd = unsafe { calls::__real___wasilibc_find_abspath(path, &mut prefix, &mut relative) };
    c_int::from(fd >= 0)
}

/// Gives the tree a directory where the host grants one (at a path other than `/`).
fn note_host_directory(path: &[u8]) {
    SCRATCH.with(|scratch| {
        let root = scratch.borrow().root.clone();
        tree::mkdir_all(&root, path);
    });
}
