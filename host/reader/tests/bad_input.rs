//! Hostile and broken files, built here byte by byte: each must be refused
//! with exactly the error a person would need, and none may cost more than
//! the limits allow.

use std::io::Write;
use std::path::PathBuf;

use flate2::write::GzEncoder;
use repod_reader::{Limits, Package, ReadError, read, read_deb, read_rpm};
use sha2::{Digest, Sha256};
use xz2::write::XzEncoder;

const CONTROL: &[u8] = b"Package: hello\nVersion: 1.0-1\nArchitecture: all\nMaintainer: T <t@example.invalid>\nDescription: test\n more\n";

/// A scratch file that removes itself.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, bytes: &[u8]) -> Scratch {
        let dir = std::env::temp_dir().join(format!("repod-reader-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn deb_error(name: &str, bytes: &[u8]) -> String {
    let file = Scratch::new(name, bytes);
    let err = read_deb(&file.0, &Limits::default()).expect_err("must be refused");
    assert!(
        err.is_bad_input(),
        "{err} is the uploader's fault, not an I/O error"
    );
    err.to_string()
}

fn any_error(name: &str, bytes: &[u8]) -> String {
    let file = Scratch::new(name, bytes);
    read(&file.0, &Limits::default())
        .expect_err("must be refused")
        .to_string()
}

// ---------------------------------------------------------------------------
// Building .deb files.

/// An ar archive as dpkg-deb writes it.
fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        out.extend_from_slice(
            format!(
                "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                100644,
                data.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// One raw tar entry: the name is copied byte for byte, unchecked.
fn tar_entry(out: &mut Vec<u8>, name: &[u8], kind: tar::EntryType, data: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn tar(entries: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data) in entries {
        tar_entry(&mut out, name, *kind, data);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut enc = XzEncoder::new(Vec::new(), 6);
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn control_tar(control: &[u8]) -> Vec<u8> {
    tar(&[
        (b"./", tar::EntryType::Directory, b""),
        (b"./control", tar::EntryType::Regular, control),
    ])
}

fn data_tar(names: &[&[u8]]) -> Vec<u8> {
    let mut entries: Vec<(&[u8], tar::EntryType, &[u8])> =
        vec![(b"./", tar::EntryType::Directory, b"")];
    for name in names {
        entries.push((name, tar::EntryType::Regular, b"content\n"));
    }
    tar(&entries)
}

fn deb_with(control: &[u8], data: &[u8]) -> Vec<u8> {
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &gz(&control_tar(control))),
        ("data.tar.xz", &xz(data)),
    ])
}

fn good_deb() -> Vec<u8> {
    deb_with(CONTROL, &data_tar(&[b"./usr/share/doc/hello/README"]))
}

/// `size` zero bytes as the content of a tar entry named `name`, streamed
/// through `encoder` so the test never holds the expanded bytes.
fn zeros_tar<W: Write>(mut encoder: W, name: &[u8], size: u64) -> W {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    encoder.write_all(header.as_bytes()).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        encoder.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    encoder.write_all(&[0; 1024]).unwrap();
    encoder
}

// ---------------------------------------------------------------------------
// Building .rpm files.

enum Value<'a> {
    Int32(&'a [u32]),
    Str(&'a str),
    Raw(u32, &'a [u8], u32),
    Strings(&'a [&'a str]),
    I18n(&'a str),
}

/// A header blob: intro, index sorted by tag, store with aligned numbers.
fn header(entries: &[(u32, Value)]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut store: Vec<u8> = Vec::new();
    let mut sorted: Vec<&(u32, Value)> = entries.iter().collect();
    sorted.sort_by_key(|(tag, _)| *tag);
    for (tag, value) in sorted {
        let (kind, count, bytes): (u32, u32, Vec<u8>) = match value {
            Value::Int32(v) => {
                store.resize(store.len().div_ceil(4) * 4, 0);
                (
                    4,
                    v.len() as u32,
                    v.iter().flat_map(|n| n.to_be_bytes()).collect(),
                )
            }
            Value::Str(s) => (6, 1, [s.as_bytes(), b"\0"].concat()),
            Value::Raw(kind, bytes, count) => (*kind, *count, bytes.to_vec()),
            Value::Strings(v) => (
                8,
                v.len() as u32,
                v.iter()
                    .flat_map(|s| [s.as_bytes(), b"\0"].concat())
                    .collect(),
            ),
            Value::I18n(s) => (9, 1, [s.as_bytes(), b"\0"].concat()),
        };
        for n in [*tag, kind, store.len() as u32, count] {
            index.extend_from_slice(&n.to_be_bytes());
        }
        store.extend_from_slice(&bytes);
    }
    let mut out = vec![0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    out.extend_from_slice(&(store.len() as u32).to_be_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&store);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn lead() -> Vec<u8> {
    let mut lead = vec![0xed, 0xab, 0xee, 0xdb, 3, 0, 0, 0, 0, 1];
    lead.extend_from_slice(&[0; 66]);
    lead.extend_from_slice(&[0, 1, 0, 5]);
    lead.extend_from_slice(&[0; 16]);
    assert_eq!(lead.len(), 96);
    lead
}

/// An rpm whose signature header carries the header digest and total size,
/// whose main header carries the payload digest.
fn rpm_with(main: &[(u32, Value)], payload: &[u8]) -> Vec<u8> {
    let digest = hex(&Sha256::digest(payload));
    let digests = [digest.as_str()];
    let mut entries: Vec<(u32, Value)> =
        vec![(5092, Value::Strings(&digests)), (5093, Value::Int32(&[8]))];
    for (tag, value) in main {
        let copy = match value {
            Value::Int32(v) => Value::Int32(v),
            Value::Str(s) => Value::Str(s),
            Value::Raw(k, b, c) => Value::Raw(*k, b, *c),
            Value::Strings(v) => Value::Strings(v),
            Value::I18n(s) => Value::I18n(s),
        };
        entries.push((*tag, copy));
    }
    let main = header(&entries);
    let header_digest = hex(&Sha256::digest(&main));
    let size = (main.len() + payload.len()) as u32;
    let mut sig = header(&[
        (273, Value::Str(&header_digest)),
        (1000, Value::Int32(&[size])),
    ]);
    sig.resize(sig.len().div_ceil(8) * 8, 0);
    [lead(), sig, main, payload.to_vec()].concat()
}

fn basic_tags<'a>() -> Vec<(u32, Value<'a>)> {
    vec![
        (1000, Value::Str("hello")),
        (1001, Value::Str("1.0")),
        (1002, Value::Str("1")),
        (1004, Value::I18n("a test")),
        (1022, Value::Str("noarch")),
        (1044, Value::Str("hello-1.0-1.src.rpm")),
    ]
}

fn good_rpm() -> Vec<u8> {
    rpm_with(&basic_tags(), b"payload bytes")
}

fn rpm_error(name: &str, bytes: &[u8]) -> String {
    let file = Scratch::new(name, bytes);
    let err = read_rpm(&file.0, &Limits::default()).expect_err("must be refused");
    assert!(
        err.is_bad_input(),
        "{err} is the uploader's fault, not an I/O error"
    );
    err.to_string()
}

// ---------------------------------------------------------------------------

#[test]
fn the_builders_make_acceptable_packages() {
    let deb = Scratch::new("good.deb", &good_deb());
    let Package::Deb(pkg) = read(&deb.0, &Limits::default()).unwrap() else {
        panic!("not a deb")
    };
    assert_eq!(pkg.field("Description"), Some("test\n more"));
    assert_eq!(pkg.files, ["usr/share/doc/hello/README"]);

    let rpm = Scratch::new("good.rpm", &good_rpm());
    let Package::Rpm(pkg) = read(&rpm.0, &Limits::default()).unwrap() else {
        panic!("not an rpm")
    };
    assert_eq!(
        (pkg.name.as_str(), pkg.summary.as_str(), pkg.is_source),
        ("hello", "a test", false)
    );
    assert_eq!(pkg.signature, None);
}

#[test]
fn every_data_tar_compression_dpkg_reads() {
    let data = data_tar(&[b"./usr/share/doc/hello/README", b"./usr/bin/hello"]);
    let mut bz2 = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    bz2.write_all(&data).unwrap();
    let bz2 = bz2.finish().unwrap();
    let zst = zstd::encode_all(&data[..], 3).unwrap();
    let control = control_tar(CONTROL);
    for (control_name, control, data_name, data) in [
        ("control.tar", control.clone(), "data.tar", data.clone()),
        ("control.tar.xz", xz(&control), "data.tar.bz2", bz2),
        (
            "control.tar.zst",
            zstd::encode_all(&control[..], 3).unwrap(),
            "data.tar.zst",
            zst,
        ),
        ("control.tar.gz", gz(&control), "data.tar.gz", gz(&data)),
    ] {
        let deb = ar(&[
            ("debian-binary", b"2.0\n"),
            (control_name, &control),
            (data_name, &data),
        ]);
        let file = Scratch::new("z.deb", &deb);
        let pkg =
            read_deb(&file.0, &Limits::default()).unwrap_or_else(|e| panic!("{data_name}: {e}"));
        assert_eq!(
            pkg.files,
            ["usr/share/doc/hello/README", "usr/bin/hello"],
            "{data_name}"
        );
        assert_eq!(pkg.field("package"), Some("hello"));
    }
}

#[test]
fn empty_file() {
    let message = "the file is empty: not a .deb or .rpm package";
    assert_eq!(any_error("empty.deb", b""), message);
    assert_eq!(deb_error("empty.deb", b""), message);
    assert_eq!(rpm_error("empty.rpm", b""), message);
}

#[test]
fn random_bytes() {
    // xorshift: reproducible noise, first byte forced away from any magic.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    noise[0] = 0x42;
    assert_eq!(
        any_error("noise.deb", &noise),
        "not a .deb or .rpm package: the first bytes are neither an ar archive signature (.deb) nor the RPM lead magic"
    );
    assert_eq!(
        deb_error("noise.deb", &noise),
        "not a Debian package: no ar archive signature: the first bytes are neither an ar archive signature (.deb) nor the RPM lead magic"
    );
    assert!(rpm_error("noise.rpm", &noise).starts_with("not an RPM package: bad lead magic"));
}

#[test]
fn renamed_tarball() {
    let tarball = gz(&data_tar(&[b"./README"]));
    assert_eq!(
        any_error("hello.deb", &tarball),
        "not a .deb or .rpm package: the file is gzip-compressed data (a tarball renamed to .deb or .rpm?)"
    );
    assert_eq!(
        deb_error("hello.deb", &tarball),
        "not a Debian package: no ar archive signature: the file is gzip-compressed data (a tarball renamed to .deb or .rpm?)"
    );
    assert_eq!(
        any_error("hello.deb", &data_tar(&[b"./README"])),
        "not a .deb or .rpm package: the file is an uncompressed tar archive (renamed to .deb or .rpm?)"
    );
    assert_eq!(
        rpm_error("hello.rpm", &good_deb()),
        "not an RPM package: bad lead magic (the file is an ar archive (a .deb?))"
    );
}

#[test]
fn ar_archives_that_are_not_debian_packages() {
    let control = gz(&control_tar(CONTROL));
    let data = xz(&data_tar(&[b"./a"]));
    let no_binary = ar(&[("control.tar.gz", &control), ("data.tar.xz", &data)]);
    let message = "not a Debian package: missing debian-binary member (the first member is \"control.tar.gz\")";
    assert_eq!(any_error("x.deb", &no_binary), message);
    assert_eq!(deb_error("x.deb", &no_binary), message);
    assert_eq!(
        deb_error("x.deb", b"!<arch>\n"),
        "not a Debian package: missing debian-binary member"
    );
    assert_eq!(
        deb_error("x.deb", &ar(&[("debian-binary", b"2.0\n")])),
        "not a Debian package: control.tar member missing"
    );
    assert_eq!(
        deb_error(
            "x.deb",
            &ar(&[("debian-binary", b"2.0\n"), ("data.tar.xz", &data)])
        ),
        "not a Debian package: control.tar member missing (found data.tar first)"
    );
    assert_eq!(
        deb_error(
            "x.deb",
            &ar(&[("debian-binary", b"2.0\n"), ("control.tar.gz", &control)])
        ),
        "not a Debian package: data.tar member missing"
    );
    assert_eq!(
        deb_error(
            "x.deb",
            &ar(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar.gz", &control),
                ("data.tar.lzma", &data)
            ])
        ),
        "unsupported package: data.tar.lzma: lzma compression is obsolete and not supported; rebuild with xz, gzip or zstd"
    );
    assert_eq!(
        deb_error(
            "x.deb",
            &ar(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar.gz", &data),
                ("data.tar.xz", &data)
            ])
        ),
        "malformed control.tar.gz: its content is not gzip data"
    );
    assert_eq!(
        deb_error(
            "x.deb",
            &ar(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar.gz", &gz(&data_tar(&[b"./x"]))),
                ("data.tar.xz", &data)
            ])
        ),
        "not a Debian package: control.tar.gz has no control file"
    );
    assert_eq!(
        deb_error(
            "x.deb",
            &ar(&[
                ("debian-binary", b"2.0\n"),
                ("//", b"x"),
                ("data.tar.xz", &data)
            ])
        ),
        "unsupported package: ar member \"//\" at byte 72 uses an extended-name table, which Debian packages never do"
    );
}

#[test]
fn wrong_debian_binary_version() {
    let control = gz(&control_tar(CONTROL));
    let data = xz(&data_tar(&[b"./a"]));
    for (version, shown) in [
        (&b"3.0\n"[..], "3.0"),
        (b"1.0\n", "1.0"),
        (b"2.x\n", "2.x"),
        (b"\n", ""),
    ] {
        let deb = ar(&[
            ("debian-binary", version),
            ("control.tar.gz", &control),
            ("data.tar.xz", &data),
        ]);
        assert_eq!(
            deb_error("v.deb", &deb),
            format!(
                "unsupported Debian package format {shown:?} in debian-binary: only format 2.x is supported"
            )
        );
    }
}

#[test]
fn truncated_deb_at_every_structure() {
    let deb = good_deb();
    let control_len = gz(&control_tar(CONTROL)).len() as u64;
    let control_at = 72 + 60;
    let data_header = control_at + control_len + (control_len & 1);
    let data_at = data_header + 60;
    let data_len = deb.len() as u64 - data_at;
    let cases: Vec<(u64, String)> = vec![
        (
            4,
            "truncated: the ar archive signature ended early".to_owned(),
        ),
        (
            8,
            "not a Debian package: missing debian-binary member".to_owned(),
        ),
        (
            30,
            "truncated: the ar member header at byte 8 (debian-binary) ended early".to_owned(),
        ),
        (
            70,
            "truncated: the ar member debian-binary (4 bytes declared, 2 present) ended early"
                .to_owned(),
        ),
        (
            100,
            "truncated: the ar member header at byte 72 (control.tar) ended early".to_owned(),
        ),
        (
            control_at + 10,
            format!(
                "truncated: the ar member control.tar.gz ({control_len} bytes declared, 10 present) ended early"
            ),
        ),
        (
            data_header + 59,
            format!("truncated: the ar member header at byte {data_header} (data.tar) ended early"),
        ),
        (
            data_at + data_len / 2,
            format!(
                "truncated: the ar member data.tar.xz ({data_len} bytes declared, {} present) ended early",
                data_len / 2
            ),
        ),
        (
            deb.len() as u64 - 1,
            format!(
                "truncated: the ar member data.tar.xz ({data_len} bytes declared, {} present) ended early",
                data_len - 1
            ),
        ),
    ];
    for (cut, message) in cases {
        assert_eq!(
            deb_error("cut.deb", &deb[..cut as usize]),
            message,
            "cut at {cut}"
        );
    }
}

#[test]
fn control_tar_gzip_bomb() {
    // 100 MiB of zeros as "control": ~100 KiB of gzip.
    let bomb = zeros_tar(
        GzEncoder::new(Vec::new(), flate2::Compression::best()),
        b"./control",
        100 << 20,
    )
    .finish()
    .unwrap();
    let deb = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &bomb),
        ("data.tar.xz", &xz(&data_tar(&[]))),
    ]);
    assert_eq!(
        deb_error("bomb.deb", &deb),
        "control.tar.gz expands beyond 16 MiB (decompression bomb?)"
    );
}

