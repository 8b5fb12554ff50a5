//! Rollout tiers: promoting one package into a large distribution, and
//! migrating a whole distribution into an empty one. repod side by side with
//! reprepro and aptly on the same .deb files, in the same run.
//!
//!     cargo build --release -p repod && scripts/build-plugins target/plugins
//!     cargo bench -p repod-tests --bench lifecycle             # N=50000 M=10000
//!     REPOD_BENCH_PROMOTE_N=10000 REPOD_BENCH_MIGRATE_M=1000 cargo bench -p repod-tests --bench lifecycle
//!
//! Every figure is the median of REPOD_BENCH_RUNS (default 3) runs, timed
//! until the target's signed tree lists the change; after each run the bench
//! checks that it does (InRelease verified with gpgv against the signing
//! key, listing the SHA-256 of the amd64 Packages file, which holds the
//! package / all M packages).
//! The packages are small synthetic .debs (one file each, Packages stanzas
//! of realistic length, one in ten `Architecture: all`), as in apt_publish.
//!
//! Promotion of one package into a distribution of N packages
//! (REPOD_BENCH_PROMOTE_N, default 50000): N packages in noble and
//! 2 x runs packages in jammy, both published (not timed); each run
//! promotes another jammy package into noble.
//! - repod: uploaded with `repod upload`, both distributions published;
//!   timed: `POST /api/v1/distributions/promote` (it returns once noble's
//!   published tree shows the package).
//! - reprepro (5.3.1): `includedeb` (in chunks, no export) + one `export`;
//!   timed: `reprepro copy noble jammy PKG`, which exports and signs noble
//!   itself (the default `--export=changed`; no explicit `export` needed).
//!   Then again with `.xz` indexes turned off, as apt_publish configures
//!   reprepro: reprepro compresses whole files with xz, which is most of
//!   its time. Skipped above REPOD_BENCH_REPREPRO_MAX (default 50000).
//! - aptly (1.5.0), tiers as local repos: `aptly repo create`, `repo add`
//!   and `publish repo` of each; timed: `aptly repo copy jammy noble PKG`
//!   and `aptly publish update noble`.
//!
//! Migration of M packages into an empty distribution
//! (REPOD_BENCH_MIGRATE_M, default 10000): M packages in focal, published
//! (not timed); each run starts from a copy of that state and copies all of
//! focal into the empty jammy.
//! - repod: the data dir the daemon left is restored and the daemon
//!   restarted before each run (then every distribution published, so the
//!   publisher is idle; not timed); timed: `POST
//!   /api/v1/distributions/migrate` (returns once jammy is published).
//! - reprepro: timed `reprepro copymatched jammy focal '*'` (exports and
//!   signs jammy itself); with and without `.xz`.
//! - aptly: timed `aptly repo copy focal jammy 'Name (~ .*)'` + the first
//!   `aptly publish repo` of jammy.
//!
//! What each tool publishes: Release, InRelease and Release.gpg signed with
//! an RSA-4096 key, Packages for amd64 and arm64 and Contents-<arch>.gz.
//! repod: Packages plain, .gz and .xz (xz in blocks at preset 2), by-hash
//! (`Acquire-By-Hash: yes`). reprepro: plain, .gz, .xz (one stream), no
//! by-hash (it has none). aptly 1.5.0: plain and .gz only (it cannot write
//! .xz; its .bz2 is turned off with `-skip-bz2`), by-hash files
//! (`-acquire-by-hash`) but no `Acquire-By-Hash` field in Release, and each
//! Contents file twice (`main/` and the distribution's top).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use repod_tests::bench::{self, gpg_key, run, timed};
use repod_tests::{Daemon, repod_bin};
use serde_json::json;
use sha2::Digest;

/// The package name of a file `bench::write_debs` wrote.
fn package_name(file: &Path) -> String {
    let file = file.file_name().unwrap().to_str().unwrap();
    file.split('_').next().unwrap().to_owned()
}

