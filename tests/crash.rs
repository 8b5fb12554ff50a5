//! Nothing acknowledged is lost: the daemon is killed with SIGKILL in the
//! middle of a stream of uploads, restarted on the same data, and must
//! hold every package it answered 201 for, each with its blob intact, and
//! nothing else: no unreferenced blob, no temporary file.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repod_tests::{Daemon, fixtures};

/// Waits until the daemon's stored blobs are `expected`: on PostgreSQL +
/// S3 (a cluster of one) the node collects the bucket once it has taken
/// the lead, a moment after it started serving.
fn stored_blobs_become(daemon: &Daemon, expected: &[String], when: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while daemon.stored_blobs() != expected {
        assert!(
            std::time::Instant::now() < deadline,
            "{when}: stored {:?}, expected {expected:?}:\n{}",
            daemon.stored_blobs(),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn killed_mid_upload_keeps_every_acknowledged_package_and_nothing_else() {
    // (In the S3 run, an object stored just before a kill is collected.)
    let mut daemon = Daemon::builder()
        .orphan_grace(std::time::Duration::ZERO)
        .start();
    let token = daemon.token("uploader", "crash");
    let dir = tempfile::tempdir().unwrap();
    // Larger payloads make the kill land inside uploads more often.
    let packages: Vec<Vec<u8>> = (0..60)
        .map(|i| {
            let payload = format!("{i}-").repeat(20_000 + i * 1000);
            std::fs::read(fixtures::deb(
                dir.path(),
                &format!("crash{i}"),
                "1.0",
                "amd64",
                "",
                &payload,
            ))
            .unwrap()
        })
        .collect();
    let packages = Arc::new(packages);
    let acknowledged: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();

    for (round, kill_after) in [(0usize, 150u64), (1, 40), (2, 400)] {
        let url = daemon.url.clone();
        let (pkgs, acked, bearer) = (packages.clone(), acknowledged.clone(), token.clone());
        let uploader = std::thread::spawn(move || {
            for (i, bytes) in pkgs.iter().enumerate().skip(round * 20).take(20) {
                let reply = ureq::post(&format!("{url}/api/v1/packages?distribution=jammy"))
                    .set("Authorization", &format!("Bearer {bearer}"))
                    .set("Content-Type", "application/octet-stream")
                    .send_bytes(bytes);
                match reply {
                    Ok(r) if r.status() == 201 => {
                        let body: serde_json::Value = r.into_json().unwrap();
                        acked.lock().unwrap().insert(
                            format!("crash{i}"),
                            body["sha256"].as_str().unwrap().to_owned(),
                        );
                    }
                    Ok(r) => panic!("unexpected {}", r.status()),
                    // The daemon died under us: this one was not acknowledged.
                    Err(_) => return,
                }
            }
        });
        std::thread::sleep(Duration::from_millis(kill_after));
        daemon.kill();
        uploader.join().unwrap();
        daemon.restart();

        let listed = daemon.get("/api/v1/packages?distribution=jammy", Some(&token));
        let rows: BTreeMap<String, String> = listed.body["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["sha256"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let acked = acknowledged.lock().unwrap().clone();
        for (name, sha) in &acked {
            assert_eq!(
                rows.get(name),
                Some(sha),
                "round {round}: acknowledged {name} lost"
            );
        }
        // Every row has its blob, byte for byte; every blob has a row (in
        // the S3 run: every row's object is stored too, and no other).
        let blobs = fixtures::snapshot(&daemon.data.path().join("blobs"));
        if daemon.storage.is_some() {
            let mut expected: Vec<String> = rows.values().cloned().collect();
            expected.sort();
            stored_blobs_become(&daemon, &expected, &format!("round {round}"));
        }
        for sha in rows.values() {
            let blob = blobs
                .iter()
                .find(|(p, _)| p.ends_with(sha))
                .unwrap_or_else(|| panic!("round {round}: blob {sha} missing"));
            use sha2::Digest;
            assert_eq!(
                &hex::encode(sha2::Sha256::digest(&blob.1)),
                sha,
                "round {round}: blob damaged"
            );
        }
        assert_eq!(
            blobs.len(),
            rows.len(),
            "round {round}: unreferenced blobs survived the restart"
        );
        assert!(
            fixtures::snapshot(&daemon.data.path().join("tmp")).is_empty(),
            "round {round}: temporary files left"
        );
    }
    assert!(
        !acknowledged.lock().unwrap().is_empty(),
        "no upload completed before the kills: the test proved nothing"
    );
}

/// What a crash between storing a blob and committing its rows leaves (a
/// blob no row refers to), what a crash mid-stream leaves (a temporary
/// upload) and what a crash mid-publish leaves (a staged tree, found by the
/// soak) are all gone after a restart; referenced blobs stay.
#[test]
fn a_restart_collects_what_a_crash_leaves() {
    let mut daemon = Daemon::builder()
        .orphan_grace(std::time::Duration::ZERO)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let deb = std::fs::read(fixtures::deb(dir.path(), "kept", "1.0", "amd64", "", "k")).unwrap();
    let kept = daemon.upload(
        "/api/v1/packages?distribution=jammy",
        Some(&daemon.admin),
        &deb,
    );
    assert_eq!(kept.status, 201);
    let kept_sha = kept.body["sha256"].as_str().unwrap().to_owned();

    daemon.kill();
    let data = daemon.data.path().to_owned();
    let stray = "ab".to_owned() + &"0".repeat(62);
    std::fs::create_dir_all(data.join("blobs/sha256/ab")).unwrap();
    std::fs::write(data.join("blobs/sha256/ab").join(&stray), b"orphan").unwrap();
    std::fs::write(data.join("tmp/upload-interrupted"), b"half a package").unwrap();
    let staged = data.join("publish/staging/jammy-1796000000000000000/dists/jammy");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join("Release"), b"half a tree").unwrap();
    if let Some(s3) = &daemon.storage {
        // In the S3 run the stray is an object (the file above is a stray
        // cached copy).
        repod_tests::put_object(s3, &format!("blobs/sha256/ab/{stray}"), b"orphan");
        assert_eq!(daemon.stored_blobs().len(), 2);
    }
    daemon.restart();
    stored_blobs_become(
        &daemon,
        std::slice::from_ref(&kept_sha),
        "after the restart",
    );

    let blobs: Vec<String> = fixtures::snapshot(&data.join("blobs"))
        .into_iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(blobs, [kept_sha]);
    assert!(fixtures::snapshot(&data.join("tmp")).is_empty());
    assert!(
        !data
            .join("publish/staging/jammy-1796000000000000000")
            .exists()
    );
    assert!(
        daemon.log().contains("removed 1 unreferenced blobs")
            || daemon
                .log()
                .contains("no row refers to collected (left by interrupted uploads) removed=1"),
        "{}",
        daemon.log()
    );
}