#[test]
fn control_tar_xz_bomb() {
    // 100 MiB of zeros: ~15 KiB of xz, so the ratio trips long before 16 MiB.
    let bomb = zeros_tar(XzEncoder::new(Vec::new(), 6), b"./control", 100 << 20)
        .finish()
        .unwrap();
    let deb = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", &bomb),
        ("data.tar.xz", &xz(&data_tar(&[]))),
    ]);
    assert_eq!(
        deb_error("bomb.deb", &deb),
        format!(
            "control.tar.xz expands beyond 200 times its compressed size of {} bytes (decompression bomb?)",
            bomb.len()
        )
    );
}

#[test]
fn data_tar_bombs() {
    let control = gz(&control_tar(CONTROL));
    let bomb = zeros_tar(
        XzEncoder::new(Vec::new(), 6),
        b"./usr/share/zeros",
        256 << 20,
    )
    .finish()
    .unwrap();
    let deb = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &control),
        ("data.tar.xz", &bomb),
    ]);
    assert_eq!(
        deb_error("bomb.deb", &deb),
        format!(
            "data.tar.xz expands beyond 200 times its compressed size of {} bytes (decompression bomb?)",
            bomb.len()
        )
    );

    // With the ratio out of the way the absolute limit still holds.
    let file = Scratch::new("bomb2.deb", &deb);
    let limits = Limits {
        max_expansion_ratio: u64::MAX,
        max_data_bytes: 64 << 20,
        ..Limits::default()
    };
    assert_eq!(
        read_deb(&file.0, &limits).unwrap_err().to_string(),
        "data.tar.xz expands beyond 64 MiB (decompression bomb?)"
    );
}

