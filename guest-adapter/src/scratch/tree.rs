//! The scratch file system's tree: directories and files held in the instance's own linear
//! memory, so they count against its memory limit and are gone with the instance.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A WASI errno (`__wasi_errno_t`).
pub type Errno = u16;

pub const ACCES: Errno = 2;
pub const BADF: Errno = 8;
pub const BUSY: Errno = 10;
pub const EXIST: Errno = 20;
pub const FBIG: Errno = 22;
pub const INVAL: Errno = 28;
pub const ISDIR: Errno = 31;
pub const MFILE: Errno = 33;
pub const NAMETOOLONG: Errno = 37;
pub const NOENT: Errno = 44;
pub const NOSPC: Errno = 51;
pub const NOTDIR: Errno = 54;
pub const NOTEMPTY: Errno = 55;
pub const NOTCAPABLE: Errno = 76;
pub const PERM: Errno = 63;
pub const XDEV: Errno = 75;

/// `__wasi_filetype_t` of a directory and of a regular file.
pub const FILETYPE_DIRECTORY: u8 = 3;
pub const FILETYPE_REGULAR: u8 = 4;

/// The longest name of one entry, and the longest path resolved in one call (Linux's).
const NAME_MAX: usize = 255;
const PATH_MAX: usize = 4096;

pub type DirRef = Rc<RefCell<Dir>>;
pub type FileRef = Rc<RefCell<File>>;

/// A directory or a file; cloning it is another reference to the same one.
#[derive(Clone)]
pub enum Node {
    Dir(DirRef),
    File(FileRef),
}

/// Inode number, times (nanoseconds since the epoch) and the number of the node's last
/// change (see [`last_change`]).
pub struct Meta {
    pub ino: u64,
    pub atim: u64,
    pub mtim: u64,
    pub ctim: u64,
    pub changed: u64,
}

pub struct Dir {
    pub meta: Meta,
    /// The number of the change that put it where it is (its `meta.changed` moves with
    /// its entries as well).
    placed: u64,
    /// Names are shared, so a walk can hold its place in a directory without a copy.
    entries: BTreeMap<Rc<[u8]>, Node>,
    /// None for the root, whose `..` is itself.
    parent: Option<Weak<RefCell<Dir>>>,
    /// Removed from the tree while still open: nothing can be created in it.
    removed: bool,
}

pub struct File {
    pub meta: Meta,
    data: Data,
    /// A null device (`/dev/null`): writes are dropped, reads find nothing.
    null: bool,
    /// Directory entries that name this file (hard links).
    nlink: u64,
}

/// A file's bytes in chunks, so a growing file never needs its whole size again to move
/// (one buffer would, to double) and a hole costs nothing until written. A packaged file
/// reads the component's own bytes instead until it is first changed.
#[derive(Default)]
struct Data {
    chunks: Vec<Vec<u8>>,
    len: usize,
    packaged: &'static [u8],
}

/// Bytes per chunk.
const CHUNK: usize = 64 * 1024;

/// What `stat` reports.
pub struct Stat {
    pub ino: u64,
    pub filetype: u8,
    pub nlink: u64,
    pub size: u64,
    pub atim: u64,
    pub mtim: u64,
    pub ctim: u64,
}

/// The number of the tree's last change: each creation, write, truncation or placement of
/// a node takes the next one, so a node changed since a point is one whose number is
/// past the number read then.
pub fn last_change() -> u64 {
    CHANGES.load(Ordering::Relaxed)
}

static CHANGES: AtomicU64 = AtomicU64::new(0);

fn next_change() -> u64 {
    CHANGES.fetch_add(1, Ordering::Relaxed) + 1
}

/// The current time in nanoseconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Meta {
    fn new() -> Self {
        static NEXT_INO: AtomicU64 = AtomicU64::new(1);
        let t = now();
        Meta {
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            atim: t,
            mtim: t,
            ctim: t,
            changed: next_change(),
        }
    }

    fn modified(&mut self) {
        let t = now();
        self.mtim = t;
        self.ctim = t;
        self.changed = next_change();
    }
}

