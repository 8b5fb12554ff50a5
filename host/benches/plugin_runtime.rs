//! Plugin runtime costs, measured on the real first-party components.
//!
//!     scripts/build-plugins target/plugins && cargo bench -p repod --bench plugin_runtime
//!
//! Prints a Markdown table (the one in BENCHMARKS.md):
//! - load: a fresh compile of each component against loading its cached
//!   compilation from disk;
//! - per call: a fresh store + instantiate from `InstancePre` + one call +
//!   output checks, single-threaded and on two threads;
//! - batching: 10,000 comparisons in one call;
//! - side by side: `dpkg --compare-versions` and `rpm` started as processes,
//!   which is what a shell-based repository tool pays per comparison.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use repod::plugins::{Family, Limits, Plugin, PluginKind, Runtime, load_plugin, sha256_hex};

fn wasm_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("wasm32-wasip2/wasm")
}

fn read(artifact: &str) -> Vec<u8> {
    let path = wasm_dir().join(format!("{artifact}.wasm"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/build-plugins first", path.display()))
}

fn family(p: &Plugin) -> &Family {
    match &p.kind {
        PluginKind::Family(f) => f,
        PluginKind::Policy(_) => panic!("not a family"),
    }
}

/// Median and 99th percentile of `samples`.
fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (p(0.5), p(0.99))
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let cache = tempfile_dir();
    let runtime = Arc::new(Runtime::new(Limits::default(), Some(cache.clone())).unwrap());
    let no_sections = BTreeMap::new();

    println!(
        "| plugin | .wasm size | fresh compile (median of 5) | cached load (median of 20) | speed-up |"
    );
    println!("|---|---|---|---|---|");
    for artifact in [
        "repod_plugin_debian",
        "repod_plugin_el",
        "repod_plugin_opensuse",
        "repod_plugin_policy_default",
    ] {
        let bytes = read(artifact);
        let sha = sha256_hex(&bytes);
        let compile: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                runtime.compile(&bytes).unwrap();
                t.elapsed()
            })
            .collect();
        runtime.load_component(&bytes, &sha).unwrap();
        let cached: Vec<Duration> = (0..20)
            .map(|_| {
                let t = Instant::now();
                let (_, stats) = runtime.load_component(&bytes, &sha).unwrap();
                assert!(stats.from_cache);
                t.elapsed()
            })
            .collect();
        let (c, _) = stats(compile);
        let (l, _) = stats(cached);
        println!(
            "| {} | {} KiB | {} | {} | {:.0}× |",
            artifact.trim_start_matches("repod_plugin_"),
            bytes.len() / 1024,
            ms(c),
            ms(l),
            c.as_secs_f64() / l.as_secs_f64()
        );
    }

    let debian = Arc::new(
        load_plugin(
            &runtime,
            "debian.wasm",
            &read("repod_plugin_debian"),
            &no_sections,
        )
        .unwrap(),
    );
    let el = load_plugin(&runtime, "el.wasm", &read("repod_plugin_el"), &no_sections).unwrap();
    let pair = vec![(
        "1:2.36-9+deb12u4".to_owned(),
        "1:2.36-9+deb12u10".to_owned(),
    )];

    println!();
    println!("| per call (fresh store + instantiate + call + checks) | median | p99 | calls/s |");
    println!("|---|---|---|---|");
    for (name, plugin) in [
        ("debian compare-versions, 1 pair", &*debian),
        ("el compare-versions, 1 pair", &el),
    ] {
        let f = family(plugin);
        for _ in 0..500 {
            f.compare_versions(&pair).unwrap();
        }
        let n = 20_000;
        let started = Instant::now();
        let samples: Vec<Duration> = (0..n)
            .map(|_| {
                let t = Instant::now();
                f.compare_versions(&pair).unwrap();
                t.elapsed()
            })
            .collect();
        let rate = n as f64 / started.elapsed().as_secs_f64();
        let (p50, p99) = stats(samples);
        println!("| {name} | {} | {} | {rate:.0} |", us(p50), us(p99));
    }
    let n = 20_000;
    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (d, pair) = (debian.clone(), pair.clone());
            std::thread::spawn(move || {
                for _ in 0..n / 2 {
                    family(&d).compare_versions(&pair).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let rate = n as f64 / started.elapsed().as_secs_f64();
    println!("| debian compare-versions, 1 pair, 2 threads | | | {rate:.0} |");

    let batch: Vec<(String, String)> = (0..10_000)
        .map(|i| {
            (
                format!("1.{i}~rc{}-{}", i % 7, i % 3),
                format!("1.{}+b{}", i / 2, i % 5),
            )
        })
        .collect();
    let f = family(&debian);
    let samples: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            f.compare_versions(&batch).unwrap();
            t.elapsed()
        })
        .collect();
    let (p50, _) = stats(samples);
    println!(
        "| debian compare-versions, 10,000 pairs in one call | {} ({} per pair) | | |",
        ms(p50),
        us(p50 / 10_000)
    );

    println!();
    println!("| side by side: one comparison in a new process | median |");
    println!("|---|---|");
    let spawn = |cmd: &mut Command| {
        let samples: Vec<Duration> = (0..200)
            .map(|_| {
                let t = Instant::now();
                let status = cmd.status().unwrap();
                assert!(status.code().is_some());
                t.elapsed()
            })
            .collect();
        stats(samples).0
    };
    let dpkg = spawn(Command::new("dpkg").args([
        "--compare-versions",
        "1:2.36-9+deb12u4",
        "lt",
        "1:2.36-9+deb12u10",
    ]));
    println!("| `dpkg --compare-versions` | {} |", ms(dpkg));
    let rpm = spawn(
        Command::new("rpm")
            .args([
                "--eval",
                "%{lua: print(rpm.vercmp(\"1.0^git1-1\", \"1.0-1\"))}",
            ])
            .stdout(std::process::Stdio::null()),
    );
    println!("| `rpm --eval '%{{lua: rpm.vercmp(..)}}'` | {} |", ms(rpm));
    let _ = std::fs::remove_dir_all(cache);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("repod-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
