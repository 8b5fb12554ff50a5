//! `.deb` files: an ar archive of `debian-binary`, `control.tar[.gz|.xz|.zst]`
//! and `data.tar[|.gz|.xz|.zst|.bz2]`, in that order.
//!
//! `debpkg` parses the ar container, checks debian-binary and hands back
//! each member as a decompressing stream. Three things it cannot be trusted
//! with on hostile input, and what is hand-written instead:
//!
//! - **Its ar layer allocates what a header claims** (a GNU `//` name table
//!   of any declared size) and can panic on a bad name index. So `scan_ar`
//!   first walks the raw member headers itself, requires the three
//!   plain-named members in dpkg's order, each complete within the file, and
//!   checks each one's leading bytes against its name. debpkg only ever sees
//!   archives that passed, and the expansion ratio uses the member sizes
//!   found there.
//! - **It decompresses without bounds.** The decompressed stream is taken
//!   back out of the `tar::Archive` it returns (`into_inner`) and wrapped in
//!   a `Bounded` reader (bytes and ratio) before tar sees it.
//! - **tar's convenience iterator buffers long names and PAX headers whole**
//!   (an entry declaring a 10 GiB name is read into memory). Entries are
//!   therefore read raw, and GNU long names and PAX `path` records are
//!   applied here, each bounded by `max_field_bytes`.
//!
//! Known gaps, both harmless to the repository: the xz decoder debpkg builds
//! has no memory limit, but it only touches dictionary memory as it produces
//! output, so its footprint stays within the decompressed-size bounds; and
//! debpkg's gzip and bzip2 decoders stop after the first stream, so a
//! data.tar made of several concatenated gzip/bzip2 streams (which dpkg-deb
//! never writes) is listed only up to the first stream's end.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::limit::{Bounded, Source, Tripwire};
use crate::{AR_MAGIC, Limits, ReadError, control, describe_magic, human_bytes};

/// What a `.deb` declares and contains.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DebPackage {
    /// The control stanza in file order. Multi-line values keep the leading
    /// blank of each continuation line and are joined with `\n`
    /// (`"short\n long line\n .\n more"`); a value whose first line is empty
    /// starts with `\n`.
    pub control: Vec<(String, String)>,
    /// Regular files, symlinks and hard links in data.tar, in archive order,
    /// without the leading `./` and without directories.
    pub files: Vec<String>,
}

impl DebPackage {
    /// A control field's value; names compare case-insensitively (deb822).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.control
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a `.deb` without loading it into memory: the control.tar is
/// unpacked (bounded by `max_control_bytes`), the data.tar streamed once to
/// list its files.
pub fn read_deb(path: &Path, limits: &Limits) -> Result<DebPackage, ReadError> {
    let file = File::open(path)?;
    let members = scan_ar(&file)?;
    (&file).seek(SeekFrom::Start(0))?;

    let tripwire = Tripwire::default();
    let reader = BufReader::with_capacity(64 << 10, Source::new(&file, tripwire.clone()));
    let mut pkg =
        debpkg::DebPkg::parse(reader).map_err(|e| debpkg_error(e, &tripwire, "debian-binary"))?;

    let control = {
        let control_tar = pkg
            .control()
            .map_err(|e| debpkg_error(e, &tripwire, &members.control.name))?;
        let stream = Bounded::new(
            control_tar.into_inner(),
            members.control.name.clone(),
            limits.max_control_bytes,
            members.control.compressed_size(),
            limits.max_expansion_ratio,
            tripwire.clone(),
        );
        read_control(stream, &members.control.name, limits, &tripwire)?
    };

    let files = {
        let data_tar = pkg
            .data()
            .map_err(|e| debpkg_error(e, &tripwire, &members.data.name))?;
        let stream = Bounded::new(
            data_tar.into_inner(),
            members.data.name.clone(),
            limits.max_data_bytes,
            members.data.compressed_size(),
            limits.max_expansion_ratio,
            tripwire.clone(),
        );
        let mut files = Vec::new();
        walk_tar(stream, &members.data.name, limits, &tripwire, |entry| {
            if matches!(entry.kind, Kind::File | Kind::Symlink | Kind::HardLink) {
                files.push(entry.path);
            }
            Ok(())
        })?;
        files
    };

    Ok(DebPackage { control, files })
}

fn debpkg_error(error: debpkg::Error, tripwire: &Tripwire, member: &str) -> ReadError {
    use debpkg::Error as E;
    match error {
        E::Io(io) => tripwire.explain(|| ReadError::Archive {
            member: member.to_owned(),
            detail: io.to_string(),
        }),
        // The cases below are ruled out by scan_ar; mapped for completeness.
        E::InvalidVersion => ReadError::DebVersion("not 2.x".to_owned()),
        E::MissingDebianBinary => ReadError::NotDeb("missing debian-binary member".to_owned()),
        E::MissingControlArchive => ReadError::NotDeb("control.tar member missing".to_owned()),
        E::MissingDataArchive => ReadError::NotDeb("data.tar member missing".to_owned()),
        other => ReadError::Archive {
            member: member.to_owned(),
            detail: other.to_string(),
        },
    }
}

// ---------------------------------------------------------------------------
// The ar layout, checked before debpkg reads anything.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

impl Compression {
    /// The suffix after `control.tar` / `data.tar`, as dpkg names members.
    fn from_suffix(suffix: &str) -> Option<Compression> {
        Some(match suffix {
            "" => Compression::None,
            ".gz" => Compression::Gzip,
            ".xz" => Compression::Xz,
            ".zst" => Compression::Zstd,
            ".bz2" => Compression::Bzip2,
            _ => return None,
        })
    }

