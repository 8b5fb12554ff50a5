//! Test harness: starts a real `repod` daemon on a free loopback port with a
//! private data directory, makes tokens with the real CLI, and talks HTTP.
//!
//! It expects what `scripts/test` builds first: the `repod` binary next to
//! the test executables and the plugin components under
//! `target/wasm32-wasip2/wasm/`.

pub mod apt;
pub mod bench;
pub mod browser;
pub mod fixtures;
pub mod rpm;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `target/<profile>/`, where cargo puts the `repod` binary.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_owned()
}

pub fn repod_bin() -> PathBuf {
    let bin = profile_dir().join("repod");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/test (or cargo nextest run --workspace --no-run) first",
        bin.display()
    );
    bin
}

/// A plugin component by crate artifact name, e.g. `repod_plugin_debian`.
pub fn wasm(artifact: &str) -> PathBuf {
    let path = profile_dir()
        .parent()
        .expect("target dir")
        .join("wasm32-wasip2/wasm")
        .join(format!("{artifact}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-plugins (scripts/test does) first",
        path.display()
    );
    path
}

/// The first-party plugins, as installed: (file name, artifact).
pub const FIRST_PARTY: [(&str, &str); 4] = [
    ("debian.wasm", "repod_plugin_debian"),
    ("el.wasm", "repod_plugin_el"),
    ("opensuse.wasm", "repod_plugin_opensuse"),
    ("policy-default.wasm", "repod_plugin_policy_default"),
];

pub fn install_first_party(plugin_dir: &Path) {
    std::fs::create_dir_all(plugin_dir).unwrap();
    for (file, artifact) in FIRST_PARTY {
        std::fs::copy(wasm(artifact), plugin_dir.join(file)).unwrap();
    }
}

/// A response: status and body (JSON when it parses, else a string).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Reply {
    /// Asserts an RFC 9457 problem with `status` and returns its detail.
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(self.status, status, "unexpected reply {self:?}");
        assert_eq!(self.content_type, "application/problem+json", "{self:?}");
        assert_eq!(self.body["status"], status, "{self:?}");
        assert!(
            self.body["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:repod:problem:")
        );
        self.body["detail"].as_str().expect("detail").to_owned()
    }
}

pub struct Daemon {
    child: Child,
    pub url: String,
    pub data: tempfile::TempDir,
    pub admin: String,
    port: u16,
    /// The config file the daemon was started with, if any.
    pub config: Option<PathBuf>,
    /// Its PostgreSQL database (a private schema), when the suite runs on
    /// PostgreSQL; `None`: SQLite in the data directory.
    pub database: Option<String>,
    /// Its object store (a private prefix in the test bucket), when the
    /// suite runs on S3; `None`: blobs in the data directory.
    pub storage: Option<repod::config::S3Config>,
    env: Vec<(String, String)>,
    /// Whether `data` is a tmpfs mount of its own.
    tmpfs: bool,
}

/// When `REPOD_TEST_S3` names an S3-compatible endpoint (scripts/test sets
/// it, with the credentials, for the suite's second run), a fresh prefix in
/// its bucket `repod`: each daemon stores its blobs under its own.
pub fn fresh_storage() -> Option<repod::config::S3Config> {
    let endpoint = std::env::var("REPOD_TEST_S3").ok()?;
    Some(repod::config::S3Config {
        endpoint: Some(endpoint),
        bucket: "repod".to_owned(),
        region: "us-east-1".to_owned(),
        prefix: format!("t-{}", unique()),
        orphan_grace: Duration::from_secs(3600),
        export_prefix: None,
        cache_max_bytes: None,
    })
}

/// `[storage]` for `config` in a daemon's config file.
pub fn storage_section(config: &repod::config::S3Config) -> String {
    format!(
        "\n[storage]\nkind = \"s3\"\nendpoint = {:?}\nbucket = {:?}\nregion = {:?}\nprefix = {:?}\n\
         orphan-grace-seconds = {}\n",
        config.endpoint.as_deref().expect("test endpoint"),
        config.bucket,
        config.region,
        config.prefix,
        config.orphan_grace.as_secs()
    ) + &match &config.export_prefix {
        Some(prefix) => format!("export-prefix = {prefix:?}\n"),
        None => String::new(),
    } + &match config.cache_max_bytes {
        Some(bytes) => format!("cache-max-mib = {}\n", bytes.div_ceil(1 << 20)),
        None => String::new(),
    }
}

