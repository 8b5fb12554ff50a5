//! Upload throughput of a real daemon (release build), measured side by
//! side with `sha256sum` and `openssl dgst -sha256` on the same large file.
//!
//!     cargo build --release -p repod && scripts/build-plugins target/plugins
//!     cargo bench -p repod-tests --bench upload_throughput
//!
//! Small packages: N distinct `dpkg-deb`-built packages uploaded one by one
//! and on 4 connections. Large package: one uncompressed deb of random data,
//! timed from first byte sent to 201, against `sha256sum` (coreutils) and
//! `openssl dgst -sha256` reading the file.

use std::process::Command;
use std::time::{Duration, Instant};

use repod_tests::{Daemon, fixtures};

const SMALL: usize = 300;
const LARGE_MIB: usize = 512;

fn upload(url: &str, token: &str, dist: &str, bytes: &[u8]) {
    let r = ureq::post(&format!("{url}/api/v1/packages?distribution={dist}"))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/octet-stream")
        .send_bytes(bytes)
        .expect("upload");
    assert_eq!(r.status(), 201);
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let small: Vec<Vec<u8>> = (0..SMALL)
        .map(|i| {
            std::fs::read(fixtures::deb(
                dir.path(),
                &format!("pkg{i}"),
                "1.0-1",
                "amd64",
                "",
                "payload",
            ))
            .unwrap()
        })
        .collect();
    let avg = small.iter().map(Vec::len).sum::<usize>() / small.len();

    let daemon = Daemon::start();
    let token = daemon.admin.clone();
    println!("| upload | packages | time | rate |");
    println!("|---|---|---|---|");
    let started = Instant::now();
    for bytes in &small[..SMALL / 2] {
        upload(&daemon.url, &token, "jammy", bytes);
    }
    let t = started.elapsed();
    println!(
        "| small debs (~{avg} B), 1 connection | {} | {:.2} s | {:.0} packages/s |",
        SMALL / 2,
        t.as_secs_f64(),
        (SMALL / 2) as f64 / t.as_secs_f64()
    );

    let rest = &small[SMALL / 2..];
    let started = Instant::now();
    std::thread::scope(|s| {
        for chunk in rest.chunks(rest.len().div_ceil(4)) {
            let (url, token) = (&daemon.url, &token);
            s.spawn(move || chunk.iter().for_each(|b| upload(url, token, "jammy", b)));
        }
    });
    let t = started.elapsed();
    println!(
        "| small debs (~{avg} B), 4 connections | {} | {:.2} s | {:.0} packages/s |",
        rest.len(),
        t.as_secs_f64(),
        rest.len() as f64 / t.as_secs_f64()
    );

    // One large package: random bytes so nothing compresses, stored raw.
    let root = dir.path().join("large");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("opt/large")).unwrap();
    let mut data = vec![0u8; LARGE_MIB << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(root.join("opt/large/blob"), &data).unwrap();
    drop(data);
    std::fs::write(
        root.join("DEBIAN/control"),
        "Package: large\nVersion: 1.0\nArchitecture: amd64\nMaintainer: T <t@test.invalid>\nDescription: large\n",
    )
    .unwrap();
    let deb = dir.path().join("large.deb");
    let ok = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Znone", "-b"])
        .arg(&root)
        .arg(&deb)
        .status()
        .unwrap();
    assert!(ok.success());
    let bytes = std::fs::read(&deb).unwrap();
    let mib = bytes.len() as f64 / (1 << 20) as f64;

    let best = |f: &mut dyn FnMut() -> Duration| (0..3).map(|_| f()).min().unwrap();
    let sha = best(&mut || {
        let t = Instant::now();
        assert!(
            Command::new("sha256sum")
                .arg(&deb)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap()
                .success()
        );
        t.elapsed()
    });
    let openssl = best(&mut || {
        let t = Instant::now();
        let status = Command::new("openssl")
            .args(["dgst", "-sha256"])
            .arg(&deb)
            .stdout(std::process::Stdio::null())
            .status();
        assert!(status.unwrap().success());
        t.elapsed()
    });
    let mut n = 0;
    let up = best(&mut || {
        n += 1;
        let t = Instant::now();
        upload(
            &daemon.url,
            &token,
            ["jammy", "noble", "focal"][n - 1],
            &bytes,
        );
        t.elapsed()
    });
    println!();
    println!("| large package ({mib:.0} MiB, uncompressed deb), best of 3 | time | throughput |");
    println!("|---|---|---|");
    let row = |what: &str, t: Duration| {
        println!(
            "| {what} | {:.2} s | {:.0} MB/s |",
            t.as_secs_f64(),
            mib / t.as_secs_f64()
        );
    };
    row("`sha256sum` of the file (coreutils, portable C)", sha);
    row("`openssl dgst -sha256` of the file (SHA-NI)", openssl);
    row(
        "repod upload: stream to disk + SHA-256 + fsync + parse + plugin + commit",
        up,
    );
}
