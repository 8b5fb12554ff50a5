//! `.rpm` files: a 96-byte lead, a signature header, the main header and
//! the compressed payload (a cpio archive).
//!
//! Everything a repository needs (names, dependencies, the file list,
//! sizes, changelogs) is in the headers, so the payload is never
//! decompressed, only hashed against its recorded digest.
//!
//! The `rpm` crate parses the headers, looks tags up by type and checks the
//! header digests. It trusts the headers' own numbers: it allocates
//! whatever size an intro declares, reserves whatever item count an index
//! entry claims and slices the store at unchecked offsets (a panic on a
//! negative one). So before it sees a byte, `check_layout` and
//! `check_header` verify both headers from the raw bytes the way rpm's own
//! `hdrblobVerifyInfo` does: sizes within [`Limits`] and within the file,
//! every index entry's type known and its data inside the store, strings
//! terminated, and the strings handed out valid UTF-8 and within
//! `max_field_bytes`. The crate is also called under `catch_unwind`, so a
//! bug it still has costs one refused upload, not the daemon.
//!
//! Hand-written rather than the crate's: createrepo_c's reading of the
//! tags (dependency relation and `pre`, legacy weak dependencies, file
//! kinds, sizes), the payload digest (the crate wants the payload in
//! memory), and the signature summary (the crate's `signature-meta` feature
//! does not build without a full OpenPGP backend).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use ::rpm::{IndexData, IndexTag, PackageMetadata};
use sha2::{Digest, Sha256};

use crate::{Limits, RPM_LEAD_MAGIC, ReadError, describe_magic, human_bytes};

/// What an `.rpm`'s headers declare: the fields of the plugin contract's
/// `rpm-package` record plus what the host decides on itself.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct RpmPackage {
    pub name: String,
    /// `None` when the header has no Epoch tag.
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub summary: String,
    pub description: String,
    pub url: String,
    pub license: String,
    pub vendor: String,
    pub group: String,
    pub buildhost: String,
    pub sourcerpm: String,
    pub packager: String,
    /// Unix seconds.
    pub build_time: u64,
    /// Sum of the file sizes (LONGSIZE, else SIZE).
    pub installed_size: u64,
    /// Size of the uncompressed payload archive (LONGARCHIVESIZE, else
    /// ARCHIVESIZE / the signature header's payload size).
    pub archive_size: u64,
    /// Byte range of the main header in the file, as createrepo_c's
    /// `rpm:header-range`: from the header's magic to its last data byte.
    pub header_start: u64,
    pub header_end: u64,
    pub provides: Vec<RpmDependency>,
    pub requires: Vec<RpmDependency>,
    pub conflicts: Vec<RpmDependency>,
    pub obsoletes: Vec<RpmDependency>,
    pub recommends: Vec<RpmDependency>,
    pub suggests: Vec<RpmDependency>,
    pub supplements: Vec<RpmDependency>,
    pub enhances: Vec<RpmDependency>,
    /// In header order.
    pub files: Vec<RpmFile>,
    /// In header order, which is newest first.
    pub changelogs: Vec<RpmChangelog>,
    /// A source package (`.src.rpm`); the host refuses these.
    pub is_source: bool,
    /// The header signature, e.g. `"RSA/SHA256, key ID 199e2f91fd431d51"`,
    /// if the package is signed. Informational: nothing is verified here.
    pub signature: Option<String>,
    /// The key ID (16 lowercase hex digits) of the first header signature
    /// that names its issuer: who claims to have signed it (not verified).
    #[serde(default)]
    pub signature_key_id: Option<String>,
}

