//! `--mount HOST[:GUEST][:ro|:rw]`: a host directory made visible to the guest.
//!
//! A mount is opened once, when it is made, and every run it is granted to sees that open
//! directory, whatever later happens to its path. The path is resolved without following
//! symbolic links: one on the way is refused, so a link that guest code (or anyone else)
//! left where a directory was cannot point a later mount at another part of the host.

use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// A host directory preopened in the guest; parsed from `HOST[:GUEST][:ro|:rw]`, or made
/// with [`Mount::read_only`] or [`Mount::writable`].
#[derive(Clone)]
#[non_exhaustive]
pub struct Mount {
    /// Directory on the host, as it was named.
    pub host: PathBuf,
    /// Absolute path at which the guest sees it.
    pub guest: String,
    /// Whether the guest may create, change and delete files in it.
    pub writable: bool,
    /// The directory, opened when the mount was made.
    dir: Arc<OwnedFd>,
}

impl fmt::Debug for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mount")
            .field("host", &self.host)
            .field("guest", &self.guest)
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Mount {
    fn eq(&self, other: &Self) -> bool {
        self.host == other.host && self.guest == other.guest && self.writable == other.writable
    }
}

impl Eq for Mount {}

/// Why a mount specification was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MountError {
    /// The specification has no host part.
    #[error("invalid mount {0:?}: expected HOST[:GUEST][:ro|:rw]")]
    Syntax(String),
    /// The guest path is not absolute.
    #[error("invalid mount {spec:?}: the guest path {guest:?} must be absolute (start with /)")]
    RelativeGuest {
        /// The specification.
        spec: String,
        /// Its guest path.
        guest: String,
    },
    /// The host directory does not exist or is not a directory.
    #[error("invalid mount {spec:?}: {host} is not a directory on this machine")]
    NotADirectory {
        /// The specification.
        spec: String,
        /// Its host path.
        host: String,
    },
    /// The host path goes through a symbolic link.
    #[error(
        "invalid mount {spec:?}: {host} goes through a symbolic link, which a mount never \
         follows; name the directory itself{}",
        target.as_deref().map(|t| format!(" ({t})")).unwrap_or_default()
    )]
    Symlink {
        /// The specification.
        spec: String,
        /// Its host path.
        host: String,
        /// Where the links lead today, when that can be told.
        target: Option<String>,
    },
    /// The directory could not be opened.
    #[error("invalid mount {spec:?}: cannot open {host}: {reason}")]
    Open {
        /// The specification.
        spec: String,
        /// Its host path.
        host: String,
        /// What the system said.
        reason: String,
    },
}

impl Mount {
    /// `host` (a directory) visible read-only at `guest` (an absolute path).
    pub fn read_only(host: impl AsRef<Path>, guest: &str) -> Result<Self, MountError> {
        let spec = format!("{}:{guest}", host.as_ref().display());
        Self::open(&spec, host.as_ref(), guest, false)
    }

    /// `host` (a directory) visible at `guest` (an absolute path); the guest may create,
    /// change and delete files in it.
    pub fn writable(host: impl AsRef<Path>, guest: &str) -> Result<Self, MountError> {
        let spec = format!("{}:{guest}:rw", host.as_ref().display());
        Self::open(&spec, host.as_ref(), guest, true)
    }

    fn open(spec: &str, host: &Path, guest: &str, writable: bool) -> Result<Self, MountError> {
        if !guest.starts_with('/') {
            return Err(MountError::RelativeGuest {
                spec: spec.to_owned(),
                guest: guest.to_owned(),
            });
        }
        let shown = host.display().to_string();
        let dir = open_without_links(host).map_err(|e| {
            if goes_through_link(host) {
                return MountError::Symlink {
                    spec: spec.to_owned(),
                    host: shown.clone(),
                    target: host.canonicalize().ok().map(|t| t.display().to_string()),
                };
            }
            match e.raw_os_error() {
                Some(libc::ENOENT | libc::ENOTDIR) => MountError::NotADirectory {
                    spec: spec.to_owned(),
                    host: shown.clone(),
                },
                _ => MountError::Open {
                    spec: spec.to_owned(),
                    host: shown.clone(),
                    reason: e.to_string(),
                },
            }
        })?;
        Ok(Mount {
            host: host.to_owned(),
            guest: guest.to_owned(),
            writable,
            dir: Arc::new(dir),
        })
    }

    /// A path that opens this mount's directory itself, not whatever its path names now.
    pub(crate) fn opened_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()))
    }
}