impl Dir {
    /// A new root directory.
    pub fn root() -> DirRef {
        Rc::new(RefCell::new(Dir {
            meta: Meta::new(),
            placed: 0,
            entries: BTreeMap::new(),
            parent: None,
            removed: false,
        }))
    }

    /// The entries of `dir` as `readdir` lists them: `.`, `..`, then the names in order.
    pub fn listing(dir: &DirRef) -> Vec<(Box<[u8]>, u64, u8)> {
        let this = dir.borrow();
        let parent = parent_of(dir).borrow().meta.ino;
        let mut list = vec![
            (Box::from(&b"."[..]), this.meta.ino, FILETYPE_DIRECTORY),
            (Box::from(&b".."[..]), parent, FILETYPE_DIRECTORY),
        ];
        list.extend(this.entries.iter().map(|(name, node)| {
            let stat = node.stat();
            (Box::from(&name[..]), stat.ino, stat.filetype)
        }));
        list
    }
}

impl File {
    /// Copies a packaged file's bytes into the instance's memory, before its first change.
    fn own(&mut self) -> Result<(), Errno> {
        let packaged = std::mem::take(&mut self.data.packaged);
        if packaged.is_empty() {
            return Ok(());
        }
        self.data.len = 0;
        self.write_at(0, packaged).inspect_err(|_| {
            self.data = Data {
                chunks: Vec::new(),
                len: packaged.len(),
                packaged,
            };
        })
    }

    /// Whether it still reads a package's data file (it was never changed).
    pub fn is_packaged(&self) -> bool {
        !self.data.packaged.is_empty()
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.data.len as u64
    }

    /// Copies bytes from `offset` into `buf`; returns how many.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        let start = usize::try_from(offset).map_or(self.data.len, |o| o.min(self.data.len));
        let n = buf.len().min(self.data.len - start);
        if !self.data.packaged.is_empty() {
            buf[..n].copy_from_slice(&self.data.packaged[start..start + n]);
            return n;
        }
        let mut done = 0;
        while done < n {
            let at = start + done;
            let (index, within) = (at / CHUNK, at % CHUNK);
            let take = (CHUNK - within).min(n - done);
            let out = &mut buf[done..done + take];
            match self.data.chunks.get(index) {
                // Past a chunk's written end (a hole) the bytes are zeros.
                Some(chunk) if within < chunk.len() => {
                    let have = take.min(chunk.len() - within);
                    out[..have].copy_from_slice(&chunk[within..within + have]);
                    out[have..].fill(0);
                }
                _ => out.fill(0),
            }
            done += take;
        }
        n
    }

    /// Writes `bytes` at `offset`, the gap before it reading as zeros. Refused with NOSPC
    /// when the instance's memory cannot hold it.
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Errno> {
        if self.null {
            return Ok(());
        }
        self.own()?;
        let start = usize::try_from(offset).map_err(|_| FBIG)?;
        let end = start.checked_add(bytes.len()).ok_or(FBIG)?;
        let chunks = end.div_ceil(CHUNK);
        if self.data.chunks.len() < chunks {
            let more = chunks - self.data.chunks.len();
            self.data.chunks.try_reserve(more).map_err(|_| NOSPC)?;
            self.data.chunks.resize_with(chunks, Vec::new);
        }
        let mut done = 0;
        while done < bytes.len() {
            let at = start + done;
            let (index, within) = (at / CHUNK, at % CHUNK);
            let take = (CHUNK - within).min(bytes.len() - done);
            let chunk = &mut self.data.chunks[index];
            if chunk.len() < within + take {
                let extra = within + take - chunk.len();
                // Small files stay small; a chunk grows by doubling up to its full size.
                let want = (within + take).max(2 * chunk.capacity()).min(CHUNK);
                if chunk.try_reserve_exact(want - chunk.len()).is_err()
                    && chunk.try_reserve_exact(extra).is_err()
                {
                    // What was written so far stays; the size covers it.
                    self.data.len = self.data.len.max(at);
                    return Err(NOSPC);
                }
                chunk.resize(within + take, 0);
            }
            chunk[within..within + take].copy_from_slice(&bytes[done..done + take]);
            done += take;
        }
        self.data.len = self.data.len.max(end);
        self.meta.modified();
        Ok(())
    }

    /// Truncates or extends the file to `size` bytes (an extension is a hole).
    pub fn set_size(&mut self, size: u64) -> Result<(), Errno> {
        if self.null {
            return Ok(());
        }
        self.own()?;
        let size = usize::try_from(size).map_err(|_| FBIG)?;
        if size < self.data.len {
            let chunks = size.div_ceil(CHUNK);
            self.data.chunks.truncate(chunks);
            if let Some(last) = self.data.chunks.last_mut() {
                let keep = size - (chunks - 1) * CHUNK;
                last.truncate(keep);
            }
            self.data.chunks.shrink_to_fit();
        } else if size.div_ceil(CHUNK) > self.data.chunks.len() {
            let more = size.div_ceil(CHUNK) - self.data.chunks.len();
            self.data.chunks.try_reserve(more).map_err(|_| NOSPC)?;
            self.data.chunks.resize_with(size.div_ceil(CHUNK), Vec::new);
        }
        self.data.len = size;
        self.meta.modified();
        Ok(())
    }
}

