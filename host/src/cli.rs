//! The remote half of the `repod` command line: one subcommand per
//! `/api/v1` operation, nouns then verbs (`repod packages list`), each a
//! thin client of the API a running daemon serves.
//!
//! Every remote command prints a table (or a short summary) by default and
//! the server's JSON answer, pretty-printed, with `--output json`. Progress
//! bars and spinners go to stderr, only when it is a terminal and the
//! output is a table. Failures map to the exit codes of
//! [`crate::api_client::exit`] in one place, [`exit_code`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use comfy_table::{Table, presets};
use serde_json::{Value, json};

use crate::api_client::{Client, ClientError, exit, query_string, segment};

/// What `--help` says about exit codes.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  a local failure (a file unreadable), or some items of a batch failed
     (upload, advisories import, migrate --fail-on-skip)
  2  the command line is wrong
  3  the server refused: bad request, unknown or too weak token, conflict,
     rejected package (the server's detail is on stderr)
  4  not found: no such package, distribution, advisory, plugin or token
  5  the server failed, could not be reached, or did not answer as repod";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and summaries for people.
    Table,
    /// The server's answer, pretty-printed JSON.
    Json,
}

/// A running daemon, a token for it, and how to print its answers.
#[derive(Args)]
pub struct Remote {
    /// Daemon base URL
    #[arg(long, env = "REPOD_URL", default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Bearer token (maintainer for promote/migrate/rollback/decisions,
    /// admin for init, plugins, tokens, audit and advisory imports)
    #[arg(long, env = "REPOD_TOKEN", hide_env_values = true)]
    pub token: String,
    /// How to print the answer
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Same as --output json (kept for scripts that use it)
    #[arg(long, hide = true)]
    pub json: bool,
}

impl Remote {
    pub fn client(&self) -> Client {
        Client {
            url: self.url.clone(),
            token: self.token.clone(),
        }
    }

    pub fn json(&self) -> bool {
        self.json || self.output == Output::Json
    }

    /// Whether bars and spinners may be drawn: never under JSON output or
    /// when stderr is not a terminal (a log, a pipe, a test).
    pub fn interactive(&self) -> bool {
        !self.json() && std::io::IsTerminal::is_terminal(&std::io::stderr())
    }

    /// Prints `value` as JSON or as `table` renders it.
    pub fn print(&self, value: &Value, table: impl Fn(&Value) -> String) -> anyhow::Result<()> {
        if self.json() {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            print!("{}", table(value));
        }
        Ok(())
    }

    /// Prints the answer (JSON, or what `table` makes of it) and returns
    /// it; a refusal becomes the error, which [`exit_code`] maps.
    pub fn report(
        &self,
        answer: Result<(u16, Value), ClientError>,
        table: impl Fn(&Value) -> String,
    ) -> anyhow::Result<Value> {
        let (_, value) = answer?;
        self.print(&value, table)?;
        Ok(value)
    }

    /// Runs `call` (a request the server may take long to answer: a
    /// publish, a sync, a rescan) behind a spinner saying `what`.
    pub fn waiting<T>(&self, what: &str, call: impl FnOnce() -> T) -> T {
        if !self.interactive() {
            return call();
        }
        let spinner = indicatif::ProgressBar::new_spinner().with_message(what.to_owned());
        spinner.enable_steady_tick(Duration::from_millis(120));
        let result = call();
        spinner.finish_and_clear();
        result
    }
}

/// A batch in which some items failed; each was reported as it went.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Partial(pub String);

/// The exit code of a failed command: what the server said, or 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<ClientError>() {
        Some(e) => e.exit_code(),
        None => exit::FAILED,
    }
}