/// Whether some component of `path` is a symbolic link.
fn goes_through_link(path: &Path) -> bool {
    let Ok(absolute) = std::path::absolute(path) else {
        return false;
    };
    absolute
        .ancestors()
        .any(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()))
}

/// Opens the directory `path` component by component, following no symbolic link (one on
/// the way fails the open).
#[allow(
    unsafe_code,
    reason = "openat with O_NOFOLLOW has no safe std equivalent"
)]
fn open_without_links(path: &Path) -> std::io::Result<OwnedFd> {
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()?.join(path)
    };
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let open_at = |dir: libc::c_int, name: &std::ffi::CStr| {
        // SAFETY: `name` is NUL-terminated and `dir` an open descriptor (or AT_FDCWD).
        let fd = unsafe { libc::openat(dir, name.as_ptr(), flags) };
        if fd < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            // SAFETY: a descriptor just opened and owned by nothing else.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
    };
    let mut dir = open_at(libc::AT_FDCWD, c"/")?;
    for component in absolute.components() {
        let name = match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            Component::ParentDir => c"..".to_owned(),
            Component::Normal(name) => {
                use std::os::unix::ffi::OsStrExt;
                std::ffi::CString::new(name.as_bytes())
                    .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?
            }
        };
        dir = open_at(dir.as_raw_fd(), &name)?;
    }
    Ok(dir)
}

impl FromStr for Mount {
    type Err = MountError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (rest, writable) = match spec.rsplit_once(':') {
            Some((rest, "ro")) => (rest, false),
            Some((rest, "rw")) => (rest, true),
            _ => (spec, false),
        };
        let (host, guest) = match rest.split_once(':') {
            Some((host, guest)) => (host, Some(guest)),
            None => (rest, None),
        };
        if host.is_empty() || guest == Some("") {
            return Err(MountError::Syntax(spec.to_owned()));
        }
        let guest = match guest {
            Some(guest) => guest.to_owned(),
            // Seen where it is on the host (when the path is usable, it holds no links, so
            // this is the directory's own path; when not, opening it says why).
            None => Path::new(host)
                .canonicalize()
                .map_or_else(|_| host.to_owned(), |p| p.to_string_lossy().into_owned()),
        };
        Self::open(spec, Path::new(host), &guest, writable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> String {
        std::env::temp_dir()
            .canonicalize()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn parses_every_form() {
        let t = tmp();
        let m: Mount = format!("{t}:/data").parse().unwrap();
        assert_eq!((m.guest.as_str(), m.writable), ("/data", false));
        let m: Mount = format!("{t}:/data:rw").parse().unwrap();
        assert_eq!((m.guest.as_str(), m.writable), ("/data", true));
        let m: Mount = format!("{t}:ro").parse().unwrap();
        assert_eq!((m.guest.as_str(), m.writable), (t.as_str(), false));
        let m: Mount = t.parse().unwrap();
        assert_eq!(m.guest, t);
    }

    #[test]
    fn refuses_bad_specs() {
        let t = tmp();
        assert!(matches!("".parse::<Mount>(), Err(MountError::Syntax(_))));
        assert!(matches!(
            format!("{t}:data").parse::<Mount>(),
            Err(MountError::RelativeGuest { .. })
        ));
        assert!(matches!(
            "/no/such/dir:/x".parse::<Mount>(),
            Err(MountError::NotADirectory { .. })
        ));
    }

    #[test]
    fn refuses_paths_through_symbolic_links() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, root.path().join("link")).unwrap();
        for host in [root.path().join("link"), root.path().join("link/.")] {
            let refused = Mount::read_only(&host, "/m");
            assert!(
                matches!(refused, Err(MountError::Symlink { .. })),
                "{host:?}: {refused:?}"
            );
        }
        let message = Mount::writable(root.path().join("link"), "/m")
            .unwrap_err()
            .to_string();
        assert!(message.contains(&real.display().to_string()), "{message}");
        Mount::read_only(&real, "/m").unwrap();
    }

    #[test]
    fn a_mount_keeps_the_directory_it_opened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("mine"), "").unwrap();
        let mount = Mount::read_only(&dir, "/m").unwrap();
        std::fs::rename(&dir, root.path().join("moved")).unwrap();
        std::os::unix::fs::symlink("/etc", &dir).unwrap();
        let seen: Vec<_> = std::fs::read_dir(mount.opened_path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(seen, ["mine"]);
    }
}
