//! Serving `/repos/` against nginx serving the same tree, side by side in
//! one run: a small signed index (`InRelease`) and a multi-megabyte package
//! file, over keep-alive connections (as apt and dnf use them), from 1 and
//! from 32 connections, without and with a reader token (nginx checks the
//! same `Authorization` header with an `if`). Load from `wrk`.
//!
//!     cargo build --release -p repod && scripts/build-plugins target/plugins
//!     apt-get install nginx wrk       # scripts/setup installs both
//!     cargo bench -p repod-tests --bench serving
//!
//! Each figure is the median of REPOD_BENCH_RUNS (default 3) runs of
//! REPOD_BENCH_SECONDS (default 5) seconds, the two servers alternating.
//! nginx runs 2 worker processes (one per core, `worker_processes auto`)
//! with sendfile; repod its default runtime (a thread per core).

use std::path::Path;
use std::process::{Child, Command, Stdio};

use repod_tests::bench::{median_of, runs};
use repod_tests::{Daemon, fixtures};

/// What one wrk run reports.
#[derive(Clone, Copy, Default)]
struct Load {
    requests_per_s: f64,
    p99_ms: f64,
    mib_per_s: f64,
    errors: u64,
}

/// A duration as wrk prints it (`812.00us`, `1.20ms`, `2.01s`) in ms.
fn millis(text: &str) -> f64 {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic()).unwrap());
    let n: f64 = number.parse().unwrap();
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        other => panic!("unit {other:?} in {text:?}"),
    }
}

/// A size per second as wrk prints it (`1.20MB`, `300.5KB`) in MiB.
fn mib(text: &str) -> f64 {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic()).unwrap());
    let n: f64 = number.parse().unwrap();
    match unit {
        "B" => n / 1048576.0,
        "KB" => n / 1024.0,
        "MB" => n,
        "GB" => n * 1024.0,
        other => panic!("unit {other:?} in {text:?}"),
    }
}

fn wrk(url: &str, connections: u32, token: Option<&str>) -> Load {
    let seconds = std::env::var("REPOD_BENCH_SECONDS").unwrap_or_else(|_| "5".into());
    let mut cmd = Command::new("wrk");
    cmd.args(["--latency", "-d", &format!("{seconds}s")])
        .args(["-t", if connections > 1 { "2" } else { "1" }])
        .args(["-c", &connections.to_string()]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd.arg(url).output().expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk's output:\n{text}"))
    };
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .flat_map(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
        })
        .sum();
    Load {
        requests_per_s: field("Requests/sec:").parse().unwrap(),
        p99_ms: millis(&field("99%")),
        mib_per_s: mib(&field("Transfer/sec:")),
        errors,
    }
}