#[test]
fn too_many_entries() {
    let names: Vec<Vec<u8>> = (0..20).map(|i| format!("./f{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    let file = Scratch::new("many.deb", &deb_with(CONTROL, &data_tar(&refs)));
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    assert_eq!(
        read_deb(&file.0, &limits).unwrap_err().to_string(),
        "data.tar.xz has more than 10 entries"
    );
}

#[test]
fn path_tricks_in_data_tar() {
    for (name, message) in [
        (
            &b"./../etc/passwd"[..],
            "file name in data.tar.xz escapes the package root: \"./../etc/passwd\"",
        ),
        (
            b"./usr/../../etc/shadow",
            "file name in data.tar.xz escapes the package root: \"./usr/../../etc/shadow\"",
        ),
        (
            b"/etc/passwd",
            "file name in data.tar.xz escapes the package root: \"/etc/passwd\"",
        ),
        (
            b"./usr/bin/a\nb",
            "file name \"./usr/bin/a\\nb\" in data.tar.xz contains a line break or NUL",
        ),
    ] {
        assert_eq!(
            deb_error("path.deb", &deb_with(CONTROL, &data_tar(&[name]))),
            message
        );
    }
    // The same trick hidden in a GNU long name.
    let long = format!("./{}/../../../etc/passwd", "d".repeat(120));
    let mut data = Vec::new();
    tar_entry(
        &mut data,
        b"././@LongLink",
        tar::EntryType::GNULongName,
        format!("{long}\0").as_bytes(),
    );
    tar_entry(&mut data, b"./short", tar::EntryType::Regular, b"x");
    data.extend_from_slice(&[0; 1024]);
    assert_eq!(
        deb_error("long.deb", &deb_with(CONTROL, &data)),
        format!("file name in data.tar.xz escapes the package root: {long:?}")
    );
}

#[test]
fn long_names_are_applied_and_bounded() {
    let long = format!("./usr/share/{}", "n".repeat(300));
    let mut data = Vec::new();
    tar_entry(
        &mut data,
        b"././@LongLink",
        tar::EntryType::GNULongName,
        format!("{long}\0").as_bytes(),
    );
    tar_entry(
        &mut data,
        b"./truncated-name",
        tar::EntryType::Regular,
        b"x",
    );
    data.extend_from_slice(&[0; 1024]);
    let file = Scratch::new("long.deb", &deb_with(CONTROL, &data));
    assert_eq!(
        read_deb(&file.0, &Limits::default()).unwrap().files,
        [&long[2..]]
    );
    let limits = Limits {
        max_field_bytes: 100,
        ..Limits::default()
    };
    assert_eq!(
        read_deb(&file.0, &limits).unwrap_err().to_string(),
        "a GNU long file name in data.tar.xz is larger than 100 bytes"
    );
}

#[test]
fn non_utf8_control_field_and_file_name() {
    let control = b"Package: hello\nVersion: 1.0\nArchitecture: all\nMaintainer: Jos\xe9 <j@example.invalid>\nDescription: x\n";
    assert_eq!(
        deb_error("latin1.deb", &deb_with(control, &data_tar(&[b"./a"]))),
        "control field Maintainer is not valid UTF-8"
    );
    assert_eq!(
        deb_error(
            "latin1.deb",
            &deb_with(CONTROL, &data_tar(&[b"./usr/share/caf\xe9"]))
        ),
        "file name in data.tar.xz is not valid UTF-8: \"./usr/share/caf\u{fffd}\""
    );
}

#[test]
fn malformed_control_file() {
    assert_eq!(
        deb_error(
            "c.deb",
            &deb_with(b"Package: a\nPackage: b\n", &data_tar(&[b"./a"]))
        ),
        "malformed control file: field Package appears more than once (line 2)"
    );
    assert_eq!(
        deb_error(
            "c.deb",
            &deb_with(b"Package: a\n\nPackage: b\n", &data_tar(&[b"./a"]))
        ),
        "malformed control file: line 3 starts a second stanza; a binary package's control file has exactly one"
    );
}

#[test]
fn corrupt_compressed_member() {
    let mut data = xz(&data_tar(&[b"./a", b"./b"]));
    let middle = data.len() / 2;
    data[middle] ^= 0xff;
    let deb = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &gz(&control_tar(CONTROL))),
        ("data.tar.xz", &data),
    ]);
    let message = deb_error("corrupt.deb", &deb);
    assert!(message.starts_with("malformed data.tar.xz: "), "{message}");
}

