//! A live process's stdin: the first bytes of its spec fed in the
//! background, then `WriteStdin` appends at absolute offsets (a retried
//! write is not doubled). Writes never block the agent: non-blocking, with
//! at most the caller's wait for a process that does not read.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use sandboxer_agent_proto::{AgentError, ErrorKind, Reply, StdinWrite};
use serde_bytes::ByteBuf;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio::sync::OwnedMutexGuard;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::live::Process;
use super::pty::Master;

/// The longest a write waits for the process to read.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Where stdin bytes go: a pipe, or the terminal's master.
pub enum StdinPipe {
    Pipe(pipe::Sender),
    Pty(Arc<Master>),
}

impl StdinPipe {
    async fn write_some(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Self::Pipe(pipe) => pipe.write(data).await,
            Self::Pty(master) => master.write(data).await,
        }
    }

    /// Writes what fits before `deadline` (none: all of it), counting it on
    /// `process` as it goes. `Err` when the reading end is gone.
    async fn write_until(
        &mut self,
        process: &Process,
        data: &[u8],
        deadline: Option<Instant>,
    ) -> Result<usize, usize> {
        let mut done = 0;
        while done < data.len() {
            let write = self.write_some(&data[done..]);
            let written = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, write).await {
                    Ok(written) => written,
                    Err(_) => break,
                },
                None => write.await,
            };
            match written {
                Ok(0) => return Err(done),
                Ok(n) => {
                    done += n;
                    process.stdin_wrote(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EPIPE, or EIO from a terminal nobody holds.
                Err(_) => return Err(done),
            }
        }
        Ok(done)
    }

    /// Ends the input: a pipe closes (dropped by the caller), a terminal
    /// gets its end-of-file character. False if that did not fit in time.
    async fn close(&mut self, deadline: Instant) -> bool {
        match self {
            Self::Pipe(_) => true,
            Self::Pty(master) => {
                let eof = [master.eof_char()];
                matches!(
                    tokio::time::timeout_at(deadline, master.write(&eof)).await,
                    Ok(Ok(1)) | Ok(Err(_))
                )
            }
        }
    }
}

/// Feeds the spec's first stdin bytes in the background, holding the
/// writer (so `WriteStdin` comes after them), then closes stdin unless the
/// spec keeps it open.
pub fn feed(
    process: Arc<Process>,
    mut writer: OwnedMutexGuard<Option<StdinPipe>>,
    data: ByteBuf,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Some(pipe) = writer.as_mut() else { return };
        let fed = pipe.write_until(&process, &data, None).await;
        let far = Instant::now() + MAX_WAIT;
        if fed.is_err() || (!process.spec.keep_stdin_open && pipe.close(far).await) {
            *writer = None;
            process.stdin_closed();
        }
    })
}

/// `WriteStdin`: see `StdinWrite`.
pub async fn write(process: &Process, request: StdinWrite) -> Reply {
    let deadline = Instant::now() + Duration::from_millis(request.wait_ms).min(MAX_WAIT);
    // Another write (or the first bytes) may hold the writer for a while.
    let writer = tokio::time::timeout_at(deadline, process.stdin.lock()).await;
    let state = process.stdin_state();
    let start = request.offset.unwrap_or(state.offset);
    if start > state.offset {
        let why = format!(
            "stdin offset {start} is past the {} bytes written",
            state.offset
        );
        return Reply::Error(AgentError::new(ErrorKind::BadRequest, why));
    }
    let skip = usize::try_from(state.offset - start)
        .map_or(request.data.len(), |skip| skip.min(request.data.len()));
    let data = &request.data[skip..];
    let Ok(mut writer) = writer else {
        return Reply::Stdin(state);
    };
    if !state.open || writer.is_none() {
        *writer = None;
        // A retry of a write that went through in full is answered again.
        if request.offset.is_some() && data.is_empty() {
            return Reply::Stdin(state);
        }
        return closed();
    }
    let Some(pipe) = writer.as_mut() else {
        return closed();
    };
    let wrote = pipe.write_until(process, data, Some(deadline)).await;
    match wrote {
        Err(0) if !data.is_empty() => {
            *writer = None;
            process.stdin_closed();
            return closed();
        }
        Err(_) => {
            *writer = None;
            process.stdin_closed();
        }
        Ok(n) if n == data.len() && request.close => {
            if pipe.close(deadline).await {
                *writer = None;
                process.stdin_closed();
            }
        }
        Ok(_) => {}
    }
    // The process may have ended meanwhile: its stdin closes with it.
    if !process.stdin_state().open {
        *writer = None;
    }
    Reply::Stdin(process.stdin_state())
}

/// After the process ended: lets go of stdin, once no write holds it.
pub async fn release(process: &Process) {
    *process.stdin.lock().await = None;
}

fn closed() -> Reply {
    Reply::Error(AgentError::new(ErrorKind::Conflict, "stdin is closed"))
}
