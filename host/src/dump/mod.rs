//! A session as bytes: what [`crate::Session::dump`] writes and
//! [`crate::Evaluator::restore`] reads.
//!
//! A dump is the pages of the instance's linear memory that differ from a fresh instance's
//! (`pages`), the size of that memory, and the guest paths of the directories it was
//! granted (their descriptors are numbered in that order). It starts with a magic line and
//! the SHA-256 of the component it was taken from, in the clear, so one from another
//! component or another version is refused before anything is read; the rest is one
//! zstd frame with its checksum, so a truncated or altered dump is refused too.
//!
//! A dump is the guest's memory, with everything the session's code held: treat it as the
//! user's data. A dump altered to pass these checks gives an interpreter in an unknown
//! state, inside the same sandbox and limits as any other.

mod instance;
mod pages;

use std::io::Read;

pub(crate) use instance::{read, view, write};
pub(crate) use pages::Reference;

/// The bytes every dump starts with; the last is the format's version.
const MAGIC: &[u8; 16] = b"pyeval session\n\x01";

/// Bytes in a page as dumps count them.
pub(crate) const PAGE: usize = 4096;

/// Bytes in a wasm page: a memory's size is a whole number of them.
const WASM_PAGE: u64 = 64 << 10;

/// How hard zstd works: its fastest levels already find most of what memory pages repeat.
const ZSTD_LEVEL: i32 = 1;

/// Why a dump cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    /// Not a pyeval session dump, or one of another format version.
    #[error("not a session dump of this pyeval version")]
    NotADump,
    /// Taken from another component (another build, another package set).
    #[error(
        "the dump was taken from another component (SHA-256 {dumped}), not this evaluator's \
         ({ours})"
    )]
    OtherComponent { dumped: String, ours: String },
    /// Cut short, altered, or inconsistent.
    #[error("the dump is damaged: {0}")]
    Damaged(String),
    /// The session's memory is more than the restoring session may have.
    #[error(
        "the dumped session holds {} MiB of memory, over this session's limit of {} MiB",
        needs >> 20,
        limit >> 20
    )]
    TooLarge { needs: u64, limit: u64 },
    /// The dumped session had other host directories.
    #[error(
        "the dumped session was granted the directories {dumped:?}; restore it with the \
         same ones, in the same order (given: {given:?})"
    )]
    OtherMounts {
        dumped: Vec<String>,
        given: Vec<String>,
    },
}

/// A run of consecutive pages and their bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    /// Byte offset of its first page in linear memory.
    pub offset: u64,
    pub data: Vec<u8>,
}

/// A session's state: its memory's size and the pages that differ from a fresh instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Image {
    /// Bytes of linear memory (whole wasm pages).
    pub size: u64,
    /// Guest paths of the host directories granted, in order.
    pub mounts: Vec<String>,
    pub runs: Vec<Run>,
}

impl Image {
    /// The dump of this image, taken from the component whose SHA-256 (hex) is `component`.
    pub(crate) fn encode(&self, component: &str) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.runs.iter().map(|r| r.data.len() + 16).sum());
        body.extend(self.size.to_le_bytes());
        put_len(&mut body, self.mounts.len());
        for mount in &self.mounts {
            put_len(&mut body, mount.len());
            body.extend(mount.as_bytes());
        }
        put_len(&mut body, self.runs.len());
        for run in &self.runs {
            body.extend(run.offset.to_le_bytes());
            put_len(&mut body, run.data.len());
            body.extend(&run.data);
        }
        let mut out = Vec::with_capacity(body.len() / 3 + 128);
        out.extend(MAGIC);
        out.extend(component.as_bytes());
        let mut encoder =
            zstd::stream::Encoder::new(&mut out, ZSTD_LEVEL).expect("zstd takes level 1 for a Vec");
        encoder.include_checksum(true).expect("a frame parameter");
        std::io::Write::write_all(&mut encoder, &body).expect("writing to a Vec");
        encoder.finish().expect("writing to a Vec");
        out
    }

    /// Reads a dump taken from the component `component`, for a session whose memory may
    /// be at most `max_memory` bytes.
    pub(crate) fn decode(dump: &[u8], component: &str, max_memory: u64) -> Result<Self, DumpError> {
        let rest = dump.strip_prefix(MAGIC).ok_or(DumpError::NotADump)?;
        let dumped = rest
            .get(..component.len())
            .ok_or_else(|| DumpError::Damaged("it ends in its header".into()))?;
        if dumped != component.as_bytes() {
            return Err(DumpError::OtherComponent {
                dumped: String::from_utf8_lossy(dumped).into_owned(),
                ours: component.into(),
            });
        }
        let damaged = |e: std::io::Error| DumpError::Damaged(e.to_string());
        let mut decoder = zstd::stream::Decoder::new(&rest[component.len()..]).map_err(damaged)?;
        let mut body = Reader(&mut decoder);
        let size = body.u64()?;
        if size > max_memory {
            return Err(DumpError::TooLarge {
                needs: size,
                limit: max_memory,
            });
        }
        if !size.is_multiple_of(WASM_PAGE) {
            return Err(DumpError::Damaged(format!(
                "a memory of {size} bytes is not whole wasm pages"
            )));
        }
        let mounts = (0..body.len(MAX_MOUNTS)?)
            .map(|_| {
                let len = body.len(crate::files::PATH_MAX)?;
                String::from_utf8(body.bytes(len)?)
                    .map_err(|_| DumpError::Damaged("a directory's path is not UTF-8".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let count = body.len((size / PAGE as u64) as usize)?;
        let mut runs = Vec::with_capacity(count);
        let mut end = PAGE as u64;
        for _ in 0..count {
            let offset = body.u64()?;
            let len = body.len(size as usize)? as u64;
            let fits = offset >= end
                && offset.is_multiple_of(PAGE as u64)
                && len > 0
                && len.is_multiple_of(PAGE as u64)
                && offset.checked_add(len).is_some_and(|e| e <= size);
            if !fits {
                return Err(DumpError::Damaged(format!(
                    "pages at {offset:#x}, {len} bytes, are out of order or out of bounds"
                )));
            }
            end = offset + len;
            runs.push(Run {
                offset,
                data: body.bytes(len as usize)?,
            });
        }
        let mut extra = [0u8; 1];
        if decoder.read(&mut extra).map_err(damaged)? != 0 {
            return Err(DumpError::Damaged("bytes follow its last page".into()));
        }
        Ok(Image { size, mounts, runs })
    }
}

/// Most directories a dump names.
const MAX_MOUNTS: usize = 1024;

fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend((len as u64).to_le_bytes());
}

/// Reads a dump's body, every length checked before it is used.
struct Reader<'a, R: Read>(&'a mut R);

impl<R: Read> Reader<'_, R> {
    fn u64(&mut self) -> Result<u64, DumpError> {
        let mut bytes = [0u8; 8];
        self.0.read_exact(&mut bytes).map_err(cut)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// A count or a length, at most `max`.
    fn len(&mut self, max: usize) -> Result<usize, DumpError> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                DumpError::Damaged(format!("a length of {n} is over its bound of {max}"))
            })
    }

    fn bytes(&mut self, len: usize) -> Result<Vec<u8>, DumpError> {
        let mut bytes = vec![0; len];
        self.0.read_exact(&mut bytes).map_err(cut)?;
        Ok(bytes)
    }
}

