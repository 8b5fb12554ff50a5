//! `GET /metrics`: the exposition parses with an OpenMetrics parser, and
//! what it counts moves as it should after uploads (added, quarantined
//! with a critical finding, duplicate, without a token) and a publish;
//! with `[metrics] access = "reader"` it needs a reader token.

use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use repod_tests::fixtures::small_deb;
use repod_tests::{Daemon, advisory_record};

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// Scrapes `/metrics` and parses it; asserts the OpenMetrics content type.
fn scrape(daemon: &Daemon, token: Option<&str>) -> Exposition {
    let reply = daemon.get("/metrics", token);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply
            .content_type
            .starts_with("application/openmetrics-text; version=1.0.0"),
        "{}",
        reply.content_type
    );
    let text = reply.body.as_str().expect("a text body");
    openmetrics_parser::openmetrics::parse_openmetrics(text)
        .unwrap_or_else(|e| panic!("unparsable exposition ({e:?}):\n{text}"))
}

/// The value of `family`'s sample with these labels (the count for a
/// histogram); 0 when there is no such sample yet (a family without
/// samples is not written at all).
fn value(exposition: &Exposition, family: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(found) = exposition.families.get(family) else {
        return 0.0;
    };
    let sample = found.iter_samples().find(|s| {
        let set = s.get_labelset().unwrap();
        labels
            .iter()
            .all(|(name, v)| set.get_label_value(name) == Some(v))
    });
    match sample.map(|s| &s.value) {
        None => 0.0,
        Some(OpenMetricsValue::Counter(c)) => c.value.as_f64(),
        Some(OpenMetricsValue::Gauge(n)) => n.as_f64(),
        Some(OpenMetricsValue::Histogram(h)) => h.count.expect("histogram count") as f64,
        Some(other) => panic!("{family}: unexpected {other:?}"),
    }
}