// ---------------------------------------------------------------------------

#[test]
fn truncated_rpm_at_every_structure() {
    let rpm = good_rpm();
    let sig_len = u32::from_be_bytes(rpm[104..108].try_into().unwrap()) as usize * 16
        + u32::from_be_bytes(rpm[108..112].try_into().unwrap()) as usize;
    let header_start = 112 + sig_len.div_ceil(8) * 8;
    let payload_at = rpm.len() - b"payload bytes".len();
    let main_len = payload_at - header_start;
    let cases: Vec<(usize, String)> = vec![
        (2, "truncated: the RPM lead ended early".to_owned()),
        (50, "truncated: the RPM lead ended early".to_owned()),
        (
            100,
            "truncated: the RPM signature header ended early".to_owned(),
        ),
        (
            120,
            format!(
                "truncated: the RPM signature header ({} bytes declared, 24 present) ended early",
                sig_len + 16
            ),
        ),
        (
            header_start + 8,
            "truncated: the RPM header ended early".to_owned(),
        ),
        (
            header_start + 40,
            format!(
                "truncated: the RPM header ({main_len} bytes declared, 40 present) ended early"
            ),
        ),
        (
            payload_at + 3,
            format!(
                "truncated: the RPM payload ({} bytes of header and payload declared, {} present) ended early",
                main_len + 13,
                main_len + 3
            ),
        ),
    ];
    for (cut, message) in cases {
        assert_eq!(rpm_error("cut.rpm", &rpm[..cut]), message, "cut at {cut}");
    }
}

