//! Killing a timed-out exec's whole process tree. Docker cannot kill an
//! exec, so, in order until one works (all bounded by `exec_kill_grace`):
//!
//! 1. a second exec in the sandbox, as the sandbox user (root without
//!    CAP_KILL could not signal it), finds every process carrying the exec's
//!    marker or in a session of one, SIGSTOPs them round after round until
//!    no new one appears (so none can fork away), then SIGKILLs them all;
//! 2. when that exec cannot even start (a fork bomb holds every pid) and the
//!    engine is local with a host-process runtime (runc), the same is done
//!    by host pid, limited to processes in the container's cgroup;
//! 3. step 1 again with backoff;
//! 4. last resort: the container is restarted (the workspace survives).

use std::time::{Duration, Instant};

use bollard::models::ExecConfig;
use bollard::query_parameters::RestartContainerOptionsBuilder;

use crate::attr::kill;
use crate::exec::{Capture, MARKER_VAR, Output};
use crate::host_kill;
use crate::runtime::DockerSandboxRuntime;

const DONE: &str = "sandboxer-kill-done";
/// What is kept of the kill script's output: it prints one line, but a
/// process in the sandbox could make it print more (it shares the tree).
const KILL_OUTPUT_CAP: usize = 64 * 1024;

/// POSIX sh: builtins plus one `grep` per round. `$1` is the marker's
/// value. Each round's process list comes from `$(echo .; exec grep ...)`:
/// the `.` proves the one fork it needs worked, so a sandbox that cannot
/// fork (pids exhausted) never reports success for a scan that did not run.
const KILL_SCRIPT: &str = r#"
m="SANDBOXER_EXEC_ID=$1"; sids=" "; stopped=" "; round=0; scanned=0
while [ $round -lt 200 ]; do
  round=$((round+1)); new=0
  list=$(echo .; exec grep -lsFxz -- "$m" /proc/[0-9]*/environ)
  case "$list" in .*) scanned=1;; *) scanned=0;; esac
  for f in $list; do
    [ "$f" = . ] && continue
    p=${f#/proc/}; p=${p%/environ}
    case "$stopped" in *" $p "*) continue;; esac
    if read -r st 2>/dev/null < "/proc/$p/stat"; then
      set -- ${st##*") "}
      case "$sids" in *" $4 "*) ;; *) sids="$sids$4 ";; esac
    fi
    kill -STOP "$p" 2>/dev/null; stopped="$stopped$p "; new=1
  done
  for f in /proc/[0-9]*/stat; do
    p=${f#/proc/}; p=${p%/stat}
    [ "$p" = "$$" ] && continue
    case "$stopped" in *" $p "*) continue;; esac
    read -r st 2>/dev/null < "$f" || continue
    set -- ${st##*") "}
    [ "$1" = Z ] && continue
    case "$sids" in *" $4 "*) kill -STOP "$p" 2>/dev/null; stopped="$stopped$p "; new=1;; esac
  done
  [ $new = 0 ] && break
done
[ "$stopped" = " " ] || kill -KILL $stopped 2>/dev/null
[ $scanned = 1 ] && echo "sandboxer-kill-done$stopped"
"#;

