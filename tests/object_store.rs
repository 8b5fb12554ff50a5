//! Published trees kept in the object store (`[storage] kind = "s3"`):
//! every node serves the stored generation, and the export laid out in the
//! bucket never shows a top-level file that names a missing file.
//!
//! Needs the S3 run (scripts/test runs this binary only under
//! scripts/with-s3, on PostgreSQL): it fails, not skips, without it.

use std::io::Read;

use repod_tests::rpm::{Dnf, client_config, ok};
use repod_tests::{Bucket, Daemon, Watcher, fixtures};

fn require_s3() {
    assert!(
        std::env::var("REPOD_TEST_S3").is_ok(),
        "this test needs an S3-compatible server: run it under scripts/with-s3"
    );
}

/// A node with nothing of its own (a new data directory) serves the
/// generations another node stored, byte for byte, without publishing;
/// stock apt and dnf install from it with signature checking on.
#[test]
fn a_new_node_serves_the_stored_trees_without_publishing() {
    require_s3();
    let mut first = Daemon::start();
    let up = first.token("uploader", "ci");
    let dir = tempfile::tempdir().unwrap();
    let deb = fixtures::deb(dir.path(), "hello", "1.0-1", "amd64", "", "hello");
    first.upload_file("jammy", &up, &deb);
    let rpm = fixtures::rpm(dir.path(), "alpha", "1.0", "1", "x86_64", "");
    first.upload_file("almalinux9", &up, &rpm);
    // Every distribution stored, so that the next node has nothing to do.
    first.publish_all();
    let tops = [
        "/repos/dists/jammy/InRelease",
        "/repos/almalinux9/x86_64/repodata/repomd.xml",
        "/repos/almalinux9/x86_64/repodata/repomd.xml.asc",
    ];
    let before: Vec<Vec<u8>> = tops.iter().map(|p| first.fetch(p)).collect();
    first.kill();

    let second = Daemon::builder().sharing(&first).start();
    let after: Vec<Vec<u8>> = tops.iter().map(|p| second.fetch(p)).collect();
    assert!(before == after, "the new node serves other bytes");
    let published: Vec<String> = second
        .log()
        .lines()
        .filter(|l| l.contains("publishing its tree"))
        .map(str::to_owned)
        .collect();
    assert!(
        published.is_empty(),
        "the new node published: {published:#?}"
    );
    // Nothing of the tree on its disk but what it fetched on demand.
    assert!(
        !second.data.path().join("repos/dists/jammy").exists(),
        "the new node built a local tree"
    );
    // The same ETag on every node: the file's SHA-256.
    let reply = ureq::get(&format!("{}/repos/dists/jammy/InRelease", second.url))
        .call()
        .unwrap();
    let etag = reply.header("ETag").unwrap().to_owned();
    use sha2::Digest;
    assert_eq!(
        etag,
        format!("\"{}\"", hex::encode(sha2::Sha256::digest(&after[0])))
    );
    let not_modified = ureq::get(&format!("{}/repos/dists/jammy/InRelease", second.url))
        .set("If-None-Match", &etag)
        .call()
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    // A package file comes from the blob store (its bytes, and a range).
    let pool = "/repos/pool/main/h/hello/hello_1.0-1_amd64.deb";
    assert_eq!(second.fetch(pool), std::fs::read(&deb).unwrap());
    let ranged = ureq::get(&format!("{}{pool}", second.url))
        .set("Range", "bytes=0-6")
        .call()
        .unwrap();
    assert_eq!(ranged.status(), 206);
    let mut head = Vec::new();
    ranged.into_reader().read_to_end(&mut head).unwrap();
    assert_eq!(head, b"!<arch>");

    let apt = repod_tests::apt::root_for(&second, "jammy", "", "amd64", &[], &second.served_key());
    apt.update().assert_ok();
    let planned = apt.install_simulated(&["hello"]);
    assert!(
        planned
            .iter()
            .any(|i| i.name == "hello" && i.version == "1.0-1"),
        "{planned:?}"
    );
    let dnf = Dnf::new(&client_config(&second, "almalinux9"), "x86_64");
    ok(&mut dnf.cmd(&["makecache"]));
    let listed = ok(&mut dnf.cmd(&["list", "--available", "alpha"]));
    assert!(listed.contains("alpha.x86_64"), "{listed}");

    // A change on the new node is published there and served.
    let newer = fixtures::deb(dir.path(), "hello", "1.1-1", "amd64", "", "hello");
    second.upload_file("jammy", &up, &newer);
    second.publish("jammy", &second.admin);
    apt.update().assert_ok();
    let planned = apt.install_simulated(&["hello"]);
    assert!(
        planned
            .iter()
            .any(|i| i.name == "hello" && i.version == "1.1-1"),
        "{planned:?}"
    );
}

