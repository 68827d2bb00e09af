//! `sandboxer ps`, `logs` and `kill`: a chat's live processes. `logs -f`
//! follows a process to its end across dropped connections and an output
//! buffer the reader fell behind, resuming from the offsets it holds, so no
//! byte is written twice.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use reqwest::StatusCode;
use serde_json::{Value, json};

use sandboxer_http::process_dto::{Offsets, OutputError, OutputEvent, ProcessList};

use super::output::{NdjsonLines, is_connection_error, streaming, write_output};
use super::{Endpoint, answer, refuse};

/// Connections in a row that may break before `logs -f` gives up.
const RECONNECTS: u32 = 5;
/// The first pause before connecting again; each further one is longer.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);
/// A follow stream sends a heartbeat every 15 s; this long without a byte
/// and the connection is taken for dead.
const FOLLOW_SILENCE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    /// The chat whose sandbox runs the process.
    #[arg(long)]
    pub chat: String,
    /// The process's id (see `sandboxer ps`).
    pub process: String,
    /// Keep writing output as it comes, until the process ends.
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, Clone, Args)]
pub struct KillArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    /// The chat whose sandbox runs the process.
    #[arg(long)]
    pub chat: String,
    /// The process's id (see `sandboxer ps`).
    pub process: String,
    /// Send this signal (TERM, INT, HUP, KILL, ...) to the process's group
    /// instead of killing its whole tree.
    #[arg(long)]
    pub signal: Option<String>,
}

/// Lists a chat's processes, running and recently ended, one per line.
pub async fn ps(endpoint: Endpoint, chat: &str) -> anyhow::Result<()> {
    let client = endpoint.client()?;
    let sent = endpoint
        .request(
            &client,
            reqwest::Method::GET,
            &["v1", "chats", chat, "processes"],
        )?
        .send()
        .await;
    let (status, body) = answer(sent, &endpoint.url).await?;
    if !status.is_success() {
        return Err(refuse(status, &body));
    }
    let list: ProcessList =
        serde_json::from_value(body).context("a process list the CLI cannot read")?;
    println!(
        "{:<36} {:>7} {:<8} {:>4} {:<30} COMMAND",
        "PROCESS", "PID", "STATUS", "EXIT", "STARTED"
    );
    for p in list.processes {
        let exit = p
            .exit_code
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        println!(
            "{:<36} {:>7} {:<8} {:>4} {:<30} {}",
            p.process_id,
            p.pid,
            p.status,
            exit,
            p.started_at,
            p.cmd.join(" ")
        );
    }
    Ok(())
}

/// Kills a process's tree, or sends it a signal.
pub async fn kill(args: KillArgs) -> anyhow::Result<()> {
    let client = args.endpoint.client()?;
    let path = ["v1", "chats", &args.chat, "processes", &args.process];
    let request = match &args.signal {
        None => args
            .endpoint
            .request(&client, reqwest::Method::DELETE, &path)?,
        Some(signal) => args
            .endpoint
            .request(
                &client,
                reqwest::Method::POST,
                &[&path[..], &["signal"][..]].concat(),
            )?
            .json(&json!({ "signal": signal })),
    };
    let (status, body) = answer(request.send().await, &args.endpoint.url).await?;
    if status != StatusCode::NO_CONTENT {
        return Err(refuse(status, &body));
    }
    match &args.signal {
        None => println!("killed process {}", args.process),
        Some(signal) => println!("sent {signal} to process {}", args.process),
    }
    Ok(())
}

/// How one connection's output stream ended.
enum Ended {
    /// The process's end (with `follow`), or the snapshot's.
    Done,
    /// The service dropped output the reader had not had; go on from `oldest`.
    Expired(Offsets),
    /// The connection broke or the body stopped early; connect again.
    Broken(anyhow::Error),
}

