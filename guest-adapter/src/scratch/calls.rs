//! wasi-libc's preview1 calls, wrapped: `__wrap___wasi_X` serves the scratch file system's
//! descriptors and passes every other call to `__real___wasi_X`, the host's; and
//! wasi-libc's preopen lookup, wrapped so that paths outside the host's directories reach
//! the tree.
//!
//! Pointers come from wasi-libc, which passes valid buffers of the lengths it states; the
//! `unsafe` blocks below rely on that and nothing else.

use std::ffi::{c_char, CStr};
use std::slice;

use super::tree::{self, Errno, Node, ACCES, BADF, INVAL, ISDIR, NOTDIR, PERM, XDEV};
use super::{note_host_directory, owns, serve, Handle, ROOT_FD};

/// Every `__wasi_rights_t` bit.
pub const ALL_RIGHTS: u64 = (1 << 30) - 1;
const RIGHT_READ: u64 = 1 << 1;
const RIGHT_WRITE: u64 = 1 << 6;

const OFLAG_CREAT: u16 = 1 << 0;
const OFLAG_DIRECTORY: u16 = 1 << 1;
const OFLAG_EXCL: u16 = 1 << 2;
const OFLAG_TRUNC: u16 = 1 << 3;
const FDFLAG_APPEND: u16 = 1 << 0;
const FST_ATIM: u16 = 1 << 0;
const FST_ATIM_NOW: u16 = 1 << 1;
const FST_MTIM: u16 = 1 << 2;
const FST_MTIM_NOW: u16 = 1 << 3;
const WHENCE_SET: u8 = 0;
const WHENCE_CUR: u8 = 1;
const WHENCE_END: u8 = 2;

/// `__wasi_iovec_t` and `__wasi_ciovec_t`.
#[repr(C)]
pub struct IoVec {
    buf: *mut u8,
    len: usize,
}

/// `__wasi_fdstat_t`.
#[repr(C)]
pub struct FdStat {
    filetype: u8,
    flags: u16,
    rights: u64,
    inheriting: u64,
}

/// `__wasi_filestat_t`.
#[repr(C)]
pub struct FileStat {
    dev: u64,
    ino: u64,
    filetype: u8,
    nlink: u64,
    size: u64,
    atim: u64,
    mtim: u64,
    ctim: u64,
}

/// `__wasi_prestat_t` of a directory.
#[repr(C)]
pub struct PreStat {
    tag: u8,
    name_len: usize,
}

/// The `st_dev` of every scratch file.
const DEVICE: u64 = 0x7363_7261;