impl Node {
    pub fn stat(&self) -> Stat {
        match self {
            Node::Dir(dir) => {
                let dir = dir.borrow();
                Stat::of(&dir.meta, FILETYPE_DIRECTORY, 1, 0)
            }
            Node::File(file) => {
                let file = file.borrow();
                Stat::of(&file.meta, FILETYPE_REGULAR, file.nlink, file.len())
            }
        }
    }

    /// Sets the access and modification times (None leaves one as it is).
    pub fn set_times(&self, atim: Option<u64>, mtim: Option<u64>) {
        let apply = |meta: &mut Meta| {
            if let Some(t) = atim {
                meta.atim = t;
            }
            if let Some(t) = mtim {
                meta.mtim = t;
            }
            meta.ctim = now();
        };
        match self {
            Node::Dir(dir) => apply(&mut dir.borrow_mut().meta),
            Node::File(file) => apply(&mut file.borrow_mut().meta),
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self, Node::Dir(_))
    }

    fn same(&self, other: &Node) -> bool {
        match (self, other) {
            (Node::Dir(a), Node::Dir(b)) => Rc::ptr_eq(a, b),
            (Node::File(a), Node::File(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Stat {
    fn of(meta: &Meta, filetype: u8, nlink: u64, size: u64) -> Self {
        Stat {
            ino: meta.ino,
            filetype,
            nlink,
            size,
            atim: meta.atim,
            mtim: meta.mtim,
            ctim: meta.ctim,
        }
    }
}

/// Where a path leads from a directory.
enum Place {
    /// An entry, present or not: its directory, its name, and whether the path ended in `/`.
    Entry {
        parent: DirRef,
        name: Rc<[u8]>,
        dir_only: bool,
    },
    /// A directory named without an entry of its own (`.`, `..`, or the start itself).
    Dir(DirRef),
}

fn parent_of(dir: &DirRef) -> DirRef {
    match &dir.borrow().parent {
        Some(parent) => parent.upgrade().unwrap_or_else(|| dir.clone()),
        None => dir.clone(),
    }
}

/// Resolves every component of `path` but the last. Paths are relative (wasi-libc strips
/// the preopen's prefix); `..` never leads above the root. There are no symbolic links.
fn place(start: &DirRef, path: &[u8]) -> Result<Place, Errno> {
    if path.is_empty() {
        return Err(NOENT);
    }
    if path.len() > PATH_MAX {
        return Err(NAMETOOLONG);
    }
    if path[0] == b'/' {
        return Err(NOTCAPABLE);
    }
    let dir_only = path.ends_with(b"/");
    let mut parts = path.split(|&b| b == b'/').filter(|p| !p.is_empty());
    let last = parts.next_back();
    let mut dir = start.clone();
    for part in parts {
        dir = match part {
            b"." => dir,
            b".." => parent_of(&dir),
            name => {
                let next = match dir.borrow().entries.get(name) {
                    Some(Node::Dir(next)) => next.clone(),
                    Some(Node::File(_)) => return Err(NOTDIR),
                    None => return Err(NOENT),
                };
                next
            }
        };
    }
    match last {
        None | Some(b".") => Ok(Place::Dir(dir)),
        Some(b"..") => Ok(Place::Dir(parent_of(&dir))),
        Some(name) if name.len() > NAME_MAX => Err(NAMETOOLONG),
        Some(name) => Ok(Place::Entry {
            parent: dir,
            name: name.into(),
            dir_only,
        }),
    }
}

/// The node `path` names.
pub fn lookup(start: &DirRef, path: &[u8]) -> Result<Node, Errno> {
    match place(start, path)? {
        Place::Dir(dir) => Ok(Node::Dir(dir)),
        Place::Entry {
            parent,
            name,
            dir_only,
        } => {
            let node = parent.borrow().entries.get(&name).cloned().ok_or(NOENT)?;
            if dir_only && !node.is_dir() {
                return Err(NOTDIR);
            }
            Ok(node)
        }
    }
}

/// Opens `path`, creating an empty file when `create` is set and nothing is there.
pub fn open(start: &DirRef, path: &[u8], create: bool, exclusive: bool) -> Result<Node, Errno> {
    if !create {
        return lookup(start, path);
    }
    match place(start, path)? {
        Place::Dir(_) if exclusive => Err(EXIST),
        Place::Dir(dir) => Ok(Node::Dir(dir)),
        Place::Entry {
            parent,
            name,
            dir_only,
        } => {
            if let Some(node) = parent.borrow().entries.get(&name) {
                return if exclusive {
                    Err(EXIST)
                } else if dir_only && !node.is_dir() {
                    Err(NOTDIR)
                } else {
                    Ok(node.clone())
                };
            }
            if dir_only {
                return Err(ISDIR);
            }
            let file = Node::File(Rc::new(RefCell::new(File {
                meta: Meta::new(),
                data: Data::default(),
                null: false,
                nlink: 1,
            })));
            insert(&parent, name, file.clone())?;
            Ok(file)
        }
    }
}

/// Adds an entry to a directory that is still in the tree; the node counts as changed
/// there (a file moved or linked into a directory is new to it).
fn insert(dir: &DirRef, name: Rc<[u8]>, node: Node) -> Result<(), Errno> {
    let mut dir = dir.borrow_mut();
    if dir.removed {
        return Err(NOENT);
    }
    match &node {
        Node::Dir(placed) => placed.borrow_mut().placed = next_change(),
        Node::File(file) => file.borrow_mut().meta.changed = next_change(),
    }
    dir.entries.insert(name, node);
    dir.meta.modified();
    Ok(())
}

/// Calls `found` for each file below `dir` changed after change number `since`, in path
/// order, with its path from `dir` (`/`-separated), or `None` when no memory was left to
/// spell it. A directory placed after `since` counts every file below it as changed.
///
/// The walk allocates only along one path (its stack and the path's bytes), never per
/// entry, and each allocation may fail: code may have filled the memory before it runs. A
/// directory the walk has no room to enter is left out.
pub fn changed_since(dir: &DirRef, since: u64, mut found: impl FnMut(Option<&[u8]>, &FileRef)) {
    /// A directory being walked: where it is, the last name visited, its path's length.
    struct Frame {
        dir: DirRef,
        after: Option<Rc<[u8]>>,
        base: usize,
        all: bool,
    }
    let mut path: Vec<u8> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    if stack.try_reserve(8).is_err() {
        return;
    }
    stack.push(Frame {
        dir: dir.clone(),
        after: None,
        base: 0,
        all: false,
    });
    while let Some(frame) = stack.last_mut() {
        let next = {
            let dir = frame.dir.borrow();
            let mut range = match &frame.after {
                None => dir.entries.range::<[u8], _>(..),
                Some(after) => dir
                    .entries
                    .range::<[u8], _>((Bound::Excluded(&after[..]), Bound::Unbounded)),
            };
            range
                .next()
                .map(|(name, node)| (name.clone(), node.clone()))
        };
        let Some((name, node)) = next else {
            stack.pop();
            continue;
        };
        let (base, all) = (frame.base, frame.all);
        frame.after = Some(name.clone());
        path.truncate(base);
        let spelled = path.try_reserve(name.len() + 1).is_ok();
        if spelled {
            if base > 0 {
                path.push(b'/');
            }
            path.extend_from_slice(&name);
        }
        match node {
            Node::File(file) => {
                if all || file.borrow().meta.changed > since {
                    found(spelled.then_some(&path[..]), &file);
                }
            }
            Node::Dir(sub) => {
                let all = all || sub.borrow().placed > since;
                if spelled && stack.try_reserve(1).is_ok() {
                    stack.push(Frame {
                        dir: sub,
                        after: None,
                        base: path.len(),
                        all,
                    });
                }
            }
        }
    }
}

/// Creates the directory `path`.
pub fn mkdir(start: &DirRef, path: &[u8]) -> Result<(), Errno> {
    let Place::Entry { parent, name, .. } = place(start, path)? else {
        return Err(EXIST);
    };
    if parent.borrow().entries.contains_key(&name) {
        return Err(EXIST);
    }
    let dir = Rc::new(RefCell::new(Dir {
        meta: Meta::new(),
        placed: 0,
        entries: BTreeMap::new(),
        parent: Some(Rc::downgrade(&parent)),
        removed: false,
    }));
    insert(&parent, name, Node::Dir(dir))
}

/// Creates the null device `path` (and the directories above it): a file that drops what
/// is written to it and reads as empty.
pub fn make_null(root: &DirRef, path: &[u8]) {
    if let Some(file) = create_with_parents(root, path) {
        file.borrow_mut().null = true;
    }
}

/// Creates the file `path` (and the directories above it) reading `bytes` until it is
/// first changed.
pub fn place_packaged(root: &DirRef, path: &[u8], bytes: &'static [u8]) {
    if let Some(file) = create_with_parents(root, path) {
        let mut file = file.borrow_mut();
        file.data.len = bytes.len();
        file.data.packaged = bytes;
    }
}

/// A new empty file at `path`, with the directories above it made; none where something
/// is in the way.
fn create_with_parents(root: &DirRef, path: &[u8]) -> Option<FileRef> {
    if let Some(slash) = path.iter().rposition(|&b| b == b'/') {
        mkdir_all(root, &path[..slash]);
    }
    match open(root, path, true, true) {
        Ok(Node::File(file)) => Some(file),
        _ => None,
    }
}

/// Creates `path` and every missing directory above it; an existing one is no error.
pub fn mkdir_all(start: &DirRef, path: &[u8]) {
    let mut prefix = Vec::new();
    for part in path.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(part);
        // A name that cannot be a directory here simply ends the walk.
        if mkdir(start, &prefix).is_err() && !matches!(lookup(start, &prefix), Ok(Node::Dir(_))) {
            return;
        }
    }
}

/// Removes the empty directory `path`.
pub fn rmdir(start: &DirRef, path: &[u8]) -> Result<(), Errno> {
    let (parent, name) = match place(start, path)? {
        Place::Entry { parent, name, .. } => (parent, name),
        Place::Dir(dir) if dir.borrow().parent.is_none() => return Err(BUSY),
        Place::Dir(_) => return Err(INVAL),
    };
    let node = parent.borrow().entries.get(&name).cloned().ok_or(NOENT)?;
    let Node::Dir(dir) = node else {
        return Err(NOTDIR);
    };
    if !dir.borrow().entries.is_empty() {
        return Err(NOTEMPTY);
    }
    detach(&parent, &name);
    dir.borrow_mut().removed = true;
    Ok(())
}

/// Removes the file entry `path`; the file lives on while it is open or linked elsewhere.
pub fn unlink(start: &DirRef, path: &[u8]) -> Result<(), Errno> {
    let Place::Entry {
        parent,
        name,
        dir_only,
    } = place(start, path)?
    else {
        return Err(ISDIR);
    };
    let node = parent.borrow().entries.get(&name).cloned().ok_or(NOENT)?;
    match node {
        Node::Dir(_) => Err(ISDIR),
        Node::File(_) if dir_only => Err(NOTDIR),
        Node::File(file) => {
            detach(&parent, &name);
            file.borrow_mut().nlink -= 1;
            Ok(())
        }
    }
}

fn detach(dir: &DirRef, name: &[u8]) {
    let mut dir = dir.borrow_mut();
    dir.entries.remove(name);
    dir.meta.modified();
}

/// Adds the name `new` for the file `old`.
pub fn link(old_start: &DirRef, old: &[u8], new_start: &DirRef, new: &[u8]) -> Result<(), Errno> {
    let Node::File(file) = lookup(old_start, old)? else {
        return Err(PERM);
    };
    let Place::Entry {
        parent,
        name,
        dir_only: false,
    } = place(new_start, new)?
    else {
        return Err(EXIST);
    };
    if parent.borrow().entries.contains_key(&name) {
        return Err(EXIST);
    }
    insert(&parent, name, Node::File(file.clone()))?;
    file.borrow_mut().nlink += 1;
    Ok(())
}

/// Moves the entry `old` to `new`, replacing what `new` names as POSIX `rename` does.
pub fn rename(old_start: &DirRef, old: &[u8], new_start: &DirRef, new: &[u8]) -> Result<(), Errno> {
    let Place::Entry {
        parent: old_parent,
        name: old_name,
        dir_only: old_dir_only,
    } = place(old_start, old)?
    else {
        return Err(BUSY);
    };
    let node = old_parent
        .borrow()
        .entries
        .get(&old_name)
        .cloned()
        .ok_or(NOENT)?;
    let Place::Entry {
        parent: new_parent,
        name: new_name,
        dir_only: new_dir_only,
    } = place(new_start, new)?
    else {
        return Err(BUSY);
    };
    if (old_dir_only || new_dir_only) && !node.is_dir() {
        return Err(NOTDIR);
    }
    if let Node::Dir(moved) = &node {
        // A directory cannot move into itself or below itself.
        let mut at = new_parent.clone();
        loop {
            if Rc::ptr_eq(&at, moved) {
                return Err(INVAL);
            }
            let up = parent_of(&at);
            if Rc::ptr_eq(&up, &at) {
                break;
            }
            at = up;
        }
    }
    let replaced = new_parent.borrow().entries.get(&new_name).cloned();
    if let Some(replaced) = &replaced {
        if replaced.same(&node) {
            return Ok(());
        }
        match (&node, replaced) {
            (Node::File(_), Node::Dir(_)) => return Err(ISDIR),
            (Node::Dir(_), Node::File(_)) => return Err(NOTDIR),
            (Node::Dir(_), Node::Dir(target)) if !target.borrow().entries.is_empty() => {
                return Err(NOTEMPTY)
            }
            _ => {}
        }
    }
    if new_parent.borrow().removed {
        return Err(NOENT);
    }
    detach(&old_parent, &old_name);
    match replaced {
        Some(Node::Dir(target)) => target.borrow_mut().removed = true,
        Some(Node::File(target)) => target.borrow_mut().nlink -= 1,
        None => {}
    }
    if let Node::Dir(moved) = &node {
        moved.borrow_mut().parent = Some(Rc::downgrade(&new_parent));
    }
    insert(&new_parent, new_name, node)
}
