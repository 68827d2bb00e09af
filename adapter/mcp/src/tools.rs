//! The tool router: each tool's name, description (what survives and what
//! does not) and input schema, and the thin step from its arguments to the
//! use case in `tools/`. Every tool takes `chat_id` as its explicit handle;
//! MCP session ids are not used.

mod exec;
mod files;
mod processes;
mod sandbox;

use rmcp::handler::server::common::schema_for_type;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};

use crate::error::ToolError;
use crate::params::{
    Args, ChatParams, ExecParams, KillProcessParams, ListParams, PathParams, ReadProcessParams,
    StartProcessParams, WriteFileParams, WriteStdinParams,
};
use crate::reply;
use crate::server::SandboxerMcp;

const EXEC: &str = "Run a command in the chat's sandbox (created on first use, resumed when \
hibernated) and wait for it. Give `argv` (no shell) or `command` (run by `sh -c`). Returns \
exit_code, stdout, stderr, timed_out and duration_ms; a non-zero exit is a normal answer, not a \
tool error. Files written under /workspace stay until the sandbox is deleted (or left hibernated \
past its retention); processes started by the command end with it, and /tmp is a small \
memory-backed scratch space that does not outlive the sandbox's container.";

const WRITE_FILE: &str = "Write a file in the chat's workspace (/workspace; the sandbox is \
created on first use, resumed when hibernated). Parent directories are created; an existing file \
is replaced. Text by default, or base64 bytes with encoding=\"base64\". The file stays until the \
sandbox is deleted, or left hibernated past its retention.";

const READ_FILE: &str = "Read a file from the chat's workspace. UTF-8 content comes back as \
text, anything else as base64 (encoding says which), with the file's size; a file over the \
read limit is cut, and `truncated` says so.";

const LIST_FILES: &str = "List a directory of the chat's workspace, one level, sorted by name \
(name, type, size, modified_at); without `path`, /workspace itself.";

const SANDBOX_STATUS: &str = "The chat's sandbox, without resuming it: status \"running\" with \
image, created_at, last_used_at and expires_at (when it is hibernated if left idle, its files \
kept); status \"hibernated\" with hibernated_at and retained_until (its files are kept until \
then; the next exec or file call resumes it, processes do not survive); or status \"none\" when \
the chat has none (the next exec or file call creates one, empty).";

const HIBERNATE_SANDBOX: &str = "Hibernate the chat's sandbox now: its processes end and its \
container goes, its files under /workspace are kept, and the next exec or file call resumes it \
on them. For when the conversation pauses. Succeeds also when it is hibernated already.";

const DELETE_SANDBOX: &str = "Stop and remove the chat's sandbox with its workspace (a \
hibernated one too): every file under /workspace is gone, and the next call starts a new, empty \
sandbox. Succeeds also when there was none.";

const START_PROCESS: &str = "Start a long-running command in the chat's sandbox (created on \
first use) and return at once: a dev server, a build, a watcher. Give `argv` or `command`. It runs \
on after this call, until it ends, is killed, or its timeout (1 h by default) passes; it ends with \
the sandbox. Read its output with read_process_output, feed it with write_process_stdin (start it \
with keep_stdin_open), stop it with kill_process.";

const READ_PROCESS_OUTPUT: &str = "Read a process's output from offsets (0 the first time, then \
the `next_*_offset` values the last read returned), up to 64 KiB per stream, with its status and \
exit code once it ended. `wait_ms` waits for new output when there is none yet. Output older than \
the buffer (4 MiB per stream) is gone: the error says the oldest offsets still there.";

const WRITE_PROCESS_STDIN: &str = "Write text to a process's standard input (start it with \
keep_stdin_open); `close` ends the input, as end-of-file.";

const KILL_PROCESS: &str = "Kill a process and everything it started; or, with `signal` \
(INT, TERM, HUP, ...), send that signal instead. An ended process stays readable for 10 minutes.";

