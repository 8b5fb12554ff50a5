//! Load: 32 keep-alive clients (wrk) doing apt-style reads of `/repos/`
//! (InRelease, half of them conditional; the compressed Packages indexes by
//! the hashes the last InRelease listed; pool files) while uploads and
//! forced publishes run, with a checker alongside that no read sees an
//! index disagreeing with its Release:
//!
//! - by hash: every index the current InRelease lists is fetched by its
//!   by-hash name and must have that hash (what apt does);
//! - by name: InRelease, then each index by its plain name, then InRelease
//!   again; if the two InRelease reads are the same generation, each index
//!   must have the hash that Release lists (a publish in between makes the
//!   pair inconclusive, and is counted, not failed).
//!
//! Run with:
//!
//!     cargo build --release -p repod && scripts/build-plugins target/plugins
//!     cargo bench -p repod-tests --bench load
//!
//! REPOD_BENCH_SECONDS (default 30) of load. Printed: wrk's requests/s,
//! p50 and p99 and errors; the uploads and publishes done meanwhile; the
//! checker's reads and violations (any violation fails the run).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use repod_tests::apt::release_sha256;
use repod_tests::{Daemon, fixtures};
use sha2::Digest;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

#[derive(Default)]
struct Checked {
    by_hash: AtomicU64,
    by_name: AtomicU64,
    inconclusive: AtomicU64,
}