fn unpack(name: &str, bytes: &[u8]) -> String {
    let mut out = String::new();
    if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut out)
            .unwrap();
    } else if name.ends_with(".zst") {
        out = String::from_utf8(zstd::decode_all(bytes).unwrap()).unwrap();
    } else {
        out = String::from_utf8(bytes.to_vec()).unwrap();
    }
    out
}

fn hrefs(xml: &str) -> Vec<String> {
    xml.split("<location href=\"")
        .skip(1)
        .map(|h| h.split('"').next().unwrap().to_owned())
        .collect()
}

/// What a client reading the bucket would find missing right now: the
/// top-level file is read first, then the bucket listed, so everything it
/// names must have been exported before it (or it is a failure).
fn missing_in_export(bucket: &Bucket) -> (bool, Vec<String>) {
    let repo = "almalinux9/x86_64";
    let Some(repomd) = bucket.get(&format!("{repo}/repodata/repomd.xml")) else {
        return (false, vec![]);
    };
    let keys = bucket.keys();
    let mut missing = Vec::new();
    for href in hrefs(&String::from_utf8(repomd).unwrap()) {
        let key = format!("{repo}/{href}");
        if !keys.contains(&key) {
            missing.push(key);
            continue;
        }
        // The packages the primary index names: exported before it.
        if href.contains("-primary.xml") {
            let primary = bucket.get(&key).expect("listed just now");
            for package in hrefs(&unpack(&href, &primary)) {
                let key = format!("{repo}/{package}");
                if !keys.contains(&key) {
                    missing.push(key);
                }
            }
        }
    }
    (true, missing)
}