/// Runs a tool's body, turning its error into the tool error answer.
async fn answer(
    outcome: impl Future<Output = Result<CallToolResult, ToolError>>,
) -> CallToolResult {
    outcome.await.unwrap_or_else(|e| reply::failure(&e))
}

#[tool_router(vis = "pub(crate)")]
impl SandboxerMcp {
    #[tool(
        description = EXEC,
        input_schema = schema_for_type::<ExecParams>(),
        annotations(title = "Run a command", destructive_hint = true, open_world_hint = false)
    )]
    async fn exec(&self, Args(args): Args<ExecParams>) -> CallToolResult {
        answer(async { exec::exec(self, args?).await }).await
    }

    #[tool(
        description = WRITE_FILE,
        input_schema = schema_for_type::<WriteFileParams>(),
        annotations(title = "Write a file", destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn write_file(&self, Args(args): Args<WriteFileParams>) -> CallToolResult {
        answer(async { files::write(self, args?).await }).await
    }

    #[tool(
        description = READ_FILE,
        input_schema = schema_for_type::<PathParams>(),
        annotations(title = "Read a file", read_only_hint = true, open_world_hint = false)
    )]
    async fn read_file(&self, Args(args): Args<PathParams>) -> CallToolResult {
        answer(async { files::read(self, args?).await }).await
    }

    #[tool(
        description = LIST_FILES,
        input_schema = schema_for_type::<ListParams>(),
        annotations(title = "List files", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_files(&self, Args(args): Args<ListParams>) -> CallToolResult {
        answer(async { files::list(self, args?).await }).await
    }

    #[tool(
        description = SANDBOX_STATUS,
        input_schema = schema_for_type::<ChatParams>(),
        annotations(title = "Sandbox status", read_only_hint = true, open_world_hint = false)
    )]
    async fn sandbox_status(&self, Args(args): Args<ChatParams>) -> CallToolResult {
        answer(async { sandbox::status(self, args?).await }).await
    }

    #[tool(
        description = HIBERNATE_SANDBOX,
        input_schema = schema_for_type::<ChatParams>(),
        annotations(title = "Hibernate the sandbox", destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn hibernate_sandbox(&self, Args(args): Args<ChatParams>) -> CallToolResult {
        answer(async { sandbox::hibernate(self, args?).await }).await
    }

    #[tool(
        description = DELETE_SANDBOX,
        input_schema = schema_for_type::<ChatParams>(),
        annotations(title = "Delete the sandbox", destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn delete_sandbox(&self, Args(args): Args<ChatParams>) -> CallToolResult {
        answer(async { sandbox::delete(self, args?).await }).await
    }

    #[tool(
        description = START_PROCESS,
        input_schema = schema_for_type::<StartProcessParams>(),
        annotations(title = "Start a process", destructive_hint = true, open_world_hint = false)
    )]
    async fn start_process(&self, Args(args): Args<StartProcessParams>) -> CallToolResult {
        answer(async { processes::start(self, args?).await }).await
    }

    #[tool(
        description = READ_PROCESS_OUTPUT,
        input_schema = schema_for_type::<ReadProcessParams>(),
        annotations(title = "Read a process's output", read_only_hint = true, open_world_hint = false)
    )]
    async fn read_process_output(&self, Args(args): Args<ReadProcessParams>) -> CallToolResult {
        answer(async { processes::read(self, args?).await }).await
    }

    #[tool(
        description = WRITE_PROCESS_STDIN,
        input_schema = schema_for_type::<WriteStdinParams>(),
        annotations(title = "Write to a process's stdin", destructive_hint = false, open_world_hint = false)
    )]
    async fn write_process_stdin(&self, Args(args): Args<WriteStdinParams>) -> CallToolResult {
        answer(async { processes::write_stdin(self, args?).await }).await
    }

    #[tool(
        description = KILL_PROCESS,
        input_schema = schema_for_type::<KillProcessParams>(),
        annotations(title = "Kill a process", destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn kill_process(&self, Args(args): Args<KillProcessParams>) -> CallToolResult {
        answer(async { processes::kill(self, args?).await }).await
    }
}