/// One pass of the checker; panics on a violation.
fn check_once(url: &str, checked: &Checked) {
    let get = |path: &str| -> (u16, Vec<u8>) {
        match ureq::get(&format!("{url}/repos/{path}")).call() {
            Ok(r) => {
                let status = r.status();
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
                (status, body)
            }
            Err(ureq::Error::Status(s, _)) => (s, Vec::new()),
            Err(e) => panic!("{path}: {e}"),
        }
    };
    let (status, first) = get("dists/jammy/InRelease");
    assert_eq!(status, 200);
    let listed = release_sha256(&String::from_utf8(first.clone()).unwrap());
    let mut plain = Vec::new();
    for (path, (size, sha)) in &listed {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let (status, bytes) = get(&format!("dists/jammy/{dir}/by-hash/SHA256/{sha}"));
        if status == 404 && get(&format!("dists/jammy/{path}")).0 == 404 {
            continue; // listed uncompressed, not shipped
        }
        assert_eq!(
            (status, bytes.len() as u64, sha256_hex(&bytes)),
            (200, *size, sha.clone()),
            "by-hash {path}: a read disagreed with the InRelease just read"
        );
        checked.by_hash.fetch_add(1, Ordering::Relaxed);
        let (status, bytes) = get(&format!("dists/jammy/{path}"));
        plain.push((path.clone(), sha.clone(), status, sha256_hex(&bytes)));
    }
    let (_, second) = get("dists/jammy/InRelease");
    if first != second {
        checked.inconclusive.fetch_add(1, Ordering::Relaxed);
        return;
    }
    for (path, sha, status, got) in plain {
        assert_eq!(
            (status, &got),
            (200, &sha),
            "{path} read between two identical InRelease reads disagrees with it"
        );
        checked.by_name.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() {
    let seconds: u64 = std::env::var("REPOD_BENCH_SECONDS").map_or(30, |s| s.parse().unwrap());
    let daemon = Daemon::builder().sqlite().filesystem().start();
    let token = daemon.admin.clone();
    for i in 0..200 {
        let deb = fixtures::small_deb(
            &format!("base{i}"),
            "1.0",
            "amd64",
            "",
            &"b".repeat(500 + i),
        );
        assert_eq!(
            daemon
                .upload("/api/v1/packages?distribution=jammy", Some(&token), &deb)
                .status,
            201
        );
    }
    daemon.publish_all();

    // The requests wrk cycles through, as apt makes them: InRelease (every
    // other one with an If-Modified-Since a day ahead, as apt's re-check of
    // an unchanged file: 304), the compressed Packages indexes by hash as
    // the latest InRelease a connection's thread read lists them (the Lua
    // script re-reads them from every InRelease it gets), and 20 pool files.
    let mut pool = Vec::new();
    for i in 0..20 {
        let path = format!("/repos/pool/main/b/base{i}/base{i}_1.0_amd64.deb");
        assert_eq!(daemon.get_bytes(&path).0, 200, "{path}");
        pool.push(format!("\"{path}\""));
    }
    let tomorrow = httpdate::fmt_http_date(
        std::time::SystemTime::now() + std::time::Duration::from_secs(86400),
    );
    let lua = format!(
        r#"local pool = {{{pool}}}
local byhash = {{}}
local i = 0
request = function()
  i = i + 1
  local k = i % 6
  if k == 0 then return wrk.format("GET", "/repos/dists/jammy/InRelease") end
  if k == 1 then
    return wrk.format("GET", "/repos/dists/jammy/InRelease", {{["If-Modified-Since"] = "{tomorrow}"}})
  end
  if (k == 2 or k == 3) and #byhash > 0 then return wrk.format("GET", byhash[(i % #byhash) + 1]) end
  return wrk.format("GET", pool[(i % #pool) + 1])
end
response = function(status, headers, body)
  if status ~= 200 or body:sub(1, 5) ~= "-----" then return end
  local fresh = {{}}
  local inside = false
  for line in body:gmatch("[^
]+") do
    if line:sub(1, 1) ~= " " then
      inside = (line == "SHA256:")
    elseif inside then
      local sha, path = line:match("^ (%x+)%s+%d+%s+(%S+)$")
      if path and path:find("binary%-amd64/Packages%.") then
        local dir = path:match("^(.*)/[^/]*$")
        table.insert(fresh, "/repos/dists/jammy/" .. dir .. "/by-hash/SHA256/" .. sha)
      end
    end
  end
  if #fresh > 0 then byhash = fresh end
end
"#,
        pool = pool.join(", ")
    );
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("apt.lua");
    std::fs::write(&script, lua).unwrap();

    // Writers: uploads one after another, a forced publish every 20.
    let stop = Arc::new(AtomicBool::new(false));
    let (uploads, publishes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let writer = {
        let (stop, uploads, publishes, url, token) = (
            stop.clone(),
            uploads.clone(),
            publishes.clone(),
            daemon.url.clone(),
            token.clone(),
        );
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let deb = fixtures::small_deb(&format!("load{i}"), "1.0", "amd64", "", "l");
                let r = ureq::post(&format!("{url}/api/v1/packages?distribution=jammy"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .set("Content-Type", "application/octet-stream")
                    .send_bytes(&deb);
                assert_eq!(r.map(|r| r.status()).unwrap_or(0), 201);
                uploads.fetch_add(1, Ordering::Relaxed);
                i += 1;
                if i % 20 == 0 {
                    let r = ureq::post(&format!("{url}/api/v1/distributions/jammy/publish"))
                        .set("Authorization", &format!("Bearer {token}"))
                        .send_json(serde_json::json!({}));
                    assert_eq!(r.map(|r| r.status()).unwrap_or(0), 200);
                    publishes.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let checked = Arc::new(Checked::default());
    let checker = {
        let (stop, checked, url) = (stop.clone(), checked.clone(), daemon.url.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                check_once(&url, &checked);
            }
        })
    };

    let out = Command::new("wrk")
        .args([
            "--latency",
            "-t",
            "2",
            "-c",
            "32",
            "-d",
            &format!("{seconds}s"),
            "-s",
        ])
        .arg(&script)
        .arg(&daemon.url)
        .output()
        .expect("wrk (apt-get install wrk)");
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer failed");
    checker
        .join()
        .expect("the checker found a read that disagreed with its Release");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    let line = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_owned()))
            .unwrap_or_else(|| "-".into())
    };
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    println!(
        "| clients | seconds | requests/s | p50 | p99 | errors | uploads | publishes | checker: by hash / by name / inconclusive | violations |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| 32 | {seconds} | {} | {} | {} | {} | {} | {} | {} / {} / {} | 0 |",
        line("Requests/sec:"),
        line("50%"),
        line("99%"),
        if errors.is_empty() {
            "0".to_owned()
        } else {
            errors
        },
        uploads.load(Ordering::Relaxed),
        publishes.load(Ordering::Relaxed),
        checked.by_hash.load(Ordering::Relaxed),
        checked.by_name.load(Ordering::Relaxed),
        checked.inconclusive.load(Ordering::Relaxed),
    );
}