/// A name no other daemon of this suite run has.
fn unique() -> String {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}_{nanos}_{seq}", std::process::id())
}

/// When `REPOD_TEST_POSTGRES` names a PostgreSQL database (scripts/test
/// sets it for the suite's second run), a URL for a new, empty schema in
/// it: each daemon gets its own, as each gets its own data directory.
pub fn fresh_database() -> Option<String> {
    let base = std::env::var("REPOD_TEST_POSTGRES").ok()?;
    let schema = format!("t_{}", unique());
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &base, "-c"])
        .arg(format!("CREATE SCHEMA {schema}"))
        .output()
        .expect("psql (Debian postgresql-client)");
    assert!(out.status.success(), "CREATE SCHEMA failed: {out:?}");
    Some(repod::db::in_schema(&base, &schema))
}

pub struct DaemonBuilder {
    config: Option<String>,
    sqlite: bool,
    filesystem: bool,
    orphan_grace: Option<Duration>,
    cache_max_mib: Option<u64>,
    export_prefix: Option<String>,
    /// Environment variables of the daemon process.
    env: Vec<(String, String)>,
    /// Another node of the same installation: its database and storage.
    sharing: Option<(Option<String>, Option<repod::config::S3Config>)>,
    first_party: bool,
    fresh_key: bool,
    extra: Vec<(String, Vec<u8>)>,
    tmpfs_mib: Option<u64>,
}

impl DaemonBuilder {
    /// TOML config file content.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }

    /// Let the daemon create its own signing key (RSA-4096, ~1.5 s in a
    /// debug build) instead of starting with the suite's shared one.
    /// The data directory on a tmpfs of `mib` MiB of its own (mounted as
    /// root; unmounted when the daemon is dropped), to run out of space.
    pub fn data_on_tmpfs(mut self, mib: u64) -> Self {
        self.tmpfs_mib = Some(mib);
        self
    }

    pub fn fresh_key(mut self) -> Self {
        self.fresh_key = true;
        self
    }

    /// SQLite in the data directory even when the suite runs on PostgreSQL.
    pub fn sqlite(mut self) -> Self {
        self.sqlite = true;
        self
    }

    /// Blobs in the data directory even when the suite runs on S3.
    pub fn filesystem(mut self) -> Self {
        self.filesystem = true;
        self
    }

    /// In the S3 run, how old an unreferenced object must be before a
    /// restart collects it (default an hour, as in production).
    pub fn orphan_grace(mut self, grace: Duration) -> Self {
        self.orphan_grace = Some(grace);
        self
    }

    /// `cache-max-mib` for the S3 run's daemon.
    pub fn cache_max_mib(mut self, mib: u64) -> Self {
        self.cache_max_mib = Some(mib);
        self
    }

    /// An environment variable for the daemon (test hooks).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// In the S3 run, `[storage] export-prefix`.
    pub fn export_prefix(mut self, prefix: &str) -> Self {
        self.export_prefix = Some(prefix.to_owned());
        self
    }

    /// Another node of `other`'s installation: its own data directory, the
    /// same database and object store (and, as every test daemon, the
    /// same signing key).
    pub fn sharing(mut self, other: &Daemon) -> Self {
        let database = other.database.clone().or_else(|| {
            Some(format!(
                "sqlite:{}",
                other.data.path().join("repod.db").display()
            ))
        });
        self.sharing = Some((database, other.storage.clone()));
        self
    }

    pub fn without_first_party(mut self) -> Self {
        self.first_party = false;
        self
    }

    /// Another file for the plugin directory.
    pub fn plugin_file(mut self, name: &str, bytes: Vec<u8>) -> Self {
        self.extra.push((name.to_owned(), bytes));
        self
    }