/// One entry of a dependency list, split the way primary.xml shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct RpmDependency {
    pub name: String,
    /// `""`, `"LT"`, `"GT"`, `"EQ"`, `"LE"` or `"GE"`.
    pub relation: String,
    /// Empty when the version has no `epoch:` prefix.
    pub epoch: String,
    pub version: String,
    pub release: String,
    /// A requirement needed before install (`Requires(pre)`, `(post)`,
    /// legacy PreReq): primary.xml's `pre="1"`. Always false outside
    /// `requires`.
    pub pre: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RpmFileKind {
    File,
    Dir,
    Ghost,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RpmFile {
    /// Absolute path as installed.
    pub path: String,
    pub kind: RpmFileKind,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RpmChangelog {
    pub author: String,
    /// Unix seconds.
    pub date: u64,
    pub text: String,
}

const LEAD_LEN: u64 = 96;
const INTRO_LEN: u64 = 16;
const HEADER_MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];

// RPMSENSE_* bits (rpmds.h).
const SENSE_LESS: u32 = 1 << 1;
const SENSE_GREATER: u32 = 1 << 2;
const SENSE_EQUAL: u32 = 1 << 3;
const SENSE_PREREQ: u32 = 1 << 6;
const SENSE_SCRIPT_PRE: u32 = 1 << 9;
const SENSE_SCRIPT_POST: u32 = 1 << 10;
const SENSE_MISSINGOK: u32 = 1 << 19;
const SENSE_STRONG: u32 = 1 << 27;
const FILE_GHOST: u32 = 1 << 6;

// Signature-header tags read directly.
const SIGTAG_SIZE: u32 = 1000;
const SIGTAG_PAYLOADSIZE: u32 = 1007;
const SIGTAG_LONGSIZE: u32 = 270;
const SIGTAG_LONGARCHIVESIZE: u32 = 271;
// Main-header number tags read directly (some are Int32 or Int64 by age).
const TAG_SIZE: u32 = 1009;
const TAG_LONGSIZE: u32 = 5009;
const TAG_ARCHIVESIZE: u32 = 1046;
const TAG_LONGARCHIVESIZE: u32 = 271;
const TAG_PAYLOADDIGEST: u32 = 5092;
const TAG_PAYLOADDIGESTALGO: u32 = 5093;
const PGPHASHALGO_SHA256: u32 = 8;

/// The string tags this reader hands out, by number and by the name
/// `rpm --queryformat` uses, so errors can say which one is bad.
const STRING_TAGS: &[(u32, &str)] = &[
    (1000, "NAME"),
    (1001, "VERSION"),
    (1002, "RELEASE"),
    (1004, "SUMMARY"),
    (1005, "DESCRIPTION"),
    (1007, "BUILDHOST"),
    (1011, "VENDOR"),
    (1014, "LICENSE"),
    (1015, "PACKAGER"),
    (1016, "GROUP"),
    (1020, "URL"),
    (1022, "ARCH"),
    (1027, "OLDFILENAMES"),
    (1044, "SOURCERPM"),
    (1047, "PROVIDENAME"),
    (1049, "REQUIRENAME"),
    (1050, "REQUIREVERSION"),
    (1054, "CONFLICTNAME"),
    (1055, "CONFLICTVERSION"),
    (1081, "CHANGELOGNAME"),
    (1082, "CHANGELOGTEXT"),
    (1090, "OBSOLETENAME"),
    (1113, "PROVIDEVERSION"),
    (1115, "OBSOLETEVERSION"),
    (1117, "BASENAMES"),
    (1118, "DIRNAMES"),
    (1156, "OLDSUGGESTSNAME"),
    (1157, "OLDSUGGESTSVERSION"),
    (1159, "OLDENHANCESNAME"),
    (1160, "OLDENHANCESVERSION"),
    (5046, "RECOMMENDNAME"),
    (5047, "RECOMMENDVERSION"),
    (5049, "SUGGESTNAME"),
    (5050, "SUGGESTVERSION"),
    (5052, "SUPPLEMENTNAME"),
    (5053, "SUPPLEMENTVERSION"),
    (5055, "ENHANCENAME"),
    (5056, "ENHANCEVERSION"),
];

fn tag_name(tag: u32) -> String {
    STRING_TAGS
        .iter()
        .find(|(t, _)| *t == tag)
        .map_or_else(|| tag.to_string(), |(_, name)| (*name).to_owned())
}

/// Reads an `.rpm`'s headers, checks their digests and the payload's, and
/// returns what the repository indexes.
pub fn read_rpm(path: &Path, limits: &Limits) -> Result<RpmPackage, ReadError> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let layout = check_layout(&mut file, len, limits)?;

    let mut bytes = vec![0u8; layout.header_end as usize];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut bytes)?;
    let sig_start = LEAD_LEN as usize;
    check_header(
        &bytes[sig_start..layout.sig_end as usize],
        "signature header",
        &[],
        limits,
    )?;
    check_header(
        &bytes[layout.header_start as usize..],
        "header",
        STRING_TAGS,
        limits,
    )?;

    let metadata = catch_unwind(AssertUnwindSafe(|| PackageMetadata::parse(&mut &bytes[..])))
        .map_err(|_| ReadError::ParserFailed("the RPM header"))?
        .map_err(|e| ReadError::RpmHeader(e.to_string()))?;

    verify_header_digests(&metadata)?;
    verify_size(&metadata, len, layout.header_start)?;
    verify_payload(&mut file, &metadata, layout.header_end)?;

    let mut pkg = extract(&metadata, limits)?;
    pkg.header_start = layout.header_start;
    pkg.header_end = layout.header_end;
    // The lead's type field says 1 for source packages.
    pkg.is_source = pkg.is_source || u16::from_be_bytes([bytes[6], bytes[7]]) == 1;
    Ok(pkg)
}

struct Layout {
    /// End of the signature header's data (padding excluded).
    sig_end: u64,
    header_start: u64,
    header_end: u64,
}

