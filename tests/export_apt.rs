//! The export of an APT tree to a bucket (`export-prefix`), read the way a
//! CDN's clients read it: straight from the bucket.
//!
//! Needs `scripts/with-s3 --moto` (scripts/test runs it so): s3s-fs, the
//! suite's usual S3 server, names a file after the base64 of each key, so
//! it cannot hold keys over ~168 bytes, and an apt tree's
//! `dists/<codename>/main/binary-amd64/by-hash/SHA512/<128 hex>` keys are
//! longer. moto_server keeps objects in memory and serves them over the
//! same S3 HTTP API.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::{Arc, Mutex};

use repod_tests::apt::{AptRoot, release_sha256};
use repod_tests::{Bucket, Daemon, Watcher, fixtures};
use sha2::{Digest, Sha256};

fn require_moto() {
    assert_eq!(
        std::env::var("REPOD_TEST_S3_SERVER").as_deref(),
        Ok("moto"),
        "this test needs an S3 server that holds apt's longest keys: run it under \
         scripts/with-s3 --moto"
    );
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// What a client reading the exported `dist` would find missing right now:
/// InRelease is read first, then the bucket listed, so every index it
/// lists (or a compressed form of it), the by-hash copy of every index
/// file, and every package file a listed Packages names must be there.
/// Returns the InRelease read (None before the first export) and what is
/// missing.
fn missing_in_export(bucket: &Bucket, dist: &str) -> (Option<String>, Vec<String>) {
    let Some(inrelease) = bucket.get(&format!("dists/{dist}/InRelease")) else {
        return (None, vec![]);
    };
    let inrelease = String::from_utf8(inrelease).unwrap();
    let keys = bucket.keys();
    let by_hash = inrelease.contains("\nAcquire-By-Hash: yes\n");
    assert!(by_hash, "{inrelease}");
    let mut missing = Vec::new();
    for (path, (_, sha)) in release_sha256(&inrelease) {
        let key = format!("dists/{dist}/{path}");
        let compressed = keys.range(format!("{key}.")..).next();
        let present = keys.contains(&key);
        if !present && !compressed.is_some_and(|k| k.starts_with(&format!("{key}."))) {
            missing.push(key);
            continue;
        }
        if !present {
            // Listed uncompressed, published compressed only (Contents).
            continue;
        }
        let hashed = format!("dists/{dist}/{}/by-hash/SHA256/{sha}", parent(&path));
        if !keys.contains(&hashed) {
            missing.push(hashed);
            continue;
        }
        if path.ends_with("/Packages") {
            // The by-hash copy is the one whose bytes this InRelease names.
            let packages = bucket.get(&hashed).expect("listed just now");
            assert_eq!(hex::encode(Sha256::digest(&packages)), sha, "{hashed}");
            for line in String::from_utf8(packages).unwrap().lines() {
                if let Some(file) = line.strip_prefix("Filename: ")
                    && !keys.contains(file)
                {
                    missing.push(file.to_owned());
                }
            }
        }
    }
    (Some(inrelease), missing)
}

/// Publishes of jammy export to the bucket while a checker polls it: at no
/// moment does the exported InRelease list an index, a by-hash copy or a
/// package the bucket lacks; superseded by-hash files are still there
/// after the run (retention keeps them); and stock apt, pointed at the
/// bucket itself, accepts the tree with the daemon's key and fetches the
/// package the daemon serves.
#[test]
fn stock_apt_reads_the_exported_tree_from_the_bucket() {
    require_moto();
    let daemon = Daemon::builder().export_prefix("public").start();
    let s3 = daemon.storage.clone().expect("S3 run");
    let export = s3.export_prefix.clone().expect("an export prefix");
    let up = daemon.token("uploader", "ci");
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let checker = {
        let (bucket, seen) = (Bucket::of(&s3, &export), seen.clone());
        Watcher::spawn(move || {
            let (inrelease, missing) = missing_in_export(&bucket, "jammy");
            seen.lock().unwrap().insert(inrelease?);
            Some(missing)
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let mut last = Vec::new();
    for round in 1..=6 {
        for name in ["alpha", "beta"] {
            let deb = fixtures::deb(
                dir.path(),
                name,
                &format!("1.{round}-1"),
                "amd64",
                "",
                &format!("{name} round {round}"),
            );
            daemon.upload_file("jammy", &up, &deb);
            last.push(deb);
        }
        let before = checker.looks();
        daemon.publish("jammy", &daemon.admin);
        // At least two looks per publish, even on a loaded machine.
        checker.wait_for_looks(before, 2);
    }
    let (checks, violations) = checker.stop();
    assert!(
        violations.is_empty(),
        "the export named missing files: {:?}",
        &violations[..violations.len().min(3)]
    );
    let seen = seen.lock().unwrap();
    assert!(
        checks >= 10 && seen.len() >= 3,
        "the checker read the export {checks} times and saw {} generations",
        seen.len()
    );

    // At rest: the bucket's top-level files are what the daemon serves,
    // and the by-hash files of every generation the checker saw are kept.
    let bucket = Bucket::of(&s3, &export);
    for path in [
        "dists/jammy/InRelease",
        "dists/jammy/Release",
        "dists/jammy/Release.gpg",
        "keys/repod.asc",
    ] {
        // A background publish may still be exporting: the two meet.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while bucket.get(path).as_deref() != Some(&daemon.fetch(&format!("/repos/{path}"))[..]) {
            assert!(
                std::time::Instant::now() < deadline,
                "{path} differs between the export and the daemon"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let keys = bucket.keys();
    for inrelease in seen.iter() {
        for (path, (_, sha)) in release_sha256(inrelease) {
            let hashed = format!("dists/jammy/{}/by-hash/SHA256/{sha}", parent(&path));
            assert!(
                !keys.contains(&format!("dists/jammy/{path}")) || keys.contains(&hashed),
                "{hashed} of an earlier generation is gone"
            );
        }
    }
    let sha512 = keys
        .iter()
        .filter(|k| k.contains("/by-hash/SHA512/"))
        .max_by_key(|k| k.len())
        .expect("SHA512 by-hash files exported");
    assert!(
        sha512.len() + export.len() + 1 > 168,
        "{sha512}: the longest keys are longer than s3s-fs holds"
    );

    // Stock apt, pointed at the bucket, checks the daemon's signature.
    // (scripts/with-s3 --moto lets anyone read `*-public/` keys, as a
    // bucket behind a CDN is read; the store's own keys stay private.)
    let endpoint = std::env::var("REPOD_TEST_S3").unwrap();
    let blob = repod_tests::object_keys(&s3, "blobs/sha256")
        .into_iter()
        .next()
        .expect("stored blobs");
    let anonymous = |key: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("{endpoint}/{}/{key}", s3.bucket))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(anonymous(&blob), "403", "{blob} is private");
    assert_eq!(anonymous(&format!("{export}/dists/jammy/InRelease")), "200");
    let sources = daemon.client_config("jammy", "").replace(
        &format!("{}/repos", daemon.url),
        &format!("{endpoint}/{}/{export}", s3.bucket),
    );
    assert!(sources.contains(&format!("/{export}\n")), "{sources}");
    let key = daemon.fetch("/repos/keys/repod.asc");
    let apt = AptRoot::new("amd64", &[]);
    apt.add_signed_source("bucket", &sources, "repod.asc", &key);
    apt.update().assert_ok();
    let fetched = apt.download(&["alpha"]);
    let mut bytes = Vec::new();
    std::fs::File::open(&fetched[0])
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(bytes, std::fs::read(&last[last.len() - 2]).unwrap());
    assert_eq!(
        bytes,
        daemon.fetch("/repos/pool/main/a/alpha/alpha_1.6-1_amd64.deb")
    );
}