fn cut(e: std::io::Error) -> DumpError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        DumpError::Damaged("it is cut short".into())
    } else {
        DumpError::Damaged(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &str = "ab12";

    fn image() -> Image {
        Image {
            size: 4 << 16,
            mounts: vec!["/data".into()],
            runs: vec![
                Run {
                    offset: PAGE as u64,
                    data: vec![7; 2 * PAGE],
                },
                Run {
                    offset: 10 * PAGE as u64,
                    data: (0..PAGE).map(|i| i as u8).collect(),
                },
            ],
        }
    }

    #[test]
    fn an_image_survives_its_dump() {
        let dump = image().encode(COMPONENT);
        assert_eq!(Image::decode(&dump, COMPONENT, 1 << 30), Ok(image()));
    }

    #[test]
    fn other_components_and_other_bytes_are_refused() {
        let dump = image().encode(COMPONENT);
        assert!(matches!(
            Image::decode(&dump, "cd34", 1 << 30),
            Err(DumpError::OtherComponent { .. })
        ));
        assert_eq!(
            Image::decode(b"PK\x03\x04 not a dump", COMPONENT, 1 << 30),
            Err(DumpError::NotADump)
        );
        assert!(matches!(
            Image::decode(&dump, COMPONENT, 1 << 16),
            Err(DumpError::TooLarge { .. })
        ));
    }

    #[test]
    fn every_truncation_is_refused_and_no_bit_flip_changes_the_image() {
        let dump = image().encode(COMPONENT);
        for len in 0..dump.len() {
            assert!(
                Image::decode(&dump[..len], COMPONENT, 1 << 30).is_err(),
                "{len}"
            );
        }
        for at in MAGIC.len() + COMPONENT.len()..dump.len() {
            for bit in [0, 3, 7] {
                let mut flipped = dump.clone();
                flipped[at] ^= 1 << bit;
                // Refused, or (a bit of the frame's header that does not change what it
                // holds, such as its window size) read as the same image.
                match Image::decode(&flipped, COMPONENT, 1 << 30) {
                    Err(_) => {}
                    Ok(read) => assert_eq!(read, image(), "bit {bit} of byte {at}"),
                }
            }
        }
    }

    #[test]
    fn pages_out_of_bounds_or_order_are_refused() {
        for runs in [
            vec![(0u64, PAGE)],                                 // page 0
            vec![(PAGE as u64, 5 << 16)],                       // past the memory
            vec![(2 * PAGE as u64, PAGE), (PAGE as u64, PAGE)], // out of order
            vec![(PAGE as u64 + 1, PAGE)],                      // not on a page
            vec![(PAGE as u64, PAGE + 1)],                      // not whole pages
            vec![(u64::MAX - PAGE as u64 + 1, PAGE)],           // overflowing
        ] {
            let image = Image {
                size: 4 << 16,
                mounts: vec![],
                runs: runs
                    .into_iter()
                    .map(|(offset, len)| Run {
                        offset,
                        data: vec![1; len],
                    })
                    .collect(),
            };
            let dump = image.encode(COMPONENT);
            assert!(
                matches!(
                    Image::decode(&dump, COMPONENT, 1 << 30),
                    Err(DumpError::Damaged(_))
                ),
                "{:?}",
                image
                    .runs
                    .iter()
                    .map(|r| (r.offset, r.data.len()))
                    .collect::<Vec<_>>()
            );
        }
    }
}