/// Checks the lead and both header intros from the raw bytes: magic,
/// declared sizes against the limits and against the file's length.
fn check_layout(file: &mut File, len: u64, limits: &Limits) -> Result<Layout, ReadError> {
    if len == 0 {
        return Err(ReadError::Empty);
    }
    let mut lead = [0u8; LEAD_LEN as usize];
    let got = read_at(file, 0, &mut lead)?;
    let magic_len = got.min(4);
    if lead[..magic_len] != RPM_LEAD_MAGIC[..magic_len] {
        let mut head = vec![0u8; 512];
        let n = read_at(file, 0, &mut head)?;
        return Err(ReadError::NotRpm(format!(
            "bad lead magic ({})",
            describe_magic(&head[..n])
        )));
    }
    if (got as u64) < LEAD_LEN {
        return Err(ReadError::Truncated("the RPM lead".to_owned()));
    }
    if !matches!(lead[4], 3 | 4) {
        return Err(ReadError::NotRpm(format!(
            "unsupported lead version {}.{} (rpm reads 3.x and 4.x)",
            lead[4], lead[5]
        )));
    }

    let (sig_index, sig_data) = read_intro(file, LEAD_LEN, len, "signature header", limits, 0)?;
    let sig_end = LEAD_LEN + INTRO_LEN + sig_index * 16 + sig_data;
    // The main header starts on the next 8-byte boundary.
    let header_start = sig_end + (8 - sig_data % 8) % 8;
    let sig_size = sig_end - LEAD_LEN;
    let (index, data) = read_intro(file, header_start, len, "header", limits, sig_size)?;
    let header_end = header_start + INTRO_LEN + index * 16 + data;
    Ok(Layout {
        sig_end,
        header_start,
        header_end,
    })
}

/// Reads a header intro at `at`: returns (index entries, data bytes).
/// `before` is what earlier headers already used of `max_header_bytes`.
fn read_intro(
    file: &mut File,
    at: u64,
    len: u64,
    what: &str,
    limits: &Limits,
    before: u64,
) -> Result<(u64, u64), ReadError> {
    let mut intro = [0u8; INTRO_LEN as usize];
    if at > len || read_at(file, at, &mut intro)? < intro.len() {
        return Err(ReadError::Truncated(format!("the RPM {what}")));
    }
    if intro[..4] != HEADER_MAGIC {
        return Err(ReadError::NotRpm(format!("bad {what} magic")));
    }
    let index = u64::from(u32::from_be_bytes(
        intro[8..12].try_into().unwrap_or_default(),
    ));
    let data = u64::from(u32::from_be_bytes(
        intro[12..16].try_into().unwrap_or_default(),
    ));
    if index > limits.max_entries {
        return Err(ReadError::TooManyEntries {
            what: format!("the RPM {what}"),
            limit: limits.max_entries,
        });
    }
    let size = INTRO_LEN + index * 16 + data;
    if before + size > limits.max_header_bytes {
        return Err(ReadError::TooLarge {
            what: format!(
                "the RPM {what} ({} declared{})",
                human_bytes(size),
                if before > 0 {
                    " after the signature header"
                } else {
                    ""
                }
            ),
            limit: human_bytes(limits.max_header_bytes),
        });
    }
    if at + size > len {
        return Err(ReadError::Truncated(format!(
            "the RPM {what} ({size} bytes declared, {} present)",
            len - at
        )));
    }
    Ok((index, data))
}

/// Verifies one header blob (intro, index, store) the way rpm's
/// `hdrblobVerifyInfo` does, so that the `rpm` crate can index it without
/// bounds surprises. `strings` lists the tags whose strings are handed out:
/// those must be UTF-8 and within `max_field_bytes`.
fn check_header(
    blob: &[u8],
    what: &str,
    strings: &[(u32, &str)],
    limits: &Limits,
) -> Result<(), ReadError> {
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let index_len = be32(&blob[8..12]) as usize;
    let data_len = be32(&blob[12..16]) as usize;
    let index = &blob[16..16 + index_len * 16];
    let store = &blob[16 + index_len * 16..16 + index_len * 16 + data_len];
    let bad = |i: usize, tag: u32, problem: &str| {
        ReadError::RpmHeader(format!("{what} entry {i} (tag {tag}) {problem}"))
    };
    // Entries may not share data (rpm refuses overlaps); capping the string
    // bytes walked at the store's size keeps forged overlaps from making
    // this loop quadratic.
    let mut walked = 0usize;
    for (i, entry) in index.chunks_exact(16).enumerate() {
        let tag = be32(&entry[0..4]);
        let kind = be32(&entry[4..8]);
        let offset = be32(&entry[8..12]) as i32;
        let count = be32(&entry[12..16]) as usize;
        let Ok(offset) = usize::try_from(offset) else {
            return Err(bad(i, tag, "has a negative offset"));
        };
        if offset > store.len() {
            return Err(bad(i, tag, "points outside the header data"));
        }
        let room = store.len() - offset;
        let item_size = match kind {
            0 => 0,
            1 | 2 | 7 => 1,
            3 => 2,
            4 => 4,
            5 => 8,
            6 | 8 | 9 => usize::MAX,
            _ => return Err(bad(i, tag, &format!("has the unknown data type {kind}"))),
        };
        if item_size != usize::MAX {
            if count.checked_mul(item_size).is_none_or(|n| n > room) {
                return Err(bad(
                    i,
                    tag,
                    &format!("declares {count} items, more than the header holds"),
                ));
            }
            continue;
        }
        if kind == 6 && count != 1 {
            return Err(bad(i, tag, "is a string with a count other than 1"));
        }
        if count > room {
            return Err(bad(
                i,
                tag,
                &format!("declares {count} strings, more than the header holds"),
            ));
        }
        let name = strings.iter().find(|(t, _)| *t == tag).map(|(_, n)| *n);
        let mut rest = &store[offset..];
        for _ in 0..count {
            let Some(nul) = rest.iter().position(|&b| b == 0) else {
                return Err(bad(i, tag, "has a string without its terminating NUL"));
            };
            if let Some(name) = name {
                if nul > limits.max_field_bytes {
                    return Err(ReadError::TooLarge {
                        what: format!("RPM header tag {name}"),
                        limit: human_bytes(limits.max_field_bytes as u64),
                    });
                }
                if std::str::from_utf8(&rest[..nul]).is_err() {
                    return Err(ReadError::NonUtf8Tag {
                        tag: name.to_owned(),
                    });
                }
            }
            walked += nul + 1;
            rest = &rest[nul + 1..];
        }
        if walked > store.len() {
            return Err(bad(i, tag, "overlaps the data of other entries"));
        }
    }
    Ok(())
}