/// Writes a process's output, stdout to stdout and stderr to stderr; with
/// `follow`, as it comes until the process ends.
pub async fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
    if args.follow {
        builder = builder.read_timeout(FOLLOW_SILENCE);
    }
    let client = builder.build().context("building the HTTP client")?;
    let mut at = Offsets {
        stdout: 0,
        stderr: 0,
    };
    let mut failures = 0u32;
    let mut answered = false;
    loop {
        let before = (at.stdout, at.stderr);
        match read_output(&args, &client, &mut at, &mut answered).await? {
            Ended::Done => return Ok(()),
            Ended::Expired(oldest) => {
                if oldest.stdout <= at.stdout && oldest.stderr <= at.stderr {
                    bail!(
                        "the service says output before offsets {}/{} is gone, yet the CLI asked from {}/{}",
                        oldest.stdout,
                        oldest.stderr,
                        at.stdout,
                        at.stderr
                    );
                }
                say_dropped(at, oldest);
                at.stdout = at.stdout.max(oldest.stdout);
                at.stderr = at.stderr.max(oldest.stderr);
                failures = 0;
            }
            // Before any answer, a service that is not there is an error.
            Ended::Broken(err) if !answered => {
                return Err(
                    err.context(format!("cannot reach the service at {}", args.endpoint.url))
                );
            }
            Ended::Broken(err) => {
                // A few breaks in a row, not in all: this connection brought output.
                if (at.stdout, at.stderr) != before {
                    failures = 0;
                }
                failures += 1;
                if failures > RECONNECTS {
                    return Err(err.context(format!(
                        "the output stream broke {RECONNECTS} times in a row"
                    )));
                }
                tokio::time::sleep(RECONNECT_PAUSE * failures).await;
            }
        }
    }
}

/// One connection: writes the events it brings and says how it ended.
async fn read_output(
    args: &LogsArgs,
    client: &reqwest::Client,
    at: &mut Offsets,
    answered: &mut bool,
) -> anyhow::Result<Ended> {
    let path = [
        "v1",
        "chats",
        &args.chat,
        "processes",
        &args.process,
        "output",
    ];
    let mut query = vec![
        ("stdout_offset", at.stdout.to_string()),
        ("stderr_offset", at.stderr.to_string()),
    ];
    if args.follow {
        query.push(("follow", "true".to_owned()));
    }
    let sent = args
        .endpoint
        .request_with_query(client, reqwest::Method::GET, &path, &query)?
        .send()
        .await;
    let again = *answered;
    if sent.is_ok() {
        *answered = true;
    }
    let response = match sent {
        Ok(response) if response.status() == StatusCode::GONE => {
            let (status, body) = answer(Ok(response), &args.endpoint.url).await?;
            return oldest(&body)
                .map(Ended::Expired)
                .ok_or_else(|| refuse(status, &body));
        }
        // A service restarting or busy while the CLI follows: try again.
        Ok(response) if again && response.status().is_server_error() => {
            let (status, body) = answer(Ok(response), &args.endpoint.url).await?;
            return Ok(Ended::Broken(refuse(status, &body)));
        }
        Err(err) => return Ok(Ended::Broken(err.into())),
        sent => streaming(sent, &args.endpoint.url).await?,
    };
    let mut lines = NdjsonLines::new(response);
    loop {
        let line = match lines.next().await {
            Ok(Some(line)) => line,
            Ok(None) if args.follow => {
                return Ok(Ended::Broken(anyhow::anyhow!(
                    "the output stream ended before the process"
                )));
            }
            Ok(None) => return Ok(Ended::Done),
            Err(err) if is_connection_error(&err) => return Ok(Ended::Broken(err)),
            Err(err) => return Err(err),
        };
        let event = serde_json::from_slice::<OutputEvent>(&line).with_context(|| {
            format!(
                "an output line the CLI cannot read: {}",
                String::from_utf8_lossy(&line)
            )
        })?;
        match event {
            OutputEvent::Output(data) => write_output(&data, at)?,
            // A heartbeat while following; the last line of a snapshot.
            OutputEvent::End(end) if end.status == "running" && args.follow => {}
            OutputEvent::End(_) => return Ok(Ended::Done),
            OutputEvent::Error(OutputError { error }) => match error.oldest {
                Some(oldest) if error.code == "cursor_expired" => {
                    return Ok(Ended::Expired(oldest));
                }
                _ => bail!("the output stopped: {}: {}", error.code, error.message),
            },
        }
    }
}

/// The oldest offsets of a 410 `cursor_expired` answer.
fn oldest(body: &Value) -> Option<Offsets> {
    let oldest = &body["error"]["oldest"];
    Some(Offsets {
        stdout: oldest["stdout"].as_u64()?,
        stderr: oldest["stderr"].as_u64()?,
    })
}

fn say_dropped(at: Offsets, oldest: Offsets) {
    for (stream, from, to) in [
        ("stdout", at.stdout, oldest.stdout),
        ("stderr", at.stderr, oldest.stderr),
    ] {
        if to > from {
            eprintln!(
                "sandboxer: the service no longer holds {stream} before offset {to} \
                 (bytes {from}..{to} were dropped from its buffer); going on from there"
            );
        }
    }
}