#[test]
fn counters_move_after_uploads_and_a_publish() {
    let daemon = Daemon::start();
    let uploader = daemon.token("uploader", "ci");
    // USN-6429-1 is critical and fixed in 7.81.0-1ubuntu1.14: the default
    // policy quarantines the older libcurl4 below.
    daemon.import_advisories(advisory_record("USN-6429-1.json"));
    // The start-up publishes are done, and counted, before the first
    // scrape: from then on only jammy publishes.
    daemon.publish_all();
    let before = scrape(&daemon, None);

    let upload = |bytes: &[u8], token: Option<&str>| {
        daemon.upload("/api/v1/packages?distribution=jammy", token, bytes)
    };
    let clean = small_deb("hello", "1.0-1", "amd64", "", "metrics");
    let vulnerable = small_deb(
        "libcurl4",
        "7.81.0-1ubuntu1.13",
        "amd64",
        "Source: curl\n",
        "metrics",
    );
    let added = upload(&clean, Some(&uploader));
    assert_eq!(added.status, 201, "{}", added.body);
    let id = added.body["id"].as_str().unwrap();
    assert_eq!(
        daemon
            .get(&format!("/api/v1/packages/{id}"), Some(&uploader))
            .status,
        200
    );
    let held = upload(&vulnerable, Some(&uploader));
    assert_eq!(held.status, 202, "{}", held.body);
    assert_eq!(upload(&clean, Some(&uploader)).status, 200);
    upload(&clean, None).problem(401);
    daemon.publish("jammy", &daemon.admin);
    let (status, _) = daemon.get_bytes("/repos/dists/jammy/Release");
    assert_eq!(status, 200);
    assert_eq!(daemon.get_bytes("/no/such/route").0, 404);
    let after = scrape(&daemon, None);

    let moved = |family: &str, labels: &[(&str, &str)]| {
        value(&after, family, labels) - value(&before, family, labels)
    };
    for outcome in ["added", "quarantined", "duplicate", "unauthorized"] {
        assert_eq!(
            moved("repod_uploads", &[("outcome", outcome)]),
            1.0,
            "{outcome}"
        );
    }
    assert_eq!(moved("repod_uploads", &[("outcome", "failed")]), 0.0);
    let stored = (clean.len() + vulnerable.len()) as f64;
    assert_eq!(moved("repod_stored_bytes", &[]), stored);
    // The blob store's size comes from the database, whatever the backend.
    assert_eq!(moved("repod_blob_store_bytes", &[]), stored);
    assert_eq!(moved("repod_blob_store_files", &[]), 2.0);
    assert_eq!(
        moved("repod_scan_findings", &[("severity", "critical")]),
        1.0
    );
    assert_eq!(moved("repod_scan_findings", &[("severity", "low")]), 0.0);

    // The added upload's own publish and the forced one: one or two.
    let publishes = moved(
        "repod_publish_duration_seconds",
        &[("distribution", "jammy")],
    );
    assert!((1.0..=2.0).contains(&publishes), "{publishes}");
    assert_eq!(
        value(
            &after,
            "repod_publish_failures",
            &[("distribution", "jammy")]
        ),
        0.0
    );

    // Each of the three uploads that got past the token was prepared once.
    let debian = |function| [("plugin", "debian"), ("function", function)];
    assert_eq!(
        moved("repod_plugin_call_duration_seconds", &debian("prepare")),
        3.0
    );
    assert_eq!(
        moved(
            "repod_plugin_call_duration_seconds",
            &debian("render-top-level")
        ),
        publishes
    );
    // Loading calls info and describe before the plugin has a name: the
    // call is labelled with its file.
    assert_eq!(
        value(
            &after,
            "repod_plugin_call_duration_seconds",
            &[("plugin", "debian.wasm"), ("function", "describe")]
        ),
        1.0
    );

    let requests = |route: &str, method: &str, status: &str| {
        moved(
            "repod_http_requests",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    for status in ["201", "202", "200", "401"] {
        assert_eq!(
            requests("/api/v1/packages", "POST", status),
            1.0,
            "{status}"
        );
    }
    // A route with a parameter is counted under its pattern.
    assert_eq!(requests("/api/v1/packages/{id}", "GET", "200"), 1.0);
    assert_eq!(requests("/repos/", "GET", "200"), 1.0);
    assert_eq!(requests("unmatched", "GET", "404"), 1.0);
    // The first scrape was counted once it was answered.
    assert_eq!(requests("/metrics", "GET", "200"), 1.0);
    assert_eq!(
        moved(
            "repod_http_request_duration_seconds",
            &[("route", "/api/v1/packages"), ("method", "POST")]
        ),
        4.0
    );
}

#[test]
fn reader_access_needs_a_reader_token() {
    let daemon = Daemon::builder()
        .config("[metrics]\naccess = \"reader\"\n")
        .start();
    let detail = daemon.get("/metrics", None).problem(401);
    assert!(detail.contains("bearer token"), "{detail}");
    let reader = daemon.token("reader", "prometheus");
    let exposition = scrape(&daemon, Some(&reader));
    // The refused scrape is counted like any request.
    assert_eq!(
        value(
            &exposition,
            "repod_http_requests",
            &[("route", "/metrics"), ("method", "GET"), ("status", "401")]
        ),
        1.0
    );
}

/// A plugin that misbehaves on request: each failure is counted under its
/// reason, and every call, failed or not, is timed.
#[test]
fn plugin_failures_are_counted_by_reason() {
    let hostile = std::fs::read(repod_tests::wasm("repod_plugin_hostile")).unwrap();
    let daemon = Daemon::builder()
        .config("[limits]\nplugin-call-timeout-ms = 300\nplugin-memory-mib = 64\n")
        .plugin_file("hostile.wasm", hostile)
        .start();
    let compare = |a: &str| {
        daemon
            .post_json(
                "/api/v1/distributions/hostile-1/compare-versions",
                Some(&daemon.admin),
                serde_json::json!({"pairs": [[a, "x"]]}),
            )
            .status
    };
    let before = scrape(&daemon, None);
    assert_eq!(compare("loop"), 504);
    assert_eq!(compare("alloc"), 502);
    assert_eq!(compare("trap"), 502);
    assert_eq!(compare("short"), 502);
    assert_eq!(compare("1.0"), 200);
    let after = scrape(&daemon, None);
    let labels = [("plugin", "hostile"), ("function", "compare-versions")];
    let moved = |family: &str, labels: &[(&str, &str)]| {
        value(&after, family, labels) - value(&before, family, labels)
    };
    for reason in ["timeout", "memory-limit", "trapped", "bad-output"] {
        let with_reason = [labels[0], labels[1], ("reason", reason)];
        assert_eq!(
            moved("repod_plugin_call_failures", &with_reason),
            1.0,
            "{reason}"
        );
    }
    assert_eq!(moved("repod_plugin_call_duration_seconds", &labels), 5.0);
}