fn verify_header_digests(metadata: &PackageMetadata) -> Result<(), ReadError> {
    let report = catch_unwind(AssertUnwindSafe(|| metadata.check_digests()))
        .map_err(|_| ReadError::ParserFailed("the RPM header digest"))?
        .map_err(|e| ReadError::RpmHeader(e.to_string()))?;
    for (name, status) in [
        ("header SHA-256 digest", &report.header_sha256),
        ("header SHA-1 digest", &report.header_sha1),
        ("header SHA3-256 digest", &report.header_sha3_256),
    ] {
        if status.is_mismatch() {
            return Err(ReadError::Mismatch(name.to_owned()));
        }
    }
    Ok(())
}

/// The signature header records the size of header + payload: a shorter
/// file was cut, a longer one had bytes added.
fn verify_size(metadata: &PackageMetadata, len: u64, header_start: u64) -> Result<(), ReadError> {
    let Some(expected) = number(&metadata.signature.entry(SIGTAG_LONGSIZE))
        .or_else(|| number(&metadata.signature.entry(SIGTAG_SIZE)))
    else {
        return Ok(());
    };
    let actual = len - header_start;
    if actual < expected {
        return Err(ReadError::Truncated(format!(
            "the RPM payload ({expected} bytes of header and payload declared, {actual} present)"
        )));
    }
    if actual > expected {
        return Err(ReadError::Mismatch(format!(
            "size in the signature header ({expected} bytes of header and payload, {actual} present)"
        )));
    }
    Ok(())
}

/// Hashes the payload against the header's SHA-256 payload digest, when it
/// has one (rpm >= 4.14 writes it).
fn verify_payload(
    file: &mut File,
    metadata: &PackageMetadata,
    header_end: u64,
) -> Result<(), ReadError> {
    let header = &metadata.header;
    let algo =
        number(&header.entry(TAG_PAYLOADDIGESTALGO)).unwrap_or(u64::from(PGPHASHALGO_SHA256));
    let expected = match header.entry(TAG_PAYLOADDIGEST) {
        Ok(IndexData::StringArray(v)) | Ok(IndexData::I18NString(v)) => v.into_iter().next(),
        Ok(IndexData::StringTag(s)) => Some(s),
        _ => None,
    };
    let Some(expected) = expected else {
        return Ok(());
    };
    if algo != u64::from(PGPHASHALGO_SHA256) {
        return Ok(());
    }
    file.seek(SeekFrom::Start(header_end))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let actual = hasher.finalize();
    if !hex(&actual).eq_ignore_ascii_case(expected.trim()) {
        return Err(ReadError::Mismatch("payload SHA-256 digest".to_owned()));
    }
    Ok(())
}

/// An Int32 or Int64 tag's first value.
fn number(data: &Result<IndexData, ::rpm::Error>) -> Option<u64> {
    match data {
        Ok(IndexData::Int32(v)) => v.first().map(|&n| u64::from(n)),
        Ok(IndexData::Int64(v)) => v.first().copied(),
        _ => None,
    }
}