    pub fn start(self) -> Daemon {
        let data = tempfile::tempdir().unwrap();
        if let Some(mib) = self.tmpfs_mib {
            let out = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
                .arg(data.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "mounting a tmpfs needs root: {out:?}");
        }
        let plugins = data.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        if self.first_party {
            install_first_party(&plugins);
        }
        for (name, bytes) in &self.extra {
            std::fs::write(plugins.join(name), bytes).unwrap();
        }
        if !self.fresh_key {
            install_shared_key(data.path());
        }
        let storage = match (&self.sharing, self.filesystem) {
            (Some((_, storage)), _) => storage.clone(),
            (None, true) => None,
            (None, false) => fresh_storage().map(|mut s3| {
                s3.orphan_grace = self.orphan_grace.unwrap_or(s3.orphan_grace);
                s3.cache_max_bytes = self.cache_max_mib.map(|mib| mib << 20);
                // Beside the daemon's own prefix, unique like it.
                s3.export_prefix =
                    (self.export_prefix.as_ref()).map(|p| format!("{}-{p}", s3.prefix));
                s3
            }),
        };
        let text = match (&self.config, &storage) {
            (text, Some(s3)) => Some(format!(
                "{}{}",
                text.as_deref().unwrap_or(""),
                storage_section(s3)
            )),
            (text, None) => text.clone(),
        };
        let config = text.map(|text| {
            let path = data.path().join("repod.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let port = free_port();
        let database = match (&self.sharing, self.sqlite) {
            (Some((database, _)), _) => database.clone(),
            (None, true) => None,
            (None, false) => fresh_database(),
        };
        let child = spawn(
            data.path(),
            port,
            config.as_deref(),
            database.as_deref(),
            &self.env,
        );
        let mut daemon = Daemon {
            child,
            url: format!("http://127.0.0.1:{port}"),
            data,
            admin: String::new(),
            port,
            config,
            database,
            storage,
            env: self.env.clone(),
            tmpfs: self.tmpfs_mib.is_some(),
        };
        daemon.wait_ready();
        // Token names are unique per installation: another node's admin
        // token gets its own.
        let admin = match self.sharing {
            None => "admin".to_owned(),
            Some(_) => format!("admin-{port}"),
        };
        daemon.admin = daemon.token("admin", &admin);
        daemon
    }
}

/// One signing key for the whole suite, made once per target dir: every
/// daemon generating its own would cost ~1.5 s each.
fn install_shared_key(data: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // Named for the key format: a key an older daemon made is not reused.
    let shared = profile_dir().join("repod-test-signing-rpm.key");
    if !shared.exists() {
        let scratch = tempfile::tempdir_in(profile_dir()).unwrap();
        repod::signing::SigningKey::load_or_create(
            scratch.path(),
            "repod test key <test@repod.invalid>",
        )
        .unwrap();
        // Tests in other processes may race here; rename makes one win whole.
        std::fs::rename(scratch.path().join("signing.key"), &shared).unwrap();
    }
    let keys = data.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(&shared, keys.join("signing.key")).unwrap();
    std::fs::set_permissions(
        keys.join("signing.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

fn spawn(
    data: &Path,
    port: u16,
    config: Option<&Path>,
    database: Option<&str>,
    env: &[(String, String)],
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join("daemon.log"))
        .unwrap();
    let mut cmd = Command::new(repod_bin());
    cmd.arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data")
        .arg(data)
        .env_remove("REPOD_CONFIG")
        .env_remove("REPOD_PLUGINS")
        .env_remove("REPOD_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    if let Some(database) = database {
        cmd.env("REPOD_DATABASE_URL", database);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.spawn().expect("spawn repod")
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Daemon {
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder {
            config: None,
            sqlite: false,
            filesystem: false,
            orphan_grace: None,
            cache_max_mib: None,
            export_prefix: None,
            sharing: None,
            env: vec![],
            first_party: true,
            fresh_key: false,
            extra: vec![],
            tmpfs_mib: None,
        }
    }

    pub fn start() -> Daemon {
        Daemon::builder().start()
    }

    /// SIGKILL: no shutdown, no flush; what a power cut leaves.
    /// The daemon's process id (its /proc entry, for memory figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the daemon again on the same data directory and port.
    pub fn restart(&mut self) {
        self.child = spawn(
            self.data.path(),
            self.port,
            self.config.as_deref(),
            self.database.as_deref(),
            &self.env,
        );
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = ureq::get(&format!("{}/healthz", self.url)).call()
                && r.status() == 200
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("repod exited with {status} before serving:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "repod not ready in 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn plugin_dir(&self) -> PathBuf {
        self.data.path().join("plugins")
    }

    /// The offline CLI (`repod token`, `repod key`, `repod publish`) on
    /// this daemon's data directory and database.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new(repod_bin());
        cmd.env("REPOD_DATA", self.data.path())
            .env_remove("REPOD_CONFIG")
            .env_remove("REPOD_DATABASE_URL");
        if let Some(database) = &self.database {
            cmd.env("REPOD_DATABASE_URL", database);
        }
        if let Some(config) = &self.config {
            cmd.env("REPOD_CONFIG", config);
        }
        cmd
    }

    /// The local file the daemon serves at `/repos/<path>`: in its tree, or
    /// in the S3 run, its cached copy of the stored file (found by the
    /// SHA-256 of what it serves). Editing it is tampering with what
    /// clients get.
    pub fn served_file(&self, path: &str) -> PathBuf {
        if self.storage.is_none() {
            return self.data.path().join("repos").join(path);
        }
        use sha2::Digest;
        let (status, served) = self.get_bytes(&format!("/repos/{path}"));
        assert_eq!(status, 200, "/repos/{path}");
        let sha = hex::encode(sha2::Sha256::digest(&served));
        let file = self
            .data
            .path()
            .join(format!("cache/trees/{}/{sha}", &sha[..2]));
        assert!(file.is_file(), "{path} is served from {}", file.display());
        file
    }

    /// Waits until `/repos/<path>` serves what the local tree holds. In the
    /// S3 run the local tree goes live a moment before the generation row
    /// that every node serves from, so a test that read the local tree
    /// waits here before fetching what it names.
    pub fn wait_served(&self, path: &str) {
        let local = std::fs::read(self.data.path().join("repos").join(path)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, served) = self.get_bytes(&format!("/repos/{path}"));
            if status == 200 && served == local {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/repos/{path} still serves {status} and {} bytes, not the local {} bytes",
                served.len(),
                local.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The SHA-256 of every blob the daemon stored, sorted: the files of
    /// `<data>/blobs`, or the objects under its prefix in the S3 run.
    pub fn stored_blobs(&self) -> Vec<String> {
        let mut out: Vec<String> = match &self.storage {
            None => fixtures::snapshot(&self.data.path().join("blobs"))
                .iter()
                .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect(),
            Some(s3) => object_keys(s3, "blobs/sha256")
                .into_iter()
                .map(|k| k.rsplit('/').next().unwrap().to_owned())
                .collect(),
        };
        out.sort();
        out
    }

    /// Creates a token with the real CLI against the data directory, while
    /// the daemon runs, and returns the CLI's last output line.
    pub fn token(&self, role: &str, name: &str) -> String {
        let out = self
            .cli()
            .args(["token", "create", "--role", role, "--name", name])
            .output()
            .unwrap();
        assert!(out.status.success(), "token create failed: {out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let token = stdout
            .lines()
            .last()
            .expect("token on last line")
            .to_owned();
        assert!(token.starts_with("repod_") && token.len() == 70, "{token}");
        token
    }

    fn send(&self, req: ureq::Request, token: Option<&str>, body: Option<Body>) -> Reply {
        let req = match token {
            Some(t) => req.set("Authorization", &format!("Bearer {t}")),
            None => req,
        };
        let result = match body {
            None => req.call(),
            Some(Body::Json(v)) => req.send_json(v),
            Some(Body::Bytes(b)) => req.set("Content-Type", "application/wasm").send_bytes(&b),
            Some(Body::Raw(b)) => req.send_bytes(&b),
            Some(Body::Chunked(b)) => req.send(std::io::Cursor::new(b)),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("request failed: {e}\n{}", self.log()),
        };
        let status = response.status();
        let content_type = response.header("content-type").unwrap_or("").to_owned();
        let text = response.into_string().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            content_type,
            body,
        }
    }

    /// `POST /api/v1/distributions/{dist}/publish`: asserts 200 and returns
    /// the publish report.
    pub fn publish(&self, dist: &str, token: &str) -> Value {
        let reply = self.post_json(
            &format!("/api/v1/distributions/{dist}/publish"),
            Some(token),
            serde_json::json!({}),
        );
        assert_eq!(reply.status, 200, "publish {dist}: {}", reply.body);
        reply.body
    }

    /// Publishes every distribution and waits: afterwards the publisher is
    /// idle (the start-up publishes are done) and every tree is current.
    pub fn publish_all(&self) {
        for dist in self.distribution_ids() {
            self.publish(&dist, &self.admin);
        }
    }

    /// Uploads the file at `path` into `dist`; asserts it was accepted (201,
    /// or 200 when the same file is already there).
    pub fn upload_file(&self, dist: &str, token: &str, path: &Path) -> Reply {
        let reply = self.upload(
            &format!("/api/v1/packages?distribution={dist}"),
            Some(token),
            &std::fs::read(path).unwrap(),
        );
        assert!(
            matches!(reply.status, 200 | 201),
            "{} into {dist}: {}",
            path.display(),
            reply.body
        );
        reply
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(ureq::get(&format!("{}{path}", self.url)), token, None)
    }

    /// `GET path` without a token: the status and the raw body (empty for
    /// an error status).
    pub fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        match ureq::get(&format!("{}{path}", self.url)).call() {
            Ok(r) => {
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
                (200, body)
            }
            Err(ureq::Error::Status(code, _)) => (code, Vec::new()),
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// GET `path`, which must answer 200; its body.
    pub fn fetch(&self, path: &str) -> Vec<u8> {
        let (status, body) = self.get_bytes(path);
        assert_eq!(status, 200, "{path}");
        body
    }

    pub fn post_json(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        let req = ureq::post(&format!("{}{path}", self.url));
        self.send(req, token, Some(Body::Json(body)))
    }

    pub fn post_bytes(&self, path: &str, token: Option<&str>, bytes: Vec<u8>) -> Reply {
        let req = ureq::post(&format!("{}{path}", self.url));
        self.send(req, token, Some(Body::Bytes(bytes)))
    }

    /// PUTs `bytes` (a document such as a comps.xml).
    pub fn put_bytes(&self, path: &str, token: Option<&str>, bytes: Vec<u8>) -> Reply {
        let req = ureq::put(&format!("{}{path}", self.url));
        self.send(req, token, Some(Body::Bytes(bytes)))
    }

    /// POSTs `bytes` as `application/octet-stream` (a package upload).
    pub fn upload(&self, path: &str, token: Option<&str>, bytes: &[u8]) -> Reply {
        let req = ureq::post(&format!("{}{path}", self.url))
            .set("Content-Type", "application/octet-stream");
        self.send(req, token, Some(Body::Raw(bytes.to_vec())))
    }

    /// POSTs `bytes` with chunked transfer encoding: no Content-Length, so
    /// the server only learns the size by reading.
    pub fn upload_chunked(&self, path: &str, token: Option<&str>, bytes: &[u8]) -> Reply {
        let req = ureq::post(&format!("{}{path}", self.url))
            .set("Content-Type", "application/octet-stream");
        self.send(req, token, Some(Body::Chunked(bytes.to_vec())))
    }

    /// A raw connection to the daemon (10 s read timeout) and its address.
    fn connect(&self) -> (std::net::TcpStream, &str) {
        let addr = self.url.trim_start_matches("http://");
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (stream, addr)
    }

    /// Sends `GET <target>` exactly as written (no client-side path
    /// normalisation) and returns the status and body.
    pub fn raw_get(&self, target: &str) -> (u16, Vec<u8>) {
        use std::io::{Read, Write};
        let (mut stream, addr) = self.connect();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let status = String::from_utf8_lossy(&response[..response.len().min(32)])
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, response)
    }

    /// Sends only the headers of an upload announcing `length` bytes with
    /// `Expect: 100-continue` (as curl does for large files) and returns the
    /// status the server answers with before any body byte is sent.
    pub fn announce_upload(&self, path: &str, token: &str, length: u64) -> u16 {
        use std::io::{Read, Write};
        let (mut stream, addr) = self.connect();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
        )
        .unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        head.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// POSTs a `multipart/form-data` body built from `(name, filename, bytes)` parts.
    pub fn upload_form(
        &self,
        path: &str,
        token: Option<&str>,
        parts: &[(&str, Option<&str>, &[u8])],
    ) -> Reply {
        let boundary = "repod-test-boundary-7d1f";
        let mut body = Vec::new();
        for (name, filename, bytes) in parts {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"")
                    .as_bytes(),
            );
            if let Some(f) = filename {
                body.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
            }
            body.extend_from_slice(b"\r\n\r\n");
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let req = ureq::post(&format!("{}{path}", self.url)).set(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        );
        self.send(req, token, Some(Body::Raw(body)))
    }

    pub fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(ureq::delete(&format!("{}{path}", self.url)), token, None)
    }

    /// Imports an OSV file as admin; asserts it was taken (200) and
    /// returns the import report.
    pub fn import_advisories(&self, bytes: Vec<u8>) -> Value {
        let reply = self.post_bytes("/api/v1/advisories", Some(&self.admin), bytes);
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// The served public key, `/repos/keys/repod.asc`.
    pub fn served_key(&self) -> Vec<u8> {
        let (status, key) = self.get_bytes("/repos/keys/repod.asc");
        assert_eq!(status, 200, "the daemon serves no key");
        key
    }

    /// The client setup the daemon renders for `dist` (`query` is appended
    /// to the URL, e.g. `?version=3`), fetched with a fresh reader token.
    pub fn client_config(&self, dist: &str, query: &str) -> String {
        static TOKENS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = TOKENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reader = self.token(
            "reader",
            &format!("client-{dist}-{n}-{}", std::process::id()),
        );
        let reply = self.get(
            &format!("/api/v1/distributions/{dist}/client-config{query}"),
            Some(&reader),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body.as_str().expect("a text file").to_owned()
    }

    /// Distribution ids the daemon lists, sorted.
    pub fn distribution_ids(&self) -> Vec<String> {
        let reply = self.get("/api/v1/distributions", Some(&self.admin));
        assert_eq!(reply.status, 200, "{reply:?}");
        let mut ids: Vec<String> = reply.body["distributions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// The names of the packages `dist` holds now, sorted.
    pub fn package_names(&self, dist: &str) -> Vec<String> {
        let reply = self.get(
            &format!("/api/v1/distributions/{dist}/packages"),
            Some(&self.admin),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        let mut names: Vec<String> = reply.body["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }
}

enum Body {
    Json(Value),
    Bytes(Vec<u8>),
    Raw(Vec<u8>),
    Chunked(Vec<u8>),
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what the daemon said (its data dir is gone
        // after this).
        if std::thread::panicking() {
            eprintln!("--- daemon log ({}) ---\n{}", self.url, self.log());
        }
        if self.tmpfs {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.data.path())
                .status();
        }
    }
}

/// The hostile test plugin's bytes with every `@0.1.0` contract version
/// rewritten to `@0.9.0` (same length, so the component stays well-formed):
/// a plugin built for a contract this daemon does not speak.
pub fn future_contract_plugin() -> Vec<u8> {
    let mut bytes = std::fs::read(wasm("repod_plugin_hostile")).unwrap();
    let (from, to) = (b"repod:plugin/".as_slice(), b"@0.1.0".as_slice());
    let mut i = 0;
    let mut rewrote = 0;
    while i + from.len() < bytes.len() {
        if bytes[i..].starts_with(from)
            && let Some(at) = bytes[i..(i + 40).min(bytes.len())]
                .windows(to.len())
                .position(|w| w == to)
        {
            bytes[i + at + 3] = b'9';
            rewrote += 1;
        }
        i += 1;
    }
    assert!(rewrote > 0, "no contract version found to rewrite");
    bytes
}

/// `testdata/advisories`: real OSV records, with their provenance README.
pub fn advisories_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/advisories"
    ))
}

/// The bytes of one record file of [`advisories_dir`].
pub fn advisory_record(file: &str) -> Vec<u8> {
    std::fs::read(advisories_dir().join(file)).unwrap()
}

/// Runs `f` with a client of the test bucket and the key of `rel` under
/// the daemon's prefix, on a runtime of its own.
fn in_bucket<T, F: Future<Output = T>>(
    s3: &repod::config::S3Config,
    rel: &str,
    f: impl FnOnce(std::sync::Arc<dyn object_store::ObjectStore>, object_store::path::Path) -> F,
) -> T {
    let store = repod::blobs::remote::client(s3).expect("S3 client");
    let key = repod::blobs::remote::key(&s3.prefix, rel);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f(store, key))
}

/// Every key under `rel` in the daemon's prefix of the test bucket.
pub fn object_keys(s3: &repod::config::S3Config, rel: &str) -> Vec<String> {
    use futures_util::TryStreamExt;
    in_bucket(s3, rel, |store, prefix| async move {
        store
            .list(Some(&prefix))
            .map_ok(|m| m.location.to_string())
            .try_collect::<Vec<_>>()
            .await
    })
    .expect("list the test bucket")
}

/// A reader of the test bucket under `prefix` (an export, a daemon's
/// prefix): keys relative to it.
pub struct Bucket {
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    runtime: tokio::runtime::Runtime,
    prefix: String,
}

impl Bucket {
    pub fn of(s3: &repod::config::S3Config, prefix: &str) -> Bucket {
        Bucket {
            store: repod::blobs::remote::client(s3).unwrap(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            prefix: prefix.to_owned(),
        }
    }

    pub fn get(&self, rel: &str) -> Option<Vec<u8>> {
        let key = repod::blobs::remote::key(&self.prefix, rel);
        self.runtime.block_on(async {
            use object_store::ObjectStoreExt;
            match self.store.get(&key).await {
                Ok(got) => Some(got.bytes().await.unwrap().to_vec()),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => panic!("get {key}: {e}"),
            }
        })
    }

    pub fn keys(&self) -> std::collections::BTreeSet<String> {
        use futures_util::TryStreamExt;
        let strip = format!("{}/", self.prefix);
        let root = repod::blobs::remote::key(&self.prefix, "");
        let listed: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(Some(&root)).try_collect())
            .unwrap();
        listed
            .into_iter()
            .map(|m| {
                let key = m.location.to_string();
                key.strip_prefix(&strip).unwrap_or(&key).to_owned()
            })
            .collect()
    }
}

/// Stores `bytes` at `rel` under the daemon's prefix of the test bucket.
pub fn put_object(s3: &repod::config::S3Config, rel: &str, bytes: &[u8]) {
    use object_store::ObjectStoreExt;
    let bytes = bytes.to_vec();
    in_bucket(s3, rel, |store, key| async move {
        store.put(&key, bytes.into()).await
    })
    .expect("put into the test bucket");
}

/// A thread that looks at something again and again while a test changes
/// it, counting its looks and keeping what each look found wrong.
pub struct Watcher {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    looks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    problems: std::sync::Arc<std::sync::Mutex<Vec<Vec<String>>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Watcher {
    /// Starts calling `look` in a loop: `None` when there was nothing to
    /// look at yet, else what is wrong (empty: nothing).
    pub fn spawn(mut look: impl FnMut() -> Option<Vec<String>> + Send + 'static) -> Watcher {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let looks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let problems = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let thread = {
            let (stop, looks, problems) = (stop.clone(), looks.clone(), problems.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(wrong) = look() {
                        looks.fetch_add(1, Ordering::Relaxed);
                        if !wrong.is_empty() {
                            problems.lock().unwrap().push(wrong);
                        }
                    }
                }
            })
        };
        Watcher {
            stop,
            looks,
            problems,
            thread,
        }
    }

    pub fn looks(&self) -> usize {
        self.looks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits (up to 10 s) for `by` more looks after `from`: the watcher
    /// has looked again since the last change, however slow the machine.
    pub fn wait_for_looks(&self, from: usize, by: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.looks() < from + by && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it: how many looks, and what they found wrong.
    pub fn stop(self) -> (usize, Vec<Vec<String>>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let looks = self.looks.clone();
        self.thread.join().unwrap();
        let looks = looks.load(std::sync::atomic::Ordering::Relaxed);
        let problems = std::mem::take(&mut *self.problems.lock().unwrap());
        (looks, problems)
    }
}
