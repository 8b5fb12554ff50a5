//! Reading `.deb` and `.rpm` files that strangers upload.
//!
//! Every byte here is untrusted, so the reader is strict (anything a stock
//! `dpkg`/`rpm` would refuse, or that could not be indexed safely, is an
//! error with a message a person can act on) and bounded (no input can make
//! it allocate or decompress more than [`Limits`] allows, however the sizes
//! inside the file are forged). A package is never read into memory whole:
//! a `.deb`'s data.tar is streamed to list its files, an `.rpm`'s payload is
//! only hashed.
//!
//! The crate knows container formats only; what a distribution accepts is
//! the family plugin's business. It depends on neither the host nor
//! wasmtime: the host converts [`DebPackage`] / [`RpmPackage`] into the
//! plugin contract's records.
//!
//! - [`deb`]: `debpkg` for the ar container and the decompressing streams,
//!   wrapped in byte/ratio limits, plus a strict pre-scan of the ar layout.
//! - [`rpm`](mod@crate::rpm): a strict pre-check of the raw header bytes, then
//!   the `rpm` crate for tag access and digests.

mod control;
pub mod deb;
mod error;
mod limit;
pub mod rpm;

use std::fs::File;
use std::io::Read;
use std::path::Path;

pub use crate::deb::{DebPackage, read_deb};
pub use crate::rpm::{RpmChangelog, RpmDependency, RpmFile, RpmFileKind, RpmPackage, read_rpm};
pub use error::ReadError;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Hard limits on what reading one package may cost.
///
/// The defaults accept every real package we know of (the largest Debian
/// packages unpack to a few GiB; real headers are a few MiB at most) while
/// keeping a forged file from costing more than a bounded amount of memory
/// and CPU time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Decompressed size of a `.deb`'s control.tar (default 16 MiB; real
    /// ones are a few KiB, the largest in Debian well under 1 MiB).
    pub max_control_bytes: u64,
    /// Decompressed data.tar bytes read while listing a `.deb`'s files
    /// (default 32 GiB). This bounds CPU time, not memory: the stream is
    /// never buffered.
    pub max_data_bytes: u64,
    /// Decompressed/compressed ratio allowed for any `.deb` member (default
    /// 200). Real members expand 3-15x (the 42 test packages: at most 13x
    /// beyond tiny ones), while a gzip bomb reaches 1000x and an xz or zstd
    /// bomb far more; the ratio
    /// stops a bomb after a few hundred times its own size instead of at the
    /// absolute limits. The first 1 MiB of any member is exempt, so small
    /// members padded by tar's 10 KiB records are never caught by it.
    pub max_expansion_ratio: u64,
    /// Entries in a tar member, RPM header index entries and RPM files
    /// (default 1,000,000; the largest real packages have on the order of
    /// 100,000 files).
    pub max_entries: u64,
    /// Any single control field, tar long name or RPM header string
    /// (default 1 MiB).
    pub max_field_bytes: usize,
    /// RPM signature header + main header together (default 64 MiB; real
    /// headers are KiB to a few MiB, and rpm itself refuses a header whose
    /// data exceeds 256 MiB).
    pub max_header_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_control_bytes: 16 * MIB,
            max_data_bytes: 32 * GIB,
            max_expansion_ratio: 200,
            max_entries: 1_000_000,
            max_field_bytes: MIB as usize,
            max_header_bytes: 64 * MIB,
        }
    }
}

/// The container formats this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Deb,
    Rpm,
}

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const RPM_LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];

/// How many leading bytes [`sniff`] needs to recognise a `.deb` (the ar
/// signature plus the first member's name).
pub const SNIFF_LEN: usize = 24;

/// Recognises a package by its first bytes: an ar archive whose first member
/// is `debian-binary`, or the RPM lead magic `ed ab ee db`. Give it at
/// least [`SNIFF_LEN`] bytes when the file has that many.
pub fn sniff(first_bytes: &[u8]) -> Option<Format> {
    if first_bytes.starts_with(&RPM_LEAD_MAGIC) {
        return Some(Format::Rpm);
    }
    let name = first_bytes.strip_prefix(AR_MAGIC)?;
    // ar pads names with spaces; GNU ar may end them with '/'.
    let plain = b"debian-binary ";
    let gnu = b"debian-binary/";
    let len = name.len().min(plain.len());
    (name[..len] == plain[..len] || name[..len] == gnu[..len]).then_some(Format::Deb)
}

