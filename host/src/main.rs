//! The `repod` command line: `serve`, and offline admin tools that work on
//! the data directory without a running daemon.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use repod::config::{Overrides, Settings};
use repod::tokens::{self, Role};

#[derive(Parser)]
#[command(name = "repod", version, about = "Package repository daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Serve(ServeArgs),
    /// Manage API tokens directly in the data directory.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
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
struct Common {
    /// Data directory: database, blobs, published trees [default: ./data]
    #[arg(long, env = "REPOD_DATA")]
    data: Option<PathBuf>,
    /// TOML config file
    #[arg(long, env = "REPOD_CONFIG")]
    config: Option<PathBuf>,
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

fn main() -> anyhow::Result<()> {
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
            })?;
            runtime.block_on(repod::server::serve(settings))
        }
        Command::Token {
            command: TokenCommand::Create { role, name, common },
        } => {
            let settings = Settings::resolve(Overrides {
                data: common.data,
                config: common.config,
                ..Default::default()
            })?;
            runtime.block_on(async {
                let db = repod::db::open(&settings.database_path()).await?;
                let token = tokens::create(&db, &name, role).await?;
                eprintln!(
                    "created {} token {name} in {}; it is shown only once:",
                    role.as_str(),
                    settings.database_path().display()
                );
                println!("{token}");
                Ok(())
            })
        }
    }
}