#[test]
fn rpm_with_absurd_sizes() {
    let mut rpm = good_rpm();
    // Signature header claiming 16M index entries and 4 GiB of data.
    rpm[104..108].copy_from_slice(&0x00ff_ffffu32.to_be_bytes());
    rpm[108..112].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        rpm_error("huge.rpm", &rpm),
        "the RPM signature header has more than 1000000 entries"
    );

    let mut rpm = good_rpm();
    rpm[108..112].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
    let declared = 16 + 2 * 16 + 0x7fff_0000u64;
    assert_eq!(
        rpm_error("huge.rpm", &rpm),
        format!("the RPM signature header ({declared} bytes declared) is larger than 64 MiB")
    );

    // A main header index entry claiming a billion Int32 items.
    let mut tags = basic_tags();
    tags.push((1006, Value::Raw(4, &[0, 0, 0, 1], 1_000_000_000)));
    assert_eq!(
        rpm_error("huge.rpm", &rpm_with(&tags, b"p")),
        "malformed RPM header: header entry 4 (tag 1006) declares 1000000000 items, more than the header holds"
    );
    let mut tags = basic_tags();
    tags.push((1117, Value::Raw(8, b"a\0", 0x7fff_ffff)));
    assert_eq!(
        rpm_error("huge.rpm", &rpm_with(&tags, b"p")),
        "malformed RPM header: header entry 6 (tag 1117) declares 2147483647 strings, more than the header holds"
    );
}