extern "C" {
    fn __real___wasi_fd_advise(fd: i32, offset: u64, len: u64, advice: u8) -> Errno;
    fn __real___wasi_fd_allocate(fd: i32, offset: u64, len: u64) -> Errno;
    fn __real___wasi_fd_close(fd: i32) -> Errno;
    fn __real___wasi_fd_datasync(fd: i32) -> Errno;
    fn __real___wasi_fd_fdstat_get(fd: i32, out: *mut FdStat) -> Errno;
    fn __real___wasi_fd_fdstat_set_flags(fd: i32, flags: u16) -> Errno;
    fn __real___wasi_fd_fdstat_set_rights(fd: i32, rights: u64, inheriting: u64) -> Errno;
    fn __real___wasi_fd_filestat_get(fd: i32, out: *mut FileStat) -> Errno;
    fn __real___wasi_fd_filestat_set_size(fd: i32, size: u64) -> Errno;
    fn __real___wasi_fd_filestat_set_times(fd: i32, atim: u64, mtim: u64, flags: u16) -> Errno;
    fn __real___wasi_fd_pread(
        fd: i32,
        iovs: *const IoVec,
        n: usize,
        offset: u64,
        out: *mut usize,
    ) -> Errno;
    fn __real___wasi_fd_prestat_get(fd: i32, out: *mut PreStat) -> Errno;
    fn __real___wasi_fd_prestat_dir_name(fd: i32, path: *mut u8, len: usize) -> Errno;
    fn __real___wasi_fd_pwrite(
        fd: i32,
        iovs: *const IoVec,
        n: usize,
        offset: u64,
        out: *mut usize,
    ) -> Errno;
    fn __real___wasi_fd_read(fd: i32, iovs: *const IoVec, n: usize, out: *mut usize) -> Errno;
    fn __real___wasi_fd_readdir(
        fd: i32,
        buf: *mut u8,
        len: usize,
        cookie: u64,
        out: *mut usize,
    ) -> Errno;
    fn __real___wasi_fd_renumber(fd: i32, to: i32) -> Errno;
    fn __real___wasi_fd_seek(fd: i32, delta: i64, whence: u8, out: *mut u64) -> Errno;
    fn __real___wasi_fd_sync(fd: i32) -> Errno;
    fn __real___wasi_fd_tell(fd: i32, out: *mut u64) -> Errno;
    fn __real___wasi_fd_write(fd: i32, iovs: *const IoVec, n: usize, out: *mut usize) -> Errno;
    fn __real___wasi_path_create_directory(fd: i32, path: *const c_char) -> Errno;
    fn __real___wasi_path_filestat_get(
        fd: i32,
        flags: u32,
        path: *const c_char,
        out: *mut FileStat,
    ) -> Errno;
    fn __real___wasi_path_filestat_set_times(
        fd: i32,
        flags: u32,
        path: *const c_char,
        atim: u64,
        mtim: u64,
        fst: u16,
    ) -> Errno;
    fn __real___wasi_path_link(
        old_fd: i32,
        old_flags: u32,
        old_path: *const c_char,
        new_fd: i32,
        new_path: *const c_char,
    ) -> Errno;
    #[allow(clippy::too_many_arguments)]
    fn __real___wasi_path_open(
        fd: i32,
        dirflags: u32,
        path: *const c_char,
        oflags: u16,
        rights: u64,
        inheriting: u64,
        fdflags: u16,
        out: *mut i32,
    ) -> Errno;
    fn __real___wasi_path_readlink(
        fd: i32,
        path: *const c_char,
        buf: *mut u8,
        len: usize,
        out: *mut usize,
    ) -> Errno;
    fn __real___wasi_path_remove_directory(fd: i32, path: *const c_char) -> Errno;
    fn __real___wasi_path_rename(
        fd: i32,
        old: *const c_char,
        new_fd: i32,
        new: *const c_char,
    ) -> Errno;
    fn __real___wasi_path_symlink(old: *const c_char, fd: i32, new: *const c_char) -> Errno;
    fn __real___wasi_path_unlink_file(fd: i32, path: *const c_char) -> Errno;
    pub(super) fn __real___wasilibc_find_abspath(
        path: *const c_char,
        prefix: *mut *const c_char,
        relative: *mut *const c_char,
    ) -> i32;
}

/// The bytes of a NUL-terminated path.
unsafe fn bytes<'a>(path: *const c_char) -> &'a [u8] {
    CStr::from_ptr(path).to_bytes()
}

unsafe fn buffers<'a>(iovs: *const IoVec, n: usize) -> &'a [IoVec] {
    if n == 0 {
        &[]
    } else {
        slice::from_raw_parts(iovs, n)
    }
}

unsafe fn buffer<'a>(iov: &IoVec) -> &'a mut [u8] {
    if iov.len == 0 {
        &mut []
    } else {
        slice::from_raw_parts_mut(iov.buf, iov.len)
    }
}

impl Handle {
    fn file(&self) -> Result<&std::cell::RefCell<tree::File>, Errno> {
        match &self.node {
            Node::File(file) => Ok(file),
            Node::Dir(_) => Err(ISDIR),
        }
    }

    fn readable(&self) -> Result<&std::cell::RefCell<tree::File>, Errno> {
        if self.rights & RIGHT_READ == 0 {
            return Err(BADF);
        }
        self.file()
    }

    fn writable(&self) -> Result<&std::cell::RefCell<tree::File>, Errno> {
        if self.rights & RIGHT_WRITE == 0 {
            return Err(BADF);
        }
        self.file()
    }

    /// Reads into `iovs` from `offset`; returns the bytes read.
    unsafe fn read(&self, iovs: &[IoVec], mut offset: u64) -> Result<usize, Errno> {
        let file = self.readable()?.borrow();
        let mut total = 0;
        for iov in iovs {
            let n = file.read_at(offset, buffer(iov));
            total += n;
            offset += n as u64;
            if n < iov.len {
                break;
            }
        }
        Ok(total)
    }

    /// Writes `iovs` at `offset` (at the end when appending); returns the bytes written
    /// and where they ended.
    unsafe fn write(&self, iovs: &[IoVec], offset: u64) -> Result<(usize, u64), Errno> {
        let mut file = self.writable()?.borrow_mut();
        let mut at = if self.flags & FDFLAG_APPEND != 0 {
            file.len()
        } else {
            offset
        };
        let mut total = 0;
        for iov in iovs {
            file.write_at(at, buffer(iov))?;
            total += iov.len;
            at += iov.len as u64;
        }
        Ok((total, at))
    }
}