    fn matches(self, head: &[u8]) -> bool {
        match self {
            Compression::None => head.len() >= 262 && &head[257..262] == b"ustar",
            Compression::Gzip => head.starts_with(b"\x1f\x8b"),
            Compression::Xz => head.starts_with(b"\xfd7zXZ\x00"),
            Compression::Zstd => head.starts_with(b"\x28\xb5\x2f\xfd"),
            Compression::Bzip2 => head.starts_with(b"BZh"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Compression::None => "a tar archive",
            Compression::Gzip => "gzip data",
            Compression::Xz => "xz data",
            Compression::Zstd => "zstd data",
            Compression::Bzip2 => "bzip2 data",
        }
    }
}

#[derive(Debug)]
struct Member {
    name: String,
    size: u64,
    compression: Compression,
}

impl Member {
    fn compressed_size(&self) -> Option<u64> {
        (self.compression != Compression::None).then_some(self.size)
    }
}

#[derive(Debug)]
struct Members {
    control: Member,
    data: Member,
}

const AR_HEADER_LEN: u64 = 60;

/// Walks the ar headers of debian-binary, control.tar and data.tar with
/// seeks, verifying names, order, sizes and leading bytes. Members after
/// data.tar are ignored, as dpkg ignores them.
fn scan_ar(file: &File) -> Result<Members, ReadError> {
    let len = file.metadata()?.len();
    let mut head = [0u8; 8];
    let got = read_at(file, 0, &mut head)?;
    if got == 0 {
        return Err(ReadError::Empty);
    }
    if head[..got] != AR_MAGIC[..got] {
        let mut first = vec![0u8; 512];
        let n = read_at(file, 0, &mut first)?;
        return Err(ReadError::NotDeb(format!(
            "no ar archive signature: {}",
            describe_magic(&first[..n])
        )));
    }
    if got < 8 {
        return Err(ReadError::Truncated("the ar archive signature".to_owned()));
    }

    let mut pos = 8u64;
    let mut next = |what: &str| -> Result<Option<(String, u64, u64)>, ReadError> {
        if pos == len {
            return Ok(None);
        }
        let header_at = pos;
        let mut header = [0u8; AR_HEADER_LEN as usize];
        if read_at(file, pos, &mut header)? < header.len() {
            return Err(ReadError::Truncated(format!(
                "the ar member header at byte {header_at} ({what})"
            )));
        }
        if &header[58..60] != b"`\n" {
            return Err(ReadError::Archive {
                member: "ar archive".to_owned(),
                detail: format!("the member header at byte {header_at} has no end marker"),
            });
        }
        // Names are padded with spaces, GNU ar ends them with '/': the same
        // reading as the ar crate's, so both see the same member names.
        let raw_name = &header[..16];
        let mut name = raw_name;
        while let [rest @ .., b' '] = name {
            name = rest;
        }
        let name = name.strip_suffix(b"/").unwrap_or(name);
        let name = String::from_utf8_lossy(name).into_owned();
        if name.is_empty() || name.starts_with('/') || name.starts_with("#1/") {
            return Err(ReadError::Unsupported(format!(
                "ar member {:?} at byte {header_at} uses an extended-name table, which Debian packages never do",
                String::from_utf8_lossy(raw_name).trim_end()
            )));
        }
        let size_text = std::str::from_utf8(&header[48..58])
            .unwrap_or("")
            .trim_end();
        let size: u64 = size_text.parse().map_err(|_| ReadError::Archive {
            member: "ar archive".to_owned(),
            detail: format!("member {name} declares an invalid size {size_text:?}"),
        })?;
        let offset = header_at + AR_HEADER_LEN;
        let present = len - offset;
        if size > present {
            return Err(ReadError::Truncated(format!(
                "the ar member {name} ({size} bytes declared, {present} present)"
            )));
        }
        // Members start on even offsets; the padding byte may be missing
        // after the last one.
        pos = (offset + size + (size & 1)).min(len);
        Ok(Some((name, offset, size)))
    };

    let Some((name, offset, size)) = next("debian-binary")? else {
        return Err(ReadError::NotDeb("missing debian-binary member".to_owned()));
    };
    if name != "debian-binary" {
        return Err(ReadError::NotDeb(format!(
            "missing debian-binary member (the first member is {name:?})"
        )));
    }
    let mut version = vec![0u8; size.min(64) as usize];
    read_at(file, offset, &mut version)?;
    let first_line = version.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let major_ok = first_line.starts_with(b"2.")
        && first_line.len() > 2
        && first_line[2..].iter().all(u8::is_ascii_digit);
    if !major_ok {
        return Err(ReadError::DebVersion(
            String::from_utf8_lossy(first_line).trim().to_owned(),
        ));
    }

    let control = match next("control.tar")? {
        Some((name, offset, size)) => member(file, "control.tar", name, offset, size)?,
        None => return Err(ReadError::NotDeb("control.tar member missing".to_owned())),
    };
    if control.compression == Compression::Bzip2 {
        return Err(ReadError::Unsupported(format!(
            "{}: dpkg only reads control.tar uncompressed or as .gz, .xz or .zst",
            control.name
        )));
    }
    let data = match next("data.tar")? {
        Some((name, offset, size)) => member(file, "data.tar", name, offset, size)?,
        None => return Err(ReadError::NotDeb("data.tar member missing".to_owned())),
    };
    Ok(Members { control, data })
}

/// Checks that an ar member is the expected kind (`control.tar` or
/// `data.tar`), knows its compression, and begins like it.
fn member(
    file: &File,
    expected: &str,
    name: String,
    offset: u64,
    size: u64,
) -> Result<Member, ReadError> {
    let Some(suffix) = name.strip_prefix(expected) else {
        if name.starts_with('_') {
            return Err(ReadError::Unsupported(format!(
                "the extra ar member {name:?} before {expected} (dpkg-sig style members must come last)"
            )));
        }
        let found = if name.starts_with("data.tar") {
            " (found data.tar first)".to_owned()
        } else {
            format!(" (found {name:?} in its place)")
        };
        return Err(ReadError::NotDeb(format!(
            "{expected} member missing{found}"
        )));
    };
    let compression = match Compression::from_suffix(suffix) {
        Some(c) => c,
        None if suffix == ".lzma" => {
            return Err(ReadError::Unsupported(format!(
                "{name}: lzma compression is obsolete and not supported; rebuild with xz, gzip or zstd"
            )));
        }
        None => {
            return Err(ReadError::NotDeb(format!(
                "{expected} member has an unknown compression: {name:?}"
            )));
        }
    };
    let mut head = [0u8; 262];
    let n = read_at(file, offset, &mut head[..size.min(262) as usize])?;
    if !compression.matches(&head[..n]) {
        return Err(ReadError::Archive {
            member: name.clone(),
            detail: format!("its content is not {}", compression.label()),
        });
    }
    Ok(Member {
        name,
        size,
        compression,
    })
}

/// Reads up to `buf.len()` bytes at `offset`; fewer only at end of file.
fn read_at(mut file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    file.seek(SeekFrom::Start(offset))?;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

// ---------------------------------------------------------------------------
// Tar members.

fn read_control<R: Read>(
    stream: R,
    member: &str,
    limits: &Limits,
    tripwire: &Tripwire,
) -> Result<Vec<(String, String)>, ReadError> {
    let mut control: Option<Vec<u8>> = None;
    walk_tar(stream, member, limits, tripwire, |entry| {
        if entry.path == "control" && entry.kind == Kind::File {
            if control.is_some() {
                return Err(ReadError::NotDeb(format!(
                    "{member} holds two control files"
                )));
            }
            let mut bytes = Vec::new();
            entry
                .data
                .read_to_end(&mut bytes)
                .map_err(|e| tar_error(e, tripwire, member))?;
            control = Some(bytes);
        }
        Ok(())
    })?;
    let bytes =
        control.ok_or_else(|| ReadError::NotDeb(format!("{member} has no control file")))?;
    control::parse(&bytes, limits.max_field_bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    HardLink,
    Symlink,
    Directory,
    Special,
}

struct TarEntry<'e> {
    /// Without the leading `./`; directories without their trailing `/`.
    path: String,
    kind: Kind,
    data: &'e mut dyn Read,
}

fn tar_error(error: io::Error, tripwire: &Tripwire, member: &str) -> ReadError {
    tripwire.explain(|| ReadError::Archive {
        member: member.to_owned(),
        detail: error.to_string(),
    })
}

/// Calls `visit` for each real entry of a tar stream, with GNU long names
/// and PAX paths applied and every path checked. Entries are read raw so
/// that no extension header is ever buffered beyond `max_field_bytes`.
fn walk_tar<R: Read>(
    stream: R,
    member: &str,
    limits: &Limits,
    tripwire: &Tripwire,
    mut visit: impl FnMut(TarEntry<'_>) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let mut archive = tar::Archive::new(stream);
    let entries = archive
        .entries()
        .map_err(|e| tar_error(e, tripwire, member))?
        .raw(true);
    let mut long_name: Option<Vec<u8>> = None;
    let mut pending_extension = false;
    let mut count = 0u64;
    for entry in entries {
        let mut entry = entry.map_err(|e| tar_error(e, tripwire, member))?;
        let header_kind = entry.header().entry_type();
        use tar::EntryType as T;
        match header_kind {
            T::GNULongName => {
                long_name = Some(read_extension(
                    &mut entry,
                    member,
                    limits,
                    tripwire,
                    "a GNU long file name",
                )?);
                pending_extension = true;
                continue;
            }
            T::XHeader => {
                let records = read_extension(
                    &mut entry,
                    member,
                    limits,
                    tripwire,
                    "a PAX extended header",
                )?;
                if let Some(path) = pax_path(&records, member)? {
                    long_name = Some(path);
                }
                pending_extension = true;
                continue;
            }
            // Link targets and global headers do not change which paths the
            // package installs.
            T::GNULongLink | T::XGlobalHeader => {
                pending_extension = true;
                continue;
            }
            _ => {}
        }
        count += 1;
        if count > limits.max_entries {
            return Err(ReadError::TooManyEntries {
                what: member.to_owned(),
                limit: limits.max_entries,
            });
        }
        let raw_path = match long_name.take() {
            Some(name) => name,
            None => entry.header().path_bytes().into_owned(),
        };
        pending_extension = false;
        let mut kind = match header_kind {
            T::Regular | T::Continuous => Kind::File,
            T::Link => Kind::HardLink,
            T::Symlink => Kind::Symlink,
            T::Directory => Kind::Directory,
            T::Char | T::Block | T::Fifo => Kind::Special,
            T::GNUSparse => {
                return Err(ReadError::Unsupported(format!(
                    "{member} contains a sparse file, which dpkg cannot unpack"
                )));
            }
            other => {
                return Err(ReadError::Archive {
                    member: member.to_owned(),
                    detail: format!(
                        "entry type {:?} is not a file, link or directory",
                        other.as_byte() as char
                    ),
                });
            }
        };
        // Old tar writers mark directories only by a trailing slash.
        if kind == Kind::File && raw_path.ends_with(b"/") {
            kind = Kind::Directory;
        }
        let Some(path) = clean_path(&raw_path, member, kind)? else {
            continue;
        };
        visit(TarEntry {
            path,
            kind,
            data: &mut entry,
        })?;
    }
    if pending_extension {
        return Err(ReadError::Archive {
            member: member.to_owned(),
            detail: "it ends with a long-name or PAX header that describes no file".to_owned(),
        });
    }
    Ok(())
}

/// Reads one extension entry's content, refusing more than `max_field_bytes`.
fn read_extension(
    entry: &mut dyn Read,
    member: &str,
    limits: &Limits,
    tripwire: &Tripwire,
    what: &str,
) -> Result<Vec<u8>, ReadError> {
    let max = limits.max_field_bytes as u64;
    let mut bytes = Vec::new();
    entry
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| tar_error(e, tripwire, member))?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge {
            what: format!("{what} in {member}"),
            limit: human_bytes(max),
        });
    }
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    Ok(bytes)
}

/// The `path` of PAX records (`"<len> <key>=<value>\n"`...). Records that
/// would change how the archive is laid out are refused: read raw, tar
/// would not apply them, and the listing would differ from what dpkg sees.
fn pax_path(records: &[u8], member: &str) -> Result<Option<Vec<u8>>, ReadError> {
    let bad = |detail: &str| ReadError::Archive {
        member: member.to_owned(),
        detail: format!("malformed PAX header: {detail}"),
    };
    let mut path = None;
    let mut rest = records;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("record without length"))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("record length is not a number"))?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad("record length does not match its content"));
        }
        let record = &rest[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("record without '='"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => path = Some(value.to_vec()),
            b"size" => {
                return Err(ReadError::Unsupported(format!(
                    "{member} overrides an entry size in a PAX header"
                )));
            }
            k if k.starts_with(b"GNU.sparse.") => {
                return Err(ReadError::Unsupported(format!(
                    "{member} contains a sparse file, which dpkg cannot unpack"
                )));
            }
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(path)
}

/// Turns a tar path into the installed path without `./`, refusing names
/// that escape the root or cannot be indexed. `None` for the root itself.
fn clean_path(raw: &[u8], member: &str, kind: Kind) -> Result<Option<String>, ReadError> {
    let path = String::from_utf8(raw.to_vec()).map_err(|_| ReadError::NonUtf8Path {
        archive: member.to_owned(),
        lossy: String::from_utf8_lossy(raw).into_owned(),
    })?;
    let bad = |problem| ReadError::BadPath {
        archive: member.to_owned(),
        path: path.clone(),
        problem,
    };
    if path.starts_with('/') {
        return Err(ReadError::PathEscapes {
            archive: member.to_owned(),
            path,
        });
    }
    let mut rest = path.as_str();
    while let Some(stripped) = rest.strip_prefix("./") {
        rest = stripped;
    }
    if kind == Kind::Directory {
        rest = rest.trim_end_matches('/');
    }
    if rest.is_empty() || rest == "." {
        return if kind == Kind::Directory {
            Ok(None)
        } else {
            Err(bad("has no file name"))
        };
    }
    if rest.split('/').any(|c| c == "..") {
        return Err(ReadError::PathEscapes {
            archive: member.to_owned(),
            path,
        });
    }
    if rest.split('/').any(|c| c.is_empty() || c == ".") {
        return Err(bad("has an empty or '.' component"));
    }
    if rest.contains(['\n', '\r', '\0']) {
        return Err(bad("contains a line break or NUL"));
    }
    Ok(Some(rest.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_or_refused() {
        let clean = |p: &str, k| clean_path(p.as_bytes(), "data.tar", k);
        assert_eq!(
            clean("./usr/bin/x", Kind::File).unwrap().unwrap(),
            "usr/bin/x"
        );
        assert_eq!(clean("./", Kind::Directory).unwrap(), None);
        assert_eq!(clean("./usr/", Kind::Directory).unwrap().unwrap(), "usr");
        assert_eq!(
            clean("./usr/../../etc/passwd", Kind::File)
                .unwrap_err()
                .to_string(),
            "file name in data.tar escapes the package root: \"./usr/../../etc/passwd\""
        );
        assert_eq!(
            clean("/etc/passwd", Kind::Symlink).unwrap_err().to_string(),
            "file name in data.tar escapes the package root: \"/etc/passwd\""
        );
        assert_eq!(
            clean("./a//b", Kind::File).unwrap_err().to_string(),
            "file name \"./a//b\" in data.tar has an empty or '.' component"
        );
        assert_eq!(
            clean("./a\nb", Kind::File).unwrap_err().to_string(),
            "file name \"./a\\nb\" in data.tar contains a line break or NUL"
        );
    }

    #[test]
    fn pax_records() {
        assert_eq!(
            pax_path(b"20 path=./a/b/c/d/e\n14 mtime=1.23\n", "data.tar").unwrap(),
            Some(b"./a/b/c/d/e".to_vec())
        );
        assert!(pax_path(b"12 size=100\n", "data.tar").is_err());
        assert!(pax_path(b"99 path=x\n", "data.tar").is_err());
    }
}
