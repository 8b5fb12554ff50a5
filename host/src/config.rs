//! Daemon settings: command-line flag, then environment variable, then the
//! TOML config file, then the embedded default.
//!
//! ```toml
//! listen = "127.0.0.1:8000"
//! data = "./data"            # relative paths are relative to this file
//! plugins = "./data/plugins" # default: <data>/plugins
//! database = "postgres://repod@db.example/repod" # default: <data>/repod.db (SQLite)
//! keys = "/etc/repod/keys"   # the signing key's directory; default: <data>/keys
//!                            # (every node of a cluster names the same key)
//! repos-require-token = false # true: /repos/ needs a reader token
//!
//! [limits]
//! plugin-memory-mib = 256
//! plugin-call-timeout-ms = 10000
//! plugin-instances = 64
//! max-upload-mib = 2048
//!
//! [publish]
//! keep-superseded-seconds = 600 # superseded index files and versions, at least
//!
//! [versions]                 # retention of repository versions
//! keep-last = 10             # the last 10 versions of each distribution...
//! keep-days = 7              # ...and every version younger than 7 days
//! [versions.distribution.prod]
//! keep-last = 50             # per distribution
//!
//! [advisories]               # OSV feeds, synced on a schedule and on demand
//! feeds = ["https://osv.example/ECOSYSTEM/all.zip",
//!          "/srv/osv/records"]      # an all.zip or record URL, or a directory
//! sync-every-minutes = 360   # 0: only on demand (POST /api/v1/advisories/sync)
//!
//! [scan]                     # the vulnerability gate
//! policy = "default"         # the scanner-policy plugin (its id) judging findings
//! [scan.distribution.prod]
//! policy = "strict"          # per distribution; "none" allows everything
//!
//! [storage]                  # where blobs live; default: kind = "filesystem" (<data>/blobs)
//! kind = "s3"                # an S3-compatible object store
//! endpoint = "http://127.0.0.1:9000" # default: AWS's own
//! bucket = "repod"
//! region = "us-east-1"       # the default
//! prefix = "prod"            # keys start with it; default: none
//! orphan-grace-seconds = 3600 # an unreferenced blob younger than this is
//!                            # kept (another node may be committing it)
//! export-prefix = "public"   # also lay every published tree out under this
//!                            # prefix of the bucket, for clients reading it
//! cache-max-mib = 20480      # keep this node's copies of blobs and tree
//!                            # files under 20 GiB (default: no limit)
//! # credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN)
//!
//! [http]                     # slow and idle clients (nginx's timeouts are the model)
//! header-timeout-seconds = 60 # a request's headers, from the connection going
//!                            # idle (so also how long an idle keep-alive lasts)
//! body-timeout-seconds = 60  # the longest a request body may stall between reads
//! send-timeout-seconds = 60  # the longest a client may stop reading an answer
//! max-connections = 10000    # more are closed at accept (lowered to fit `ulimit -n`)
//!
//! [metrics]                  # GET /metrics (Prometheus, OpenMetrics text)
//! access = "open"            # the default; "reader": a reader token is needed
//!
//! [plugin.example]           # handed to the plugin named "example" as JSON
//! disable = ["old-release"]
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::catalog::versions::Retention;
use crate::db::Location;
use crate::plugins::{Limits, PluginSections};
use crate::publish::RetentionConfig;