/// A size from the environment variable `var`, else `default`.
fn size(var: &str, default: usize) -> usize {
    std::env::var(var).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{var}: a number of packages"))
    })
}

/// Replaces `live` with a copy of `pristine`.
fn restore(pristine: &Path, live: &Path) {
    if live.exists() {
        std::fs::remove_dir_all(live).unwrap();
    }
    run(Command::new("cp").arg("-a").arg(pristine).arg(live));
}

/// The amd64 Packages file of the tree `dist_dir` (`.../dists/<codename>`),
/// once apt would take it: InRelease verifies against `keyring` (gpgv, as
/// apt does) and lists this very file's SHA-256 and size.
fn signed_packages(dist_dir: &Path, keyring: &Path, gnupg: &Path) -> String {
    let inrelease = dist_dir.join("InRelease");
    run(Command::new("gpgv")
        .env("GNUPGHOME", gnupg)
        .args(["-q", "--keyring"])
        .arg(keyring)
        .arg(&inrelease));
    let bytes = std::fs::read(dist_dir.join("main/binary-amd64/Packages")).unwrap();
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let size = bytes.len().to_string();
    let release = std::fs::read_to_string(&inrelease).unwrap();
    assert!(
        release.lines().any(|l| l.split_whitespace().eq([
            sha.as_str(),
            size.as_str(),
            "main/binary-amd64/Packages"
        ])),
        "{} does not list the Packages file beside it (sha256 {sha})",
        inrelease.display()
    );
    String::from_utf8(bytes).unwrap()
}

/// Stanzas in a Packages file.
fn stanzas(packages: &str) -> usize {
    packages
        .lines()
        .filter(|l| l.starts_with("Package: "))
        .count()
}

fn assert_lists(packages: &str, name: &str, what: &str) {
    let line = format!("Package: {name}");
    assert!(
        packages.lines().any(|l| l == line),
        "{what}: {name} is not in main/binary-amd64/Packages"
    );
}

/// GETs `path` from the daemon into `file`.
fn fetch(daemon: &Daemon, path: &str, file: &Path) {
    let (status, bytes) = daemon.get_bytes(path);
    assert_eq!(status, 200, "GET {path}");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, bytes).unwrap();
}

/// The daemon's signed amd64 Packages of `dist`, checked like the others'
/// (fetched into `dir`, verified against the key the daemon serves).
fn repod_packages(daemon: &Daemon, dist: &str, dir: &Path, gnupg: &Path) -> String {
    let keyring = dir.join("repod.gpg");
    fetch(daemon, "/repos/keys/repod.gpg", &keyring);
    let tree = dir.join(dist);
    fetch(
        daemon,
        &format!("/repos/dists/{dist}/InRelease"),
        &tree.join("InRelease"),
    );
    fetch(
        daemon,
        &format!("/repos/dists/{dist}/main/binary-amd64/Packages"),
        &tree.join("main/binary-amd64/Packages"),
    );
    signed_packages(&tree, &keyring, gnupg)
}

/// repod: N packages in noble, `extras` in jammy; the median time of
/// promoting `extras[k]` into noble.
fn repod_promote(n: usize, noble: &Path, extras: &[PathBuf], dir: &Path, gnupg: &Path) -> f64 {
    let daemon = Daemon::start();
    let token = daemon.admin.clone();
    for extra in extras {
        daemon.upload_file("jammy", &token, extra);
    }
    let upload = Instant::now();
    run(Command::new(repod_bin())
        .args(["upload", "--distribution", "noble", "--jobs", "4"])
        .args(["--url", &daemon.url, "--token", &token])
        .arg(noble));
    eprintln!(
        "promote n={n}: repod upload in {:.1} s",
        upload.elapsed().as_secs_f64()
    );
    // Both trees current and the publisher idle before the first run.
    daemon.publish_all();
    eprintln!("promote n={n}, repod:");
    bench::median_of(|k| {
        let name = package_name(&extras[k]);
        let body = json!({"package": name, "from_dist": "jammy", "to_dist": "noble"});
        let mut reply = None;
        let t = timed(|| {
            reply = Some(daemon.post_json("/api/v1/distributions/promote", Some(&token), body))
        });
        let reply = reply.unwrap();
        assert_eq!(reply.status, 201, "promote {name}: {}", reply.body);
        assert_eq!(
            reply.body["publish"]["packages"],
            (n + k + 1) as u64,
            "{}",
            reply.body
        );
        let packages = repod_packages(&daemon, "noble", dir, gnupg);
        assert_lists(&packages, &name, "repod noble");
        assert_eq!(stanzas(&packages), n + k + 1, "repod noble");
        t
    })
}

