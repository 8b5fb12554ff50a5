//! APT publishing, repod side by side with apt-ftparchive and reprepro on
//! the same .deb files, in the same run.
//!
//!     cargo build --release -p repod && scripts/build-plugins target/plugins
//!     cargo bench -p repod-tests --bench apt_publish            # 1000 10000 50000
//!     REPOD_BENCH_SIZES=1000,10000 cargo bench -p repod-tests --bench apt_publish
//!
//! Every figure is the median of REPOD_BENCH_RUNS (default 3) runs.
//! For each size N: N small synthetic .debs (one file each, Packages
//! stanzas of realistic length, one package in ten `Architecture: all`).
//! - repod full: the packages are uploaded to a daemon (not timed), the
//!   daemon is stopped, and `repod publish` rebuilds the whole signed tree
//!   with cold caches: Packages(+gz, xz) for amd64 and arm64, Contents.gz,
//!   by-hash, Release, InRelease, Release.gpg, pool links. Process start,
//!   plugin load and key load included.
//! - repod +1: on the running daemon, one more package is uploaded and
//!   `POST /publish` timed (wall clock of the request).
//! - apt-ftparchive full: `apt-ftparchive generate` (Packages + gz + xz and
//!   Contents for both architectures, fresh cache db) + `release` + gpg
//!   clearsign and detached signature with an RSA-4096 key; +1: the same
//!   with its cache db (`BinCacheDB`) after adding one package.
//!   (The cache db is removed before each full run.)
//! - reprepro full: `includedeb` of all files into a fresh repository (made
//!   anew for each run)
//!   (export + signing included); +1: `includedeb` of one more. Skipped
//!   above REPOD_BENCH_REPREPRO_MAX (default 10000) packages: it takes
//!   minutes there.

use std::path::Path;
use std::process::Command;

use repod_tests::bench::{self, gpg_key, run, timed};

const FTPARCHIVE_CONF: &str = r#"Dir { ArchiveDir "."; CacheDir "."; };
Default { Packages::Compress ". gzip xz"; Contents::Compress "gzip"; };
TreeDefault { Directory "pool/"; BinCacheDB "cache-$(SECTION)-$(ARCH).db"; Packages "$(DIST)/$(SECTION)/binary-$(ARCH)/Packages"; Contents "$(DIST)/$(SECTION)/Contents-$(ARCH)"; };
Tree "dists/bench" { Sections "main"; Architectures "amd64 arm64"; };
"#;

fn ftparchive(root: &Path, gnupg: &Path, fpr: &str) {
    run(Command::new("apt-ftparchive").current_dir(root).args([
        "-q=2",
        "generate",
        "ftparchive.conf",
    ]));
    let release = run(Command::new("apt-ftparchive")
        .current_dir(root)
        .args(["-o", "APT::FTPArchive::Release::Codename=bench"])
        .args(["-o", "APT::FTPArchive::Release::Architectures=amd64 arm64"])
        .args(["-o", "APT::FTPArchive::Release::Components=main"])
        .args(["release", "dists/bench"]));
    let dist = root.join("dists/bench");
    std::fs::write(dist.join("Release"), release).unwrap();
    for (args, out) in [
        (["--clearsign", ""], "InRelease"),
        (["-abs", ""], "Release.gpg"),
    ] {
        let _ = std::fs::remove_file(dist.join(out));
        run(Command::new("gpg")
            .env("GNUPGHOME", gnupg)
            .args(["-q", "--batch", "--yes", "-u", fpr, args[0], "-o"])
            .arg(dist.join(out))
            .arg(dist.join("Release")));
    }
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let gnupg = work.path().join("gnupg");
    let fpr = gpg_key(&gnupg);
    let reprepro_max: usize = std::env::var("REPOD_BENCH_REPREPRO_MAX")
        .map(|v| v.parse().unwrap())
        .unwrap_or(10_000);

    println!("| packages | tool | full signed publish | republish after +1 package |");
    println!("|---|---|---|---|");
    for n in bench::sizes("1000,10000,50000") {
        let dir = work.path().join(format!("n{n}"));
        let pool = dir.join("ftp/pool/main");
        let files = bench::write_debs(&pool, 0..n);
        let extras = bench::write_debs(&dir, n..n + bench::runs());

        // repod: upload (not timed), then a cold full publish offline.
        let bench::Figures { full, plus_one, .. } =
            bench::repod_figures(n, "jammy", &pool, &extras, None);
        println!("| {n} | repod | {full:.2} s | {plus_one:.3} s |");

        // apt-ftparchive on the same files.
        let ftp = dir.join("ftp");
        std::fs::write(ftp.join("ftparchive.conf"), FTPARCHIVE_CONF).unwrap();
        std::fs::create_dir_all(ftp.join("dists/bench/main/binary-amd64")).unwrap();
        std::fs::create_dir_all(ftp.join("dists/bench/main/binary-arm64")).unwrap();
        let full = bench::median_of(|_| {
            for arch in ["amd64", "arm64"] {
                let _ = std::fs::remove_file(ftp.join(format!("cache-main-{arch}.db")));
            }
            timed(|| ftparchive(&ftp, &gnupg, &fpr))
        });
        let plus_one = bench::median_of(|k| {
            std::fs::copy(&extras[k], pool.join(extras[k].file_name().unwrap())).unwrap();
            timed(|| ftparchive(&ftp, &gnupg, &fpr))
        });
        println!("| {n} | apt-ftparchive | {full:.2} s | {plus_one:.3} s |");
        for extra in &extras {
            std::fs::remove_file(pool.join(extra.file_name().unwrap())).unwrap();
        }

        // reprepro on the same files, into a fresh repository each run.
        if n <= reprepro_max {
            let repo = dir.join("reprepro");
            let reprepro = |files: &[std::path::PathBuf]| {
                run(Command::new("reprepro")
                    .env("GNUPGHOME", &gnupg)
                    .args(["-s", "-b"])
                    .arg(&repo)
                    .args(["includedeb", "bench"])
                    .args(files));
            };
            let full = bench::median_of(|_| {
                let _ = std::fs::remove_dir_all(&repo);
                std::fs::create_dir_all(repo.join("conf")).unwrap();
                std::fs::write(
                    repo.join("conf/distributions"),
                    format!("Codename: bench\nArchitectures: amd64 arm64\nComponents: main\nDebIndices: Packages Release . .gz .xz\nContents: percomponent nocompatsymlink\nSignWith: {fpr}\n"),
                )
                .unwrap();
                timed(|| reprepro(&files))
            });
            let plus_one = bench::median_of(|k| timed(|| reprepro(&extras[k..=k])));
            println!("| {n} | reprepro | {full:.2} s | {plus_one:.3} s |");
        } else {
            println!(
                "| {n} | reprepro | not run (over REPOD_BENCH_REPREPRO_MAX={reprepro_max}) | |"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &gnupg)
        .args(["--kill", "gpg-agent"])
        .status();
}
