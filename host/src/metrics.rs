//! `GET /metrics`: the daemon's counters, histograms and gauges in the
//! OpenMetrics text format, written by `prometheus-client` (never by hand).
//!
//! Each part that measures owns its instruments: the plugin runtime its
//! call durations and failures ([`PluginCalls`], recorded in
//! `plugins/runtime.rs` around every call), the publisher its publish
//! durations and failures ([`Publishes`]); [`Metrics`] registers clones of them (they
//! share their values) next to the API's own (uploads, HTTP requests) and
//! the gauges read from the database at each scrape (blob store size,
//! scan findings by severity).

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::db::Db;

/// What `/metrics` answers with: `prometheus-client` writes OpenMetrics
/// 1.0 text (it has no 0.0.4 text encoder), which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A histogram family whose histograms share one bucket layout.
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// 100 µs to ~26 s, by 4: a plugin call is tens of microseconds to its
/// timeout (10 s by default).
fn plugin_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

/// 10 ms to ~5.5 min, by 2: a publish of one package to one of 50,000.
fn publish_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// 1 ms to ~65 s, by 2: an API answer to a large upload.
fn http_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    plugin: String,
    function: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    plugin: String,
    function: &'static str,
    /// `timeout`, `memory-limit`, `trapped` or `bad-output`.
    reason: &'static str,
}

/// Plugin calls: how long each took and which failed, by plugin and
/// contract function. Recorded by the runtime alone.
#[derive(Clone, Debug)]
pub struct PluginCalls {
    duration: Histograms<CallLabels>,
    failures: Family<FailureLabels, Counter>,
}

impl Default for PluginCalls {
    fn default() -> Self {
        PluginCalls {
            duration: Family::new_with_constructor(plugin_buckets),
            failures: Family::default(),
        }
    }
}

