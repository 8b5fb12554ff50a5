//! Rendering through the public API, as a plugin's guest calls it: stanzas,
//! Release files, frames and client configs. The exact texts are pinned with
//! insta snapshots (`tests/snapshots/`), reviewed by eye against what
//! reprepro and apt-ftparchive write.

use repod_deb_core::sdk::{
    Compression, DebPackage, Distribution, PackageMetadata, ParsedPackage, PublishedFile,
    SignatureKind,
};
use repod_deb_core::{Catalog, DistDefaults};

const CATALOG: Catalog = Catalog {
    family_id: "debian",
    plugin_name: "debian",
    plugin_version: "0.1.0",
    description: "test catalog",
    default_architectures: &["amd64", "arm64", "all"],
    distributions: &[DistDefaults {
        id: "jammy",
        display_name: "Ubuntu 22.04 LTS",
        grype: "ubuntu:22.04",
        osv: "Ubuntu:22.04:LTS",
        architectures: &["amd64", "arm64", "all"],
        components: &["main"],
    }],
};

/// 2024-05-01 12:34:56 UTC.
const NOW: u64 = 1_714_566_896;

fn jammy(config: &str) -> Distribution {
    repod_deb_core::describe(&CATALOG, config)
        .unwrap()
        .distributions
        .remove(0)
}

fn hello() -> ParsedPackage {
    let control = [
        ("Package", "hello"),
        ("Version", "1:2.10-2ubuntu1"),
        ("Architecture", "amd64"),
        (
            "Maintainer",
            "Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>",
        ),
        ("Installed-Size", "108"),
        ("Depends", "libc6 (>= 2.34)"),
        ("Section", "devel"),
        ("Priority", "optional"),
        ("Homepage", "https://www.gnu.org/software/hello/"),
        (
            "Description",
            "example package based on GNU hello\n The GNU hello program produces a familiar, friendly greeting.\n .\n It is mostly useful as an example.",
        ),
    ];
    ParsedPackage {
        metadata: PackageMetadata::Deb(DebPackage {
            control: control
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            files: vec![
                "usr/bin/hello".into(),
                "usr/share/doc/hello/changelog.Debian.gz".into(),
                "usr/share/man/man1/hello.1.gz".into(),
            ],
            extensions: vec![],
        }),
        checksums: vec![
            (
                "sha256".into(),
                "35b1508eeee9c1dfba798c4c04304ef0f266990f936a51f165571edf53325cbc".into(),
            ),
            ("md5".into(), "1f0c1f7e6f7a9c53d6d5b1f3c3b1c1d1".into()),
        ],
        size: 53_092,
        received: NOW,
        extensions: vec![],
    }
}

#[test]
fn packages_stanza_snapshot() {
    let prepared = repod_deb_core::prepare(&jammy("{}"), &[hello()])
        .remove(0)
        .unwrap();
    assert_eq!(prepared.identity.name, "hello");
    assert_eq!(prepared.identity.version, "1:2.10-2ubuntu1");
    assert_eq!(prepared.identity.architecture, "amd64");
    assert_eq!(
        prepared.pool_paths,
        ["pool/main/h/hello/hello_2.10-2ubuntu1_amd64.deb"]
    );
    let packages = &prepared.entries[0];
    assert_eq!(packages.index, "dists/jammy/main/binary-amd64/Packages");
    // insta trims trailing newlines: the stanza's closing blank line is
    // checked here.
    assert!(packages.text.ends_with("cbc\n\n"));
    insta::assert_snapshot!("packages_stanza", packages.text);
    let contents = &prepared.entries[1];
    assert_eq!(contents.index, "dists/jammy/main/Contents-amd64");
    insta::assert_snapshot!("contents_lines", contents.text);
}

fn published(path: &str, index: &str, compression: Option<Compression>, n: u64) -> PublishedFile {
    let hex = |algo: &str, len: usize| {
        let seed = format!("{algo}{path}");
        (0..len)
            .map(|i| {
                let b = seed.as_bytes()[i % seed.len()] as usize + i;
                char::from(b"0123456789abcdef"[b % 16])
            })
            .collect::<String>()
    };
    PublishedFile {
        path: path.into(),
        index: index.into(),
        compression,
        size: n,
        checksums: vec![
            ("sha256".into(), hex("sha256", 64)),
            ("sha512".into(), hex("sha512", 128)),
        ],
        open_size: 4 * n,
        open_checksums: vec![
            ("sha256".into(), hex("open-sha256", 64)),
            ("sha512".into(), hex("open-sha512", 128)),
        ],
    }
}

/// What the host publishes for jammy: Packages in three forms for each
/// architecture, Contents gzipped only, plus by-hash copies.
fn published_tree() -> Vec<PublishedFile> {
    let mut files = Vec::new();
    for arch in ["amd64", "arm64"] {
        let packages = format!("dists/jammy/main/binary-{arch}/Packages");
        let contents = format!("dists/jammy/main/Contents-{arch}");
        files.push(published(&packages, &packages, None, 4000));
        files.push(published(
            &format!("{packages}.gz"),
            &packages,
            Some(Compression::Gzip),
            1000,
        ));
        files.push(published(
            &format!("{packages}.xz"),
            &packages,
            Some(Compression::Xz),
            900,
        ));
        files.push(published(
            &format!("dists/jammy/main/binary-{arch}/by-hash/SHA256/abcdef"),
            &packages,
            Some(Compression::Xz),
            900,
        ));
        files.push(published(
            &format!("{contents}.gz"),
            &contents,
            Some(Compression::Gzip),
            250,
        ));
    }
    files
}

