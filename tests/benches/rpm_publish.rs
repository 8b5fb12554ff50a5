//! RPM publishing, repod side by side with createrepo_c on the same files,
//! in the same run.
//!
//!     cargo build --release -p repod && scripts/build-plugins target/plugins
//!     cargo bench -p repod-tests --bench rpm_publish          # 1000 10000
//!     REPOD_BENCH_SIZES=1000 cargo bench -p repod-tests --bench rpm_publish
//!
//! Every figure is the median of REPOD_BENCH_RUNS (default 3) runs.
//! For each size N: N synthetic RPMs (built in-process with the `rpm`
//! crate: one file, a few requires/provides, one in ten `noarch`).
//! - repod full: uploaded to a daemon (not timed), daemon stopped, then
//!   `repod publish --distribution almalinux9` rebuilds both architecture
//!   repositories (x86_64 and aarch64, noarch in each) with cold caches:
//!   primary/filelists/other (zstd), repomd.xml, its signature and key.
//! - repod +1: one more package uploaded to the running daemon, then
//!   `POST /publish` timed (a different package each run).
//! - createrepo_c (0.17.3) fresh: `createrepo_c --no-database DIR` with its
//!   default worker count, then `gpg --detach-sign --armor` of repomd.xml
//!   (RSA-4096), so both sides end with a signed repository (repodata/ is
//!   removed before each run); +1: one file added,
//!   `createrepo_c --update --no-database DIR` + signature.
//!
//! - repod with a feature on (`REPOD_BENCH_FEATURES`, default
//!   `zchunk,sign-packages`): the same two figures with that almalinux9
//!   setting, and the upload time of each configuration (signing happens
//!   at upload: its cost per package is the upload difference over N).
//!
//! `REPOD_BENCH_KEEP=DIR` keeps the data dirs and RPMs for profiling.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use repod_tests::bench::{self, gpg_key, run, timed};

fn build_rpm(dir: &Path, i: usize) -> std::path::PathBuf {
    let name = format!("bench-pkg-{i:06}");
    let arch = if i.is_multiple_of(10) {
        "noarch"
    } else {
        "x86_64"
    };
    // Payloads are gzip, the crate's default (and the only codec enabled).
    let mut builder = rpm::PackageBuilder::new(
        &name,
        &format!("1.{i}"),
        "MIT",
        arch,
        "synthetic package for the publish benchmark",
    );
    builder
        .release("1.el9")
        .description(
            "This package exists to make repodata of a realistic size.\nIt carries one file.",
        )
        .vendor("repod bench")
        .build_host("bench.invalid");
    builder.requires(rpm::Dependency::greater_eq("libc.so.6()(64bit)", "2.34"));
    builder.requires(rpm::Dependency::any(format!("libbench{}", i % 50)));
    builder.provides(rpm::Dependency::eq(format!("bench-feature-{i}"), "1"));
    builder
        .with_file_contents(
            name.clone().into_bytes(),
            rpm::FileOptions::new(format!("/usr/share/{name}/data.txt")),
        )
        .unwrap();
    let package = builder.build().unwrap();
    let path = dir.join(format!("{name}-1.{i}-1.el9.{arch}.rpm"));
    package.write_file(&path).unwrap();
    path
}

/// Features measured on top of the plain publish (`REPOD_BENCH_FEATURES`,
/// comma-separated almalinux9 settings set to true; default `zchunk,sign-packages`;
/// `none` for none).
fn features() -> Vec<&'static str> {
    let list =
        std::env::var("REPOD_BENCH_FEATURES").unwrap_or_else(|_| "zchunk,sign-packages".into());
    ["zchunk", "sign-packages"]
        .into_iter()
        .filter(|f| list.split(',').any(|l| l.trim() == *f))
        .collect()
}

fn createrepo(repo: &Path, update: bool, gnupg: &Path, fpr: &str) {
    let mut cmd = Command::new("createrepo_c");
    cmd.args(["--no-database", "--quiet"]);
    if update {
        cmd.arg("--update");
    }
    run(cmd.arg(repo));
    let repomd = repo.join("repodata/repomd.xml");
    let _ = std::fs::remove_file(repo.join("repodata/repomd.xml.asc"));
    run(Command::new("gpg")
        .env("GNUPGHOME", gnupg)
        .args([
            "-q",
            "--batch",
            "--yes",
            "-u",
            fpr,
            "--detach-sign",
            "--armor",
        ])
        .arg(&repomd));
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let gnupg = work.path().join("gnupg");
    let fpr = gpg_key(&gnupg);
    let mut uploads = Vec::new();
    println!("| packages | tool | full signed publish | republish after +1 package |");
    println!("|---|---|---|---|");
    for n in bench::sizes("1000,10000") {
        let dir = work.path().join(format!("n{n}"));
        let pool = dir.join("repo");
        std::fs::create_dir_all(&pool).unwrap();
        let started = Instant::now();
        for i in 0..n {
            build_rpm(&pool, i);
        }
        let extras: Vec<_> = (n..n + bench::runs()).map(|i| build_rpm(&dir, i)).collect();
        eprintln!("n={n}: built in {:.1} s", started.elapsed().as_secs_f64());

        let base = bench::repod_figures(n, "almalinux9", &pool, &extras, None);
        println!(
            "| {n} | repod | {:.2} s | {:.3} s |",
            base.full, base.plus_one
        );
        uploads.push((n, "none", base.upload));
        for feature in features() {
            let config = format!("[plugin.el.distributions.almalinux9]\n{feature} = true\n");
            let on = bench::repod_figures(n, "almalinux9", &pool, &extras, Some(&config));
            println!(
                "| {n} | repod, {feature} | {:.2} s | {:.3} s |",
                on.full, on.plus_one
            );
            uploads.push((n, feature, on.upload));
        }

        let full = bench::median_of(|_| {
            let _ = std::fs::remove_dir_all(pool.join("repodata"));
            timed(|| createrepo(&pool, false, &gnupg, &fpr))
        });
        let plus_one = bench::median_of(|k| {
            std::fs::copy(&extras[k], pool.join(extras[k].file_name().unwrap())).unwrap();
            timed(|| createrepo(&pool, true, &gnupg, &fpr))
        });
        println!("| {n} | createrepo_c | {full:.2} s | {plus_one:.3} s |");
        match bench::keep_dir() {
            Some(keep) => {
                run(Command::new("mv")
                    .arg(&dir)
                    .arg(keep.join(format!("rpms-{n}"))));
            }
            None => std::fs::remove_dir_all(&dir).unwrap(),
        }
    }
    println!();
    println!("| packages | feature on | upload (repod upload --jobs 4, one run) |");
    println!("|---|---|---|");
    for (n, feature, upload) in uploads {
        println!("| {n} | {feature} | {upload:.1} s |");
    }
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &gnupg)
        .args(["--kill", "gpg-agent"])
        .status();
}
