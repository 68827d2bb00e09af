//! `exec`: ExecInSandbox, with argv or a `sh -c` command line.

use std::time::Duration;

use rmcp::model::CallToolResult;
use serde_json::json;

use sandboxer_core::domain::{ChatId, ExecRequest};

use crate::error::ToolError;
use crate::params::ExecParams;
use crate::reply;
use crate::server::SandboxerMcp;

/// `argv` as given, or `command` run by `sh -c`; exactly one of them.
pub(super) fn argv(
    argv: Option<Vec<String>>,
    command: Option<String>,
) -> Result<Vec<String>, ToolError> {
    match (argv, command) {
        (Some(argv), None) => Ok(argv),
        (None, Some(command)) => Ok(vec!["sh".to_owned(), "-c".to_owned(), command]),
        (Some(_), Some(_)) => Err(ToolError::Input(
            "give `argv` or `command`, not both".to_owned(),
        )),
        (None, None) => Err(ToolError::Input(
            "give `argv` (the program and its arguments) or `command` (a shell command line)"
                .to_owned(),
        )),
    }
}

pub(super) async fn exec(
    server: &SandboxerMcp,
    args: ExecParams,
) -> Result<CallToolResult, ToolError> {
    let chat = ChatId::parse(&args.chat_id)?;
    let argv = argv(args.argv, args.command)?;
    let mut request = ExecRequest::new(argv)?
        .with_output_limit(server.settings.exec_output_limit)
        .with_env(args.env.unwrap_or_default())?;
    if let Some(workdir) = args.workdir {
        request = request.with_workdir(workdir)?;
    }
    if let Some(ms) = args.timeout_ms {
        request = request.with_timeout(Duration::from_millis(ms))?;
    }
    if let Some(stdin) = args.stdin {
        request = request.with_stdin(stdin.into_bytes());
    }
    let ran = server.services.exec.execute(&chat, &request).await?;
    let outcome = &ran.outcome;
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    let duration_ms = u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX);
    let mut text = format!("exit code {} ({duration_ms} ms)", outcome.exit_code);
    if outcome.timed_out {
        text.push_str(&format!(
            "; timed out after {} ms and killed",
            request.timeout.as_millis()
        ));
    }
    if outcome.truncated {
        text.push_str("; output truncated at the service's limit");
    }
    for (name, stream) in [("stdout", &stdout), ("stderr", &stderr)] {
        if !stream.is_empty() {
            text.push_str(&format!("\n--- {name} ---\n{stream}"));
        }
    }
    Ok(reply::success(
        text,
        json!({
            "exit_code": outcome.exit_code,
            "stdout": stdout,
            "stderr": stderr,
            "timed_out": outcome.timed_out,
            "truncated": outcome.truncated,
            "duration_ms": duration_ms,
            "session_id": ran.session.id.to_string(),
        }),
    ))
}