fn extract(metadata: &PackageMetadata, limits: &Limits) -> Result<RpmPackage, ReadError> {
    let header = &metadata.header;
    let string = |tag: IndexTag| -> Result<String, ReadError> {
        match header.get_entry_data_as_string(tag) {
            Ok(s) => Ok(s.to_owned()),
            Err(::rpm::Error::TagNotFound(_)) => Ok(String::new()),
            Err(e) => Err(tag_error(tag, e)),
        }
    };
    let i18n = |tag: IndexTag| -> Result<String, ReadError> {
        match header.get_entry_data_as_i18n_string(tag) {
            Ok(s) => Ok(s.to_owned()),
            Err(::rpm::Error::TagNotFound(_)) => Ok(String::new()),
            Err(e) => Err(tag_error(tag, e)),
        }
    };
    let required = |tag: IndexTag, what: &str| -> Result<String, ReadError> {
        let value = string(tag)?;
        if value.is_empty() {
            return Err(ReadError::RpmHeader(format!("the package has no {what}")));
        }
        Ok(value)
    };

    let mut pkg = RpmPackage {
        name: required(IndexTag::RPMTAG_NAME, "name")?,
        epoch: match header.entry(IndexTag::RPMTAG_EPOCH) {
            Ok(IndexData::Int32(v)) => v.first().copied(),
            Err(::rpm::Error::TagNotFound(_)) => None,
            _ => {
                return Err(ReadError::RpmHeader(
                    "the Epoch tag is not a number".to_owned(),
                ));
            }
        },
        version: required(IndexTag::RPMTAG_VERSION, "version")?,
        release: required(IndexTag::RPMTAG_RELEASE, "release")?,
        arch: string(IndexTag::RPMTAG_ARCH)?,
        summary: i18n(IndexTag::RPMTAG_SUMMARY)?,
        description: i18n(IndexTag::RPMTAG_DESCRIPTION)?,
        url: string(IndexTag::RPMTAG_URL)?,
        license: string(IndexTag::RPMTAG_LICENSE)?,
        vendor: string(IndexTag::RPMTAG_VENDOR)?,
        group: i18n(IndexTag::RPMTAG_GROUP)?,
        buildhost: string(IndexTag::RPMTAG_BUILDHOST)?,
        sourcerpm: string(IndexTag::RPMTAG_SOURCERPM)?,
        packager: string(IndexTag::RPMTAG_PACKAGER)?,
        build_time: number(&header.entry(IndexTag::RPMTAG_BUILDTIME)).unwrap_or(0),
        installed_size: number(&header.entry(TAG_LONGSIZE))
            .or_else(|| number(&header.entry(TAG_SIZE)))
            .unwrap_or(0),
        archive_size: number(&header.entry(TAG_LONGARCHIVESIZE))
            .or_else(|| number(&metadata.signature.entry(SIGTAG_LONGARCHIVESIZE)))
            .or_else(|| number(&header.entry(TAG_ARCHIVESIZE)))
            .or_else(|| number(&metadata.signature.entry(SIGTAG_PAYLOADSIZE)))
            .unwrap_or(0),
        is_source: metadata.is_source_package(),
        ..RpmPackage::default()
    };

    use IndexTag as T;
    let deps = |n, f, v| -> Result<Vec<RpmDependency>, ReadError> {
        Ok(dependencies(metadata, n, f, v)?
            .into_iter()
            .map(|(_, d)| d)
            .collect())
    };
    pkg.provides = deps(
        T::RPMTAG_PROVIDENAME,
        T::RPMTAG_PROVIDEFLAGS,
        T::RPMTAG_PROVIDEVERSION,
    )?;
    pkg.conflicts = deps(
        T::RPMTAG_CONFLICTNAME,
        T::RPMTAG_CONFLICTFLAGS,
        T::RPMTAG_CONFLICTVERSION,
    )?;
    pkg.obsoletes = deps(
        T::RPMTAG_OBSOLETENAME,
        T::RPMTAG_OBSOLETEFLAGS,
        T::RPMTAG_OBSOLETEVERSION,
    )?;
    pkg.recommends = deps(
        T::RPMTAG_RECOMMENDNAME,
        T::RPMTAG_RECOMMENDFLAGS,
        T::RPMTAG_RECOMMENDVERSION,
    )?;
    pkg.suggests = deps(
        T::RPMTAG_SUGGESTNAME,
        T::RPMTAG_SUGGESTFLAGS,
        T::RPMTAG_SUGGESTVERSION,
    )?;
    pkg.supplements = deps(
        T::RPMTAG_SUPPLEMENTNAME,
        T::RPMTAG_SUPPLEMENTFLAGS,
        T::RPMTAG_SUPPLEMENTVERSION,
    )?;
    pkg.enhances = deps(
        T::RPMTAG_ENHANCENAME,
        T::RPMTAG_ENHANCEFLAGS,
        T::RPMTAG_ENHANCEVERSION,
    )?;

    // pre="1" as createrepo_c computes it. Weak dependencies as SUSE and
    // Mandriva wrote them before rpm 4.12 are mapped as createrepo_c maps
    // them: MISSINGOK requires are recommends, STRONG old suggests and
    // enhances are recommends and supplements.
    let requires = dependencies(
        metadata,
        T::RPMTAG_REQUIRENAME,
        T::RPMTAG_REQUIREFLAGS,
        T::RPMTAG_REQUIREVERSION,
    )?;
    for (flags, dep) in requires {
        if flags & SENSE_MISSINGOK != 0 {
            pkg.recommends.push(dep);
        } else {
            let pre = flags & (SENSE_PREREQ | SENSE_SCRIPT_PRE | SENSE_SCRIPT_POST) != 0;
            pkg.requires.push(RpmDependency { pre, ..dep });
        }
    }
    let old_suggests = dependencies(
        metadata,
        T::RPMTAG_OLDSUGGESTSNAME,
        T::RPMTAG_OLDSUGGESTSFLAGS,
        T::RPMTAG_OLDSUGGESTSVERSION,
    )?;
    for (flags, dep) in old_suggests {
        if flags & SENSE_STRONG != 0 {
            pkg.recommends.push(dep);
        } else {
            pkg.suggests.push(dep);
        }
    }
    let old_enhances = dependencies(
        metadata,
        T::RPMTAG_OLDENHANCESNAME,
        T::RPMTAG_OLDENHANCESFLAGS,
        T::RPMTAG_OLDENHANCESVERSION,
    )?;
    for (flags, dep) in old_enhances {
        if flags & SENSE_STRONG != 0 {
            pkg.supplements.push(dep);
        } else {
            pkg.enhances.push(dep);
        }
    }

    pkg.files = files(metadata, limits)?;
    pkg.changelogs = changelogs(metadata)?;
    (pkg.signature, pkg.signature_key_id) = signature(metadata);
    Ok(pkg)
}

