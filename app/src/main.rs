//! The `sandboxer` binary: `serve` runs the service; `exec`, `ls`,
//! `hibernate`, `rm`, `cleanup`, the live-process commands (`ps`, `logs`, `kill`) and `shell`
//! are clients of a running one, and so is `mcp` (MCP on stdin/stdout,
//! forwarded to the service's `/mcp`); `image build` makes the default
//! sandbox image without a registry.

mod client;
mod config;
mod defaults;
mod image;
mod nodes;
mod replicas;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::client::{Endpoint, ExecArgs, KillArgs, LogsArgs, ShellArgs};
use crate::config::{ConfigFile, ServeSettings};

#[derive(Debug, Parser)]
#[command(
    name = "sandboxer",
    version,
    about = "One isolated Docker sandbox per chat, over HTTP.",
    long_about = "One isolated Docker sandbox per chat, over HTTP.\n\n\
        Settings of `serve` come from a TOML file (--config / SANDBOXER_CONFIG), \
        overridden by SANDBOXER_* variables, overridden by flags."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (HTTP API, background cleanup).
    Serve {
        #[command(flatten)]
        file: ConfigFile,
        #[command(flatten)]
        settings: Box<ServeSettings>,
    },
    /// Run a command in a chat's sandbox, its output written as it comes;
    /// exits with the command's code (124 when it timed out).
    Exec(ExecArgs),
    /// List a chat's live processes, running and recently ended.
    Ps {
        #[command(flatten)]
        endpoint: Endpoint,
        /// The chat whose processes are listed.
        #[arg(long)]
        chat: String,
    },
    /// Print a process's output (stdout to stdout, stderr to stderr); with
    /// -f, as it comes until the process ends.
    Logs(LogsArgs),
    /// Kill a process's whole tree, or send it a signal.
    Kill(KillArgs),
    /// Run a shell (or --cmd PROGRAM...) on a terminal in a chat's sandbox
    /// and attach this terminal to it; exits with the process's code.
    Shell(ShellArgs),
    /// List the active sandboxes and the hibernated chats.
    Ls {
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Hibernate a chat's sandbox now: its container and processes go, its
    /// files are kept (until the retention passes) and the next use resumes it.
    Hibernate {
        #[command(flatten)]
        endpoint: Endpoint,
        /// The chat whose sandbox hibernates.
        #[arg(long)]
        chat: String,
    },
    /// Stop and remove a chat's sandbox with its files (a hibernated one too).
    Rm {
        #[command(flatten)]
        endpoint: Endpoint,
        /// The chat whose sandbox goes.
        #[arg(long)]
        chat: String,
    },
    /// Run cleanup now and print what it did.
    Cleanup {
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Serve MCP on stdin/stdout for a client that spawns its tools,
    /// forwarding to the running service's `/mcp` (SANDBOXER_URL, SANDBOXER_TOKEN).
    Mcp {
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Sandbox images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Build the default sandbox image locally (Debian + python3, by
    /// debootstrap and `docker import`); needs root and debootstrap.
    Build(image::BuildArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("sandboxer: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve { file, settings } => {
                let config = config::load(*settings, file.path.as_deref())?;
                serve::run(config).await.map(|()| 0)
            }
            Command::Exec(args) => client::exec(args).await,
            Command::Ps { endpoint, chat } => client::ps(endpoint, &chat).await.map(|()| 0),
            Command::Logs(args) => client::logs(args).await.map(|()| 0),
            Command::Kill(args) => client::kill(args).await.map(|()| 0),
            Command::Shell(args) => client::shell(args).await,
            Command::Ls { endpoint } => client::ls(endpoint).await.map(|()| 0),
            Command::Hibernate { endpoint, chat } => {
                client::hibernate(endpoint, &chat).await.map(|()| 0)
            }
            Command::Rm { endpoint, chat } => client::rm(endpoint, &chat).await.map(|()| 0),
            Command::Cleanup { endpoint } => client::cleanup(endpoint).await.map(|()| 0),
            Command::Mcp { endpoint } => client::mcp(endpoint).await.map(|()| 0),
            Command::Image {
                command: ImageCommand::Build(args),
            } => image::build(args).await.map(|()| 0),
        }
    });
    match outcome {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            eprintln!("sandboxer: {err:#}");
            ExitCode::FAILURE
        }
    }
}
