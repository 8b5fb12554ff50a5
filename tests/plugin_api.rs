//! The plugin and distribution API of a running daemon: what a fresh daemon
//! lists, who may do what, and how broken or hostile plugins are contained.

use std::time::{Duration, Instant};

use repod_tests::{Daemon, future_contract_plugin, wasm};
use serde_json::{Value, json};

/// (id, display name, plugin, grype id, OSV ecosystem, architectures)
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

const EXPECTED: [Expected; 11] = [
    (
        "almalinux8",
        "AlmaLinux 8",
        "el",
        "almalinux:8",
        "AlmaLinux:8",
        &["x86_64", "aarch64", "noarch"],
    ),
    (
        "almalinux9",
        "AlmaLinux 9",
        "el",
        "almalinux:9",
        "AlmaLinux:9",
        &["x86_64", "aarch64", "noarch"],
    ),
    (
        "bookworm",
        "Debian 12",
        "debian",
        "debian:12",
        "Debian:12",
        &["amd64", "arm64", "all"],
    ),
    (
        "centos-stream9",
        "CentOS Stream 9",
        "el",
        "centos:9",
        "Red Hat:enterprise_linux:9",
        &["x86_64", "aarch64", "noarch"],
    ),
    (
        "fedora",
        "Fedora 42",
        "el",
        "fedora:42",
        "",
        &["x86_64", "aarch64", "noarch"],
    ),
    (
        "focal",
        "Ubuntu 20.04 LTS",
        "debian",
        "ubuntu:20.04",
        "Ubuntu:20.04:LTS",
        &["amd64", "arm64", "all"],
    ),
    (
        "jammy",
        "Ubuntu 22.04 LTS",
        "debian",
        "ubuntu:22.04",
        "Ubuntu:22.04:LTS",
        &["amd64", "arm64", "all"],
    ),
    (
        "noble",
        "Ubuntu 24.04 LTS",
        "debian",
        "ubuntu:24.04",
        "Ubuntu:24.04:LTS",
        &["amd64", "arm64", "all"],
    ),
    (
        "opensuse-leap-15.6",
        "openSUSE Leap 15.6",
        "opensuse",
        "opensuse.leap:15.6",
        "openSUSE:Leap 15.6",
        &["x86_64", "aarch64", "noarch"],
    ),
    (
        "rocky8",
        "Rocky Linux 8",
        "el",
        "rockylinux:8",
        "Rocky Linux:8",
        &["x86_64", "aarch64", "noarch"],
    ),
    (
        "rocky9",
        "Rocky Linux 9",
        "el",
        "rockylinux:9",
        "Rocky Linux:9",
        &["x86_64", "aarch64", "noarch"],
    ),
];

fn loaded(list: &Value) -> Vec<&Value> {
    list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "loaded")
        .collect()
}

