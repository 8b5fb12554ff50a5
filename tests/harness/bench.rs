//! What the publishing benchmarks share: running tools, timing, a gpg key
//! for the other tools, and repod's two figures.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::{Daemon, repod_bin};

/// Runs `cmd`, panics with its output unless it succeeds, returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Synthetic package `i` of the APT benchmarks: its file name and bytes
/// (one file, a Packages stanza of realistic length, one in ten
/// `Architecture: all`).
pub fn synthetic_deb(i: usize) -> (String, Vec<u8>) {
    let name = format!("bench-pkg-{i:06}");
    let arch = if i.is_multiple_of(10) { "all" } else { "amd64" };
    let control = format!(
        "Package: {name}\nVersion: 1.{i}-1\nArchitecture: {arch}\nMaintainer: Bench <bench@test.invalid>\n\
         Installed-Size: {}\nDepends: libc6 (>= 2.34), libbench{} (>= 1.0)\nSection: misc\nPriority: optional\n\
         Homepage: https://example.invalid/{name}\nDescription: synthetic package {i} for the publish benchmark\n \
         This package exists to make Packages files of a realistic size. It carries\n \
         one file and a description about as long as a typical Debian one.\n",
        10 + i % 1000,
        i % 50
    );
    let path = format!("./usr/share/{name}/data.txt");
    let bytes = crate::fixtures::raw_deb(control.as_bytes(), &[(path.as_bytes(), name.as_bytes())]);
    (format!("{name}_1.{i}-1_{arch}.deb"), bytes)
}

/// Writes `synthetic_deb(i)` for every i of `range` into `dir`; their paths.
pub fn write_debs(dir: &Path, range: std::ops::Range<usize>) -> Vec<std::path::PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    range
        .map(|i| {
            let (name, bytes) = synthetic_deb(i);
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect()
}

/// Seconds `f` took.
pub fn timed(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// Sizes from `REPOD_BENCH_SIZES` (comma-separated), else `default`.
pub fn sizes(default: &str) -> Vec<usize> {
    std::env::var("REPOD_BENCH_SIZES")
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().parse().expect("REPOD_BENCH_SIZES: numbers"))
        .collect()
}

/// A new RSA-4096 signing key in `home` (a GNUPGHOME); its fingerprint.
pub fn gpg_key(home: &Path) -> String {
    std::fs::create_dir_all(home).unwrap();
    std::fs::set_permissions(home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    run(Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["-q", "--batch", "--passphrase", "", "--quick-gen-key"])
        .args(["Bench <bench@test.invalid>", "rsa4096", "sign", "never"]));
    let list = run(Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--with-colons", "--list-keys"]));
    list.lines()
        .find(|l| l.starts_with("fpr"))
        .unwrap()
        .split(':')
        .nth(9)
        .unwrap()
        .to_owned()
}

/// `REPOD_BENCH_KEEP=DIR` keeps each run's uploaded data dir (and the
/// benchmark's input files) under DIR for profiling.
pub fn keep_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(std::env::var_os("REPOD_BENCH_KEEP")?);
    std::fs::create_dir_all(&dir).expect("creating REPOD_BENCH_KEEP");
    Some(dir)
}

/// How often each figure is measured: `REPOD_BENCH_RUNS`, default 3. On a
/// shared 2-core machine one run can be 30% off; the tables give medians.
pub fn runs() -> usize {
    std::env::var("REPOD_BENCH_RUNS").map_or(3, |v| {
        v.parse()
            .ok()
            .filter(|&r| r > 0)
            .expect("REPOD_BENCH_RUNS: a positive number")
    })
}

/// The median of `runs()` values of `f(k)`, k = 0, 1, ..: `f` times what
/// it measures (with `timed`) and may do untimed setup around it.
pub fn median_of(mut f: impl FnMut(usize) -> f64) -> f64 {
    let mut xs: Vec<f64> = (0..runs()).map(&mut f).collect();
    xs.sort_by(f64::total_cmp);
    eprintln!("  runs: {xs:.3?}");
    xs[xs.len() / 2]
}

/// repod's figures for one size, in seconds.
pub struct Figures {
    /// Uploading the files with `repod upload --jobs 4` (one run).
    pub upload: f64,
    pub full: f64,
    pub plus_one: f64,
}

/// repod's figures for the `n` files in `pool` and `dist`, in seconds, each
/// the median of `runs()`, with the daemon config `config` (TOML) if any:
/// - full: the files are uploaded to a daemon (not timed), the daemon is
///   stopped, and `repod publish` rebuilds the signed tree with cold
///   caches (process start, plugin and key load, database read included),
///   each run on a fresh copy of the data dir the daemon left;
/// - +1: on the restarted daemon, `extras[k]` is uploaded and a forced
///   publish timed (the wall clock of `POST .../publish`). `extras` needs
///   `runs()` files.
pub fn repod_figures(
    n: usize,
    dist: &str,
    pool: &Path,
    extras: &[std::path::PathBuf],
    config: Option<&str>,
) -> Figures {
    let mut builder = Daemon::builder();
    if let Some(config) = config {
        builder = builder.config(config);
    }
    repod_figures_with(builder, n, dist, pool, extras)
}

/// [`repod_figures`] for a daemon `builder` makes (its database, say).
pub fn repod_figures_with(
    builder: crate::DaemonBuilder,
    n: usize,
    dist: &str,
    pool: &Path,
    extras: &[std::path::PathBuf],
) -> Figures {
    let mut daemon = builder.start();
    let token = daemon.admin.clone();
    let upload = timed(|| {
        run(Command::new(repod_bin())
            .args(["upload", "--distribution", dist, "--jobs", "4"])
            .args(["--url", &daemon.url, "--token", &token])
            .arg(pool));
    });
    eprintln!("n={n}: uploaded in {upload:.1} s");
    daemon.kill();
    // Every full run starts from the data dir as the daemon left it, less
    // the delta RPMs its publishes made: a full publish makes them all.
    let pristine = daemon.data.path().with_extension("pristine");
    run(Command::new("cp")
        .arg("-a")
        .arg(daemon.data.path())
        .arg(&pristine));
    let _ = std::fs::remove_dir_all(pristine.join("deltas"));
    if let Some(keep) = keep_dir() {
        // A copy of the uploaded data dir, to profile cold publishes later.
        run(Command::new("cp")
            .arg("-a")
            .arg(&pristine)
            .arg(keep.join(format!("data-{dist}-{n}"))));
    }
    let full = median_of(|_| {
        std::fs::remove_dir_all(daemon.data.path()).unwrap();
        run(Command::new("cp")
            .arg("-a")
            .arg(&pristine)
            .arg(daemon.data.path()));
        let mut report = String::new();
        let t = timed(|| {
            let mut cmd = daemon.cli();
            cmd.args(["publish", "--distribution", dist, "--data"])
                .arg(daemon.data.path());
            if let Some(config) = &daemon.config {
                cmd.arg("--config").arg(config);
            }
            report = run(&mut cmd);
        });
        eprintln!("n={n}: repod publish report {}", report.trim());
        t
    });
    std::fs::remove_dir_all(&pristine).unwrap();
    daemon.restart();
    daemon.publish(dist, &token);
    let plus_one = median_of(|k| {
        daemon.upload_file(dist, &token, &extras[k]);
        let mut report = serde_json::Value::Null;
        let t = timed(|| report = daemon.publish(dist, &token));
        assert_eq!(report["packages"], (n + k + 1) as u64, "{report}");
        eprintln!("n={n}: repod republish report {report}");
        t
    });
    Figures {
        upload,
        full,
        plus_one,
    }
}
