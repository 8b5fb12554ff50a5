//! The `repod` command line: `serve`, offline admin tools that work on the
//! data directory without a running daemon, and clients of a running
//! daemon's API (most of them in `repod::cli`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use repod::cli::{Output, Partial, Remote};
use repod::config::{Overrides, Settings};
use repod::tokens::{self, Role};

#[derive(Parser)]
#[command(
    name = "repod",
    version,
    about = "Package repository daemon",
    after_help = repod::cli::EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Serve(ServeArgs),
    /// Upload .deb/.rpm files (or directories of them) to a running daemon.
    Upload(UploadArgs),
    /// Manage the repository signing key in the data directory.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Manage API tokens directly in the data directory.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Publish distributions once, with the daemon stopped (a running
    /// daemon publishes by itself); prints one JSON report per distribution.
    Publish(PublishArgs),
    /// Promote a package to another distribution of its family (by
    /// reference: same file, no re-upload); waits until the target's tree
    /// shows it.
    Promote(PromoteArgs),
    /// Copy every package of a distribution into another of its family.
    Migrate(MigrateArgs),
    /// Rebuild every published tree from the database and the blob store
    /// (e.g. after restoring a backup without the tree).
    Init(InitArgs),
    /// Give a distribution the content of one of its earlier versions (as a
    /// new version) and publish it.
    Rollback(RollbackArgs),
    /// List a distribution's kept versions, or show one.
    Versions(VersionsArgs),
    /// Copy an installation's metadata into another, empty database (e.g.
    /// SQLite to PostgreSQL), with the daemon stopped. Blobs and trees stay
    /// where they are; start the daemon on the same data directory with
    /// `database` set to the target.
    MigrateDb(MigrateDbArgs),
    #[command(flatten)]
    Remote(repod::cli::RemoteCommand),
    /// Print a shell completion script, e.g.
    /// `repod completions bash > /etc/bash_completion.d/repod`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
