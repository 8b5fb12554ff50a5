//! The same daemon on SQLite and the local disk, on PostgreSQL and the
//! local disk, on PostgreSQL and S3, and three daemons on PostgreSQL and
//! S3, in the same run: upload throughput and a 10,000-package signed APT
//! publish.
//!
//!     cargo build --release -p repod && scripts/build-plugins target/plugins
//!     REPOD_PG_DURABLE=1 scripts/with-postgres scripts/with-s3 \
//!         cargo bench -p repod-tests --bench backends
//!
//! S3 is s3s-fs on loopback (scripts/with-s3), storing into the same
//! disk. The three nodes share the machine's 2 cores with PostgreSQL,
//! s3s-fs and the upload clients: the figure says what coordination
//! costs, not what three machines would give.
//!
//! PostgreSQL is the throwaway cluster scripts/with-postgres starts on
//! loopback, with fsync and synchronous commit on (`REPOD_PG_DURABLE=1`) so
//! that both engines make every acknowledged upload durable. For each
//! engine: N synthetic debs uploaded with `repod upload --jobs 4`
//! (one run), then `repod publish` of the whole tree with cold caches and
//! a republish after one more upload (medians of REPOD_BENCH_RUNS), as in
//! the apt_publish benchmark. Sizes: REPOD_BENCH_SIZES (default 10000).

use repod_tests::Daemon;
use repod_tests::bench::{self, Figures};

fn main() {
    assert!(
        std::env::var_os("REPOD_TEST_POSTGRES").is_some()
            && std::env::var_os("REPOD_TEST_S3").is_some(),
        "run it under scripts/with-postgres scripts/with-s3 (see the top of this file)"
    );
    let work = tempfile::tempdir().unwrap();
    println!(
        "| packages | metadata | upload (4 jobs) | full signed publish | republish after +1 |"
    );
    println!("|---|---|---|---|---|");
    for n in bench::sizes("10000") {
        let dir = work.path().join(format!("n{n}"));
        let pool = dir.join("pool");
        bench::write_debs(&pool, 0..n);
        let extras = bench::write_debs(&dir, n..n + bench::runs());
        // REPOD_BENCH_CLUSTER_ONLY=1: the three-node row alone.
        let single = std::env::var_os("REPOD_BENCH_CLUSTER_ONLY").is_none();
        for (engine, builder) in [
            ("SQLite + disk", Daemon::builder().sqlite().filesystem()),
            ("PostgreSQL + disk", Daemon::builder().filesystem()),
            ("PostgreSQL + S3", Daemon::builder()),
        ]
        .into_iter()
        .filter(|_| single)
        {
            let Figures {
                upload,
                full,
                plus_one,
            } = bench::repod_figures_with(builder, n, "jammy", &pool, &extras);
            println!(
                "| {n} | {engine} | {upload:.1} s ({:.0} packages/s) | {full:.2} s | {plus_one:.3} s |",
                n as f64 / upload
            );
        }
        // Three nodes: the same debs, a third uploaded to each at once.
        let parts: Vec<std::path::PathBuf> = (0..3)
            .map(|k| {
                let part = dir.join(format!("part{k}"));
                bench::write_debs(&part, (k * n / 3)..((k + 1) * n / 3));
                part
            })
            .collect();
        let (upload, plus_one) = three_nodes(&parts, &extras);
        println!(
            "| {n} | 3 nodes, PostgreSQL + S3 | {upload:.1} s ({:.0} packages/s) | (the leader's, as above) | {plus_one:.3} s (asked of a follower) |",
            n as f64 / upload
        );
    }
}

/// Three nodes sharing PostgreSQL and S3: `parts` uploaded to the three
/// at once (`repod upload --jobs 4` each); then +1 uploads to a node that
/// does not lead and a publish asked of it (forwarded to the leader,
/// answered when the generation row appears). Returns the upload time and
/// the median republish time.
fn three_nodes(parts: &[std::path::PathBuf], extras: &[std::path::PathBuf]) -> (f64, f64) {
    let a = Daemon::builder().start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !a.log().contains("leading: this node publishes") {
        assert!(std::time::Instant::now() < deadline, "no leader");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let b = Daemon::builder().sharing(&a).start();
    let c = Daemon::builder().sharing(&a).start();
    let token = a.admin.clone();
    let upload = bench::timed(|| {
        let children: Vec<std::process::Child> = [&a, &b, &c]
            .iter()
            .zip(parts)
            .map(|(node, part)| {
                std::process::Command::new(repod_tests::repod_bin())
                    .args(["upload", "--distribution", "jammy", "--jobs", "4"])
                    .args(["--url", &node.url, "--token", &token])
                    .arg(part)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success(), "an upload failed");
        }
    });
    eprintln!("3 nodes: uploaded in {upload:.1} s");
    b.publish("jammy", &token);
    let plus_one = bench::median_of(|k| {
        b.upload_file("jammy", &token, &extras[k]);
        bench::timed(|| {
            b.publish("jammy", &token);
        })
    });
    (upload, plus_one)
}
