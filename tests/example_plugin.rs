//! The third-party-style example (examples/trixie-plugin) dropped into a
//! running daemon: a new distribution appears with no host rebuild or restart.

use repod_tests::{Daemon, wasm};
use serde_json::json;

#[test]
fn uploading_the_example_plugin_adds_trixie_at_runtime() {
    let daemon = Daemon::start();
    assert_eq!(daemon.distribution_ids().len(), 11);
    assert!(!daemon.distribution_ids().contains(&"trixie".to_owned()));

    let bytes = std::fs::read(wasm("trixie_plugin")).unwrap();
    let created = daemon.post_bytes("/api/v1/plugins", Some(&daemon.admin), bytes.clone());
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["name"], "debian-trixie");
    assert_eq!(created.body["contract"], "0.1.0");
    assert_eq!(created.body["distributions"][0]["id"], "trixie");

    let trixie = daemon.get("/api/v1/distributions/trixie", Some(&daemon.admin));
    assert_eq!(trixie.status, 200, "{trixie:?}");
    assert_eq!(trixie.body["display_name"], "Debian 13");
    assert_eq!(
        trixie.body["vulnerability"],
        json!({"grype": "debian:13", "osv": "Debian:13"})
    );
    assert_eq!(
        trixie.body["architectures"],
        json!(["amd64", "arm64", "all"])
    );
    assert_eq!(daemon.distribution_ids().len(), 12);

    // The new family answers calls with the Debian version rules.
    let compared = daemon.post_json(
        "/api/v1/distributions/trixie/compare-versions",
        Some(&daemon.admin),
        json!({"pairs": [["2.36-9+deb12u4", "2.36-9+deb12u10"], ["1.0~beta", "1.0"]]}),
    );
    assert_eq!(compared.body["results"], json!([-1, -1]), "{compared:?}");

    // It was persisted under its own name: a restart would load it again.
    assert_eq!(
        std::fs::read(daemon.plugin_dir().join("debian-trixie.wasm")).unwrap(),
        bytes
    );

    // Uploading it again replaces it in place.
    let replaced = daemon.post_bytes("/api/v1/plugins", Some(&daemon.admin), bytes);
    assert_eq!(replaced.status, 200, "{replaced:?}");
    assert_eq!(daemon.distribution_ids().len(), 12);
}