impl DockerSandboxRuntime {
    /// Kills the tree of exec `exec_id` (marked `marker`) in `container`;
    /// says how (a `sandbox.exec.kill` value).
    pub(crate) async fn kill_exec(
        &self,
        container: &str,
        exec_id: &str,
        marker: &str,
        deadline: Instant,
    ) -> &'static str {
        let mut wait = Duration::from_millis(50);
        let mut by_host = false;
        let mut host_tried = false;
        loop {
            if self.kill_inside(container, marker, deadline).await {
                return if by_host {
                    kill::HOST_PID
                } else {
                    kill::IN_SANDBOX
                };
            }
            if !host_tried && self.config.host_kill && self.engine.local {
                host_tried = true;
                let killed = self.kill_on_host(container, exec_id, marker).await;
                if killed > 0 {
                    by_host = true;
                    continue;
                }
            }
            if Instant::now() + wait >= deadline {
                break;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
        if by_host {
            // Killed from the host but not confirmed from inside.
            return kill::HOST_PID;
        }
        if self.config.restart_on_failed_kill {
            let options = RestartContainerOptionsBuilder::new().t(0).build();
            let restarted = self
                .engine
                .call(
                    "restart container",
                    self.engine
                        .docker
                        .restart_container(container, Some(options)),
                )
                .await;
            match restarted {
                Ok(()) => {
                    tracing::warn!(%container, "restarted a sandbox whose timed-out exec could not be killed");
                    return kill::RESTART;
                }
                Err(fault) => tracing::warn!(%container, ?fault, "could not restart a sandbox"),
            }
        }
        tracing::warn!(%container, %exec_id, "a timed-out exec's processes may be left");
        kill::FAILED
    }

    /// Step 1: the kill script as an exec; true when it ran to its end.
    async fn kill_inside(&self, container: &str, marker: &str, deadline: Instant) -> bool {
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(500));
        let config = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                KILL_SCRIPT.into(),
                "sandboxer-kill".into(),
                marker.into(),
            ]),
            ..Default::default()
        };
        let run = async {
            let exec = self
                .engine
                .call(
                    "create kill exec",
                    self.engine.docker.create_exec(container, config),
                )
                .await
                .ok()?;
            let (output, _input) = self.start_attached(&exec.id).await.ok()?;
            Some(kill_output(output).await)
        };
        match tokio::time::timeout(budget, run).await {
            Ok(Some(capture)) => {
                let out = String::from_utf8_lossy(&capture.stdout);
                let done = out.contains(DONE);
                if !done {
                    tracing::debug!(%container, stdout = %out, stderr = %String::from_utf8_lossy(&capture.stderr), "kill exec did not finish");
                }
                done
            }
            _ => false,
        }
    }

    /// Step 2: by host pid. The number of processes signalled.
    async fn kill_on_host(&self, container: &str, exec_id: &str, marker: &str) -> usize {
        let docker = &self.engine.docker;
        let Ok(info) = self.engine.inspect_container(container).await else {
            return 0;
        };
        let runtime = info.host_config.and_then(|h| h.runtime).unwrap_or_default();
        if !host_kill::runs_host_processes(&runtime) {
            return 0;
        }
        let Some(id) = info.id else { return 0 };
        let session = match self
            .engine
            .call("inspect exec", docker.inspect_exec(exec_id))
            .await
        {
            Ok(exec) => exec
                .pid
                .and_then(|p| i32::try_from(p).ok())
                .filter(|p| *p > 0),
            Err(fault) => {
                tracing::debug!(?fault, "exec inspect failed; killing by marker only");
                None
            }
        };
        let marker = format!("{MARKER_VAR}={marker}");
        let container = container.to_owned();
        match tokio::task::spawn_blocking(move || host_kill::kill_tree(&id, session, &marker)).await
        {
            Ok(Ok(n)) => {
                tracing::info!(%container, killed = n, "killed a timed-out exec by host pid");
                n
            }
            Ok(Err(err)) => {
                tracing::warn!(%container, %err, "host kill failed");
                0
            }
            Err(err) => {
                tracing::warn!(%container, %err, "host kill task failed");
                0
            }
        }
    }
}

/// The kill exec's output up to `KILL_OUTPUT_CAP` per stream, read to its
/// end or its first error (what came before still tells whether it finished).
async fn kill_output(mut output: Output) -> Capture {
    let mut capture = Capture::new(KILL_OUTPUT_CAP);
    let _ = capture.drain(&mut output).await;
    capture
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::container::LogOutput;
    use bytes::Bytes;

    #[tokio::test]
    async fn the_kill_output_is_capped_per_stream() {
        let big = Bytes::from(vec![b'x'; KILL_OUTPUT_CAP / 2 + 1]);
        let chunks = [
            LogOutput::StdOut {
                message: big.clone(),
            },
            LogOutput::StdErr {
                message: big.clone(),
            },
            LogOutput::StdOut {
                message: big.clone(),
            },
            LogOutput::Console {
                message: Bytes::from_static(DONE.as_bytes()),
            },
            LogOutput::StdErr { message: big },
        ];
        let output: Output = Box::pin(futures::stream::iter(chunks.map(Ok)));
        let capture = kill_output(output).await;
        assert_eq!(capture.stdout.len(), KILL_OUTPUT_CAP);
        assert_eq!(capture.stderr.len(), KILL_OUTPUT_CAP);
        assert!(capture.truncated);
    }
}
