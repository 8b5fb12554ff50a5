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
//!   `zchunk,sign-packages,deltas`): the same two figures with that
//!   almalinux9 setting, and the upload time of each configuration
//!   (signing happens at upload: its cost per package is the upload
//!   difference over N); createrepo_c `--zck` beside zchunk; and a table of
//!   its own for delta RPMs (see `deltas`).
//!
//! `REPOD_BENCH_KEEP=DIR` keeps the data dirs and RPMs for profiling.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use repod_tests::bench::{self, gpg_key, run, timed};

fn build_rpm(dir: &Path, i: usize) -> std::path::PathBuf {
    build_rpm_version(dir, i, 1)
}

/// Package `i` at version `major.i` (several majors: one package's versions).
fn build_rpm_version(dir: &Path, i: usize, major: usize) -> std::path::PathBuf {
    let name = format!("bench-pkg-{i:06}");
    let arch = if i.is_multiple_of(10) {
        "noarch"
    } else {
        "x86_64"
    };
    // Payloads are gzip, the crate's default (and the only codec enabled).
    let mut builder = rpm::PackageBuilder::new(
        &name,
        &format!("{major}.{i}"),
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
    let path = dir.join(format!("{name}-{major}.{i}-1.el9.{arch}.rpm"));
    package.write_file(&path).unwrap();
    path
}

/// Features measured on top of the plain publish (`REPOD_BENCH_FEATURES`,
/// comma-separated: almalinux9 settings set to true, and `deltas` for the
/// delta table; default `zchunk,sign-packages,deltas`; `none` for none).
fn features() -> Vec<&'static str> {
    let list = std::env::var("REPOD_BENCH_FEATURES")
        .unwrap_or_else(|_| "zchunk,sign-packages,deltas".into());
    ["zchunk", "sign-packages", "deltas"]
        .into_iter()
        .filter(|f| list.split(',').any(|l| l.trim() == *f))
        .collect()
}

/// Delta RPMs: `REPOD_BENCH_DELTAS` (default 500) packages in two
/// versions each, all in one repository, with one delta per package
/// (repod `deltas = 1`; createrepo_c `--deltas --num-deltas 1
/// --oldpackagedirs` the same directory), against the same repository
/// without deltas. repod's full publish starts with no delta made (it makes
/// them all); its +1 publish lists the cached ones. The packages come from
/// rpmbuild (one spec, a subpackage each, ~14 KB of text that changes a
/// little between versions): makedeltarpm cannot read the payloads of the
/// `rpm` crate's packages ("payload write open failed").
fn deltas(work: &Path, gnupg: &Path, fpr: &str) {
    let m: usize = std::env::var("REPOD_BENCH_DELTAS").map_or(500, |v| v.parse().unwrap());
    let dir = work.join("deltas");
    let pool = dir.join("repo");
    std::fs::create_dir_all(&pool).unwrap();
    let started = Instant::now();
    for major in [1, 2] {
        rpmbuild_set(&dir, &pool, m, major);
    }
    eprintln!(
        "deltas: built {} in {:.1} s",
        2 * m,
        started.elapsed().as_secs_f64()
    );
    let extras: Vec<_> = (m..m + bench::runs()).map(|i| build_rpm(&dir, i)).collect();
    println!();
    println!("| packages | tool | full signed publish | republish after +1 package |");
    println!("|---|---|---|---|");
    let label = format!("{} ({m} × 2 versions)", 2 * m);
    for config in [
        None,
        Some("[plugin.el.distributions.almalinux9]\ndeltas = 1\n"),
    ] {
        let f = bench::repod_figures(2 * m, "almalinux9", &pool, &extras, config);
        let tool = if config.is_some() {
            "repod, deltas = 1"
        } else {
            "repod"
        };
        println!(
            "| {label} | {tool} | {:.2} s | {:.3} s |",
            f.full, f.plus_one
        );
    }
    for args in [
        &[][..],
        &["--deltas", "--num-deltas", "1", "--oldpackagedirs"][..],
    ] {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if !args.is_empty() {
            args.push(pool.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let full = bench::median_of(|_| {
            let _ = std::fs::remove_dir_all(pool.join("repodata"));
            let _ = std::fs::remove_dir_all(pool.join("drpms"));
            timed(|| createrepo_with(&pool, &args, gnupg, fpr))
        });
        let tool = if args.is_empty() {
            "createrepo_c"
        } else {
            "createrepo_c --deltas"
        };
        println!("| {label} | {tool} | {full:.2} s | |");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `m` packages `bench-delta-NNNNN` at version `major.0` into `pool`, from
/// one rpmbuild run.
fn rpmbuild_set(dir: &Path, pool: &Path, m: usize, major: usize) {
    use std::fmt::Write;
    let top = dir.join(format!("rpmbuild-{major}"));
    std::fs::create_dir_all(top.join("SPECS")).unwrap();
    let mut spec = format!(
        "%global debug_package %{{nil}}\n%global __strip /bin/true\n\
         Name: bench-delta\nVersion: {major}.0\nRelease: 1\nSummary: bench\nLicense: MIT\n\
         %description\nbench\n"
    );
    let mut install = String::from("%install\n");
    for i in 0..m {
        let name = format!("bench-delta-{i:05}");
        let _ = write!(
            spec,
            "%package -n {name}\nSummary: bench {i}\n%description -n {name}\nbench\n\
             %files -n {name}\n/usr/share/{name}/data.txt\n"
        );
        let _ = write!(
            install,
            "mkdir -p %{{buildroot}}/usr/share/{name}\n\
             (echo {name} {major}; seq {i} $(({i} + 3000))) > %{{buildroot}}/usr/share/{name}/data.txt\n"
        );
    }
    spec.push_str(&install);
    let path = top.join("SPECS/bench-delta.spec");
    std::fs::write(&path, spec).unwrap();
    run(Command::new("rpmbuild")
        .args(["-bb", "--nodeps", "--quiet", "--define"])
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", pool.display()))
        .args([
            "--define",
            "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
        ])
        .arg(&path));
}

fn createrepo(repo: &Path, update: bool, gnupg: &Path, fpr: &str) {
    createrepo_with(repo, if update { &["--update"] } else { &[] }, gnupg, fpr);
}

fn createrepo_with(repo: &Path, args: &[&str], gnupg: &Path, fpr: &str) {
    let mut cmd = Command::new("createrepo_c");
    cmd.args(["--no-database", "--quiet"]).args(args);
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
        for feature in features().into_iter().filter(|f| *f != "deltas") {
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
        if features().contains(&"zchunk") {
            let full = bench::median_of(|_| {
                let _ = std::fs::remove_dir_all(pool.join("repodata"));
                timed(|| createrepo_with(&pool, &["--zck"], &gnupg, &fpr))
            });
            println!("| {n} | createrepo_c --zck | {full:.2} s | |");
        }
        match bench::keep_dir() {
            Some(keep) => {
                run(Command::new("mv")
                    .arg(&dir)
                    .arg(keep.join(format!("rpms-{n}"))));
            }
            None => std::fs::remove_dir_all(&dir).unwrap(),
        }
    }
    if features().contains(&"deltas") {
        deltas(work.path(), &gnupg, &fpr);
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