/// nginx serving `root` at `/repos/` on `port`, and at `/token/repos/` only
/// with `Authorization: Bearer <token>`.
fn nginx(dir: &Path, root: &Path, port: u16, token: &str) -> Child {
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nuser root;\nworker_processes auto;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n\
               default_type application/octet-stream;\n\
               client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n  fastcgi_temp_path {dir}/fcgi;\n\
               uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n\
                 location /repos/ {{ alias {root}/; }}\n\
                 location /token/repos/ {{\n      if ($http_authorization != \"Bearer {token}\") {{ return 401; }}\n      alias {root}/;\n    }}\n  }}\n}}\n",
            dir = dir.display(),
            root = root.display(),
        ),
    )
    .unwrap();
    let mut child = Command::new("nginx")
        .args(["-c"])
        .arg(&conf)
        .args(["-p"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx (apt-get install nginx)");
    let url = format!("http://127.0.0.1:{port}/repos/dists/jammy/InRelease");
    for _ in 0..100 {
        if ureq::get(&url).call().is_ok() {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "nginx did not serve {url}: {}",
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    // Two daemons, one open and one needing a reader token for /repos/,
    // each holding a small package and an 8 MiB one.
    let open = Daemon::builder().sqlite().filesystem().start();
    let guarded = Daemon::builder()
        .sqlite()
        .filesystem()
        .config("repos-require-token = true\n")
        .start();
    let big = fixtures::noise(8 << 20);
    let big_deb = fixtures::raw_deb(
        b"Package: big\nVersion: 1.0\nArchitecture: amd64\nMaintainer: T <t@test.invalid>\nDescription: big\n big\n",
        &[(b"./usr/share/big/blob", &big)],
    );
    for daemon in [&open, &guarded] {
        for bytes in [
            &fixtures::small_deb("hello", "1.0", "amd64", "", "hi"),
            &big_deb,
        ] {
            let reply = daemon.upload(
                "/api/v1/packages?distribution=jammy",
                Some(&daemon.admin),
                bytes,
            );
            assert_eq!(reply.status, 201, "{:?}", reply.body);
        }
        daemon.publish_all();
    }
    let reader = guarded.token("reader", "bench");
    let port = free_port();
    let nginx_dir = work.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let mut server = nginx(&nginx_dir, &open.data.path().join("repos"), port, &reader);
    let nginx_url = format!("http://127.0.0.1:{port}");

    let pool = "pool/main/b/big/big_1.0_amd64.deb";
    let files = [("InRelease", "dists/jammy/InRelease"), ("8 MiB .deb", pool)];
    let size = |path: &str| open.fetch(&format!("/repos/{path}")).len();
    println!(
        "wrk, {} s per run, median of {} runs; InRelease is {} bytes, the .deb {} bytes\n",
        std::env::var("REPOD_BENCH_SECONDS").unwrap_or_else(|_| "5".into()),
        runs(),
        size(files[0].1),
        size(files[1].1)
    );
    println!(
        "| file | connections | token | repod req/s | nginx req/s | repod/nginx | repod p99 | nginx p99 | repod MiB/s | nginx MiB/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (label, path) in files {
        for connections in [1, 32] {
            for with_token in [false, true] {
                let (repod_url, nginx_path, token) = match with_token {
                    false => (
                        format!("{}/repos/{path}", open.url),
                        format!("{nginx_url}/repos/{path}"),
                        None,
                    ),
                    true => (
                        format!("{}/repos/{path}", guarded.url),
                        format!("{nginx_url}/token/repos/{path}"),
                        Some(reader.as_str()),
                    ),
                };
                let mut repod_runs = Vec::new();
                let mut nginx_runs = Vec::new();
                // Alternate the two so drift hits both alike.
                median_of(|_| {
                    let r = wrk(&repod_url, connections, token);
                    let n = wrk(&nginx_path, connections, token);
                    assert_eq!(
                        (r.errors, n.errors),
                        (0, 0),
                        "errors under load: {repod_url} / {nginx_path}"
                    );
                    repod_runs.push(r);
                    nginx_runs.push(n);
                    r.requests_per_s / n.requests_per_s
                });
                let median = |runs: &mut Vec<Load>, key: fn(&Load) -> f64| {
                    let mut xs: Vec<f64> = runs.iter().map(key).collect();
                    xs.sort_by(f64::total_cmp);
                    xs[xs.len() / 2]
                };
                let (rr, nr) = (
                    median(&mut repod_runs, |l| l.requests_per_s),
                    median(&mut nginx_runs, |l| l.requests_per_s),
                );
                println!(
                    "| {label} | {connections} | {} | {rr:.0} | {nr:.0} | {:.2}x | {:.2} ms | {:.2} ms | {:.0} | {:.0} |",
                    if with_token { "reader" } else { "none" },
                    rr / nr,
                    median(&mut repod_runs, |l| l.p99_ms),
                    median(&mut nginx_runs, |l| l.p99_ms),
                    median(&mut repod_runs, |l| l.mib_per_s),
                    median(&mut nginx_runs, |l| l.mib_per_s),
                );
            }
        }
    }
    let _ = server.kill();
    let _ = server.wait();
}