struct PromoteArgs {
    /// Package name
    #[arg(long)]
    package: String,
    /// Source distribution
    #[arg(long = "from", alias = "from-dist")]
    from_dist: String,
    /// Target distribution
    #[arg(long = "to", alias = "to-dist")]
    to_dist: String,
    /// Version to promote [default: the newest in the source]
    #[arg(long)]
    version: Option<String>,
    /// Architecture to promote [default: all of that version's]
    #[arg(long)]
    architecture: Option<String>,
    /// Why, for the audit log and the version record
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
struct MigrateArgs {
    #[arg(long = "from", alias = "from-dist")]
    from_dist: String,
    #[arg(long = "to", alias = "to-dist")]
    to_dist: String,
    #[arg(long)]
    reason: Option<String>,
    /// Exit with status 1 when some packages were skipped
    #[arg(long)]
    fail_on_skip: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
struct InitArgs {
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
struct RollbackArgs {
    #[arg(long)]
    distribution: String,
    /// The version whose content to restore
    #[arg(long)]
    version: i64,
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
struct VersionsArgs {
    #[arg(long)]
    distribution: String,
    /// Show this version with its content
    #[arg(long)]
    version: Option<i64>,
    /// List at most this many [default: 100]
    #[arg(long)]
    limit: Option<i64>,
    /// List only versions below this number (the next page)
    #[arg(long)]
    before: Option<i64>,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
struct PublishArgs {
    /// Distribution to publish; repeat for several [default: all]
    #[arg(long)]
    distribution: Vec<String>,
    #[command(flatten)]
    common: Common,
    /// Directory of plugin .wasm files [default: <data>/plugins]
    #[arg(long, env = "REPOD_PLUGINS")]
    plugins: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8000]
    #[arg(long, env = "REPOD_LISTEN")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    common: Common,
    /// Directory of plugin .wasm files [default: <data>/plugins]
    #[arg(long, env = "REPOD_PLUGINS")]
    plugins: Option<PathBuf>,
}

#[derive(Args)]
struct UploadArgs {
    /// Distribution to upload into, e.g. one listed by GET /api/v1/distributions
    #[arg(long)]
    distribution: String,
    /// Daemon base URL
    #[arg(long, env = "REPOD_URL", default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Bearer token with the uploader role
    #[arg(long, env = "REPOD_TOKEN", hide_env_values = true)]
    token: String,
    /// Uploads in flight at once
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Files, or directories searched for *.deb and *.rpm
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// A summary, or every file's outcome as JSON
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Args)]
struct MigrateDbArgs {
    /// The database now: sqlite:/path/to/repod.db or postgres://...
    #[arg(long)]
    from: String,
    /// The new, empty database: postgres://... or sqlite:/path
    #[arg(long)]
    to: String,
}

#[derive(Args)]
struct Common {
    /// Data directory: database, blobs, published trees [default: ./data]
    #[arg(long, env = "REPOD_DATA")]
    data: Option<PathBuf>,
    /// TOML config file
    #[arg(long, env = "REPOD_CONFIG")]
    config: Option<PathBuf>,
    /// Metadata database: postgres://user@host/db, or an SQLite file
    /// [default: <data>/repod.db]
    #[arg(long, env = "REPOD_DATABASE_URL")]
    database: Option<String>,
}

impl Common {
    /// Settings for the offline tools, which need only the data directory.
    fn settings(self) -> anyhow::Result<Settings> {
        Settings::resolve(Overrides {
            data: self.data,
            config: self.config,
            database: self.database,
            ..Default::default()
        })
    }
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Use an existing OpenPGP secret key (armored or binary, without a
    /// passphrase) instead of the generated one; prints its fingerprint.
    Import {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once, on the last line.
    Create {
        #[arg(long, value_enum)]
        role: Role,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: Common,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("repod: {e:#}");
            ExitCode::from(repod::cli::exit_code(&e))
        }
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,wasmtime=warn,cranelift=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::resolve(Overrides {
                listen: args.listen,
                data: args.common.data,
                plugins: args.plugins,
                config: args.common.config,
                database: args.common.database,
            })?;
            runtime.block_on(repod::server::serve(settings))
        }
        Command::Upload(args) => {
            let files = repod::upload_client::collect(&args.paths)?;
            if files.is_empty() {
                anyhow::bail!("no .deb or .rpm files found in the given paths");
            }
            let options = repod::upload_client::Options {
                url: args.url,
                token: args.token,
                distribution: args.distribution,
                jobs: args.jobs,
                progress: args.output == Output::Table,
            };
            let results = repod::upload_client::run(&options, &files);
            let (text, clean) = repod::upload_client::summary(&results);
            match args.output {
                Output::Table => print!("{text}"),
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&repod::upload_client::json(&results))?
                ),
            }
            if !clean {
                return Err(Partial("some files were not taken".to_owned()).into());
            }
            Ok(())
        }
        Command::Key {
            command: KeyCommand::Import { file, common },
        } => {
            let settings = common.settings()?;
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let (key, note) = repod::signing::SigningKey::import(&settings.keys_dir(), &bytes)?;
            if let Some(note) = note {
                eprintln!("warning: {note}");
            }
            key.publish(&settings.repos_dir())?;
            runtime.block_on(async {
                let db = repod::db::open(&settings.database).await?;
                let mut conn = db.acquire().await?;
                repod::audit::record(&mut conn, "cli", "key.import", &key.fingerprint(), "")
                    .await?;
                anyhow::Ok(())
            })?;
            eprintln!("imported signing key; restart the daemon to use it");
            println!("{}", key.fingerprint());
            Ok(())
        }
        Command::Publish(args) => {
            let settings = Settings::resolve(Overrides {
                data: args.common.data,
                plugins: args.plugins,
                config: args.common.config,
                database: args.common.database,
                ..Default::default()
            })?;
            runtime.block_on(async {
                let reports = repod::server::publish_once(settings, args.distribution).await?;
                for report in reports {
                    println!("{}", serde_json::to_string(&report)?);
                }
                anyhow::Ok(())
            })
        }
        Command::Promote(args) => {
            let request = repod::api_client::promote_request(
                &args.package,
                &args.from_dist,
                &args.to_dist,
                args.version.as_deref(),
                args.architecture.as_deref(),
                args.reason.as_deref(),
            );
            let client = args.remote.client();
            let answer = args
                .remote
                .waiting("promoting", || client.promote(&request));
            args.remote
                .report(answer, repod::api_client::promote_summary)?;
            Ok(())
        }
        Command::Migrate(args) => {
            let mut request =
                serde_json::json!({"from_dist": args.from_dist, "to_dist": args.to_dist});
            if let Some(reason) = &args.reason {
                request["reason"] = serde_json::json!(reason);
            }
            let client = args.remote.client();
            let answer = args
                .remote
                .waiting("migrating", || client.migrate(&request));
            let answer = args
                .remote
                .report(answer, repod::api_client::migrate_summary)?;
            let skipped = answer["skipped"].as_u64().unwrap_or(0);
            if args.fail_on_skip && skipped > 0 {
                return Err(Partial(format!("{skipped} packages were skipped")).into());
            }
            Ok(())
        }
        Command::Init(args) => {
            let client = args.remote.client();
            let answer = args
                .remote
                .waiting("rebuilding every tree", || client.init());
            args.remote
                .report(answer, repod::api_client::init_summary)?;
            Ok(())
        }
        Command::Rollback(args) => {
            let mut request = serde_json::json!({"version": args.version});
            if let Some(reason) = &args.reason {
                request["reason"] = serde_json::json!(reason);
            }
            let client = args.remote.client();
            let answer = args.remote.waiting("rolling back", || {
                client.rollback(&args.distribution, &request)
            });
            args.remote
                .report(answer, repod::api_client::rollback_summary)?;
            Ok(())
        }
        Command::Versions(args) => {
            let client = args.remote.client();
            args.remote.report(
                client.versions(&args.distribution, args.version, args.limit, args.before),
                repod::api_client::versions_summary,
            )?;
            Ok(())
        }
        Command::Remote(command) => repod::cli::run(command),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "repod", &mut std::io::stdout());
            Ok(())
        }
        Command::MigrateDb(args) => {
            let from = repod::db::Location::parse(&args.from)?;
            let to = repod::db::Location::parse(&args.to)?;
            let counts = runtime.block_on(repod::db::copy::copy(&from, &to))?;
            for (table, n) in &counts {
                println!("{table}\t{n}");
            }
            eprintln!(
                "copied {} rows from {} to {}; start the daemon with database = \"{}\" \
                 (or REPOD_DATABASE_URL) and the same data directory",
                counts.values().sum::<u64>(),
                from.display(),
                to.display(),
                to.display()
            );
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create { role, name, common },
        } => {
            let settings = common.settings()?;
            runtime.block_on(async {
                let db = repod::db::open(&settings.database).await?;
                let mut tx = db.begin().await?;
                let (id, token) = tokens::create(&mut tx, &name, role).await?;
                repod::audit::record(
                    &mut tx,
                    "cli",
                    "token.create",
                    &id,
                    &format!("{name} ({})", role.as_str()),
                )
                .await?;
                tx.commit().await?;
                eprintln!(
                    "created {} token {name} in {}; it is shown only once:",
                    role.as_str(),
                    settings.database.display()
                );
                println!("{token}");
                Ok(())
            })
        }
    }
}