#[test]
fn release_snapshot() {
    let dist = jammy(r#"{"origin": "Example Corp", "label": "Example", "valid-until-days": 7}"#);
    let publication = repod_deb_core::render_top_level(&dist, &published_tree(), NOW).unwrap();
    assert!(publication.public_key_paths.is_empty());
    let [release] = publication.files.as_slice() else {
        panic!("one top-level file expected");
    };
    assert_eq!(release.path, "dists/jammy/Release");
    let signatures: Vec<(&str, SignatureKind)> = release
        .signatures
        .iter()
        .map(|s| (s.path.as_str(), s.kind))
        .collect();
    assert_eq!(
        signatures,
        [
            ("dists/jammy/InRelease", SignatureKind::Cleartext),
            ("dists/jammy/Release.gpg", SignatureKind::DetachedArmored),
        ]
    );
    // The by-hash copy is not listed; the uncompressed Contents is, from the
    // open checksums, although only its .gz is published.
    assert!(!release.content.contains("by-hash"));
    assert!(release.content.contains(" 1000 main/Contents-amd64\n"));
    insta::assert_snapshot!("release", release.content);
}

#[test]
fn release_defaults_without_valid_until() {
    let publication =
        repod_deb_core::render_top_level(&jammy("{}"), &published_tree(), NOW).unwrap();
    let content = &publication.files[0].content;
    assert!(content.starts_with(
        "Origin: repod\nLabel: repod\nSuite: jammy\nCodename: jammy\n\
         Date: Wed, 01 May 2024 12:34:56 UTC\nArchitectures: amd64 arm64\nComponents: main\n\
         Acquire-By-Hash: yes\nDescription: Ubuntu 22.04 LTS\nSHA256:\n"
    ));
    assert!(!content.contains("Valid-Until"));
}

#[test]
fn release_refuses_foreign_files() {
    let mut files = published_tree();
    files.push(published(
        "dists/noble/main/binary-amd64/Packages",
        "dists/noble/main/binary-amd64/Packages",
        None,
        1,
    ));
    let err = repod_deb_core::render_top_level(&jammy("{}"), &files, NOW).unwrap_err();
    assert!(err.contains("is outside dists/jammy/"), "{err}");
}

#[test]
fn frames_are_empty_and_checked() {
    let dist = jammy("{}");
    let frames = repod_deb_core::render_frames(
        &dist,
        &[
            ("dists/jammy/main/binary-amd64/Packages".into(), 3),
            ("dists/jammy/main/Contents-arm64".into(), 0),
        ],
    )
    .unwrap();
    assert_eq!(frames.len(), 2);
    assert!(
        frames
            .iter()
            .all(|f| f.head.is_empty() && f.tail.is_empty())
    );
    let err = repod_deb_core::render_frames(
        &dist,
        &[("dists/jammy/main/binary-s390x/Packages".into(), 1)],
    )
    .unwrap_err();
    assert_eq!(
        err,
        "index dists/jammy/main/binary-s390x/Packages does not belong to distribution jammy"
    );
}

#[test]
fn client_config_snapshot() {
    let config = repod_deb_core::render_client_config(
        &jammy("{}"),
        "https://repo.example.org/repos",
        "https://repo.example.org/repos/repod.asc",
    )
    .unwrap();
    assert_eq!(config.filename, "repod-jammy.sources");
    assert_eq!(config.media_type, "text/plain");
    insta::assert_snapshot!("client_config", config.content);

    let err = repod_deb_core::render_client_config(
        &jammy("{}"),
        "https://x\nTypes: deb-src",
        "https://x/key.asc",
    )
    .unwrap_err();
    assert!(err.contains("without spaces or line breaks"), "{err}");
}

#[test]
fn a_pinned_client_config_has_its_own_name() {
    let mut dist = jammy("{}");
    dist.extensions
        .push((repod_family_sdk::PINNED_VERSION.into(), "7".into()));
    let config = repod_deb_core::render_client_config(
        &dist,
        "https://repo.example.org/repos/versions/jammy/7",
        "https://repo.example.org/repos/keys/repod.asc",
    )
    .unwrap();
    assert_eq!(config.filename, "repod-jammy-v7.sources");
    assert!(
        config
            .content
            .starts_with("# Ubuntu 22.04 LTS (jammy), version 7 (pinned:"),
        "{}",
        config.content
    );
    assert!(
        config
            .content
            .contains("URIs: https://repo.example.org/repos/versions/jammy/7\nSuites: jammy\n"),
        "{}",
        config.content
    );
}

#[test]
fn compare_versions_maps_orderings() {
    use repod_deb_core::sdk::Ordering;
    let pairs = [("1.0~rc1", "1.0"), ("1:1", "2"), ("1.0", "1.0-0")]
        .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(
        repod_deb_core::compare_versions(&pairs),
        [Ordering::Less, Ordering::Greater, Ordering::Equal]
    );
}
