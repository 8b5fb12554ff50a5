//! Scanning: a full re-scan of N stored packages against A advisories, and
//! the incremental re-scan after one advisory changes.
//!
//!     cargo build --release -p repod && scripts/build-plugins target/plugins
//!     cargo bench -p repod-tests --bench scan                      # N=50000 A=20000
//!     REPOD_BENCH_SCAN_N=5000 REPOD_BENCH_SCAN_A=2000 cargo bench -p repod-tests --bench scan
//!
//! N synthetic .debs (as in the publish benches) go into jammy
//! (`Ubuntu:22.04:LTS`), five binaries per source package (`Source:`
//! bench-src-K), with `[scan] policy = "none"` so nothing is held back.
//! A synthetic OSV records, two per source name, each an ECOSYSTEM range
//! `introduced 0, fixed V` with a CVSS 3.1 vector; V is above the packages'
//! versions for one record in four (one of the two of every other source),
//! so half the packages have one finding. They are imported as one zip (its time, which includes the
//! re-scan of every package the records name, is shown but not a figure).
//!
//! Figures, each the median of REPOD_BENCH_RUNS (default 3):
//! - full re-scan: the wall clock of `POST /api/v1/scans/rescan` (every
//!   stored package matched and judged again, findings stored);
//! - incremental: one record re-imported with a later `modified` and
//!   another fixed version: the wall clock of `POST /api/v1/advisories`,
//!   which stores it and re-scans the packages it names (five).

use std::io::Write;
use std::process::Command;

use repod_tests::bench::{median_of, run, timed};
use repod_tests::{Daemon, fixtures, repod_bin};
use serde_json::{Value, json};

const ECOSYSTEM: &str = "Ubuntu:22.04:LTS";

fn size(var: &str, default: usize) -> usize {
    std::env::var(var).map_or(default, |v| v.parse().expect("a number"))
}

fn deb(i: usize) -> (String, Vec<u8>) {
    let name = format!("bench-pkg-{i:06}");
    let control = format!(
        "Package: {name}\nSource: bench-src-{:05}\nVersion: 1.{i}-1\nArchitecture: amd64\n\
         Maintainer: Bench <bench@test.invalid>\nInstalled-Size: 10\nSection: misc\n\
         Priority: optional\nDescription: synthetic package {i} for the scan benchmark\n",
        i / 5
    );
    let path = format!("./usr/share/{name}/data.txt");
    let bytes = fixtures::raw_deb(control.as_bytes(), &[(path.as_bytes(), name.as_bytes())]);
    (format!("{name}_1.{i}-1_amd64.deb"), bytes)
}

/// Whether record `j`'s fix is above every version of its source: the odd
/// records of even sources.
fn affects(j: usize) -> bool {
    j % 4 == 1
}

/// Record `j`: names source `j / 2` (of the N / 5 there are, wrapping);
/// see [`affects`].
fn advisory(j: usize, sources: usize, modified: &str, fixed_bump: usize) -> Value {
    let source = (j / 2) % sources;
    let fixed = if affects(j) {
        format!("1.{}-1", source * 5 + 5 + fixed_bump)
    } else {
        "1.0-0".to_owned()
    };
    json!({
        "id": format!("BENCH-{j:06}"),
        "modified": modified,
        "summary": format!("synthetic advisory {j}"),
        "aliases": [format!("CVE-2099-{j:06}")],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N"}],
        "affected": [{
            "package": {"ecosystem": ECOSYSTEM, "name": format!("bench-src-{source:05}")},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]
        }]
    })
}

fn zip_of(records: &[Value]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for r in records {
        writer
            .start_file(format!("{}.json", r["id"].as_str().unwrap()), options)
            .unwrap();
        writer.write_all(r.to_string().as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn main() {
    let n = size("REPOD_BENCH_SCAN_N", 50_000);
    let a = size("REPOD_BENCH_SCAN_A", 20_000);
    let sources = n.div_ceil(5);
    let daemon = Daemon::builder()
        .config("[scan]\npolicy = \"none\"\n")
        .start();
    let token = daemon.admin.clone();
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    for i in 0..n {
        let (name, bytes) = deb(i);
        std::fs::write(pool.join(name), bytes).unwrap();
    }
    let upload = timed(|| {
        run(Command::new(repod_bin())
            .args(["upload", "--distribution", "jammy", "--jobs", "4"])
            .args(["--url", &daemon.url, "--token", &token])
            .arg(&pool));
    });
    eprintln!("scan n={n}: uploaded in {upload:.1} s");

    let records: Vec<Value> = (0..a)
        .map(|j| advisory(j, sources, "2026-01-01T00:00:00Z", 0))
        .collect();
    let archive = zip_of(&records);
    let mut answer = Value::Null;
    let import = timed(|| {
        let reply = daemon.post_bytes("/api/v1/advisories", Some(&token), archive.clone());
        assert_eq!(reply.status, 200, "{}", reply.body);
        answer = reply.body;
    });
    assert_eq!(answer["added"], a, "{answer}");
    eprintln!(
        "scan n={n} a={a}: imported (and re-scanned {} packages) in {import:.2} s",
        answer["rescanned"]
    );

    // Packages of a source an affecting record names.
    let hit: std::collections::HashSet<usize> = (0..a)
        .filter(|j| affects(*j))
        .map(|j| (j / 2) % sources)
        .collect();
    let expected = (0..n).filter(|i| hit.contains(&(i / 5))).count();
    let full = median_of(|_| {
        let mut body = Value::Null;
        let t = timed(|| {
            let reply = daemon.post_json("/api/v1/scans/rescan", Some(&token), json!({}));
            assert_eq!(reply.status, 200, "{}", reply.body);
            body = reply.body;
        });
        assert_eq!(body["scanned"], n);
        assert_eq!(body["with_findings"], expected, "{body}");
        t
    });

    let incremental = median_of(|k| {
        let changed = advisory(1, sources, &format!("2026-02-0{}T00:00:00Z", k + 1), k + 1);
        let bytes = changed.to_string().into_bytes();
        let mut body = Value::Null;
        let t = timed(|| {
            let reply = daemon.post_bytes("/api/v1/advisories", Some(&token), bytes);
            assert_eq!(reply.status, 200, "{}", reply.body);
            body = reply.body;
        });
        assert_eq!(body["updated"], 1, "{body}");
        assert_eq!(body["rescanned"], 5, "{body}");
        t
    });

    // Where the time went (the daemon logs each scan's phases).
    for line in daemon.log().lines().filter(|l| l.contains(" scanned ")) {
        eprintln!(
            "  {}",
            line.split_once("scanned")
                .map_or(line, |(_, rest)| rest)
                .trim()
        );
    }
    let report = daemon.get(
        "/api/v1/scans?distribution=jammy&state=clean&limit=1",
        Some(&token),
    );
    eprintln!("clean: {}", report.body["states"]);
    println!("| packages | advisories | full re-scan | incremental (one advisory) |");
    println!("|---|---|---|---|");
    println!(
        "| {n} | {a} | {full:.3} s | {:.1} ms |",
        incremental * 1000.0
    );
}
