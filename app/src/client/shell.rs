//! `sandboxer shell`: starts a process on a terminal in a chat's sandbox
//! and drives it from the local one over the process's WebSocket: keys go
//! out as binary frames, the terminal's bytes come back as binary frames,
//! a local resize goes as a `resize` message, and the process's `exit`
//! message gives the CLI's exit code. Piped stdin works too: at its end the
//! process's stdin is closed (end-of-file on its terminal) once every byte
//! is in, and the output is read until the process ends.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use sandboxer_http::process_dto::OutputError;
use sandboxer_http::routes::pty::PtyControl;

use super::terminal::{self, RawMode};
use super::{Endpoint, answer, refuse};

/// What runs on the terminal unless `--cmd` says otherwise.
const DEFAULT_CMD: [&str; 2] = ["sh", "-i"];
/// Bytes of one read of the local stdin, sent as one frame.
const READ_SIZE: usize = 8192;
/// The longest pause between two tries to close the process's stdin.
const CLOSE_RETRY_MAX: Duration = Duration::from_secs(1);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, Clone, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    /// The chat whose sandbox runs the terminal.
    #[arg(long)]
    pub chat: String,
    /// The program to run on the terminal and its arguments, taking the
    /// rest of the line (default: `sh -i`).
    #[arg(long, num_args = 1.., allow_hyphen_values = true, value_name = "PROGRAM")]
    pub cmd: Vec<String>,
    /// Kill the process after this many milliseconds (default: the service's, an hour).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
}

/// Runs the terminal session and returns the process's exit code.
pub async fn shell(args: ShellArgs) -> anyhow::Result<i32> {
    let tty = terminal::stdin_is_terminal();
    let (cols, rows) = if tty {
        terminal::size()
    } else {
        terminal::DEFAULT_SIZE
    };
    let id = start(&args, cols, rows).await?;
    let socket = connect(&args.endpoint, &args.chat, &id).await?;
    // Dropped on every way out of this function, which restores the terminal.
    let _raw = tty.then(RawMode::enter).transpose()?;
    let session = Session {
        endpoint: &args.endpoint,
        chat: &args.chat,
        id: &id,
        tty,
    };
    let outcome = session.run(socket).await;
    if tty && outcome.is_err() {
        // The error goes below what the terminal showed, not after it.
        eprint!("\r\n");
    }
    outcome
}

/// Starts the process on a terminal of `cols` x `rows`; returns its id.
async fn start(args: &ShellArgs, cols: u16, rows: u16) -> anyhow::Result<String> {
    let cmd = if args.cmd.is_empty() {
        DEFAULT_CMD.map(str::to_owned).to_vec()
    } else {
        args.cmd.clone()
    };
    let mut body = json!({ "cmd": cmd, "pty": { "cols": cols, "rows": rows } });
    if let Some(ms) = args.timeout_ms {
        body["timeout_ms"] = json!(ms);
    }
    let client = args.endpoint.client()?;
    let sent = args
        .endpoint
        .request(
            &client,
            reqwest::Method::POST,
            &["v1", "chats", &args.chat, "processes"],
        )?
        .json(&body)
        .send()
        .await;
    let (status, answer) = answer(sent, &args.endpoint.url).await?;
    if !status.is_success() {
        return Err(refuse(status, &answer));
    }
    answer["process_id"]
        .as_str()
        .map(str::to_owned)
        .context("the service started a process without saying its id")
}

/// Opens the process's terminal WebSocket, with the token as every call has it.
async fn connect(endpoint: &Endpoint, chat: &str, id: &str) -> anyhow::Result<Socket> {
    let mut url = endpoint.url(&["v1", "chats", chat, "processes", id, "pty"])?;
    let scheme = match url.scheme() {
        "http" => "ws",
        "https" => "wss",
        other => bail!(
            "service URL {:?}: a scheme {other:?} is neither http nor https",
            endpoint.url
        ),
    };
    url.set_scheme(scheme)
        .map_err(|()| anyhow::anyhow!("service URL {:?} cannot carry a WebSocket", endpoint.url))?;
    let mut request = url.as_str().into_client_request()?;
    if let Some(token) = &endpoint.token {
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("a token that cannot be put in a header")?;
        request.headers_mut().insert(header::AUTHORIZATION, bearer);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = response
                .body()
                .as_deref()
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or(Value::Null);
            Err(refuse(status, &body))
        }
        Err(err) => {
            Err(err).with_context(|| format!("cannot open the terminal at {}", endpoint.url))
        }
    }
}

/// One attachment to the process's terminal.
struct Session<'a> {
    endpoint: &'a Endpoint,
    chat: &'a str,
    id: &'a str,
    /// The local stdin is a terminal (in raw mode).
    tty: bool,
}