#[test]
fn rpm_entry_pointing_outside_its_header() {
    let rpm = good_rpm();
    let sig_len = u32::from_be_bytes(rpm[104..108].try_into().unwrap()) as usize * 16
        + u32::from_be_bytes(rpm[108..112].try_into().unwrap()) as usize;
    let header_start = 112 + sig_len.div_ceil(8) * 8;
    // First main-header index entry: tag, type, offset, count.
    let offset_at = header_start + 16 + 8;
    for (offset, problem) in [
        (u32::MAX, "has a negative offset"),
        (0x0100_0000, "points outside the header data"),
    ] {
        let mut bad = rpm.clone();
        bad[offset_at..offset_at + 4].copy_from_slice(&offset.to_be_bytes());
        assert_eq!(
            rpm_error("bad.rpm", &bad),
            format!("malformed RPM header: header entry 0 (tag 1000) {problem}")
        );
    }
}

#[test]
fn rpm_non_utf8_and_tampering() {
    let mut tags = basic_tags();
    tags[3] = (1004, Value::Raw(9, b"caf\xe9\0", 1));
    assert_eq!(
        rpm_error("latin1.rpm", &rpm_with(&tags, b"p")),
        "RPM header tag SUMMARY is not valid UTF-8"
    );

    let good = good_rpm();
    let name_at = good.windows(6).position(|w| w == b"hello\0").unwrap();
    let mut renamed = good.clone();
    renamed[name_at] = b'j';
    assert_eq!(
        rpm_error("tampered.rpm", &renamed),
        "RPM header SHA-256 digest does not match the file: it was corrupted or modified after it was built"
    );

    let mut payload = good.clone();
    let last = payload.len() - 1;
    payload[last] ^= 1;
    assert_eq!(
        rpm_error("tampered.rpm", &payload),
        "RPM payload SHA-256 digest does not match the file: it was corrupted or modified after it was built"
    );

    let mut longer = good.clone();
    longer.extend_from_slice(b"extra");
    let sig_len = u32::from_be_bytes(good[104..108].try_into().unwrap()) as usize * 16
        + u32::from_be_bytes(good[108..112].try_into().unwrap()) as usize;
    let recorded = good.len() - (112 + sig_len.div_ceil(8) * 8);
    assert_eq!(
        rpm_error("longer.rpm", &longer),
        format!(
            "RPM size in the signature header ({recorded} bytes of header and payload, {} present) \
             does not match the file: it was corrupted or modified after it was built",
            recorded + 5
        )
    );
}

