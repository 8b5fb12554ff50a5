//! The same daemon on SQLite and on PostgreSQL (blobs and trees on local
//! disk in both), in the same run: upload throughput and a 10,000-package
//! signed APT publish.
//!
//!     cargo build --release -p repod && scripts/build-plugins target/plugins
//!     REPOD_PG_DURABLE=1 scripts/with-postgres cargo bench -p repod-tests --bench backends
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
        std::env::var_os("REPOD_TEST_POSTGRES").is_some(),
        "run it under scripts/with-postgres (see the top of this file)"
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
        for (engine, builder) in [
            ("SQLite", Daemon::builder().sqlite()),
            ("PostgreSQL", Daemon::builder()),
        ] {
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
    }
}