/// A parsed package of either format.
// One value per upload, moved once: boxing the larger variant would only
// make matching clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "format", rename_all = "lowercase")]
pub enum Package {
    Deb(DebPackage),
    Rpm(RpmPackage),
}

impl Package {
    pub fn format(&self) -> Format {
        match self {
            Package::Deb(_) => Format::Deb,
            Package::Rpm(_) => Format::Rpm,
        }
    }
}

/// Reads a package of either format, recognised by its content (never by
/// its file name, which the uploader chose).
pub fn read(path: &Path, limits: &Limits) -> Result<Package, ReadError> {
    // Enough for sniffing and for saying what a non-package looks like.
    let mut head = Vec::with_capacity(512);
    File::open(path)?.take(512).read_to_end(&mut head)?;
    match sniff(&head) {
        Some(Format::Deb) => read_deb(path, limits).map(Package::Deb),
        Some(Format::Rpm) => read_rpm(path, limits).map(Package::Rpm),
        None if head.is_empty() => Err(ReadError::Empty),
        None if head.starts_with(AR_MAGIC) => read_deb(path, limits).map(Package::Deb),
        None => Err(ReadError::UnknownFormat(describe_magic(&head))),
    }
}

/// Names what a file that is not a package looks like, so the message can
/// say "a tarball renamed to .deb?" rather than just "bad magic".
pub(crate) fn describe_magic(head: &[u8]) -> String {
    let kinds: [(&[u8], &str); 8] = [
        (
            b"\x1f\x8b",
            "gzip-compressed data (a tarball renamed to .deb or .rpm?)",
        ),
        (
            b"\xfd7zXZ\x00",
            "xz-compressed data (a tarball renamed to .deb or .rpm?)",
        ),
        (
            b"\x28\xb5\x2f\xfd",
            "zstd-compressed data (a tarball renamed to .deb or .rpm?)",
        ),
        (
            b"BZh",
            "bzip2-compressed data (a tarball renamed to .deb or .rpm?)",
        ),
        (b"PK\x03\x04", "a zip archive"),
        (b"\x7fELF", "an ELF executable"),
        (b"%PDF", "a PDF document"),
        (b"<", "text or markup (an HTML error page?)"),
    ];
    if head.starts_with(AR_MAGIC) {
        return "the file is an ar archive (a .deb?)".to_owned();
    }
    if head.starts_with(&RPM_LEAD_MAGIC) {
        return "the file starts with the RPM lead magic (an .rpm?)".to_owned();
    }
    if let Some((_, what)) = kinds.iter().find(|(magic, _)| head.starts_with(magic)) {
        return format!("the file is {what}");
    }
    if head.len() > 262 && &head[257..262] == b"ustar" {
        return "the file is an uncompressed tar archive (renamed to .deb or .rpm?)".to_owned();
    }
    "the first bytes are neither an ar archive signature (.deb) nor the RPM lead magic".to_owned()
}

/// "16 MiB", "32 GiB", "1000 bytes": limits as a person reads them.
pub(crate) fn human_bytes(n: u64) -> String {
    const KIB: u64 = 1 << 10;
    for (unit, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if n >= unit && n.is_multiple_of(unit) {
            return format!("{} {name}", n / unit);
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_both_formats_and_nothing_else() {
        assert_eq!(sniff(b"!<arch>\ndebian-binary   1342"), Some(Format::Deb));
        assert_eq!(sniff(b"!<arch>\ndebian-binary/  1342"), Some(Format::Deb));
        assert_eq!(sniff(b"!<arch>\ndebian"), Some(Format::Deb));
        assert_eq!(sniff(b"!<arch>\nlibfoo.o        "), None);
        assert_eq!(sniff(&[0xed, 0xab, 0xee, 0xdb, 3, 0]), Some(Format::Rpm));
        assert_eq!(sniff(b"\x1f\x8b\x08\x00"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn results_can_cross_threads() {
        // The host parses on a blocking thread and answers from another.
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Package>();
        send_sync::<ReadError>();
        send_sync::<Limits>();
    }

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        assert_eq!(human_bytes(16 * MIB), "16 MiB");
        assert_eq!(human_bytes(32 * GIB), "32 GiB");
        assert_eq!(human_bytes(2048), "2 KiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }
}