/// repod: M packages in focal; the median time of migrating them into the
/// empty jammy, each run on a fresh copy of the data dir.
fn repod_migrate(m: usize, focal: &Path, dir: &Path, gnupg: &Path) -> f64 {
    let mut daemon = Daemon::start();
    let token = daemon.admin.clone();
    let upload = Instant::now();
    run(Command::new(repod_bin())
        .args(["upload", "--distribution", "focal", "--jobs", "4"])
        .args(["--url", &daemon.url, "--token", &token])
        .arg(focal));
    eprintln!(
        "migrate m={m}: repod upload in {:.1} s",
        upload.elapsed().as_secs_f64()
    );
    // focal's tree, and jammy's empty one (start-up publishes it anyway).
    daemon.publish_all();
    daemon.kill();
    let pristine = daemon.data.path().with_extension("pristine");
    run(Command::new("cp")
        .arg("-a")
        .arg(daemon.data.path())
        .arg(&pristine));
    eprintln!("migrate m={m}, repod:");
    let figure = bench::median_of(|_| {
        restore(&pristine, daemon.data.path());
        daemon.restart();
        // Not timed: the start-up checks are done and the publisher is
        // idle, as on a daemon that has been running.
        daemon.publish_all();
        let body = json!({"from_dist": "focal", "to_dist": "jammy"});
        let mut reply = None;
        let t = timed(|| {
            reply = Some(daemon.post_json("/api/v1/distributions/migrate", Some(&token), body))
        });
        let reply = reply.unwrap();
        assert_eq!(reply.status, 200, "migrate: {}", reply.body);
        assert_eq!(reply.body["copied"], m as u64, "{}", reply.body);
        assert_eq!(
            reply.body["publish"]["packages"], m as u64,
            "{}",
            reply.body
        );
        let packages = repod_packages(&daemon, "jammy", dir, gnupg);
        assert_eq!(stanzas(&packages), m, "repod jammy");
        daemon.kill();
        t
    });
    std::fs::remove_dir_all(&pristine).unwrap();
    figure
}

/// conf/distributions for `codenames`, all alike; `xz` adds Packages.xz.
fn reprepro_conf(repo: &Path, codenames: &[&str], fpr: &str, xz: bool) {
    let indices = if xz { ". .gz .xz" } else { ". .gz" };
    let conf: String = codenames
        .iter()
        .map(|c| {
            format!(
                "Codename: {c}\nArchitectures: amd64 arm64\nComponents: main\n\
                 DebIndices: Packages Release {indices}\nContents: percomponent nocompatsymlink\n\
                 SignWith: {fpr}\n\n"
            )
        })
        .collect();
    std::fs::create_dir_all(repo.join("conf")).unwrap();
    std::fs::write(repo.join("conf/distributions"), conf).unwrap();
}

fn reprepro(repo: &Path, gnupg: &Path) -> Command {
    let mut cmd = Command::new("reprepro");
    cmd.env("GNUPGHOME", gnupg).args(["-s", "-b"]).arg(repo);
    cmd
}