/// The remote subcommands besides promote, migrate, init, rollback and
/// versions (which main.rs keeps where they were).
#[derive(Subcommand)]
pub enum RemoteCommand {
    /// Packages in a running daemon: list, show, remove.
    Packages {
        #[command(subcommand)]
        command: PackagesCommand,
    },
    /// Distributions the loaded plugins declare, their client setup,
    /// publishing, version comparison, comps and VEX documents.
    Distributions {
        #[command(subcommand)]
        command: DistributionsCommand,
    },
    /// Vulnerability advisories: import files, sync feeds, look them up.
    Advisories {
        #[command(subcommand)]
        command: AdvisoriesCommand,
    },
    /// Scan results: the report by state, one package's findings, rescans.
    Scan {
        #[command(subcommand)]
        command: ScanCommand,
    },
    /// Approve or reject a package's findings, with a justification.
    Decision {
        #[command(subcommand)]
        command: DecisionCommand,
    },
    /// Plugins of a running daemon: list, add, remove, reload (admin).
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// API tokens of a running daemon: list, create, revoke (admin).
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// The audit log: who changed what, when (admin).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The token's own name and role.
    Whoami {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
pub enum PackagesCommand {
    /// Package records, filtered.
    List {
        #[arg(long)]
        distribution: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        architecture: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// One package record, by id; with --details also its metadata, tree
    /// paths, versions, copies in other distributions, scan and decisions.
    Show {
        id: String,
        #[arg(long)]
        details: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove a package from its distribution's next version (maintainer).
    Remove {
        id: String,
        /// Why, for the version record
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
pub enum DistributionsCommand {
    /// Every distribution, and the retired ones.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Every served distribution at a glance: packages, latest version,
    /// packages per scan state.
    Overview {
        #[command(flatten)]
        remote: Remote,
    },
    /// One distribution.
    Show {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// The client setup file (deb822 .sources, .repo...), as the plugin
    /// renders it.
    ClientConfig {
        id: String,
        /// URL clients reach the published trees at [default: the daemon's]
        #[arg(long)]
        base_url: Option<String>,
        /// Pin clients to this version's tree
        #[arg(long)]
        version: Option<i64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Publish now; returns once the tree shows every earlier change
    /// (uploader).
    Publish {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Compare two versions with the distribution's rules.
    Compare {
        id: String,
        a: String,
        b: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// The decisions about its packages as an OpenVEX document (always
    /// JSON).
    Vex {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// The comps.xml of an RPM distribution: show, set or remove it.
    Comps {
        #[command(subcommand)]
        command: CompsCommand,
    },
}

#[derive(Subcommand)]
pub enum CompsCommand {
    /// Print the stored comps.xml.
    Show {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Store a comps.xml and publish it (maintainer).
    Set {
        id: String,
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove the comps.xml (maintainer).
    Remove {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
pub enum AdvisoriesCommand {
    /// Import OSV files: each one record, a JSON array of records, or a zip
    /// of records (an OSV `all.zip`). Admin.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Sync every configured advisory feed now and re-scan what changed
    /// (admin).
    Sync {
        #[command(flatten)]
        remote: Remote,
    },
    /// Advisories by ecosystem, package name, id or alias; one page.
    List {
        #[arg(long)]
        ecosystem: Option<String>,
        #[arg(long)]
        package: Option<String>,
        /// An advisory id or an alias (a CVE id)
        #[arg(long)]
        id: Option<String>,
        /// Only ids after this one (the next page)
        #[arg(long)]
        after: Option<String>,
        /// At most this many [default: 100]
        #[arg(long)]
        limit: Option<i64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// One advisory, by id or an alias only it lists.
    Show {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// The configured feeds and their last syncs.
    Feeds {
        #[command(flatten)]
        remote: Remote,
    },
    /// Past imports, newest first.
    Imports {
        /// At most this many [default: 50]
        #[arg(long)]
        limit: Option<i64>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
pub enum ScanCommand {
    /// Packages by scan state (clean, findings, quarantined, blocked,
    /// approved, rejected) with counts per state and worst severity.
    Report {
        /// Only this distribution
        #[arg(long)]
        distribution: Option<String>,
        /// Only packages in this state
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// One package's latest scan: its findings, worst first, and the
    /// decision about it.
    Show {
        /// Package id
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Scan every stored package again (admin).
    Rescan {
        #[command(flatten)]
        remote: Remote,
    },
}

/// What both decisions take.
#[derive(Args)]
pub struct DecisionArgs {
    /// Package id
    id: String,
    /// Why (required; kept with the decision and in VEX documents)
    #[arg(long)]
    justification: String,
    /// When review re-opens: a date (2027-03-31) or an RFC 3339 time
    #[arg(long)]
    expires: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Subcommand)]
pub enum DecisionCommand {
    /// Accept the findings: a quarantined package is published
    /// (maintainer).
    Approve(DecisionArgs),
    /// Refuse the package: a published one is removed, a held one stays
    /// out (maintainer).
    Reject(DecisionArgs),
}

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// Loaded plugins, and those that failed with why.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Add a plugin, or replace the loaded one of the same name.
    Add {
        /// The plugin's .wasm file
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Unload and delete a plugin.
    Remove {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Rescan the daemon's plugin directory.
    Reload {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Every token (never its secret).
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Create a token; the secret is printed once, on the last line.
    Create {
        #[arg(long, value_enum)]
        role: crate::tokens::Role,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke a token, by id.
    Revoke {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// The newest entries that match the filters, newest first.
    List {
        /// At most this many entries [default: 100]
        #[arg(long)]
        limit: Option<i64>,
        /// Only entries by this token name
        #[arg(long)]
        actor: Option<String>,
        /// Only entries whose action starts with this (`token`,
        /// `plugin.remove`)
        #[arg(long)]
        action: Option<String>,
        /// Only entries about this target (an id, a name)
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

pub fn run(command: RemoteCommand) -> anyhow::Result<()> {
    match command {
        RemoteCommand::Packages { command } => packages(command),
        RemoteCommand::Distributions { command } => distributions(command),
        RemoteCommand::Advisories { command } => advisories(command),
        RemoteCommand::Scan { command } => scan(command),
        RemoteCommand::Decision { command } => decision(command),
        RemoteCommand::Plugins { command } => plugins(command),
        RemoteCommand::Tokens { command } => tokens(command),
        RemoteCommand::Whoami { remote } => {
            let answer = remote.client().call("GET", "/whoami", None);
            remote.report(answer, |v| {
                format!("{} ({})\n", text(&v["name"]), text(&v["role"]))
            })?;
            Ok(())
        }
        RemoteCommand::Audit { command } => audit(command),
    }
}

fn packages(command: PackagesCommand) -> anyhow::Result<()> {
    match command {
        PackagesCommand::List {
            distribution,
            name,
            architecture,
            remote,
        } => {
            let query = query_string(&[
                ("distribution", distribution.as_deref()),
                ("name", name.as_deref()),
                ("architecture", architecture.as_deref()),
            ]);
            let answer = remote
                .client()
                .call("GET", &format!("/packages{query}"), None);
            remote.report(answer, |v| package_table(&v["packages"]))?;
        }
        PackagesCommand::Show {
            id,
            details: false,
            remote,
        } => {
            let answer = remote
                .client()
                .call("GET", &format!("/packages/{}", segment(&id)), None);
            remote.report(answer, fields)?;
        }
        PackagesCommand::Show {
            id,
            details: true,
            remote,
        } => {
            let path = format!("/packages/{}/details", segment(&id));
            let answer = remote.client().call("GET", &path, None);
            remote.report(answer, package_details)?;
        }
        PackagesCommand::Remove { id, reason, remote } => {
            let query = query_string(&[("reason", reason.as_deref())]);
            let path = format!("/packages/{}{query}", segment(&id));
            remote.waiting("removing", || remote.client().call("DELETE", &path, None))?;
            remote.print(&json!({"removed": id}), |_| format!("removed {id}\n"))?;
        }
    }
    Ok(())
}

fn distributions(command: DistributionsCommand) -> anyhow::Result<()> {
    match command {
        DistributionsCommand::List { remote } => {
            let answer = remote.client().call("GET", "/distributions", None);
            remote.report(answer, distribution_table)?;
        }
        DistributionsCommand::Overview { remote } => {
            let answer = remote.client().call("GET", "/overview", None);
            remote.report(answer, overview_table)?;
        }
        DistributionsCommand::Show { id, remote } => {
            let answer =
                remote
                    .client()
                    .call("GET", &format!("/distributions/{}", segment(&id)), None);
            remote.report(answer, fields)?;
        }
        DistributionsCommand::ClientConfig {
            id,
            base_url,
            version,
            remote,
        } => {
            let version = version.map(|n| n.to_string());
            let query = query_string(&[
                ("base-url", base_url.as_deref()),
                ("version", version.as_deref()),
            ]);
            let path = format!("/distributions/{}/client-config{query}", segment(&id));
            let file = remote.client().text("GET", &path, None)?;
            let value = json!({
                "file_name": file.file_name,
                "content_type": file.content_type,
                "content": file.text,
            });
            remote.print(&value, |_| with_newline(&file.text))?;
        }
        DistributionsCommand::Publish { id, remote } => {
            let path = format!("/distributions/{}/publish", segment(&id));
            let answer = remote.waiting(&format!("publishing {id}"), || {
                remote.client().call("POST", &path, Some(&json!({})))
            });
            remote.report(answer, |r| {
                format!(
                    "published {} version {}: {} packages, {} files, {} bytes, {:.0} ms\n",
                    text(&r["distribution"]),
                    r["version"],
                    r["packages"],
                    r["files"],
                    r["bytes"],
                    r["duration_ms"].as_f64().unwrap_or(0.0)
                )
            })?;
        }
        DistributionsCommand::Compare { id, a, b, remote } => {
            let path = format!("/distributions/{}/compare-versions", segment(&id));
            let answer = remote
                .client()
                .call("POST", &path, Some(&json!({"pairs": [[&a, &b]]})));
            remote.report(answer, |r| {
                let sign = match r["results"][0].as_i64() {
                    Some(-1) => "<",
                    Some(0) => "=",
                    _ => ">",
                };
                format!("{a} {sign} {b}\n")
            })?;
        }
        DistributionsCommand::Vex { id, remote } => {
            let path = format!("/distributions/{}/vex", segment(&id));
            let (_, document) = remote.client().call("GET", &path, None)?;
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
        DistributionsCommand::Comps { command } => comps(command)?,
    }
    Ok(())
}

fn comps(command: CompsCommand) -> anyhow::Result<()> {
    let path = |id: &str| format!("/distributions/{}/comps", segment(id));
    match command {
        CompsCommand::Show { id, remote } => {
            let file = remote.client().text("GET", &path(&id), None)?;
            remote.print(&json!({"distribution": id, "comps": file.text}), |_| {
                with_newline(&file.text)
            })?;
        }
        CompsCommand::Set { id, file, remote } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let answer = remote.waiting("storing comps.xml", || {
                remote
                    .client()
                    .send("PUT", &path(&id), Some(("application/xml", &bytes)))
            });
            remote.report(answer, |_| format!("stored the comps.xml of {id}\n"))?;
        }
        CompsCommand::Remove { id, remote } => {
            remote.client().call("DELETE", &path(&id), None)?;
            remote.print(&json!({"distribution": id, "comps": null}), |_| {
                format!("removed the comps.xml of {id}\n")
            })?;
        }
    }
    Ok(())
}

fn advisories(command: AdvisoriesCommand) -> anyhow::Result<()> {
    match command {
        AdvisoriesCommand::Import { files, remote } => import(&files, &remote)?,
        AdvisoriesCommand::Sync { remote } => {
            let answer = remote.waiting("syncing advisory feeds", || {
                remote.client().call("POST", "/advisories/sync", None)
            });
            remote.report(answer, |v| {
                list_table(
                    &v["feeds"],
                    &[
                        ("FEED", "/source", cell),
                        ("STATUS", "/status", cell),
                        ("ADDED", "/import/added", cell),
                        ("UPDATED", "/import/updated", cell),
                        ("ERROR", "/error", cell),
                    ],
                )
            })?;
        }
        AdvisoriesCommand::List {
            ecosystem,
            package,
            id,
            after,
            limit,
            remote,
        } => {
            let limit = limit.map(|n| n.to_string());
            let query = query_string(&[
                ("ecosystem", ecosystem.as_deref()),
                ("package", package.as_deref()),
                ("id", id.as_deref()),
                ("after", after.as_deref()),
                ("limit", limit.as_deref()),
            ]);
            let answer = remote
                .client()
                .call("GET", &format!("/advisories{query}"), None);
            let answer = remote.report(answer, |v| {
                list_table(
                    &v["advisories"],
                    &[
                        ("ID", "/id", cell),
                        ("SEVERITY", "/severity", cell),
                        ("CVSS", "/cvss_score", cell),
                        ("MODIFIED", "/modified", cell),
                        ("SUMMARY", "/summary", cell),
                    ],
                )
            })?;
            if let (Some(next), false) = (answer["next"].as_str(), remote.json()) {
                eprintln!("more: --after {next}");
            }
        }
        AdvisoriesCommand::Show { id, remote } => {
            let path = format!("/advisories/{}", segment(&id));
            let answer = remote.client().call("GET", &path, None);
            remote.report(answer, |v| {
                let mut shown = v.clone();
                // The record as imported is in --output json; the affected
                // packages get a table of their own.
                if let Some(o) = shown.as_object_mut() {
                    o.remove("record");
                    o.remove("packages");
                }
                let mut out = fields(&shown);
                out.push_str(&list_table(
                    &v["packages"],
                    &[
                        ("ECOSYSTEM", "/ecosystem", cell),
                        ("PACKAGE", "/name", cell),
                    ],
                ));
                out
            })?;
        }
        AdvisoriesCommand::Feeds { remote } => {
            let answer = remote.client().call("GET", "/advisories/feeds", None);
            remote.report(answer, |v| {
                let every = match v["sync_every_minutes"].as_u64() {
                    Some(m) => format!("every {m} minutes"),
                    None => "on demand only".to_owned(),
                };
                let mut out = format!(
                    "{} feeds configured, synced {every}\n",
                    list(&v["configured"]).len()
                );
                out.push_str(&list_table(
                    &v["states"],
                    &[
                        ("FEED", "/source", cell),
                        ("STATUS", "/status", cell),
                        ("TRIED", "/tried_ms", date_ms),
                        ("SYNCED", "/synced_ms", date_ms),
                        ("ERROR", "/error", cell),
                    ],
                ));
                out
            })?;
        }
        AdvisoriesCommand::Imports { limit, remote } => {
            let limit = limit.map(|n| n.to_string());
            let query = query_string(&[("limit", limit.as_deref())]);
            let answer = remote
                .client()
                .call("GET", &format!("/advisories/imports{query}"), None);
            remote.report(answer, |v| {
                list_table(
                    &v["imports"],
                    &[
                        ("FINISHED", "/finished_ms", date_ms),
                        ("SOURCE", "/source", cell),
                        ("BY", "/actor", cell),
                        ("ADDED", "/added", cell),
                        ("UPDATED", "/updated", cell),
                        ("UNCHANGED", "/unchanged", cell),
                        ("REJECTED", "/rejected", cell),
                        ("ERROR", "/error", cell),
                    ],
                )
            })?;
        }
    }
    Ok(())
}

/// Imports every file, each in its own request; a failed one does not stop
/// the others. With `--output json`, one JSON array of the reports (a
/// failed file's entry holds its error).
fn import(files: &[PathBuf], remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client();
    let mut reports = Vec::new();
    let mut failed = Vec::new();
    for file in files {
        match client.import_advisories(file, remote.interactive()) {
            Ok((_, answer)) => {
                if !remote.json() {
                    let summary = crate::api_client::import_summary(&answer);
                    print!("{}: {summary}", file.display());
                }
                reports.push(json!({"file": file, "report": answer}));
            }
            Err(e) => {
                if !remote.json() {
                    println!("{}: refused", file.display());
                }
                reports.push(json!({"file": file, "error": e.to_string()}));
                failed.push(anyhow::Error::from(e).context(file.display().to_string()));
            }
        }
    }
    if remote.json() {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if files.len() == 1 && !failed.is_empty() {
        // One file: its failure, with its own exit code.
        return Err(failed.remove(0));
    }
    for e in &failed {
        eprintln!("repod: {e:#}");
    }
    match failed.len() {
        0 => Ok(()),
        n => Err(Partial(format!("{n} of {} files were not imported", files.len())).into()),
    }
}

fn scan(command: ScanCommand) -> anyhow::Result<()> {
    match command {
        ScanCommand::Report {
            distribution,
            state,
            remote,
        } => {
            let client = remote.client();
            remote.report(
                client.scan_report(distribution.as_deref(), state.as_deref()),
                crate::api_client::scan_summary,
            )?;
        }
        ScanCommand::Show { id, remote } => {
            let path = format!("/packages/{}/scan", segment(&id));
            let answer = remote.client().call("GET", &path, None);
            remote.report(answer, scan_table)?;
        }
        ScanCommand::Rescan { remote } => {
            let answer = remote.waiting("scanning every package", || {
                remote.client().call("POST", "/scans/rescan", None)
            });
            remote.report(answer, |v| {
                format!(
                    "scanned {} packages, {} with findings\n",
                    v["scanned"], v["with_findings"]
                )
            })?;
        }
    }
    Ok(())
}

fn decision(command: DecisionCommand) -> anyhow::Result<()> {
    let (verb, args) = match command {
        DecisionCommand::Approve(args) => ("approve", args),
        DecisionCommand::Reject(args) => ("reject", args),
    };
    let mut body = json!({"decision": verb, "justification": args.justification});
    if let Some(expires) = &args.expires {
        body["expires"] = json!(expires);
    }
    let remote = &args.remote;
    let path = format!("/packages/{}/decision", segment(&args.id));
    let answer = remote.waiting("deciding", || {
        remote.client().call("POST", &path, Some(&body))
    });
    remote.report(answer, |v| {
        let mut out = format!(
            "{} {}: scan state {}",
            text(&v["decision"]["decision"]),
            args.id,
            text(&v["scan"]["state"])
        );
        match v["distribution_version"]["number"].as_i64() {
            Some(n) => out.push_str(&format!(
                "; {} version {n}",
                text(&v["distribution_version"]["distribution"])
            )),
            None => out.push_str("; the distribution did not change"),
        }
        if let Some(n) = v["publish"]["version"].as_i64() {
            out.push_str(&format!(", published version {n}"));
        }
        out.push('\n');
        out
    })?;
    Ok(())
}

fn plugins(command: PluginsCommand) -> anyhow::Result<()> {
    match command {
        PluginsCommand::List { remote } => {
            let answer = remote.client().call("GET", "/plugins", None);
            remote.report(answer, plugin_table)?;
        }
        PluginsCommand::Add { file, remote } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let answer = remote.waiting("loading the plugin", || {
                remote
                    .client()
                    .send("POST", "/plugins", Some(("application/wasm", &bytes)))
            });
            let status = answer.as_ref().map(|(s, _)| *s).unwrap_or(0);
            remote.report(answer, |p| {
                format!(
                    "{} plugin {} {} ({} {})\n",
                    if status == 201 { "added" } else { "replaced" },
                    text(&p["name"]),
                    text(&p["version"]),
                    text(&p["kind"]),
                    text(&p["id"])
                )
            })?;
        }
        PluginsCommand::Remove { name, remote } => {
            let path = format!("/plugins/{}", segment(&name));
            remote.waiting("removing the plugin", || {
                remote.client().call("DELETE", &path, None)
            })?;
            remote.print(&json!({"removed": name}), |_| {
                format!("removed plugin {name}\n")
            })?;
        }
        PluginsCommand::Reload { remote } => {
            let answer = remote.waiting("reloading plugins", || {
                remote.client().call("POST", "/plugins/reload", None)
            });
            remote.report(answer, plugin_table)?;
        }
    }
    Ok(())
}

fn tokens(command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::List { remote } => {
            let answer = remote.client().call("GET", "/tokens", None);
            remote.report(answer, |v| {
                list_table(
                    &v["tokens"],
                    &[
                        ("ID", "/id", cell),
                        ("NAME", "/name", cell),
                        ("ROLE", "/role", cell),
                        ("CREATED", "/created_at", date_s),
                    ],
                )
            })?;
        }
        TokensCommand::Create { role, name, remote } => {
            let body = json!({"name": name, "role": role.as_str()});
            let answer = remote.client().call("POST", "/tokens", Some(&body));
            remote.report(answer, |t| {
                eprintln!(
                    "created {} token {} (id {}); it is shown only once:",
                    text(&t["role"]),
                    text(&t["name"]),
                    text(&t["id"])
                );
                format!("{}\n", text(&t["token"]))
            })?;
        }
        TokensCommand::Revoke { id, remote } => {
            remote
                .client()
                .call("DELETE", &format!("/tokens/{}", segment(&id)), None)?;
            remote.print(&json!({"revoked": id}), |_| format!("revoked {id}\n"))?;
        }
    }
    Ok(())
}

fn audit(command: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::List {
        limit,
        actor,
        action,
        target,
        remote,
    } = command;
    let limit = limit.map(|n| n.to_string());
    let query = query_string(&[
        ("limit", limit.as_deref()),
        ("actor", actor.as_deref()),
        ("action", action.as_deref()),
        ("target", target.as_deref()),
    ]);
    let (_, answer) = remote
        .client()
        .call("GET", &format!("/audit{query}"), None)?;
    remote.print(&answer, |v| {
        list_table(
            &v["entries"],
            &[
                ("TIME", "/at_ms", date_ms),
                ("ACTOR", "/actor", cell),
                ("ACTION", "/action", cell),
                ("TARGET", "/target", cell),
                ("DETAIL", "/detail", cell),
            ],
        )
    })
}

// Rendering. Tables are plain text of any width (no terminal probing), so
// the same bytes reach a terminal, a pager or a file.

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header(header.iter().copied());
    table
}

/// A file's text as printed: ending with a line break, so the shell's
/// prompt (or what follows) starts on a line of its own.
fn with_newline(text: &str) -> String {
    match text.ends_with('\n') {
        true => text.to_owned(),
        false => format!("{text}\n"),
    }
}

/// The table, or `(none)` for one without rows.
fn rendered(table: &Table) -> String {
    if table.is_empty() {
        "(none)\n".to_owned()
    } else {
        format!("{table}\n")
    }
}

/// How a column shows its value.
type Show = fn(&Value) -> String;

/// One row per item of `items`; each column a title, the item's field (a
/// JSON pointer, so `/import/added` reaches into an object) and how to
/// show it. A field the item lacks shows as `-`.
pub(crate) fn list_table(items: &Value, columns: &[(&str, &str, Show)]) -> String {
    let titles: Vec<&str> = columns.iter().map(|(title, _, _)| *title).collect();
    let mut table = table(&titles);
    for item in list(items) {
        let row: Vec<String> = columns
            .iter()
            .map(|(_, at, show)| show(item.pointer(at).unwrap_or(&Value::Null)))
            .collect();
        table.add_row(row);
    }
    rendered(&table)
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// A value as a table cell: strings bare, lists joined, absent as `-`.
pub(crate) fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn date(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn date_s(v: &Value) -> String {
    date(
        v.as_i64()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
    )
}

pub(crate) fn date_ms(v: &Value) -> String {
    date(v.as_i64().and_then(chrono::DateTime::from_timestamp_millis))
}

/// An object as FIELD / VALUE rows, in the server's order.
fn fields(v: &Value) -> String {
    let mut table = table(&["FIELD", "VALUE"]);
    for (key, value) in v.as_object().into_iter().flatten() {
        let shown = match (key.as_str(), value) {
            // Unix seconds (created_at, imported_at) and milliseconds.
            (k, v) if k.ends_with("_at") => date_s(v),
            (k, v) if k.ends_with("_ms") => date_ms(v),
            (_, Value::Object(_)) => value.to_string(),
            (_, v) => cell(v),
        };
        table.add_row([key.clone(), shown]);
    }
    rendered(&table)
}

fn package_table(packages: &Value) -> String {
    let table = list_table(
        packages,
        &[
            ("ID", "/id", cell),
            ("DISTRIBUTION", "/distribution", cell),
            ("NAME", "/name", cell),
            ("VERSION", "/version", cell),
            ("ARCH", "/architecture", cell),
            ("SIZE", "/size", cell),
            ("UPLOADED", "/created_at", date_s),
            ("BY", "/uploaded_by", cell),
        ],
    );
    format!("{table}{} packages\n", list(packages).len())
}

fn overview_table(v: &Value) -> String {
    let mut table = table(&["ID", "NAME", "PACKAGES", "LATEST", "MADE", "SCAN STATES"]);
    for d in list(&v["distributions"]) {
        let latest = &d["latest"];
        let states = d["scan_states"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(state, n)| format!("{n} {state}"))
            .collect::<Vec<_>>()
            .join(", ");
        table.add_row([
            cell(&d["id"]),
            cell(&d["display_name"]),
            latest["packages"].as_i64().unwrap_or(0).to_string(),
            cell(&latest["number"]),
            date_ms(&latest["created_ms"]),
            states,
        ]);
    }
    rendered(&table)
}

/// A package's details: its record, then what else is known, one section each.
fn package_details(v: &Value) -> String {
    let mut out = fields(&v["package"]);
    let scan = &v["scan"];
    out.push_str(&format!(
        "scan: {} (worst {}), {} findings; held back: {}\n",
        text(&scan["state"]),
        text(&scan["worst"]),
        list(&scan["findings"]).len(),
        v["held"]
    ));
    let versions: Vec<String> = list(&v["memberships"])
        .iter()
        .map(|m| match m["removed_in"].as_i64() {
            Some(to) => format!("{}-{}", m["added_in"], to - 1),
            None => format!("{} onwards", m["added_in"]),
        })
        .collect();
    out.push_str(&format!("in versions: {}\n", versions.join(", ")));
    for s in list(&v["same_file"]) {
        out.push_str(&format!(
            "same file in {}: {}\n",
            text(&s["distribution"]),
            text(&s["id"])
        ));
    }
    for p in list(&v["tree_paths"]) {
        out.push_str(&format!("tree path: {}\n", text(p)));
    }
    for d in list(&v["decisions"]) {
        out.push_str(&format!(
            "decision: {} by {} at {}: {}\n",
            text(&d["decision"]),
            text(&d["actor"]),
            date_ms(&d["at_ms"]),
            text(&d["justification"])
        ));
    }
    out
}

fn distribution_table(v: &Value) -> String {
    let mut out = list_table(
        &v["distributions"],
        &[
            ("ID", "/id", cell),
            ("NAME", "/display_name", cell),
            ("FAMILY", "/family", cell),
            ("FORMAT", "/format", cell),
            ("ARCHITECTURES", "/architectures", cell),
            ("COMPONENTS", "/components", cell),
        ],
    );
    for r in list(&v["retired"]) {
        out.push_str(&format!(
            "retired: {} (at {}, {} versions kept)\n",
            text(&r["id"]),
            date_s(&r["retired_at"]),
            r["latest_version"]
        ));
    }
    out
}

fn plugin_table(v: &Value) -> String {
    let mut table = table(&[
        "NAME",
        "VERSION",
        "KIND",
        "ID",
        "STATUS",
        "DISTRIBUTIONS / ERROR",
    ]);
    for p in list(&v["plugins"]) {
        if p["status"] == "failed" {
            table.add_row([
                cell(&p["file"]),
                "-".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
                "failed".to_owned(),
                cell(&p["error"]),
            ]);
            continue;
        }
        let dists: Vec<Value> = list(&p["distributions"])
            .iter()
            .map(|d| d["id"].clone())
            .collect();
        table.add_row([
            cell(&p["name"]),
            cell(&p["version"]),
            cell(&p["kind"]),
            cell(&p["id"]),
            cell(&p["status"]),
            cell(&Value::Array(dists)),
        ]);
    }
    format!("contract {}\n{}", text(&v["contract"]), rendered(&table))
}

fn scan_table(v: &Value) -> String {
    let mut out = format!(
        "{}: {} (worst {}){}\n",
        text(&v["package_id"]),
        text(&v["state"]),
        text(&v["worst"]),
        match text(&v["reason"]) {
            "" => String::new(),
            r => format!(": {r}"),
        }
    );
    if let Some(d) = v["decision"].as_object() {
        out.push_str(&format!(
            "decision: {} by {} at {}: {}\n",
            cell(&d["decision"]),
            cell(&d["actor"]),
            date_ms(&d["at_ms"]),
            cell(&d["justification"])
        ));
    }
    if list(&v["findings"]).is_empty() {
        out.push_str("no findings\n");
        return out;
    }
    out.push_str(&list_table(
        &v["findings"],
        &[
            ("ADVISORY", "/advisory_id", cell),
            ("ALIASES", "/aliases", cell),
            ("SEVERITY", "/severity", cell),
            ("FIXED IN", "/fixed", cell),
            ("SUMMARY", "/summary", cell),
        ],
    ));
    out
}