#[test]
fn rpm_without_a_name() {
    let tags: Vec<(u32, Value)> = basic_tags()
        .into_iter()
        .filter(|(t, _)| *t != 1000)
        .collect();
    assert_eq!(
        rpm_error("noname.rpm", &rpm_with(&tags, b"p")),
        "malformed RPM header: the package has no name"
    );
}

#[test]
fn source_rpms_are_flagged() {
    let mut tags = basic_tags();
    tags.retain(|(t, _)| *t != 1044);
    tags.push((1106, Value::Int32(&[1])));
    let file = Scratch::new("hello.src.rpm", &rpm_with(&tags, b"p"));
    assert!(read_rpm(&file.0, &Limits::default()).unwrap().is_source);
}

#[test]
fn io_errors_are_not_blamed_on_the_file() {
    let err = read(
        std::path::Path::new("/nonexistent/repod/pkg.deb"),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ReadError::Io(_)));
    assert!(!err.is_bad_input());
}

#[test]
fn every_cut_and_random_damage_is_refused_without_panicking() {
    let limits = Limits::default();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (name, good) in [("d.deb", good_deb()), ("r.rpm", good_rpm())] {
        let file = Scratch::new(name, b"");
        for cut in 0..good.len() {
            std::fs::write(&file.0, &good[..cut]).unwrap();
            assert!(
                read(&file.0, &limits).is_err(),
                "{name} cut at {cut} was accepted"
            );
        }
        for round in 0..1500 {
            let mut damaged = good.clone();
            for _ in 0..=(next() % 4) {
                let at = (next() % damaged.len() as u64) as usize;
                damaged[at] = next() as u8;
            }
            std::fs::write(&file.0, &damaged).unwrap();
            // Accepting is fine (the byte may not matter); panicking or
            // hanging is not.
            if let Err(e) = read(&file.0, &limits) {
                assert!(e.is_bad_input(), "{name} round {round}: {e}");
            }
        }
    }
}
