//! A process's output off the wire, as `exec` and `logs` read it: NDJSON
//! lines taken as their chunks arrive, and output events written to the
//! CLI's own stdout and stderr at once, each byte once.

use std::io::Write;

use anyhow::{Context, bail};
use base64::Engine;
use reqwest::Response;

use sandboxer_http::process_dto::{Offsets, OutputData};

use super::{answer, refuse};

/// Longer than any line the service writes (one read's chunk, base64):
/// past it the stream is not what the CLI expects.
const MAX_LINE: usize = 64 * 1024 * 1024;

/// The answer of a call whose body streams, once its status says it will;
/// a refusal (not 2xx) is an error, as with every other call.
pub(super) async fn streaming(
    sent: reqwest::Result<Response>,
    url: &str,
) -> anyhow::Result<Response> {
    let response = sent.with_context(|| format!("cannot reach the service at {url}"))?;
    if response.status().is_success() {
        return Ok(response);
    }
    let (status, body) = answer(Ok(response), url).await?;
    Err(refuse(status, &body))
}

/// The lines of an NDJSON body, each handed out as soon as its newline came.
pub(super) struct NdjsonLines {
    response: Response,
    buffer: Vec<u8>,
    ended: bool,
}

impl NdjsonLines {
    pub(super) fn new(response: Response) -> Self {
        Self {
            response,
            buffer: Vec::new(),
            ended: false,
        }
    }

    /// The next line without its newline; `None` once the body ended. A
    /// broken connection is a `reqwest::Error` (in the chain), which a
    /// caller may take as a reason to connect again.
    pub(super) async fn next(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        loop {
            if let Some(newline) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=newline).collect();
                line.pop();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(line));
            }
            if self.ended {
                let rest = std::mem::take(&mut self.buffer);
                return Ok((!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest));
            }
            if self.buffer.len() > MAX_LINE {
                bail!("an output line longer than {MAX_LINE} bytes");
            }
            match self.response.chunk().await? {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => self.ended = true,
            }
        }
    }
}

/// Whether `err` is the connection's (refused, cut, timed out) rather than
/// the service's or the CLI's.
pub(super) fn is_connection_error(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| cause.downcast_ref::<reqwest::Error>().is_some())
}

/// Writes an output event's bytes to the CLI's stdout or stderr and
/// flushes, skipping any already written (before `at`), and moves `at`
/// past them.
pub(super) fn write_output(event: &OutputData, at: &mut Offsets) -> anyhow::Result<()> {
    let bytes = match event.encoding.as_str() {
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(&event.data)
            .context("output data that is not base64")?,
        "utf-8" => event.data.clone().into_bytes(),
        other => bail!("output in an encoding the CLI does not know: {other:?}"),
    };
    let seen = match event.stream.as_str() {
        "stdout" => &mut at.stdout,
        "stderr" => &mut at.stderr,
        other => bail!("output of a stream the CLI does not know: {other:?}"),
    };
    let end = event.offset + bytes.len() as u64;
    let skip = usize::try_from(seen.saturating_sub(event.offset)).unwrap_or(usize::MAX);
    let fresh = bytes.get(skip..).unwrap_or_default();
    if !fresh.is_empty() {
        if event.stream == "stdout" {
            let mut out = std::io::stdout().lock();
            out.write_all(fresh)?;
            out.flush()?;
        } else {
            let mut err = std::io::stderr().lock();
            err.write_all(fresh)?;
            err.flush()?;
        }
    }
    *seen = (*seen).max(end);
    Ok(())
}
