//! `sandboxer exec`: runs a command in a chat's sandbox as a streamed exec
//! and writes its output as it comes, then exits with the command's code.

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use serde_json::json;

use sandboxer_http::process_dto::{ExecStreamResult, Offsets, OutputData, OutputError};

use super::Endpoint;
use super::output::{NdjsonLines, streaming, write_output};

/// What a shell prints for a command it killed on a timeout (`timeout(1)`).
const TIMED_OUT: i32 = 124;

#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    /// The chat whose sandbox runs the command.
    #[arg(long)]
    pub chat: String,
    /// Kill the command after this many milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Working directory inside the sandbox.
    #[arg(long)]
    pub workdir: Option<String>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub cmd: Vec<String>,
}

/// One line of a streamed exec's answer.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ExecLine {
    Output(OutputData),
    Result(ExecStreamResult),
    Error(OutputError),
}

/// Writes the command's output as it comes and returns its exit code.
pub async fn exec(args: ExecArgs) -> anyhow::Result<i32> {
    let client = args.endpoint.client()?;
    let mut body = json!({ "cmd": args.cmd, "stream": true });
    if let Some(ms) = args.timeout_ms {
        body["timeout_ms"] = json!(ms);
    }
    if let Some(dir) = args.workdir {
        body["workdir"] = json!(dir);
    }
    let sent = args
        .endpoint
        .request(
            &client,
            reqwest::Method::POST,
            &["v1", "chats", &args.chat, "exec"],
        )?
        .json(&body)
        .send()
        .await;
    let mut lines = NdjsonLines::new(streaming(sent, &args.endpoint.url).await?);
    let mut at = Offsets {
        stdout: 0,
        stderr: 0,
    };
    while let Some(line) = lines.next().await.context("reading the output")? {
        let parsed = serde_json::from_slice::<ExecLine>(&line).with_context(|| {
            format!(
                "an output line the CLI cannot read: {}",
                String::from_utf8_lossy(&line)
            )
        })?;
        match parsed {
            ExecLine::Output(event) => write_output(&event, &mut at)?,
            ExecLine::Result(result) => return Ok(exit_code(&result)),
            ExecLine::Error(OutputError { error }) => {
                bail!(
                    "the command's output stopped: {}: {}",
                    error.code,
                    error.message
                )
            }
        }
    }
    bail!("the answer ended before the command's result")
}

fn exit_code(result: &ExecStreamResult) -> i32 {
    if result.truncated {
        eprintln!("sandboxer: output was truncated");
    }
    if result.timed_out {
        eprintln!("sandboxer: the command timed out and was killed");
        return TIMED_OUT;
    }
    i32::try_from(result.exit_code).unwrap_or(1)
}