/// Fills a reprepro repository: `includedeb` of each codename's files
/// without exporting (in chunks: 50,000 paths overflow one command line),
/// then one `export` of every codename.
fn reprepro_setup(repo: &Path, gnupg: &Path, contents: &[(&str, &[PathBuf])]) {
    for (codename, files) in contents {
        for chunk in files.chunks(5000) {
            run(reprepro(repo, gnupg)
                .args(["--export=silent-never", "includedeb", codename])
                .args(chunk));
        }
    }
    run(reprepro(repo, gnupg).arg("export"));
}

/// Whether the InRelease of `dist_dir` lists an amd64 Packages.xz.
fn lists_xz(dist_dir: &Path) -> bool {
    std::fs::read_to_string(dist_dir.join("InRelease"))
        .unwrap()
        .contains(" main/binary-amd64/Packages.xz\n")
}

struct Signing<'a> {
    gnupg: &'a Path,
    /// The bench key's public half, for gpgv.
    keyring: &'a Path,
    fpr: &'a str,
}

/// reprepro: the median times of `copy noble jammy PKG` (xz on, then off;
/// `extras[k]` then `extras[runs + k]`).
fn reprepro_promote(
    n: usize,
    noble: &[PathBuf],
    extras: &[PathBuf],
    dir: &Path,
    key: &Signing,
) -> (f64, f64) {
    let repo = dir.join("reprepro");
    reprepro_conf(&repo, &["jammy", "noble"], key.fpr, true);
    let setup = Instant::now();
    reprepro_setup(&repo, key.gnupg, &[("jammy", extras), ("noble", noble)]);
    eprintln!(
        "promote n={n}: reprepro includedeb + export in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let runs = bench::runs();
    let tree = repo.join("dists/noble");
    let figure = |xz: bool, first: usize| {
        reprepro_conf(&repo, &["jammy", "noble"], key.fpr, xz);
        eprintln!("promote n={n}, reprepro (xz: {xz}):");
        bench::median_of(|k| {
            let name = package_name(&extras[first + k]);
            let t = timed(|| {
                run(reprepro(&repo, key.gnupg).args(["copy", "noble", "jammy", &name]));
            });
            let packages = signed_packages(&tree, key.keyring, key.gnupg);
            assert_lists(&packages, &name, "reprepro noble");
            assert_eq!(stanzas(&packages), n + first + k + 1, "reprepro noble");
            assert_eq!(lists_xz(&tree), xz);
            t
        })
    };
    let with_xz = figure(true, 0);
    let without = figure(false, runs);
    std::fs::remove_dir_all(&repo).unwrap();
    (with_xz, without)
}

/// reprepro: the median times of `copymatched jammy focal '*'` into the
/// empty jammy (xz on, then off), each run on a fresh copy of the
/// repository.
fn reprepro_migrate(m: usize, focal: &[PathBuf], dir: &Path, key: &Signing) -> (f64, f64) {
    let repo = dir.join("reprepro");
    reprepro_conf(&repo, &["focal", "jammy"], key.fpr, true);
    let setup = Instant::now();
    reprepro_setup(&repo, key.gnupg, &[("focal", focal)]);
    eprintln!(
        "migrate m={m}: reprepro includedeb + export in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let pristine = dir.join("reprepro.pristine");
    run(Command::new("cp").arg("-a").arg(&repo).arg(&pristine));
    let tree = repo.join("dists/jammy");
    let figure = |xz: bool| {
        eprintln!("migrate m={m}, reprepro (xz: {xz}):");
        bench::median_of(|_| {
            restore(&pristine, &repo);
            reprepro_conf(&repo, &["focal", "jammy"], key.fpr, xz);
            let t = timed(|| {
                run(reprepro(&repo, key.gnupg).args(["copymatched", "jammy", "focal", "*"]));
            });
            let packages = signed_packages(&tree, key.keyring, key.gnupg);
            assert_eq!(stanzas(&packages), m, "reprepro jammy");
            assert_eq!(lists_xz(&tree), xz);
            t
        })
    };
    let with_xz = figure(true);
    let without = figure(false);
    std::fs::remove_dir_all(&repo).unwrap();
    std::fs::remove_dir_all(&pristine).unwrap();
    (with_xz, without)
}

/// An aptly with its own config file and root dir under `dir`.
struct Aptly<'a> {
    config: PathBuf,
    root: PathBuf,
    key: &'a Signing<'a>,
}

impl<'a> Aptly<'a> {
    fn new(dir: &Path, key: &'a Signing<'a>) -> Self {
        let root = dir.join("aptly");
        let config = dir.join("aptly.conf");
        let conf = json!({
            "rootDir": root,
            "architectures": ["amd64", "arm64"],
            "gpgProvider": "gpg",
        });
        std::fs::write(&config, conf.to_string()).unwrap();
        Aptly { config, root, key }
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("aptly");
        cmd.env("GNUPGHOME", self.key.gnupg)
            .arg(format!("-config={}", self.config.display()));
        cmd
    }

    /// `aptly publish <what> <flags> <args>`, signed with the bench key, no
    /// .bz2 indexes (aptly's flags go before its arguments).
    fn publish(&self, what: &str, flags: &[&str], args: &[&str]) {
        run(self
            .cmd()
            .args(["publish", what, "-batch", "-skip-bz2"])
            .arg(format!("-gpg-key={}", self.key.fpr))
            .args(flags)
            .args(args));
    }

    /// A local repo for `dist` holding the .debs in the directory `files`
    /// (if any), published (with by-hash files) when `publish`.
    fn repo(&self, dist: &str, files: Option<&Path>, publish: bool) {
        run(self.cmd().args([
            "repo",
            "create",
            &format!("-distribution={dist}"),
            "-component=main",
            dist,
        ]));
        if let Some(files) = files {
            run(self.cmd().args(["repo", "add", dist]).arg(files));
        }
        if publish {
            self.publish(
                "repo",
                &["-acquire-by-hash", &format!("-distribution={dist}")],
                &[dist],
            );
        }
    }

    fn tree(&self, dist: &str) -> PathBuf {
        self.root.join("public/dists").join(dist)
    }
}

/// aptly: the median time of `repo copy jammy noble PKG` + `publish update
/// noble`, `extras[k]` each run.
fn aptly_promote(
    n: usize,
    noble: &Path,
    jammy: &Path,
    extras: &[PathBuf],
    dir: &Path,
    key: &Signing,
) -> f64 {
    let aptly = Aptly::new(dir, key);
    let setup = Instant::now();
    aptly.repo("jammy", Some(jammy), true);
    aptly.repo("noble", Some(noble), true);
    eprintln!(
        "promote n={n}: aptly repo add + publish in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    eprintln!("promote n={n}, aptly:");
    let figure = bench::median_of(|k| {
        let name = package_name(&extras[k]);
        let t = timed(|| {
            run(aptly.cmd().args(["repo", "copy", "jammy", "noble", &name]));
            aptly.publish("update", &[], &["noble"]);
        });
        let packages = signed_packages(&aptly.tree("noble"), key.keyring, key.gnupg);
        assert_lists(&packages, &name, "aptly noble");
        assert_eq!(stanzas(&packages), n + k + 1, "aptly noble");
        t
    });
    std::fs::remove_dir_all(&aptly.root).unwrap();
    figure
}

/// aptly: the median time of `repo copy focal jammy 'Name (~ .*)'` + the
/// first `publish repo` of jammy, each run on a fresh copy of the root.
fn aptly_migrate(m: usize, focal: &Path, dir: &Path, key: &Signing) -> f64 {
    let aptly = Aptly::new(dir, key);
    let setup = Instant::now();
    aptly.repo("focal", Some(focal), true);
    aptly.repo("jammy", None, false);
    eprintln!(
        "migrate m={m}: aptly repo add + publish in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let pristine = dir.join("aptly.pristine");
    run(Command::new("cp").arg("-a").arg(&aptly.root).arg(&pristine));
    eprintln!("migrate m={m}, aptly:");
    let figure = bench::median_of(|_| {
        restore(&pristine, &aptly.root);
        let t = timed(|| {
            run(aptly
                .cmd()
                .args(["repo", "copy", "focal", "jammy", "Name (~ .*)"]));
            aptly.publish(
                "repo",
                &["-acquire-by-hash", "-distribution=jammy"],
                &["jammy"],
            );
        });
        let packages = signed_packages(&aptly.tree("jammy"), key.keyring, key.gnupg);
        assert_eq!(stanzas(&packages), m, "aptly jammy");
        t
    });
    std::fs::remove_dir_all(&aptly.root).unwrap();
    std::fs::remove_dir_all(&pristine).unwrap();
    figure
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let gnupg = work.path().join("gnupg");
    let fpr = gpg_key(&gnupg);
    let keyring = work.path().join("bench.gpg");
    run(Command::new("gpg")
        .env("GNUPGHOME", &gnupg)
        .args(["-q", "--batch", "--yes", "--output"])
        .arg(&keyring)
        .args(["--export", &fpr]));
    let key = Signing {
        gnupg: &gnupg,
        keyring: &keyring,
        fpr: &fpr,
    };
    let n = size("REPOD_BENCH_PROMOTE_N", 50_000);
    let m = size("REPOD_BENCH_MIGRATE_M", 10_000);
    let reprepro_max = size("REPOD_BENCH_REPREPRO_MAX", 50_000);
    let runs = bench::runs();

    println!("| operation | size | tool | time |");
    println!("|---|---|---|---|");

    // Promotion: N packages in noble, 2 x runs in jammy (one for each run
    // of each figure).
    let op = "promote 1 package into N";
    let dir = work.path().join("promote");
    let noble = bench::write_debs(&dir.join("noble"), 0..n);
    let extras = bench::write_debs(&dir.join("jammy"), n..n + 2 * runs);
    let t = repod_promote(n, &dir.join("noble"), &extras, &dir.join("repod"), &gnupg);
    println!("| {op} | {n} | repod | {t:.3} s |");
    if n <= reprepro_max {
        let (xz, plain) = reprepro_promote(n, &noble, &extras, &dir, &key);
        println!("| {op} | {n} | reprepro | {xz:.3} s |");
        println!("| {op} | {n} | reprepro, no .xz | {plain:.3} s |");
    } else {
        println!(
            "| {op} | {n} | reprepro | not run (over REPOD_BENCH_REPREPRO_MAX={reprepro_max}) |"
        );
    }
    let t = aptly_promote(
        n,
        &dir.join("noble"),
        &dir.join("jammy"),
        &extras,
        &dir,
        &key,
    );
    println!("| {op} | {n} | aptly (no .xz) | {t:.3} s |");
    std::fs::remove_dir_all(&dir).unwrap();

    // Migration: M packages in focal into the empty jammy.
    let op = "migrate M into empty";
    let dir = work.path().join("migrate");
    let focal = bench::write_debs(&dir.join("focal"), 0..m);
    let t = repod_migrate(m, &dir.join("focal"), &dir.join("repod"), &gnupg);
    println!("| {op} | {m} | repod | {t:.3} s |");
    if m <= reprepro_max {
        let (xz, plain) = reprepro_migrate(m, &focal, &dir, &key);
        println!("| {op} | {m} | reprepro | {xz:.3} s |");
        println!("| {op} | {m} | reprepro, no .xz | {plain:.3} s |");
    } else {
        println!(
            "| {op} | {m} | reprepro | not run (over REPOD_BENCH_REPREPRO_MAX={reprepro_max}) |"
        );
    }
    let t = aptly_migrate(m, &dir.join("focal"), &dir, &key);
    println!("| {op} | {m} | aptly (no .xz) | {t:.3} s |");
    std::fs::remove_dir_all(&dir).unwrap();

    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &gnupg)
        .args(["--kill", "gpg-agent"])
        .status();
}