fn tag_error(tag: IndexTag, error: ::rpm::Error) -> ReadError {
    match error {
        ::rpm::Error::InvalidUtf8 { .. } => ReadError::NonUtf8Tag {
            tag: tag_name(tag as u32),
        },
        other => ReadError::RpmHeader(format!("tag {}: {other}", tag_name(tag as u32))),
    }
}

/// One dependency list as (raw sense flags, entry), in header order.
fn dependencies(
    metadata: &PackageMetadata,
    names: IndexTag,
    flags: IndexTag,
    versions: IndexTag,
) -> Result<Vec<(u32, RpmDependency)>, ReadError> {
    let header = &metadata.header;
    let name_list = match header.get_entry_data_as_string_array(names) {
        Ok(v) => v,
        Err(::rpm::Error::TagNotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(tag_error(names, e)),
    };
    let flag_list = match header.get_entry_data_as_u32_array(flags) {
        Ok(v) => v,
        // rpm fills missing flags with 0 and versions with "".
        Err(::rpm::Error::TagNotFound(_)) => vec![0; name_list.len()],
        Err(e) => return Err(tag_error(flags, e)),
    };
    let version_list = match header.get_entry_data_as_string_array(versions) {
        Ok(v) => v,
        Err(::rpm::Error::TagNotFound(_)) => vec![""; name_list.len()],
        Err(e) => return Err(tag_error(versions, e)),
    };
    if flag_list.len() != name_list.len() || version_list.len() != name_list.len() {
        return Err(ReadError::RpmHeader(format!(
            "{} has {} names but {} flags and {} versions",
            tag_name(names as u32),
            name_list.len(),
            flag_list.len(),
            version_list.len()
        )));
    }
    Ok(name_list
        .into_iter()
        .zip(flag_list)
        .zip(version_list)
        .map(|((name, flags), evr)| {
            let (epoch, version, release) = split_evr(evr);
            let relation = match flags & (SENSE_LESS | SENSE_GREATER | SENSE_EQUAL) {
                SENSE_LESS => "LT",
                SENSE_GREATER => "GT",
                SENSE_EQUAL => "EQ",
                f if f == SENSE_LESS | SENSE_EQUAL => "LE",
                f if f == SENSE_GREATER | SENSE_EQUAL => "GE",
                _ => "",
            };
            (
                flags,
                RpmDependency {
                    name: name.to_owned(),
                    relation: relation.to_owned(),
                    epoch: epoch.to_owned(),
                    version: version.to_owned(),
                    release: release.to_owned(),
                    pre: false,
                },
            )
        })
        .collect())
}

/// `[epoch:]version[-release]`, split as createrepo_c splits it: the epoch
/// is what precedes the first `:`, the release what follows the first `-`
/// after it.
fn split_evr(evr: &str) -> (&str, &str, &str) {
    let (epoch, rest) = evr.split_once(':').unwrap_or(("", evr));
    let (version, release) = rest.split_once('-').unwrap_or((rest, ""));
    (epoch, version, release)
}

fn files(metadata: &PackageMetadata, limits: &Limits) -> Result<Vec<RpmFile>, ReadError> {
    let header = &metadata.header;
    let optional_strings = |tag: IndexTag| match header.get_entry_data_as_string_array(tag) {
        Ok(v) => Ok(Some(v)),
        Err(::rpm::Error::TagNotFound(_)) => Ok(None),
        Err(e) => Err(tag_error(tag, e)),
    };
    let optional_numbers = |tag: IndexTag| -> Result<Option<Vec<u64>>, ReadError> {
        match header.entry(tag) {
            Ok(IndexData::Int16(v)) => Ok(Some(v.into_iter().map(u64::from).collect())),
            Ok(IndexData::Int32(v)) => Ok(Some(v.into_iter().map(u64::from).collect())),
            Err(::rpm::Error::TagNotFound(_)) => Ok(None),
            _ => Err(ReadError::RpmHeader(format!(
                "tag {} is not numeric",
                tag as u32
            ))),
        }
    };

    // Compressed file names (rpm >= 4.0); OLDFILENAMES before that.
    let paths: Vec<String> = match optional_strings(IndexTag::RPMTAG_BASENAMES)? {
        Some(basenames) => {
            let dirnames = optional_strings(IndexTag::RPMTAG_DIRNAMES)?.unwrap_or_default();
            let indexes = optional_numbers(IndexTag::RPMTAG_DIRINDEXES)?.unwrap_or_default();
            if indexes.len() != basenames.len() {
                return Err(ReadError::RpmHeader(format!(
                    "{} file names but {} directory indexes",
                    basenames.len(),
                    indexes.len()
                )));
            }
            basenames
                .iter()
                .zip(&indexes)
                .map(|(base, &dir)| match dirnames.get(dir as usize) {
                    Some(dir) => Ok(format!("{dir}{base}")),
                    None => Err(ReadError::RpmHeader(format!(
                        "file {base:?} refers to directory {dir} of {}",
                        dirnames.len()
                    ))),
                })
                .collect::<Result<_, _>>()?
        }
        None => optional_strings(IndexTag::RPMTAG_OLDFILENAMES)?
            .unwrap_or_default()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    if paths.len() as u64 > limits.max_entries {
        return Err(ReadError::TooManyEntries {
            what: "the RPM file list".to_owned(),
            limit: limits.max_entries,
        });
    }
    let flags = optional_numbers(IndexTag::RPMTAG_FILEFLAGS)?.unwrap_or_default();
    let modes = optional_numbers(IndexTag::RPMTAG_FILEMODES)?.unwrap_or_default();
    if (!flags.is_empty() && flags.len() != paths.len())
        || (!modes.is_empty() && modes.len() != paths.len())
    {
        return Err(ReadError::RpmHeader(format!(
            "{} files but {} flags and {} modes",
            paths.len(),
            flags.len(),
            modes.len()
        )));
    }
    Ok(paths
        .into_iter()
        .enumerate()
        .map(|(i, path)| {
            let mode = modes.get(i).copied().unwrap_or(0);
            let flag = flags.get(i).copied().unwrap_or(0) as u32;
            // Directory first, as createrepo_c decides (a %ghost %dir is a dir).
            let kind = if mode & 0o170000 == 0o040000 {
                RpmFileKind::Dir
            } else if flag & FILE_GHOST != 0 {
                RpmFileKind::Ghost
            } else {
                RpmFileKind::File
            };
            RpmFile { path, kind }
        })
        .collect())
}

fn changelogs(metadata: &PackageMetadata) -> Result<Vec<RpmChangelog>, ReadError> {
    let header = &metadata.header;
    let times = match header.entry(IndexTag::RPMTAG_CHANGELOGTIME) {
        Ok(IndexData::Int32(v)) => v,
        Err(::rpm::Error::TagNotFound(_)) => Vec::new(),
        _ => {
            return Err(ReadError::RpmHeader(
                "CHANGELOGTIME is not numeric".to_owned(),
            ));
        }
    };
    let strings = |tag| match header.get_entry_data_as_string_array(tag) {
        Ok(v) => Ok(v),
        Err(::rpm::Error::TagNotFound(_)) => Ok(Vec::new()),
        Err(e) => Err(tag_error(tag, e)),
    };
    let names = strings(IndexTag::RPMTAG_CHANGELOGNAME)?;
    let texts = strings(IndexTag::RPMTAG_CHANGELOGTEXT)?;
    if names.len() != times.len() || texts.len() != times.len() {
        return Err(ReadError::RpmHeader(format!(
            "{} changelog dates but {} authors and {} texts",
            times.len(),
            names.len(),
            texts.len()
        )));
    }
    Ok(times
        .into_iter()
        .zip(names)
        .zip(texts)
        .map(|((date, author), text)| RpmChangelog {
            author: author.to_owned(),
            date: u64::from(date),
            text: text.to_owned(),
        })
        .collect())
}

/// "EdDSA/SHA256, key ID de485ea1eb6d7d73" (as `rpm -K -v` words it) for
/// each header signature, `None` when unsigned.
/// And the first issuer key ID among them.
fn signature(metadata: &PackageMetadata) -> (Option<String>, Option<String>) {
    let Ok(raw) = catch_unwind(AssertUnwindSafe(|| metadata.raw_signatures())) else {
        return (None, None);
    };
    let parsed: Vec<Option<SignatureInfo>> = match raw {
        Ok(list) => list.iter().map(|sig| parse_signature_packet(sig)).collect(),
        Err(_) => vec![None],
    };
    let described: Vec<String> = parsed.iter().map(describe).collect();
    let key_id = parsed.iter().flatten().find_map(|s| s.key_id.clone());
    (
        (!described.is_empty()).then(|| described.join("; ")),
        key_id,
    )
}

/// What one OpenPGP signature packet says of itself.
struct SignatureInfo {
    /// e.g. `RSA/SHA256`.
    algorithms: String,
    key_id: Option<String>,
}

fn describe(info: &Option<SignatureInfo>) -> String {
    match info {
        Some(SignatureInfo {
            algorithms,
            key_id: Some(id),
        }) => format!("{algorithms}, key ID {id}"),
        Some(SignatureInfo { algorithms, .. }) => algorithms.clone(),
        None => "unrecognised signature".to_owned(),
    }
}

/// Describes one OpenPGP signature packet (RFC 4880 / 9580 §5.2): its
/// algorithms and issuer. Only read for display, never trusted.
pub fn signature_summary(packet: &[u8]) -> String {
    describe(&parse_signature_packet(packet))
}

fn parse_signature_packet(packet: &[u8]) -> Option<SignatureInfo> {
    let (&first, rest) = packet.split_first()?;
    let body = if first & 0x40 != 0 {
        // New format: tag in the low six bits.
        if first & 0x3f != 2 {
            return None;
        }
        let (len, rest) = match *rest.first()? {
            n @ 0..=191 => (usize::from(n), &rest[1..]),
            n @ 192..=223 => {
                let b = *rest.get(1)?;
                (
                    (usize::from(n - 192) << 8) + usize::from(b) + 192,
                    &rest[2..],
                )
            }
            255 => (
                u32::from_be_bytes(rest.get(1..5)?.try_into().ok()?) as usize,
                &rest[5..],
            ),
            _ => return None,
        };
        rest.get(..len)?
    } else {
        // Old format: tag in bits 2-5, length type in bits 0-1.
        if (first >> 2) & 0x0f != 2 {
            return None;
        }
        let (len, rest) = match first & 3 {
            0 => (usize::from(*rest.first()?), &rest[1..]),
            1 => (
                usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
                &rest[2..],
            ),
            2 => (
                u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize,
                &rest[4..],
            ),
            _ => (rest.len(), rest),
        };
        rest.get(..len)?
    };
    let version = *body.first()?;
    let (public_key, hash, key_id) = match version {
        3 => (*body.get(15)?, *body.get(16)?, Some(hex(body.get(7..15)?))),
        4..=6 => {
            let wide = version != 4;
            let (public_key, hash) = (*body.get(2)?, *body.get(3)?);
            let mut at = 4;
            let mut key_id = None;
            for _ in 0..2 {
                let len = if wide {
                    let n = u32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
                    at += 4;
                    n
                } else {
                    let n = usize::from(u16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?));
                    at += 2;
                    n
                };
                let area = body.get(at..at.checked_add(len)?)?;
                at += len;
                key_id = key_id.or(issuer(area, version));
            }
            (public_key, hash, key_id)
        }
        _ => return None,
    };
    let public_key = match public_key {
        1..=3 => "RSA".to_owned(),
        17 => "DSA".to_owned(),
        19 => "ECDSA".to_owned(),
        22 => "EdDSA".to_owned(),
        27 => "Ed25519".to_owned(),
        28 => "Ed448".to_owned(),
        n => format!("algorithm {n}"),
    };
    let hash = match hash {
        1 => "MD5".to_owned(),
        2 => "SHA1".to_owned(),
        8 => "SHA256".to_owned(),
        9 => "SHA384".to_owned(),
        10 => "SHA512".to_owned(),
        11 => "SHA224".to_owned(),
        12 => "SHA3-256".to_owned(),
        14 => "SHA3-512".to_owned(),
        n => format!("hash {n}"),
    };
    Some(SignatureInfo {
        algorithms: format!("{public_key}/{hash}"),
        key_id,
    })
}

/// The issuer key ID from a subpacket area: the Issuer subpacket (16), else
/// derived from Issuer Fingerprint (33).
fn issuer(mut area: &[u8], version: u8) -> Option<String> {
    let mut from_fingerprint = None;
    while let Some((&first, rest)) = area.split_first() {
        let (len, rest) = match first {
            0..=191 => (usize::from(first), rest),
            192..=254 => (
                (usize::from(first - 192) << 8) + usize::from(*rest.first()?) + 192,
                &rest[1..],
            ),
            255 => (
                u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize,
                &rest[4..],
            ),
        };
        let sub = rest.get(..len)?;
        area = &rest[len..];
        let (&kind, data) = sub.split_first()?;
        match kind & 0x7f {
            16 if data.len() == 8 => return Some(hex(data)),
            33 if data.len() > 8 => {
                let fingerprint = &data[1..];
                // v4 key IDs are the fingerprint's last 8 bytes, v6 its first.
                from_fingerprint = Some(if version == 4 {
                    hex(&fingerprint[fingerprint.len() - 8..])
                } else {
                    hex(&fingerprint[..8])
                });
            }
            _ => {}
        }
    }
    from_fingerprint
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads up to `buf.len()` bytes at `offset`; fewer only at end of file.
fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evr_splits_like_createrepo_c() {
        assert_eq!(split_evr("3:1.2~rc1-4.test"), ("3", "1.2~rc1", "4.test"));
        assert_eq!(split_evr("1.0"), ("", "1.0", ""));
        assert_eq!(split_evr("1.0-1-2"), ("", "1.0", "1-2"));
        assert_eq!(split_evr(""), ("", "", ""));
    }
}
