//! `repod upload`: a bulk client for `POST /api/v1/packages`.
//!
//! Collects `.deb` and `.rpm` files (directories are walked), uploads them
//! on a few threads, streaming each file from disk, shows a progress bar
//! when stderr is a terminal, and ends with a summary: added, already
//! present, rejected with the server's reason.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

pub struct Options {
    pub url: String,
    pub token: String,
    pub distribution: String,
    pub jobs: usize,
    /// Draw a progress bar (on stderr, and only if it is a terminal).
    pub progress: bool,
}

#[derive(Debug)]
pub enum Outcome {
    Added,
    Present,
    /// Stored but held for review (the vulnerability gate); why.
    Quarantined(String),
    Rejected(String),
}

/// Every package file under `paths`, sorted.
pub fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        let meta =
            std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        } else if paths.contains(&path)
            || path.extension().is_some_and(|e| e == "deb" || e == "rpm")
        {
            out.push(path);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn upload_one(agent: &ureq::Agent, options: &Options, path: &Path) -> Outcome {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Outcome::Rejected(format!("cannot open: {e}")),
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let response = agent
        .post(&format!(
            "{}/api/v1/packages",
            options.url.trim_end_matches('/')
        ))
        .query("distribution", &options.distribution)
        .query("filename", &name)
        .set("Authorization", &format!("Bearer {}", options.token))
        .set("Content-Type", "application/octet-stream")
        .set("Content-Length", &size.to_string())
        .send(file);
    match response {
        Ok(r) if r.status() == 201 => Outcome::Added,
        Ok(r) if r.status() == 202 => {
            let body = r.into_string().unwrap_or_default();
            let held = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["held"].as_str().map(str::to_owned))
                .unwrap_or(body);
            Outcome::Quarantined(held)
        }
        Ok(_) => Outcome::Present,
        Err(ureq::Error::Status(code, r)) => {
            let body = r.into_string().unwrap_or_default();
            let detail = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["detail"].as_str().map(str::to_owned))
                .unwrap_or(body);
            Outcome::Rejected(format!("{code}: {detail}"))
        }
        Err(e) => Outcome::Rejected(format!("request failed: {e}")),
    }
}

/// Uploads every file; returns each file with its result, in input order.
pub fn run(options: &Options, files: &[PathBuf]) -> Vec<(PathBuf, Outcome)> {
    let bar = if options.progress && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = ProgressBar::new(files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {wide_msg}")
                .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let agent = ureq::AgentBuilder::new().build();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(files.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.clamp(1, 64) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    bar.set_message(path.display().to_string());
                    let result = upload_one(&agent, options, path);
                    results.lock().expect("results lock")[i] = Some(result);
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    files
        .iter()
        .cloned()
        .zip(
            results
                .into_inner()
                .expect("results lock")
                .into_iter()
                .map(|r| r.expect("every file done")),
        )
        .collect()
}

/// Every file's outcome as JSON (`--output json`): `file`, `outcome`
/// (added, present, quarantined or rejected) and, for the last two, `detail`.
pub fn json(results: &[(PathBuf, Outcome)]) -> serde_json::Value {
    results
        .iter()
        .map(|(path, outcome)| {
            let (outcome, detail) = match outcome {
                Outcome::Added => ("added", None),
                Outcome::Present => ("present", None),
                Outcome::Quarantined(why) => ("quarantined", Some(why)),
                Outcome::Rejected(why) => ("rejected", Some(why)),
            };
            serde_json::json!({"file": path, "outcome": outcome, "detail": detail})
        })
        .collect()
}

/// The closing summary; the caller exits non-zero when anything was rejected.
pub fn summary(results: &[(PathBuf, Outcome)]) -> (String, bool) {
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|(_, r)| f(r)).count();
    let added = count(|r| matches!(r, Outcome::Added));
    let present = count(|r| matches!(r, Outcome::Present));
    let mut text = String::new();
    let rejected: Vec<_> = results
        .iter()
        .filter_map(|(p, r)| match r {
            Outcome::Rejected(why) => Some((p, why)),
            _ => None,
        })
        .collect();
    for (path, why) in &rejected {
        text.push_str(&format!("rejected {}: {why}\n", path.display()));
    }
    let mut quarantined = 0;
    for (path, result) in results {
        if let Outcome::Quarantined(why) = result {
            text.push_str(&format!("quarantined {}: {why}\n", path.display()));
            quarantined += 1;
        }
    }
    text.push_str(&format!(
        "{added} added, {quarantined} quarantined, {present} already present, {} rejected\n",
        rejected.len()
    ));
    (text, rejected.is_empty())
}
