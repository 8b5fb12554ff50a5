//! Zip and array input built from the real records, and the zip limits.

mod common;

use std::io::{Cursor, Write};

use common::{read, record_files};
use repod_osv::{Import, ImportError, Limits, parse};
use zip::{CompressionMethod, ZipWriter, write::SimpleFileOptions};

fn build_zip(entries: &[(&str, &[u8], CompressionMethod)]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, method) in entries {
        if name.ends_with('/') {
            writer
                .add_directory(*name, SimpleFileOptions::default())
                .unwrap();
            continue;
        }
        let options = SimpleFileOptions::default().compression_method(*method);
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn small_record(id: &str, padding: usize) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","modified":"2024-05-01T10:00:00Z","details":"{}"}}"#,
        " ".repeat(padding)
    )
    .into_bytes()
}

fn ids(import: &Import) -> Vec<&str> {
    import.advisories.iter().map(|a| a.id.as_str()).collect()
}

fn rejected_entries(import: &Import) -> Vec<&str> {
    import
        .rejected
        .iter()
        .map(|r| r.entry.as_deref().unwrap())
        .collect()
}

#[test]
fn a_zip_of_all_real_records() {
    let files = record_files();
    let contents: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (format!("osv/{f}"), read(f)))
        .collect();
    let mut entries: Vec<(&str, &[u8], CompressionMethod)> = vec![
        ("osv/", b"", CompressionMethod::Stored),
        ("README.md", b"not a record", CompressionMethod::Deflated),
        (
            "osv/broken.json",
            b"{\"id\": \"BROKEN-1\",",
            CompressionMethod::Deflated,
        ),
        ("osv/hello.JSON", b"hello", CompressionMethod::Stored),
    ];
    for (name, data) in &contents {
        entries.push((name, data, CompressionMethod::Deflated));
    }
    let import = parse(&build_zip(&entries), &Limits::default()).unwrap();

    assert_eq!(import.advisories.len(), files.len());
    for (adv, file) in import.advisories.iter().zip(&files) {
        assert_eq!(adv.id.replace(':', "_") + ".json", *file);
        assert_eq!(adv.raw, String::from_utf8(read(file)).unwrap().trim());
    }
    assert_eq!(
        rejected_entries(&import),
        ["osv/broken.json", "osv/hello.JSON"]
    );
    assert!(import.rejected[0].reason.contains("not valid JSON"));
    assert!(import.rejected[1].reason.contains("starts with \"hello\""));
}

#[test]
fn a_json_array_of_all_real_records() {
    let files = record_files();
    let texts: Vec<String> = files
        .iter()
        .map(|f| String::from_utf8(read(f)).unwrap())
        .collect();
    let array = format!("[\n{}\n]", texts.join(",\n"));
    let import = parse(array.as_bytes(), &Limits::default()).unwrap();
    assert!(import.rejected.is_empty(), "{:?}", import.rejected);
    assert_eq!(import.advisories.len(), files.len());
    for (adv, text) in import.advisories.iter().zip(&texts) {
        assert_eq!(adv.raw, text.trim());
    }

    // An array inside a zip entry; rejections name the entry and the index.
    let with_bad = format!("[{},{{\"id\":\"NOPE-1\"}}]", texts[0]);
    let zip = build_zip(&[("all.json", with_bad.as_bytes(), CompressionMethod::Deflated)]);
    let import = parse(&zip, &Limits::default()).unwrap();
    assert_eq!(ids(&import), ["ALSA-2022:4940"]);
    assert_eq!(rejected_entries(&import), ["all.json[1]"]);
    assert_eq!(import.rejected[0].id.as_deref(), Some("NOPE-1"));
}

#[test]
fn an_empty_zip_imports_nothing() {
    let import = parse(&build_zip(&[]), &Limits::default()).unwrap();
    assert!(import.advisories.is_empty() && import.rejected.is_empty());
}