fn write_stat(stat: tree::Stat, out: *mut FileStat) {
    let stat = FileStat {
        dev: DEVICE,
        ino: stat.ino,
        filetype: stat.filetype,
        nlink: stat.nlink,
        size: stat.size,
        atim: stat.atim,
        mtim: stat.mtim,
        ctim: stat.ctim,
    };
    // SAFETY: wasi-libc passes room for one filestat.
    unsafe { out.write(stat) }
}

/// The times `fst` flags ask for.
fn times(atim: u64, mtim: u64, fst: u16) -> Result<(Option<u64>, Option<u64>), Errno> {
    let pick = |set: u16, now: u16, t: u64| match (fst & set != 0, fst & now != 0) {
        (true, true) => Err(INVAL),
        (true, false) => Ok(Some(t)),
        (false, true) => Ok(Some(tree::now())),
        (false, false) => Ok(None),
    };
    Ok((
        pick(FST_ATIM, FST_ATIM_NOW, atim)?,
        pick(FST_MTIM, FST_MTIM_NOW, mtim)?,
    ))
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_advise(fd: i32, offset: u64, len: u64, advice: u8) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_advise(fd, offset, len, advice);
    }
    serve(|s| s.handle(fd).map(drop))
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_allocate(fd: i32, offset: u64, len: u64) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_allocate(fd, offset, len);
    }
    serve(|s| {
        let mut file = s.handle(fd)?.writable()?.borrow_mut();
        let end = offset.checked_add(len).ok_or(tree::FBIG)?;
        if end > file.len() {
            file.set_size(end)?;
        }
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_close(fd: i32) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_close(fd);
    }
    serve(|s| s.close(fd).map(drop))
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_datasync(fd: i32) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_datasync(fd);
    }
    serve(|s| s.handle(fd).map(drop))
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_sync(fd: i32) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_sync(fd);
    }
    serve(|s| s.handle(fd).map(drop))
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_fdstat_get(fd: i32, out: *mut FdStat) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_fdstat_get(fd, out);
    }
    serve(|s| {
        let handle = s.handle(fd)?;
        out.write(FdStat {
            filetype: handle.node.stat().filetype,
            flags: handle.flags,
            rights: handle.rights,
            inheriting: handle.inheriting,
        });
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_fdstat_set_flags(fd: i32, flags: u16) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_fdstat_set_flags(fd, flags);
    }
    serve(|s| {
        s.handle(fd)?.flags = flags;
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_fdstat_set_rights(
    fd: i32,
    rights: u64,
    inheriting: u64,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_fdstat_set_rights(fd, rights, inheriting);
    }
    serve(|s| {
        let handle = s.handle(fd)?;
        // Rights can be dropped, never gained.
        if rights & !handle.rights != 0 || inheriting & !handle.inheriting != 0 {
            return Err(tree::NOTCAPABLE);
        }
        handle.rights = rights;
        handle.inheriting = inheriting;
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_filestat_get(fd: i32, out: *mut FileStat) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_filestat_get(fd, out);
    }
    serve(|s| {
        write_stat(s.handle(fd)?.node.stat(), out);
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_filestat_set_size(fd: i32, size: u64) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_filestat_set_size(fd, size);
    }
    serve(|s| {
        let handle = s.handle(fd)?;
        if handle.rights & RIGHT_WRITE == 0 {
            return Err(INVAL);
        }
        handle.file()?.borrow_mut().set_size(size)
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_filestat_set_times(
    fd: i32,
    atim: u64,
    mtim: u64,
    fst: u16,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_filestat_set_times(fd, atim, mtim, fst);
    }
    serve(|s| {
        let (atim, mtim) = times(atim, mtim, fst)?;
        s.handle(fd)?.node.set_times(atim, mtim);
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_pread(
    fd: i32,
    iovs: *const IoVec,
    n: usize,
    offset: u64,
    out: *mut usize,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_pread(fd, iovs, n, offset, out);
    }
    serve(|s| {
        out.write(s.handle(fd)?.read(buffers(iovs, n), offset)?);
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_pwrite(
    fd: i32,
    iovs: *const IoVec,
    n: usize,
    offset: u64,
    out: *mut usize,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_pwrite(fd, iovs, n, offset, out);
    }
    serve(|s| {
        out.write(s.handle(fd)?.write(buffers(iovs, n), offset)?.0);
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_read(
    fd: i32,
    iovs: *const IoVec,
    n: usize,
    out: *mut usize,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_read(fd, iovs, n, out);
    }
    serve(|s| {
        let handle = s.handle(fd)?;
        let read = handle.read(buffers(iovs, n), handle.pos)?;
        handle.pos += read as u64;
        out.write(read);
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_write(
    fd: i32,
    iovs: *const IoVec,
    n: usize,
    out: *mut usize,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_write(fd, iovs, n, out);
    }
    serve(|s| {
        let handle = s.handle(fd)?;
        let (written, end) = handle.write(buffers(iovs, n), handle.pos)?;
        handle.pos = end;
        out.write(written);
        Ok(())
    })
}

/// wasi-libc's map from an absolute path to the preopened directory that holds it (the
/// longest prefix wins). A path no host directory holds falls to the scratch tree, whose
/// prefix `/` is shorter than any other, and so does one under the packages' directory
/// (see `place_packaged`) unless a host directory inside it holds it: the tree's prefix
/// there is that directory. (A host directory at `/` itself holds every other path.)
#[no_mangle]
unsafe extern "C" fn __wrap___wasilibc_find_abspath(
    path: *const c_char,
    prefix: *mut *const c_char,
    relative: *mut *const c_char,
) -> i32 {
    let fd = __real___wasilibc_find_abspath(path, prefix, relative);
    if fd >= 0 && !super::packaged_holds(bytes(path), bytes(*prefix).len()) {
        return fd;
    }
    let mut rest = path;
    while *rest == b'/' as c_char {
        rest = rest.add(1);
    }
    // As wasi-libc gives them: the prefix without its leading `/`, and `.` for the root.
    *prefix = c"".as_ptr();
    *relative = if *rest == 0 { c".".as_ptr() } else { rest };
    ROOT_FD
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_prestat_get(fd: i32, out: *mut PreStat) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_prestat_get(fd, out);
    }
    // The tree is reached through the lookup above, never listed as a preopen.
    BADF
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_prestat_dir_name(
    fd: i32,
    path: *mut u8,
    len: usize,
) -> Errno {
    if !owns(fd) {
        let errno = __real___wasi_fd_prestat_dir_name(fd, path, len);
        if errno == 0 {
            note_host_directory(slice::from_raw_parts(path, len));
        }
        return errno;
    }
    BADF
}

/// Size of a `__wasi_dirent_t` before its name.
const DIRENT_SIZE: usize = 24;

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_readdir(
    fd: i32,
    buf: *mut u8,
    len: usize,
    cookie: u64,
    out: *mut usize,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_readdir(fd, buf, len, cookie, out);
    }
    serve(|s| {
        let Node::Dir(dir) = &s.handle(fd)?.node else {
            return Err(NOTDIR);
        };
        let buf = if len == 0 {
            &mut []
        } else {
            slice::from_raw_parts_mut(buf, len)
        };
        let mut used = 0;
        let start = usize::try_from(cookie).unwrap_or(usize::MAX);
        for (index, (name, ino, filetype)) in tree::Dir::listing(dir).iter().enumerate().skip(start)
        {
            let mut entry = [0u8; DIRENT_SIZE];
            entry[0..8].copy_from_slice(&(index as u64 + 1).to_le_bytes());
            entry[8..16].copy_from_slice(&ino.to_le_bytes());
            entry[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
            entry[20] = *filetype;
            // A record that does not fit is cut: wasi-libc then asks again with more room.
            for part in [&entry[..], name] {
                let n = part.len().min(len - used);
                buf[used..used + n].copy_from_slice(&part[..n]);
                used += n;
            }
            if used == len {
                break;
            }
        }
        out.write(used);
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_renumber(fd: i32, to: i32) -> Errno {
    match (owns(fd), owns(to)) {
        (false, false) => __real___wasi_fd_renumber(fd, to),
        (true, true) => serve(|s| {
            s.handle(to)?;
            if fd == to {
                return s.handle(fd).map(drop);
            }
            let handle = s.close(fd)?;
            *s.handle(to)? = handle;
            Ok(())
        }),
        _ => BADF,
    }
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_seek(
    fd: i32,
    delta: i64,
    whence: u8,
    out: *mut u64,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_seek(fd, delta, whence, out);
    }
    serve(|s| {
        let handle = s.handle(fd)?;
        let base = match whence {
            WHENCE_SET => 0,
            WHENCE_CUR => handle.pos,
            WHENCE_END => handle.node.stat().size,
            _ => return Err(INVAL),
        };
        let pos = base
            .checked_add_signed(delta)
            .filter(|&pos| pos <= i64::MAX as u64)
            .ok_or(INVAL)?;
        handle.pos = pos;
        out.write(pos);
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_fd_tell(fd: i32, out: *mut u64) -> Errno {
    if !owns(fd) {
        return __real___wasi_fd_tell(fd, out);
    }
    serve(|s| {
        out.write(s.handle(fd)?.pos);
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_path_create_directory(fd: i32, path: *const c_char) -> Errno {
    if !owns(fd) {
        return __real___wasi_path_create_directory(fd, path);
    }
    serve(|s| tree::mkdir(&s.dir(fd)?, bytes(path)))
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_path_filestat_get(
    fd: i32,
    flags: u32,
    path: *const c_char,
    out: *mut FileStat,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_path_filestat_get(fd, flags, path, out);
    }
    serve(|s| {
        write_stat(tree::lookup(&s.dir(fd)?, bytes(path))?.stat(), out);
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_path_filestat_set_times(
    fd: i32,
    flags: u32,
    path: *const c_char,
    atim: u64,
    mtim: u64,
    fst: u16,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_path_filestat_set_times(fd, flags, path, atim, mtim, fst);
    }
    serve(|s| {
        let (atim, mtim) = times(atim, mtim, fst)?;
        tree::lookup(&s.dir(fd)?, bytes(path))?.set_times(atim, mtim);
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_path_link(
    old_fd: i32,
    old_flags: u32,
    old_path: *const c_char,
    new_fd: i32,
    new_path: *const c_char,
) -> Errno {
    match (owns(old_fd), owns(new_fd)) {
        (false, false) => __real___wasi_path_link(old_fd, old_flags, old_path, new_fd, new_path),
        (true, true) => serve(|s| {
            tree::link(
                &s.dir(old_fd)?,
                bytes(old_path),
                &s.dir(new_fd)?,
                bytes(new_path),
            )
        }),
        _ => XDEV,
    }
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_path_open(
    fd: i32,
    dirflags: u32,
    path: *const c_char,
    oflags: u16,
    rights: u64,
    inheriting: u64,
    fdflags: u16,
    out: *mut i32,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_path_open(
            fd, dirflags, path, oflags, rights, inheriting, fdflags, out,
        );
    }
    serve(|s| {
        let node = tree::open(
            &s.dir(fd)?,
            bytes(path),
            oflags & OFLAG_CREAT != 0,
            oflags & OFLAG_EXCL != 0,
        )?;
        match &node {
            Node::File(_) if oflags & OFLAG_DIRECTORY != 0 => return Err(NOTDIR),
            Node::Dir(_) if rights & RIGHT_WRITE != 0 || oflags & OFLAG_TRUNC != 0 => {
                return Err(ISDIR)
            }
            Node::File(file) if oflags & OFLAG_TRUNC != 0 => {
                if rights & RIGHT_WRITE == 0 {
                    return Err(ACCES);
                }
                file.borrow_mut().set_size(0)?;
            }
            _ => {}
        }
        out.write(s.add(Handle {
            node,
            pos: 0,
            flags: fdflags,
            rights,
            inheriting,
        })?);
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_path_readlink(
    fd: i32,
    path: *const c_char,
    buf: *mut u8,
    len: usize,
    out: *mut usize,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_path_readlink(fd, path, buf, len, out);
    }
    // There are no symbolic links here: whatever exists is not one.
    serve(|s| tree::lookup(&s.dir(fd)?, bytes(path)).and(Err(INVAL)))
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_path_remove_directory(fd: i32, path: *const c_char) -> Errno {
    if !owns(fd) {
        return __real___wasi_path_remove_directory(fd, path);
    }
    serve(|s| tree::rmdir(&s.dir(fd)?, bytes(path)))
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_path_rename(
    fd: i32,
    old: *const c_char,
    new_fd: i32,
    new: *const c_char,
) -> Errno {
    match (owns(fd), owns(new_fd)) {
        (false, false) => __real___wasi_path_rename(fd, old, new_fd, new),
        (true, true) => {
            serve(|s| tree::rename(&s.dir(fd)?, bytes(old), &s.dir(new_fd)?, bytes(new)))
        }
        _ => XDEV,
    }
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_path_symlink(
    old: *const c_char,
    fd: i32,
    new: *const c_char,
) -> Errno {
    if !owns(fd) {
        return __real___wasi_path_symlink(old, fd, new);
    }
    // As on the host's directories: a link could lead anywhere, so none is made.
    PERM
}

#[no_mangle]
unsafe extern "C" fn __wrap___wasi_path_unlink_file(fd: i32, path: *const c_char) -> Errno {
    if !owns(fd) {
        return __real___wasi_path_unlink_file(fd, path);
    }
    serve(|s| tree::unlink(&s.dir(fd)?, bytes(path)))
}
