//! `--mount HOST[:GUEST][:ro|:rw]`: a host directory made visible to the guest.

use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A host directory preopened in the guest; parsed from `HOST[:GUEST][:ro|:rw]`, or made
/// with [`Mount::read_only`] or [`Mount::writable`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mount {
    /// Directory on the host.
    pub host: PathBuf,
    /// Absolute path at which the guest sees it.
    pub guest: String,
    /// Whether the guest may create, change and delete files in it.
    pub writable: bool,
}

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
}

impl Mount {
    /// `host` (a directory) visible read-only at `guest` (an absolute path).
    pub fn read_only(host: impl AsRef<Path>, guest: &str) -> Result<Self, MountError> {
        Self::checked(host.as_ref(), guest, false)
    }

    /// `host` (a directory) visible at `guest` (an absolute path); the guest may create,
    /// change and delete files in it.
    pub fn writable(host: impl AsRef<Path>, guest: &str) -> Result<Self, MountError> {
        Self::checked(host.as_ref(), guest, true)
    }

    fn checked(host: &Path, guest: &str, writable: bool) -> Result<Self, MountError> {
        let spec = format!("{}:{guest}", host.display());
        if !guest.starts_with('/') {
            return Err(MountError::RelativeGuest {
                spec,
                guest: guest.to_owned(),
            });
        }
        let host = host
            .canonicalize()
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| MountError::NotADirectory {
                host: host.display().to_string(),
                spec,
            })?;
        Ok(Mount {
            host,
            guest: guest.to_owned(),
            writable,
        })
    }
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
        let host_path = Path::new(host)
            .canonicalize()
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| MountError::NotADirectory {
                spec: spec.to_owned(),
                host: host.to_owned(),
            })?;
        let guest = match guest {
            Some(g) if !g.starts_with('/') => {
                return Err(MountError::RelativeGuest {
                    spec: spec.to_owned(),
                    guest: g.to_owned(),
                })
            }
            Some(g) => g.to_owned(),
            None => host_path.to_string_lossy().into_owned(),
        };
        Ok(Mount {
            host: host_path,
            guest,
            writable,
        })
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
}