impl PluginCalls {
    pub fn observe(&self, plugin: &str, function: &'static str, took: Duration) {
        let labels = CallLabels {
            plugin: plugin.to_owned(),
            function,
        };
        self.duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn failed(&self, plugin: &str, function: &'static str, reason: &'static str) {
        let labels = FailureLabels {
            plugin: plugin.to_owned(),
            function,
            reason,
        };
        self.failures.get_or_create(&labels).inc();
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DistributionLabels {
    distribution: String,
}

/// Publishes of live trees by distribution: the duration of each that
/// succeeded, and a count of those that failed. Recorded by the
/// publisher's worker.
#[derive(Clone, Debug)]
pub struct Publishes {
    duration: Histograms<DistributionLabels>,
    failures: Family<DistributionLabels, Counter>,
}

impl Default for Publishes {
    fn default() -> Self {
        Publishes {
            duration: Family::new_with_constructor(publish_buckets),
            failures: Family::default(),
        }
    }
}

impl Publishes {
    pub fn published(&self, distribution: &str, took: Duration) {
        self.duration
            .get_or_create(&DistributionLabels {
                distribution: distribution.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn failed(&self, distribution: &str) {
        self.failures
            .get_or_create(&DistributionLabels {
                distribution: distribution.to_owned(),
            })
            .inc();
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeverityLabels {
    severity: String,
}

/// The registry behind `/metrics` and the instruments the API records.
pub struct Metrics {
    registry: Registry,
    uploads: Family<OutcomeLabels, Counter>,
    stored_bytes: Counter,
    requests: Family<ResponseLabels, Counter>,
    request_duration: Histograms<RouteLabels>,
    blob_bytes: Gauge,
    blobs: Gauge,
    findings: Family<SeverityLabels, Gauge>,
}

impl Metrics {
    /// Registers every family, the plugin runtime's and the publisher's
    /// among them.
    pub fn new(plugin_calls: &PluginCalls, publishes: &Publishes) -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("repod"),
            uploads: Family::default(),
            stored_bytes: Counter::default(),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(http_buckets),
            blob_bytes: Gauge::default(),
            blobs: Gauge::default(),
            findings: Family::default(),
        };
        // Histograms carry their unit in the name but get no UNIT line:
        // the test suite's OpenMetrics parser refuses one on a histogram
        // (Prometheus does not need it).
        let r = &mut metrics.registry;
        r.register(
            "uploads",
            "Package uploads by outcome: added, duplicate (the same file was there), \
             quarantined, blocked, conflict, invalid (refused as malformed, unknown \
             distribution, too large or rejected by the plugin), unauthorized, failed",
            metrics.uploads.clone(),
        );
        r.register_with_unit(
            "stored",
            "Bytes of package files uploads stored (added or quarantined)",
            Unit::Bytes,
            metrics.stored_bytes.clone(),
        );
        r.register_with_unit(
            "blob_store",
            "Size of the blob store: every stored package file, as the database lists them \
             (read at each scrape)",
            Unit::Bytes,
            metrics.blob_bytes.clone(),
        );
        r.register(
            "blob_store_files",
            "Package files in the blob store (read at each scrape)",
            metrics.blobs.clone(),
        );
        r.register(
            "scan_findings",
            "Findings of the latest scan of every stored package row, by severity (read at \
             each scrape; a finding of a package in several distributions counts once per \
             distribution)",
            metrics.findings.clone(),
        );
        r.register(
            "publish_duration_seconds",
            "Duration of each successful publish of a distribution's live tree",
            publishes.duration.clone(),
        );
        r.register(
            "publish_failures",
            "Publishes of a distribution's live tree that failed (the daemon log says why)",
            publishes.failures.clone(),
        );
        r.register(
            "plugin_call_duration_seconds",
            "Duration of each plugin call, by plugin and contract function (instantiation \
             included; the load's describe call is labelled with the plugin's file, or \
             `upload` for one sent to the API)",
            plugin_calls.duration.clone(),
        );
        r.register(
            "plugin_call_failures",
            "Plugin calls that failed, by reason: timeout, memory-limit, trapped, or \
             bad-output (refused by the host's checks)",
            plugin_calls.failures.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests answered, by method, route (the route pattern, not the path; \
             every file under /repos/ is one route) and status",
            metrics.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, until the response headers (a download's body \
             streams after)",
            metrics.request_duration.clone(),
        );
        metrics
    }

    /// Counts an upload by outcome, and the bytes it stored.
    pub fn upload(&self, outcome: &'static str, stored: u64) {
        self.uploads.get_or_create(&OutcomeLabels { outcome }).inc();
        self.stored_bytes.inc_by(stored);
    }

    /// Counts an answered request. `method` is one of the standard ones or
    /// `other`, `route` a route pattern: both bounded.
    pub fn request(&self, method: &'static str, route: &str, status: u16, took: Duration) {
        let route = route.to_owned();
        self.request_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        self.requests
            .get_or_create(&ResponseLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// Reads the gauges the database holds, then writes the exposition.
    pub async fn render(&self, db: &Db) -> Result<String, sqlx::Error> {
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
        let (files, bytes): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs")
                .fetch_one(db)
                .await?;
        self.blobs.set(files);
        self.blob_bytes.set(bytes);
        let found: Vec<(String, i64)> =
            sqlx::query_as("SELECT severity, COUNT(*) FROM findings GROUP BY severity")
                .fetch_all(db)
                .await?;
        // Every level of the scale is reported, zero included, so a
        // series does not vanish when its last finding goes.
        let mut by_severity: BTreeMap<String, i64> = [
            repod_osv::Severity::Critical,
            repod_osv::Severity::High,
            repod_osv::Severity::Medium,
            repod_osv::Severity::Low,
            repod_osv::Severity::Negligible,
            repod_osv::Severity::Unknown,
        ]
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
        by_severity.extend(found);
        for (severity, count) in by_severity {
            self.findings
                .get_or_create(&SeverityLabels { severity })
                .set(count);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counter names take no `_total` (the encoder appends it; a debug
    /// build panics on a doubled suffix), units are suffixed once.
    #[test]
    fn names_in_the_exposition() {
        let (calls, publishes) = (PluginCalls::default(), Publishes::default());
        let metrics = Metrics::new(&calls, &publishes);
        calls.observe("family-a", "prepare", Duration::from_millis(1));
        calls.failed("family-a", "prepare", "timeout");
        publishes.published("tier-a", Duration::from_millis(30));
        metrics.upload("added", 1234);
        metrics.request("GET", "/repos/", 200, Duration::from_millis(2));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        for line in [
            "repod_uploads_total{outcome=\"added\"} 1",
            "repod_stored_bytes_total 1234",
            "repod_plugin_call_failures_total{plugin=\"family-a\",function=\"prepare\",reason=\"timeout\"} 1",
            "repod_plugin_call_duration_seconds_count{plugin=\"family-a\",function=\"prepare\"} 1",
            "repod_publish_duration_seconds_count{distribution=\"tier-a\"} 1",
            "repod_http_requests_total{method=\"GET\",route=\"/repos/\",status=\"200\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
