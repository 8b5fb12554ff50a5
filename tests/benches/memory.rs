//! Memory at scale: the resident set of one daemon (SQLite, local disk, the
//! defaults) holding N synthetic debs, N/4 in each of four distributions,
//! after uploading and publishing all of them.
//!
//!     cargo build --release -p repod && scripts/build-plugins target/plugins
//!     cargo bench -p repod-tests --bench memory
//!
//! N: REPOD_BENCH_SIZES (default 100000). Printed: VmRSS after the last
//! publish and once idle (split into RssAnon and RssFile), and VmHWM (the
//! peak resident set since start), from /proc/<pid>/status.

use std::process::Command;

use repod_tests::Daemon;
use repod_tests::bench::{self, run};

const DISTRIBUTIONS: [&str; 4] = ["jammy", "noble", "focal", "bookworm"];

/// A field of /proc/<pid>/status in MiB (`VmRSS`, `VmHWM`).
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    println!(
        "| packages | upload (4 jobs) | publish all | RSS after publish | RSS idle (30 s) | of it anonymous / file | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in bench::sizes("100000") {
        let quarter = n / DISTRIBUTIONS.len();
        let dirs: Vec<_> = DISTRIBUTIONS
            .iter()
            .enumerate()
            .map(|(k, dist)| {
                let dir = work.path().join(format!("n{n}-{dist}"));
                bench::write_debs(&dir, k * quarter..(k + 1) * quarter);
                dir
            })
            .collect();
        let daemon = Daemon::builder().sqlite().filesystem().start();
        let upload = bench::timed(|| {
            for (dist, dir) in DISTRIBUTIONS.iter().zip(&dirs) {
                run(Command::new(repod_tests::repod_bin())
                    .args(["upload", "--distribution", dist, "--jobs", "4"])
                    .args(["--url", &daemon.url, "--token", &daemon.admin])
                    .arg(dir));
            }
        });
        let publish = bench::timed(|| {
            for dist in DISTRIBUTIONS {
                daemon.publish(dist, &daemon.admin);
            }
        });
        let pid = daemon.pid();
        let after = status_mib(pid, "VmRSS");
        std::thread::sleep(std::time::Duration::from_secs(30));
        let idle = status_mib(pid, "VmRSS");
        let peak = status_mib(pid, "VmHWM");
        // Heap and stacks, against mapped files (the binary, libraries).
        let (anon, file) = (status_mib(pid, "RssAnon"), status_mib(pid, "RssFile"));
        // Checked after measuring: listing them costs memory of its own.
        for dist in DISTRIBUTIONS {
            assert_eq!(daemon.package_names(dist).len(), quarter, "{dist}");
        }
        println!(
            "| {n} | {upload:.0} s ({:.0}/s) | {publish:.1} s | {after:.0} MiB | {idle:.0} MiB | {anon:.0} / {file:.0} MiB | {peak:.0} MiB |",
            n as f64 / upload
        );
    }
}