#[test]
fn a_highly_compressed_entry_is_refused_as_a_bomb() {
    let bomb = small_record("BOMB-1", 3 << 20);
    let zip = build_zip(&[
        ("bomb.json", &bomb, CompressionMethod::Deflated),
        (
            "ok.json",
            &small_record("OK-1", 10),
            CompressionMethod::Deflated,
        ),
    ]);
    let import = parse(&zip, &Limits::default()).unwrap();
    assert_eq!(ids(&import), ["OK-1"]);
    assert_eq!(rejected_entries(&import), ["bomb.json"]);
    assert!(
        import.rejected[0].reason.contains("ratio"),
        "{:?}",
        import.rejected
    );

    // The same entry passes when the ratio limit allows it.
    let lenient = Limits {
        max_ratio: 100_000,
        ..Limits::default()
    };
    assert_eq!(parse(&zip, &lenient).unwrap().advisories.len(), 2);
}

/// Overwrites the uncompressed size of `name` in its local and central headers.
fn lie_about_size(zip: &mut [u8], name: &str, size: u32) {
    let mut patched = 0;
    for at in 0..zip.len().saturating_sub(46) {
        let (size_at, name_len_at, name_at) = match &zip[at..at + 4] {
            b"PK\x03\x04" => (at + 22, at + 26, at + 30),
            b"PK\x01\x02" => (at + 24, at + 28, at + 46),
            _ => continue,
        };
        let len = u16::from_le_bytes([zip[name_len_at], zip[name_len_at + 1]]) as usize;
        if zip.get(name_at..name_at + len) == Some(name.as_bytes()) {
            zip[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "local and central header");
}

#[test]
fn a_lying_header_cannot_make_an_entry_read_past_the_bounds() {
    let big = small_record("LIAR-1", 2 << 20);
    let mut zip = build_zip(&[
        ("liar.json", &big, CompressionMethod::Deflated),
        (
            "ok.json",
            &small_record("OK-2", 10),
            CompressionMethod::Deflated,
        ),
    ]);
    lie_about_size(&mut zip, "liar.json", 100);
    let import = parse(&zip, &Limits::default()).unwrap();
    assert_eq!(ids(&import), ["OK-2"]);
    assert_eq!(rejected_entries(&import), ["liar.json"]);
    // zip itself stops at the declared size; the crate's `take()` bound is the
    // second line of defence should a reader not do so.
    let reason = &import.rejected[0].reason;
    assert!(
        reason.contains("decompresses to more than") || reason.contains("cannot decompress"),
        "{reason}"
    );
}

#[test]
fn zip_entry_count_total_and_record_limits() {
    let zip = build_zip(&[
        ("a.json", &small_record("A-1", 0), CompressionMethod::Stored),
        ("b.json", &small_record("B-1", 0), CompressionMethod::Stored),
        (
            "c.json",
            &small_record("C-1", 300),
            CompressionMethod::Stored,
        ),
    ]);
    let err = parse(
        &zip,
        &Limits {
            max_entries: 2,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, ImportError::TooManyEntries { entries: 3, max: 2 }),
        "{err}"
    );

    let err = parse(
        &zip,
        &Limits {
            max_total_bytes: 150,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::TooLarge { max: 150 }), "{err}");

    let import = parse(
        &zip,
        &Limits {
            max_record_bytes: 200,
            ..Limits::default()
        },
    )
    .unwrap();
    assert_eq!(ids(&import), ["A-1", "B-1"]);
    assert_eq!(rejected_entries(&import), ["c.json"]);
    assert!(
        import.rejected[0]
            .reason
            .contains("over the limit of 200 bytes")
    );
}

#[test]
fn a_truncated_zip_is_a_whole_file_error() {
    let zip = build_zip(&[(
        "a.json",
        &small_record("A-1", 0),
        CompressionMethod::Deflated,
    )]);
    let err = parse(&zip[..zip.len() / 2], &Limits::default()).unwrap_err();
    assert!(matches!(err, ImportError::Zip(_)), "{err}");
}