/// Publishes export to the bucket while a checker polls it: at no moment
/// does a top-level file name a file the bucket lacks, and at the end the
/// bucket holds what the daemon serves.
///
/// RPM distributions only: s3s-fs keeps each object's metadata in a file
/// named by the base64 of its key, so keys over ~168 bytes fail there
/// (500), and an apt tree's `by-hash/SHA512/<128 hex>` names are longer.
/// The apt distributions are disabled so their exports do not fail; the
/// APT export is checked on moto_server (`export_apt.rs`).
#[test]
fn the_export_never_shows_a_top_level_file_naming_a_missing_file() {
    require_s3();
    let daemon = Daemon::builder()
        .config("[plugin.debian]\ndisable = [\"bookworm\", \"focal\", \"jammy\", \"noble\"]\n")
        .export_prefix("public")
        .start();
    let s3 = daemon.storage.clone().expect("S3 run");
    let export = s3.export_prefix.clone().expect("an export prefix");
    let up = daemon.token("uploader", "ci");
    let checker = {
        let bucket = Bucket::of(&s3, &export);
        Watcher::spawn(move || {
            let (looked, missing) = missing_in_export(&bucket);
            looked.then_some(missing)
        })
    };
    let dir = tempfile::tempdir().unwrap();
    for round in 1..=6 {
        let version = format!("1.{round}-1");
        let out = dir.path().join(&version);
        std::fs::create_dir_all(&out).unwrap();
        for name in ["alpha", "beta"] {
            let rpm = fixtures::rpm(&out, name, &format!("1.{round}"), "1", "x86_64", "");
            daemon.upload_file("almalinux9", &up, &rpm);
        }
        let before = checker.looks();
        daemon.publish("almalinux9", &daemon.admin);
        // The checker looks at least twice per publish, even on a loaded
        // machine.
        checker.wait_for_looks(before, 2);
    }
    let (checks, violations) = checker.stop();
    assert!(
        violations.is_empty(),
        "the export named missing files: {:?}",
        &violations[..violations.len().min(3)]
    );
    assert!(
        checks >= 10,
        "the checker saw the export only {checks} times"
    );
    // At rest, the bucket holds what the daemon serves.
    let bucket = Bucket::of(&s3, &export);
    let repomd = daemon.fetch("/repos/almalinux9/x86_64/repodata/repomd.xml");
    let primary = hrefs(&String::from_utf8(repomd).unwrap())
        .into_iter()
        .find(|h| h.contains("-primary.xml"))
        .unwrap();
    let packages = hrefs(&unpack(
        &primary,
        &daemon.fetch(&format!("/repos/almalinux9/x86_64/{primary}")),
    ));
    assert_eq!(packages.len(), 12, "{packages:?}");
    for path in [
        "almalinux9/x86_64/repodata/repomd.xml".to_owned(),
        "almalinux9/x86_64/repodata/repomd.xml.asc".to_owned(),
        format!("almalinux9/x86_64/{primary}"),
        format!("almalinux9/x86_64/{}", packages[0]),
        "keys/repod.asc".to_owned(),
    ] {
        // A background publish may still be exporting (a node serves a
        // generation just before it exports it): the two meet.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while bucket.get(&path).as_deref() != Some(&daemon.fetch(&format!("/repos/{path}"))[..]) {
            assert!(
                std::time::Instant::now() < deadline,
                "{path} differs between the export and the daemon"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let (_, missing) = missing_in_export(&bucket);
    assert!(missing.is_empty(), "{missing:?}");
}

/// A package above the single-PUT size (16 MiB) goes up in parts, is the
/// same object in the bucket, and comes back byte for byte to a node that
/// has no copy.
#[test]
fn a_large_package_is_stored_in_parts_and_read_back() {
    require_s3();
    let mut first = Daemon::start();
    let up = first.token("uploader", "ci");
    // 20 MiB that gzip cannot shrink: a pseudo-random payload.
    let mut payload = vec![0u8; 20 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in payload.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let deb = fixtures::raw_deb(
        b"Package: big\nVersion: 1.0\nArchitecture: amd64\nMaintainer: t <t@example.invalid>\nDescription: big\n",
        &[(b"./usr/share/big/blob", &payload)],
    );
    assert!(deb.len() > 20 << 20);
    let reply = first.upload("/api/v1/packages?distribution=jammy", Some(&up), &deb);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let sha = reply.body["sha256"].as_str().unwrap().to_owned();
    let s3 = first.storage.clone().unwrap();
    let bucket = Bucket::of(&s3, &s3.prefix);
    let stored = bucket
        .get(&repod::blobs::remote::blob_rel(&sha))
        .expect("the blob is in the bucket");
    assert!(stored == deb, "the stored object is not the upload");
    first.publish("jammy", &first.admin);
    first.kill();

    // A node with no copy fetches it, checks its hash, and serves it.
    let second = Daemon::builder().sharing(&first).start();
    let served = second.fetch("/repos/pool/main/b/big/big_1.0_amd64.deb");
    assert!(served == deb, "the new node served other bytes");
    assert!(
        second
            .data
            .path()
            .join(format!("blobs/sha256/{}/{sha}", &sha[..2]))
            .is_file(),
        "the fetched blob is cached"
    );
}

/// `cache-max-mib`: the node's copies of blobs and tree files are trimmed
/// to the cap, least recently used first, and whatever was trimmed is
/// fetched again and served byte for byte.
#[test]
fn the_node_s_caches_stay_under_cache_max_mib() {
    require_s3();
    let daemon = Daemon::builder()
        .cache_max_mib(1)
        // Debug builds: trim every second, sparing nothing.
        .env("REPOD_TEST_CACHE_TRIM", "1")
        .start();
    let up = daemon.token("uploader", "ci");
    let mut debs = Vec::new();
    for (i, name) in ["one", "two", "three"].into_iter().enumerate() {
        // ~600 KiB that gzip cannot shrink.
        let mut payload = vec![0u8; 600 << 10];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 + i as u64;
        for chunk in payload.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let control = format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: amd64\n\
             Maintainer: t <t@example.invalid>\nDescription: {name}\n"
        );
        let deb = fixtures::raw_deb(control.as_bytes(), &[(b"./usr/share/x/blob", &payload)]);
        let reply = daemon.upload("/api/v1/packages?distribution=jammy", Some(&up), &deb);
        assert_eq!(reply.status, 201, "{}", reply.body);
        debs.push((name, deb));
    }
    daemon.publish("jammy", &daemon.admin);
    let cached = || -> u64 {
        ["blobs/sha256", "cache/trees"]
            .iter()
            .flat_map(|dir| fixtures::snapshot(&daemon.data.path().join(dir)))
            .map(|(path, _)| std::fs::metadata(path).map_or(0, |m| m.len()))
            .sum()
    };
    for round in 0..2 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while cached() > 1 << 20 {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the caches still hold {} bytes:\n{}",
                cached(),
                daemon.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        // Every package, trimmed or not, is served whole.
        for (name, deb) in &debs {
            let served = daemon.fetch(&format!(
                "/repos/pool/main/{}/{name}/{name}_1.0_amd64.deb",
                &name[..1]
            ));
            assert!(&served == deb, "{name}: other bytes served");
        }
        let inrelease = daemon.fetch("/repos/dists/jammy/InRelease");
        assert!(
            String::from_utf8(inrelease)
                .unwrap()
                .contains("Codename: jammy")
        );
    }
    assert!(daemon.log().contains("cache trimmed to cache-max-mib"));
}