/// `[versions]`: the defaults, then each distribution's overrides on top.
fn retention(file: &FileVersions) -> anyhow::Result<RetentionConfig> {
    let check = |r: Retention, what: &str| {
        if r.keep_last == 0 {
            anyhow::bail!("{what}keep-last must be at least 1 (the latest version is always kept)");
        }
        if r.keep_days > 3650 {
            anyhow::bail!("{what}keep-days must be at most 3650");
        }
        Ok(r)
    };
    let builtin = Retention::default();
    let default = check(
        Retention {
            keep_last: file.keep_last.unwrap_or(builtin.keep_last),
            keep_days: file.keep_days.unwrap_or(builtin.keep_days),
        },
        "versions.",
    )?;
    let mut distributions = BTreeMap::new();
    for (dist, r) in &file.distribution {
        let r = Retention {
            keep_last: r.keep_last.unwrap_or(default.keep_last),
            keep_days: r.keep_days.unwrap_or(default.keep_days),
        };
        distributions.insert(
            dist.clone(),
            check(r, &format!("versions.distribution.{dist}."))?,
        );
    }
    Ok(RetentionConfig {
        default,
        distributions,
    })
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8000";
pub const DEFAULT_DATA: &str = "./data";

/// Values given on the command line or in the environment (clap merges the
/// two); `None` falls through to the config file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data: Option<PathBuf>,
    pub plugins: Option<PathBuf>,
    pub config: Option<PathBuf>,
    /// `REPOD_DATABASE_URL` or `--database`.
    pub database: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    plugins: Option<PathBuf>,
    database: Option<String>,
    keys: Option<PathBuf>,
    #[serde(default)]
    repos_require_token: bool,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    publish: FilePublish,
    #[serde(default)]
    versions: FileVersions,
    #[serde(default)]
    scan: FileScan,
    #[serde(default)]
    advisories: FileAdvisories,
    #[serde(default)]
    storage: FileStorage,
    #[serde(default)]
    metrics: FileMetrics,
    #[serde(default)]
    http: FileHttp,
    #[serde(default)]
    plugin: BTreeMap<String, toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileHttp {
    header_timeout_seconds: Option<u64>,
    body_timeout_seconds: Option<u64>,
    send_timeout_seconds: Option<u64>,
    max_connections: Option<usize>,
}

/// `[http]`: how long a connection may stall, and how many may be open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub send_timeout: Duration,
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

fn http_limits(file: &FileHttp) -> anyhow::Result<HttpLimits> {
    let default = HttpLimits::default();
    let seconds = |name: &str, value: Option<u64>, default: Duration| match value {
        None => Ok(default),
        Some(s @ 1..=86_400) => Ok(Duration::from_secs(s)),
        Some(s) => Err(anyhow::anyhow!(
            "http.{name}: {s} is not between 1 and 86400 seconds"
        )),
    };
    let max_connections = match file.max_connections {
        None => default.max_connections,
        Some(n @ 1..) => n,
        Some(0) => anyhow::bail!("http.max-connections must be at least 1"),
    };
    Ok(HttpLimits {
        header_timeout: seconds(
            "header-timeout-seconds",
            file.header_timeout_seconds,
            default.header_timeout,
        )?,
        body_timeout: seconds(
            "body-timeout-seconds",
            file.body_timeout_seconds,
            default.body_timeout,
        )?,
        send_timeout: seconds(
            "send-timeout-seconds",
            file.send_timeout_seconds,
            default.send_timeout,
        )?,
        max_connections,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileMetrics {
    access: Option<String>,
}

/// `[metrics] access`: who may read `GET /metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone who reaches the listener (the default: the daemon listens on
    /// loopback unless told otherwise, and Prometheus scrapes without a
    /// token out of the box).
    #[default]
    Open,
    /// A reader token (Prometheus's `authorization` scrape setting).
    Reader,
}

fn metrics_access(file: &FileMetrics) -> anyhow::Result<MetricsAccess> {
    match file.access.as_deref() {
        None | Some("open") => Ok(MetricsAccess::Open),
        Some("reader") => Ok(MetricsAccess::Reader),
        Some(other) => anyhow::bail!(
            "metrics.access: {other:?} is not \"open\" (anyone who reaches the listener) or \
             \"reader\" (a reader token)"
        ),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileStorage {
    kind: Option<String>,
    endpoint: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
    prefix: Option<String>,
    orphan_grace_seconds: Option<u64>,
    export_prefix: Option<String>,
    cache_max_mib: Option<u64>,
}

/// `[storage]`: where blobs live.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// `<data>/blobs/` (the default).
    #[default]
    Filesystem,
    /// An S3-compatible object store; `<data>/blobs/` caches it.
    S3(S3Config),
}

#[derive(Debug, Clone)]
pub struct S3Config {
    /// `None`: AWS's endpoint for the region.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    /// Prepended to every key, without slashes at either end.
    pub prefix: String,
    /// How old an object no row refers to must be before garbage
    /// collection deletes it: another node may have stored it for an
    /// upload whose rows it has not committed yet.
    pub orphan_grace: Duration,
    /// Where in the bucket published trees are also laid out as files,
    /// for clients or a CDN reading the bucket directly.
    pub export_prefix: Option<String>,
    /// The most this node's caches of the store may hold (`None`: no
    /// limit); the least recently used files go first.
    pub cache_max_bytes: Option<u64>,
}

impl S3Config {
    /// Endpoint, bucket and prefix, for logs (no credential).
    pub fn label(&self) -> String {
        format!(
            "s3://{}/{} at {}",
            self.bucket,
            self.prefix,
            self.endpoint.as_deref().unwrap_or("AWS")
        )
    }
}

/// A key prefix without slashes at either end, or an error naming `what`.
fn key_prefix(what: &str, text: Option<String>) -> anyhow::Result<String> {
    let prefix = text.unwrap_or_default().trim_matches('/').to_owned();
    if prefix.split('/').any(|part| part == "." || part == "..") || prefix.contains("//") {
        anyhow::bail!("{what}: {prefix:?} has an empty, . or .. segment");
    }
    Ok(prefix)
}

fn storage(file: FileStorage) -> anyhow::Result<Storage> {
    match file.kind.as_deref().unwrap_or("filesystem") {
        "filesystem" => {
            if file.endpoint.is_some()
                || file.bucket.is_some()
                || file.region.is_some()
                || file.prefix.is_some()
                || file.orphan_grace_seconds.is_some()
                || file.export_prefix.is_some()
                || file.cache_max_mib.is_some()
            {
                anyhow::bail!(
                    "storage: endpoint, bucket, region, prefix, orphan-grace-seconds, \
                     export-prefix and cache-max-mib need kind = \"s3\""
                );
            }
            Ok(Storage::Filesystem)
        }
        "s3" => {
            let bucket = file
                .bucket
                .filter(|b| !b.is_empty())
                .context("storage: kind = \"s3\" needs a bucket")?;
            if let Some(endpoint) = &file.endpoint
                && !endpoint.starts_with("http://")
                && !endpoint.starts_with("https://")
            {
                anyhow::bail!("storage.endpoint: {endpoint:?} is not an http(s) URL");
            }
            let prefix = key_prefix("storage.prefix", file.prefix)?;
            let export_prefix = match file.export_prefix {
                None => None,
                Some(text) => {
                    let export = key_prefix("storage.export-prefix", Some(text))?;
                    let (a, b): (Vec<&str>, Vec<&str>) = (
                        prefix.split('/').filter(|s| !s.is_empty()).collect(),
                        export.split('/').filter(|s| !s.is_empty()).collect(),
                    );
                    // The export sweep deletes what its prefix holds beyond
                    // the trees: it must not hold the store's own keys.
                    let holds_store = b.is_empty() || a.starts_with(&b);
                    let inside_store =
                        b.starts_with(&a) && matches!(b.get(a.len()), Some(&("blobs" | "trees")));
                    if holds_store || inside_store {
                        anyhow::bail!(
                            "storage.export-prefix: {export:?} overlaps the keys of storage.prefix \
                             {prefix:?}; use a prefix beside it (e.g. \"public\")"
                        );
                    }
                    Some(export)
                }
            };
            Ok(Storage::S3(S3Config {
                endpoint: file.endpoint,
                bucket,
                region: file.region.unwrap_or_else(|| "us-east-1".to_owned()),
                prefix,
                orphan_grace: Duration::from_secs(file.orphan_grace_seconds.unwrap_or(3600)),
                export_prefix,
                cache_max_bytes: match file.cache_max_mib {
                    None => None,
                    Some(0) => anyhow::bail!(
                        "storage.cache-max-mib: 0 would keep no copy at all; give at least 1, \
                         or leave it out for no limit"
                    ),
                    Some(mib) => {
                        Some(mib.checked_mul(1 << 20).with_context(|| {
                            format!("storage.cache-max-mib: {mib} is too large")
                        })?)
                    }
                },
            }))
        }
        other => anyhow::bail!("storage.kind: {other:?} is not \"filesystem\" or \"s3\""),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileAdvisories {
    #[serde(default)]
    feeds: Vec<String>,
    sync_every_minutes: Option<u64>,
}

/// `[advisories]`: the feeds to sync and how often.
#[derive(Debug, Clone, Default)]
pub struct FeedConfig {
    /// `http(s)://` URLs of an OSV file (a record, an array or a zip), or
    /// directories of records (a path, or `file://`).
    pub feeds: Vec<String>,
    /// `None`: only on demand.
    pub every: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileScan {
    policy: Option<String>,
    #[serde(default)]
    distribution: BTreeMap<String, FileScanDistribution>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileScanDistribution {
    policy: Option<String>,
}

/// Which scanner policy judges each distribution's findings (`[scan]`):
/// a policy plugin's id, or none (everything allowed).
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    pub default: Option<String>,
    pub distributions: BTreeMap<String, Option<String>>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            default: Some("default".to_owned()),
            distributions: BTreeMap::new(),
        }
    }
}

impl PolicyConfig {
    pub fn of(&self, dist: &str) -> Option<&str> {
        match self.distributions.get(dist) {
            Some(policy) => policy.as_deref(),
            None => self.default.as_deref(),
        }
    }
}

fn policies(file: &FileScan) -> PolicyConfig {
    let named = |p: &Option<String>, inherited: Option<String>| match p.as_deref() {
        Some("none") => None,
        Some(id) => Some(id.to_owned()),
        None => inherited,
    };
    let default = named(&file.policy, PolicyConfig::default().default);
    PolicyConfig {
        distributions: file
            .distribution
            .iter()
            .map(|(d, c)| (d.clone(), named(&c.policy, default.clone())))
            .collect(),
        default,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileVersions {
    keep_last: Option<u32>,
    keep_days: Option<u32>,
    #[serde(default)]
    distribution: BTreeMap<String, FileRetention>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileRetention {
    keep_last: Option<u32>,
    keep_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FilePublish {
    keep_superseded_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileLimits {
    plugin_memory_mib: Option<usize>,
    plugin_call_timeout_ms: Option<u64>,
    plugin_instances: Option<u32>,
    max_upload_mib: Option<u64>,
}

/// The resolved settings the daemon runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub plugins: PathBuf,
    /// The metadata database: `<data>/repod.db` unless configured.
    pub database: Location,
    /// The signing key's directory, if not `<data>/keys`.
    pub keys: Option<PathBuf>,
    pub limits: Limits,
    /// Largest package upload, in bytes (default 2 GiB).
    pub max_upload: u64,
    /// Whether the published trees under /repos/ need a reader token.
    pub repos_require_token: bool,
    /// How long a publish keeps the files the previous one listed and it
    /// does not (superseded by-hash/checksum-named indexes, removed
    /// packages), for clients that read the previous indexes.
    pub keep_superseded: Duration,
    /// Which repository versions are kept (`[versions]`).
    pub retention: RetentionConfig,
    /// Which scanner policy judges each distribution (`[scan]`).
    pub policies: PolicyConfig,
    /// Advisory feeds (`[advisories]`).
    pub feeds: FeedConfig,
    /// Where blobs live (`[storage]`).
    pub storage: Storage,
    /// Who may read `GET /metrics` (`[metrics]`).
    pub metrics_access: MetricsAccess,
    /// Slow and idle clients (`[http]`).
    pub http: HttpLimits,
    /// Each plugin's config section, serialised as JSON for the plugin.
    pub plugin_sections: PluginSections,
}

impl Settings {
    pub fn resolve(overrides: Overrides) -> anyhow::Result<Settings> {
        let (file, base) = match &overrides.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                let file: FileConfig = toml::from_str(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?;
                let base = path.parent().map(Path::to_owned).unwrap_or_default();
                (file, base)
            }
            None => (FileConfig::default(), PathBuf::new()),
        };
        let from_file = |p: Option<PathBuf>| p.map(|p| base.join(p));

        let listen = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
        let data = overrides
            .data
            .or_else(|| from_file(file.data))
            .unwrap_or_else(|| DEFAULT_DATA.into());
        let plugins = overrides
            .plugins
            .or_else(|| from_file(file.plugins))
            .unwrap_or_else(|| data.join("plugins"));
        let database = match (overrides.database, file.database) {
            (Some(text), _) => Location::parse(&text)?,
            (None, Some(text)) => match Location::parse(&text)? {
                Location::Sqlite(path) => Location::Sqlite(base.join(path)),
                postgres => postgres,
            },
            (None, None) => Location::Sqlite(data.join("repod.db")),
        };

        let defaults = Limits::default();
        let limits = Limits {
            memory_bytes: file
                .limits
                .plugin_memory_mib
                .map_or(defaults.memory_bytes, |m| m << 20),
            call_timeout: file
                .limits
                .plugin_call_timeout_ms
                .map_or(defaults.call_timeout, Duration::from_millis),
            max_instances: file
                .limits
                .plugin_instances
                .unwrap_or(defaults.max_instances),
        };
        if limits.memory_bytes < 16 << 20 {
            anyhow::bail!("limits.plugin-memory-mib must be at least 16");
        }
        if limits.call_timeout < Duration::from_millis(50) {
            anyhow::bail!("limits.plugin-call-timeout-ms must be at least 50");
        }

        let max_upload = file.limits.max_upload_mib.unwrap_or(2048) << 20;
        if max_upload == 0 {
            anyhow::bail!("limits.max-upload-mib must be at least 1");
        }

        let keep_superseded = Duration::from_secs(
            file.publish
                .keep_superseded_seconds
                .unwrap_or(crate::publish::RETAIN_SECS as u64),
        );
        if keep_superseded > Duration::from_secs(7 * 24 * 3600) {
            anyhow::bail!("publish.keep-superseded-seconds must be at most 604800 (7 days)");
        }

        let retention = retention(&file.versions)?;
        let storage = storage(file.storage)?;
        let metrics_access = metrics_access(&file.metrics)?;
        let http = http_limits(&file.http)?;
        let policies = policies(&file.scan);
        for feed in &file.advisories.feeds {
            let web = feed.starts_with("http://") || feed.starts_with("https://");
            let local = feed.starts_with("file://") || feed.starts_with('/');
            if !web && !local {
                anyhow::bail!(
                    "advisories.feeds: {feed:?} is neither an http(s) URL nor an absolute directory path"
                );
            }
        }
        let feeds = FeedConfig {
            feeds: file
                .advisories
                .feeds
                .iter()
                .map(|f| match f.strip_prefix("file://") {
                    Some(path) => path.to_owned(),
                    None => f.clone(),
                })
                .collect(),
            every: match file.advisories.sync_every_minutes.unwrap_or(360) {
                0 => None,
                m => Some(Duration::from_secs(m * 60)),
            },
        };

        let plugin_sections = file
            .plugin
            .into_iter()
            .map(|(name, table)| {
                let json = serde_json::to_string(&table)
                    .with_context(|| format!("[plugin.{name}] cannot be passed to the plugin"))?;
                Ok((name, json))
            })
            .collect::<anyhow::Result<_>>()?;

        Ok(Settings {
            listen,
            data,
            plugins,
            database,
            keys: from_file(file.keys),
            limits,
            max_upload,
            repos_require_token: file.repos_require_token,
            keep_superseded,
            retention,
            policies,
            feeds,
            storage,
            metrics_access,
            http,
            plugin_sections,
        })
    }

    /// The private signing key's directory: outside the served tree.
    pub fn keys_dir(&self) -> PathBuf {
        self.keys.clone().unwrap_or_else(|| self.data.join("keys"))
    }

    /// The published trees, served under /repos/.
    pub fn repos_dir(&self) -> PathBuf {
        self.data.join("repos")
    }

    pub fn component_cache(&self) -> PathBuf {
        self.data.join("cache").join("components")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("repod.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn scan_policies_default_override_and_none() {
        let dir = std::env::temp_dir().join(format!("repod-config-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let resolve = |text: &str| {
            Settings::resolve(Overrides {
                config: Some(write(&dir, text)),
                ..Default::default()
            })
        };
        let s = resolve("").unwrap();
        assert_eq!(s.policies.of("dist-a"), Some("default"));
        let s = resolve(
            "[scan]\npolicy = \"lenient\"\n[scan.distribution.dist-b]\npolicy = \"strict\"\n\
             [scan.distribution.dist-c]\npolicy = \"none\"\n",
        )
        .unwrap();
        assert_eq!(s.policies.of("dist-a"), Some("lenient"));
        assert_eq!(s.policies.of("dist-b"), Some("strict"));
        assert_eq!(s.policies.of("dist-c"), None);
        assert!(resolve("[scan]\npolcy = \"x\"\n").is_err());
    }

    #[test]
    fn storage_settings_and_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let resolve = |text: &str| {
            Settings::resolve(Overrides {
                config: Some(write(dir.path(), text)),
                ..Default::default()
            })
        };
        let error = |text: &str| format!("{:#}", resolve(text).unwrap_err());
        let s3 = "[storage]\nkind = \"s3\"\nbucket = \"b\"\nprefix = \"prod\"\n";
        let Storage::S3(config) = resolve(&format!("{s3}cache-max-mib = 20480\n"))
            .unwrap()
            .storage
        else {
            panic!("not S3");
        };
        assert_eq!(config.cache_max_bytes, Some(20 << 30));
        assert_eq!(config.prefix, "prod");
        let Storage::S3(config) = resolve(s3).unwrap().storage else {
            panic!("not S3");
        };
        assert_eq!(config.cache_max_bytes, None);
        assert!(
            error(&format!("{s3}cache-max-mib = 0\n")).contains("give at least 1"),
            "{}",
            error(&format!("{s3}cache-max-mib = 0\n"))
        );
        assert!(error("[storage]\ncache-max-mib = 10\n").contains("need kind = \"s3\""));
        assert!(error("[storage]\nkind = \"s3\"\n").contains("needs a bucket"));
        for export in ["prod", "prod/blobs", ""] {
            let text = format!("{s3}export-prefix = {export:?}\n");
            assert!(
                error(&text).contains("overlaps"),
                "{export:?}: {}",
                error(&text)
            );
        }
        assert!(resolve(&format!("{s3}export-prefix = \"public\"\n")).is_ok());
        assert!(error("[storage]\nkind = \"ftp\"\n").contains("is not"));
    }

    #[test]
    fn metrics_access_open_reader_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let resolve = |text: &str| {
            Settings::resolve(Overrides {
                config: Some(write(dir.path(), text)),
                ..Default::default()
            })
        };
        assert_eq!(resolve("").unwrap().metrics_access, MetricsAccess::Open);
        assert_eq!(
            resolve("[metrics]\naccess = \"open\"\n")
                .unwrap()
                .metrics_access,
            MetricsAccess::Open
        );
        assert_eq!(
            resolve("[metrics]\naccess = \"reader\"\n")
                .unwrap()
                .metrics_access,
            MetricsAccess::Reader
        );
        let error = format!(
            "{:#}",
            resolve("[metrics]\naccess = \"admin\"\n").unwrap_err()
        );
        assert!(
            error.contains("metrics.access") && error.contains("\"reader\""),
            "{error}"
        );
        assert!(resolve("[metrics]\nacess = \"open\"\n").is_err());
    }

    #[test]
    fn http_limits_default_to_nginxs_and_refuse_nonsense() {
        let dir = tempfile::tempdir().unwrap();
        let resolve = |text: &str| {
            Settings::resolve(Overrides {
                config: Some(write(dir.path(), text)),
                ..Default::default()
            })
        };
        assert_eq!(resolve("").unwrap().http, HttpLimits::default());
        let set = resolve(
            "[http]\nheader-timeout-seconds = 5\nbody-timeout-seconds = 6\n\
             send-timeout-seconds = 7\nmax-connections = 100\n",
        )
        .unwrap()
        .http;
        assert_eq!(
            set,
            HttpLimits {
                header_timeout: Duration::from_secs(5),
                body_timeout: Duration::from_secs(6),
                send_timeout: Duration::from_secs(7),
                max_connections: 100,
            }
        );
        let error = format!(
            "{:#}",
            resolve("[http]\nsend-timeout-seconds = 0\n").unwrap_err()
        );
        assert!(error.contains("http.send-timeout-seconds: 0"), "{error}");
        let error = format!(
            "{:#}",
            resolve("[http]\nmax-connections = 0\n").unwrap_err()
        );
        assert!(error.contains("http.max-connections"), "{error}");
        assert!(resolve("[http]\nheader-timeout = 5\n").is_err());
    }

    #[test]
    fn defaults_without_anything() {
        let s = Settings::resolve(Overrides::default()).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.data, PathBuf::from("./data"));
        assert_eq!(s.plugins, PathBuf::from("./data/plugins"));
        assert!(s.plugin_sections.is_empty());
    }

    #[test]
    fn file_then_flag_precedence_and_sections() {
        let dir = std::env::temp_dir().join(format!("repod-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = write(
            &dir,
            "listen = \"127.0.0.1:9000\"\ndata = \"d\"\n[limits]\nplugin-memory-mib = 64\n[plugin.example]\ndisable = [\"old-release\"]\n",
        );
        let s = Settings::resolve(Overrides {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.data, dir.join("d"));
        assert_eq!(s.plugins, dir.join("d").join("plugins"));
        assert_eq!(s.limits.memory_bytes, 64 << 20);
        assert_eq!(
            s.plugin_sections["example"],
            r#"{"disable":["old-release"]}"#
        );

        let s = Settings::resolve(Overrides {
            config: Some(path),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            plugins: Some("/p".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.listen.port(), 9100);
        assert_eq!(s.plugins, PathBuf::from("/p"));

        let bad = write(&dir, "lisen = \"x\"\n");
        let err = Settings::resolve(Overrides {
            config: Some(bad),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `lisen`"),
            "{err:#}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn version_retention_defaults_overrides_and_bounds() {
        let s = Settings::resolve(Overrides::default()).unwrap();
        assert_eq!(s.retention.of("dist-a"), Retention::default());
        let dir =
            std::env::temp_dir().join(format!("repod-config-versions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let resolve = |text: &str| {
            Settings::resolve(Overrides {
                config: Some(write(&dir, text)),
                ..Default::default()
            })
        };
        let s =
            resolve("[versions]\nkeep-last = 3\n[versions.distribution.dist-b]\nkeep-days = 90\n")
                .unwrap();
        assert_eq!(
            s.retention.of("dist-a"),
            Retention {
                keep_last: 3,
                keep_days: 7
            }
        );
        assert_eq!(
            s.retention.of("dist-b"),
            Retention {
                keep_last: 3,
                keep_days: 90
            }
        );
        let err = resolve("[versions]\nkeep-last = 0\n").unwrap_err();
        assert!(format!("{err:#}").contains("at least 1"), "{err:#}");
        let err = resolve("[versions.distribution.dist-b]\nkeep = 1\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `keep`"),
            "{err:#}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn publish_retention_defaults_and_bounds() {
        let s = Settings::resolve(Overrides::default()).unwrap();
        assert_eq!(s.keep_superseded, Duration::from_secs(600));
        let dir = std::env::temp_dir().join(format!("repod-config-keep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let resolve = |text: &str| {
            Settings::resolve(Overrides {
                config: Some(write(&dir, text)),
                ..Default::default()
            })
        };
        let s = resolve("[publish]\nkeep-superseded-seconds = 0\n").unwrap();
        assert_eq!(s.keep_superseded, Duration::ZERO);
        let err = resolve("[publish]\nkeep-superseded-seconds = 604801\n").unwrap_err();
        assert!(format!("{err:#}").contains("at most 604800"), "{err:#}");
        let err = resolve("[publish]\nkeep = 1\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `keep`"),
            "{err:#}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