impl Session<'_> {
    async fn run(&self, socket: Socket) -> anyhow::Result<i32> {
        let (mut sink, mut source) = socket.split();
        let mut keys = read_stdin();
        let mut keys_open = true;
        let mut sent = 0u64;
        let mut closer = None;
        let mut exit_code = None;
        // Only a local terminal resizes, and only its loss stops the CLI by a signal.
        let mut resized = self
            .tty
            .then(|| signal(SignalKind::window_change()))
            .transpose()?;
        let mut hangup = self.tty.then(|| signal(SignalKind::hangup())).transpose()?;
        let mut terminate = self
            .tty
            .then(|| signal(SignalKind::terminate()))
            .transpose()?;
        let ended = loop {
            tokio::select! {
                message = source.next() => match message {
                    Some(Ok(Message::Binary(bytes))) => {
                        let mut out = std::io::stdout().lock();
                        out.write_all(&bytes)?;
                        out.flush()?;
                    }
                    Some(Ok(Message::Text(text))) => {
                        if let Some(code) = self.control(text.as_str()) {
                            exit_code = Some(code);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => break Ok(()),
                    Some(Ok(_)) => {}
                    Some(Err(err)) => break Err(err),
                },
                bytes = keys.recv(), if keys_open => match bytes {
                    Some(bytes) => {
                        sent += bytes.len() as u64;
                        // A socket the server closed: the close comes next.
                        if sink.send(Message::Binary(bytes.into())).await.is_err() {
                            keys_open = false;
                        }
                    }
                    None => {
                        keys_open = false;
                        closer = Some(tokio::spawn(close_stdin(
                            self.endpoint.clone(),
                            self.chat.to_owned(),
                            self.id.to_owned(),
                            sent,
                        )));
                    }
                },
                Some(()) = next(&mut resized) => {
                    let (cols, rows) = terminal::size();
                    let resize = serde_json::to_string(&PtyControl::Resize { cols, rows })?;
                    let _ = sink.send(Message::Text(resize.into())).await;
                }
                Some(()) = next(&mut hangup) => return Ok(128 + 1),
                Some(()) = next(&mut terminate) => return Ok(128 + 15),
            }
        };
        if let Some(closer) = closer {
            closer.abort();
        }
        // The error's own text already says its source's.
        ended.map_err(|err| anyhow::anyhow!("the terminal's connection broke: {err}"))?;
        exit_code.with_context(|| {
            format!(
                "the terminal's connection closed before the process ended; process {} may still run",
                self.id
            )
        })
    }

    /// A control message from the server: the exit code once the process
    /// ended; an error is told on stderr.
    fn control(&self, text: &str) -> Option<i32> {
        if let Ok(PtyControl::Exit { exit_code }) = serde_json::from_str(text) {
            return Some(exit_code.and_then(|c| i32::try_from(c).ok()).unwrap_or(1));
        }
        let said = match serde_json::from_str::<OutputError>(text) {
            Ok(OutputError { error }) => format!("{}: {}", error.code, error.message),
            Err(_) => format!("a message the CLI does not know: {text}"),
        };
        // In raw mode a newline does not return the carriage.
        let end = if self.tty { "\r\n" } else { "\n" };
        eprint!("sandboxer: {said}{end}");
        None
    }
}

/// The next delivery of `signal`, if there is one to wait for.
async fn next(signal: &mut Option<Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// The local stdin's bytes as they are read, on a thread of its own (a
/// read of a terminal cannot be called off; the thread ends with the CLI).
/// The channel closes at end-of-file.
fn read_stdin() -> mpsc::Receiver<Vec<u8>> {
    let (keys, received) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buffer = vec![0u8; READ_SIZE];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => {
                    if keys.blocking_send(buffer[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    });
    received
}

/// Closes the process's stdin once all `sent` bytes are in it (`offset` is
/// refused with 400 until then), which a terminal's process reads as
/// end-of-file. A process that already ended has nothing to close.
async fn close_stdin(endpoint: Endpoint, chat: String, id: String, sent: u64) {
    let Ok(client) = endpoint.client() else {
        return;
    };
    let path = ["v1", "chats", &chat, "processes", &id, "stdin"];
    let mut pause = Duration::from_millis(50);
    loop {
        let query = [("offset", sent.to_string()), ("close", "true".to_owned())];
        let Ok(request) =
            endpoint.request_with_query(&client, reqwest::Method::POST, &path, &query)
        else {
            return;
        };
        match request.send().await {
            Ok(response) if response.status() == StatusCode::BAD_REQUEST => {}
            _ => return,
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(CLOSE_RETRY_MAX);
    }
}