fn failed(list: &Value) -> Vec<(String, String)> {
    list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "failed")
        .map(|p| {
            (
                p["file"].as_str().unwrap().to_owned(),
                p["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn fresh_daemon_lists_first_party_plugins_and_their_distributions() {
    let daemon = Daemon::start();
    let reader = daemon.token("reader", "ci-reader");

    let plugins = daemon.get("/api/v1/plugins", Some(&reader));
    assert_eq!(plugins.status, 200);
    assert_eq!(plugins.body["contract"], "0.1.0");
    let loaded = loaded(&plugins.body);
    let mut names: Vec<&str> = loaded.iter().map(|p| p["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["debian", "el", "opensuse", "policy-default"]);
    assert!(failed(&plugins.body).is_empty(), "{plugins:?}");
    for p in &loaded {
        assert_eq!(p["contract"], "0.1.0");
        assert!(!p["version"].as_str().unwrap().is_empty());
        assert_eq!(p["sha256"].as_str().unwrap().len(), 64);
    }
    let declared: usize = loaded
        .iter()
        .map(|p| p["distributions"].as_array().unwrap().len())
        .sum();
    assert_eq!(declared, 11);
    let policy = loaded
        .iter()
        .find(|p| p["name"] == "policy-default")
        .unwrap();
    assert_eq!(policy["kind"], "policy");

    let dists = daemon.get("/api/v1/distributions", Some(&reader));
    assert_eq!(dists.status, 200);
    let list = dists.body["distributions"].as_array().unwrap();
    assert_eq!(list.len(), EXPECTED.len());
    for (got, (id, display, plugin, grype, osv, archs)) in list.iter().zip(EXPECTED) {
        assert_eq!(got["id"], id);
        assert_eq!(got["display_name"], display, "{id}");
        assert_eq!(got["plugin"], plugin, "{id}");
        assert_eq!(got["vulnerability"]["grype"], grype, "{id}");
        assert_eq!(got["vulnerability"]["osv"], osv, "{id}");
        assert_eq!(got["architectures"], json!(archs), "{id}");
        let format = if plugin == "debian" { "deb" } else { "rpm" };
        assert_eq!(got["format"], format, "{id}");
    }

    let jammy = daemon.get("/api/v1/distributions/jammy", Some(&reader));
    assert_eq!(jammy.body["components"], json!(["main"]));
    let missing = daemon.get("/api/v1/distributions/trixie", Some(&reader));
    assert!(missing.problem(404).contains("no distribution trixie"));
}

#[test]
fn broken_and_incompatible_plugins_are_listed_and_skipped() {
    let hostile = std::fs::read(wasm("repod_plugin_hostile")).unwrap();
    let daemon = Daemon::builder()
        .config("[plugin.hostile]\nmode = \"steal\"\n")
        .plugin_file("empty.wasm", vec![])
        .plugin_file(
            "random.wasm",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        )
        .plugin_file("core-module.wasm", b"\0asm\x01\0\0\0".to_vec())
        .plugin_file("renamed.wasm", b"PK\x03\x04 a zip, not wasm".to_vec())
        .plugin_file("future.wasm", future_contract_plugin())
        // Sorts after debian.wasm, which already provides jammy.
        .plugin_file("hostile.wasm", hostile)
        .start();

    let list = daemon.get("/api/v1/plugins", Some(&daemon.admin)).body;
    assert_eq!(loaded(&list).len(), 4, "{list:#}");
    let failures = failed(&list);
    let error_of = |file: &str| {
        failures
            .iter()
            .find(|(f, _)| f == file)
            .unwrap_or_else(|| panic!("{file} not reported: {failures:?}"))
            .1
            .clone()
    };
    assert!(error_of("empty.wasm").contains("not a WebAssembly file"));
    assert!(error_of("random.wasm").contains("not a WebAssembly file"));
    assert!(error_of("renamed.wasm").contains("not a WebAssembly file"));
    assert!(error_of("core-module.wasm").contains("not a valid WebAssembly component"));
    let future = error_of("future.wasm");
    assert!(
        future.contains("repod:plugin@0.9.0") && future.contains("speaks repod:plugin@0.1.0"),
        "{future}"
    );
    assert!(
        error_of("hostile.wasm")
            .contains("distribution jammy is already provided by plugin debian")
    );
    assert_eq!(failures.len(), 6);
    assert_eq!(daemon.distribution_ids().len(), 11);
    let log = daemon.log();
    assert!(
        log.contains("plugin skipped") && log.contains("future.wasm"),
        "{log}"
    );
}

#[test]
fn a_hostile_plugin_costs_one_request_and_nothing_else() {
    let hostile = std::fs::read(wasm("repod_plugin_hostile")).unwrap();
    let daemon = Daemon::builder()
        .config("[limits]\nplugin-call-timeout-ms = 1500\nplugin-memory-mib = 64\n")
        .plugin_file("hostile.wasm", hostile)
        .start();
    let token = daemon.admin.clone();
    let url = daemon.url.clone();

    // A request that loops forever, in the background.
    let looping = std::thread::spawn(move || {
        let started = Instant::now();
        let reply = ureq::post(&format!(
            "{url}/api/v1/distributions/hostile-1/compare-versions"
        ))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(json!({"pairs": [["loop", "x"]]}));
        let status = match reply {
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            other => panic!("expected an error status, got {other:?}"),
        };
        (status, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));

    // Meanwhile the rest of the daemon answers promptly.
    let started = Instant::now();
    let jammy = daemon.post_json(
        "/api/v1/distributions/jammy/compare-versions",
        Some(&daemon.admin),
        json!({"pairs": [["1.0~rc1", "1.0"], ["1:0.9", "2.0"], ["2.0-1", "2.0-1"]]}),
    );
    assert_eq!(jammy.body["results"], json!([-1, 1, 0]), "{jammy:?}");
    let rocky = daemon.post_json(
        "/api/v1/distributions/rocky9/compare-versions",
        Some(&daemon.admin),
        json!({"pairs": [["1.0^git1", "1.0"], ["1.0~rc1", "1.0"]]}),
    );
    assert_eq!(rocky.body["results"], json!([1, -1]), "{rocky:?}");
    assert_eq!(daemon.distribution_ids().len(), 12);
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );

    let ((status, body), took) = looping.join().unwrap();
    assert_eq!(status, 504, "{body}");
    assert!(
        body.contains("did not finish within its deadline"),
        "{body}"
    );
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // Each misbehaviour is one clean error; the plugin still works after.
    let compare = |a: &str| {
        daemon.post_json(
            "/api/v1/distributions/hostile-1/compare-versions",
            Some(&daemon.admin),
            json!({"pairs": [[a, "x"]]}),
        )
    };
    assert!(
        compare("alloc")
            .problem(502)
            .contains("exceeded its memory limit of 64 MiB")
    );
    assert!(compare("panic").problem(502).contains("panics on purpose"));
    assert!(compare("trap").problem(502).contains("unreachable"));
    assert!(
        compare("short")
            .problem(502)
            .contains("returned 0 results for 1 inputs")
    );
    assert_eq!(compare("1.0").body["results"], json!([0]));
}

#[test]
fn admin_reloads_and_removes_plugins_without_restart() {
    let daemon = Daemon::start();
    assert!(!daemon.distribution_ids().contains(&"trixie".to_owned()));
    std::fs::copy(
        wasm("trixie_plugin"),
        daemon.plugin_dir().join("trixie.wasm"),
    )
    .unwrap();

    let reloaded = daemon.post_json("/api/v1/plugins/reload", Some(&daemon.admin), json!({}));
    assert_eq!(reloaded.status, 200);
    assert_eq!(loaded(&reloaded.body).len(), 5);
    assert!(daemon.distribution_ids().contains(&"trixie".to_owned()));

    assert_eq!(
        daemon
            .delete("/api/v1/plugins/debian-trixie", Some(&daemon.admin))
            .status,
        204
    );
    assert!(!daemon.plugin_dir().join("trixie.wasm").exists());
    assert_eq!(daemon.distribution_ids().len(), 11);
    let again = daemon.delete("/api/v1/plugins/debian-trixie", Some(&daemon.admin));
    assert!(again.problem(404).contains("no plugin named debian-trixie"));
}

#[test]
fn bad_uploads_change_nothing() {
    let hostile = std::fs::read(wasm("repod_plugin_hostile")).unwrap();
    let daemon = Daemon::builder()
        .config("[plugin.hostile]\nmode = \"steal\"\n")
        .start();
    let files_before = dir_listing(&daemon.plugin_dir());
    let list_before = daemon.get("/api/v1/plugins", Some(&daemon.admin)).body;

    let empty = daemon.post_bytes("/api/v1/plugins", Some(&daemon.admin), vec![]);
    assert!(empty.problem(400).contains("empty body"));
    let junk = daemon.post_bytes(
        "/api/v1/plugins",
        Some(&daemon.admin),
        b"#!/bin/sh\nrm -rf /\n".to_vec(),
    );
    assert!(junk.problem(422).contains("not a WebAssembly file"));
    let future = daemon.post_bytes(
        "/api/v1/plugins",
        Some(&daemon.admin),
        future_contract_plugin(),
    );
    assert!(future.problem(422).contains("repod:plugin@0.9.0"));
    let steal = daemon.post_bytes("/api/v1/plugins", Some(&daemon.admin), hostile);
    assert!(
        steal
            .problem(409)
            .contains("distribution jammy is already provided by plugin debian")
    );

    assert_eq!(dir_listing(&daemon.plugin_dir()), files_before);
    assert_eq!(
        daemon.get("/api/v1/plugins", Some(&daemon.admin)).body,
        list_before
    );
}

fn dir_listing(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn config_sections_reach_their_plugins() {
    // The README's example: disable a codename, add one, override a setting.
    let daemon = Daemon::builder()
        .config(
            r#"
[plugin.debian]
disable = ["focal"]
origin = "Example Corp"

[plugin.debian.distributions.oracular]
display-name = "Ubuntu 24.10"
grype = "ubuntu:24.10"
osv = "Ubuntu:24.10"

[plugin.el.distributions.almalinux8]
compression = "zstd"

[plugin.policy-default]
block-at = "critical"
quarantine-at = "high"
"#,
        )
        .start();
    let ids = daemon.distribution_ids();
    assert!(!ids.contains(&"focal".to_owned()), "{ids:?}");
    let oracular = daemon.get("/api/v1/distributions/oracular", Some(&daemon.admin));
    assert_eq!(oracular.status, 200, "{oracular:?}");
    assert_eq!(oracular.body["display_name"], "Ubuntu 24.10");
    assert_eq!(oracular.body["plugin"], "debian");
    assert_eq!(
        oracular.body["architectures"],
        json!(["amd64", "arm64", "all"])
    );
    assert_eq!(ids.len(), 11);

    // A section the plugin refuses keeps that plugin out, and only that one.
    let daemon = Daemon::builder()
        .config(
            "[plugin.el]\ndisable = [\"rhel5\"]\n[plugin.policy-default]\nblock-at = \"severe\"\n",
        )
        .start();
    let list = daemon.get("/api/v1/plugins", Some(&daemon.admin)).body;
    let failures = failed(&list);
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures.iter().any(|(_, e)| e.contains("plugin el rejected its configuration") && e.contains("rhel5")), "{failures:?}");
    assert!(
        failures.iter().any(|(_, e)| e
            .contains("plugin policy-default rejected its configuration")
            && e.contains("severe")),
        "{failures:?}"
    );
    assert_eq!(
        daemon.distribution_ids(),
        ["bookworm", "focal", "jammy", "noble", "opensuse-leap-15.6"]
    );
}
