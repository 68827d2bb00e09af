//! The tools' arguments: their JSON Schemas (what `tools/list` shows) and
//! their parsing. Arguments that do not fit are a tool error the model can
//! read and correct, not a JSON-RPC error, so the tools parse them here
//! instead of through the SDK's `Parameters<T>`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use rmcp::model::JsonObject;

use crate::error::ToolError;

/// A tool's arguments, parsed; a failure is kept for the tool to answer with.
pub struct Args<T>(pub Result<T, ToolError>);

impl<T: DeserializeOwned, S>
    rmcp::handler::server::common::FromContextPart<
        rmcp::handler::server::tool::ToolCallContext<'_, S>,
    > for Args<T>
{
    fn from_context_part(
        context: &mut rmcp::handler::server::tool::ToolCallContext<'_, S>,
    ) -> Result<Self, rmcp::ErrorData> {
        let object = JsonObject::from_context_part(context)?;
        Ok(Self(
            serde_json::from_value(serde_json::Value::Object(object))
                .map_err(|e| ToolError::Arguments(e.to_string())),
        ))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecParams {
    /// The conversation whose sandbox runs the command (its handle: the same id always reaches the same sandbox).
    pub chat_id: String,
    /// The program and its arguments, run without a shell, e.g. ["python3", "-c", "print(1)"]. Give this or `command`, not both.
    pub argv: Option<Vec<String>>,
    /// A shell command line, run by `sh -c` (pipes, redirections, `&&`). Give this or `argv`, not both.
    pub command: Option<String>,
    /// How long the command may run, in milliseconds (default 60000, at most 3600000); past it the command is killed and `timed_out` is true.
    pub timeout_ms: Option<u64>,
    /// Working directory, absolute (default /workspace).
    pub workdir: Option<String>,
    /// Extra environment variables for this command.
    pub env: Option<BTreeMap<String, String>>,
    /// Text given to the command on its standard input.
    pub stdin: Option<String>,
}

/// How `write_file`'s `content` is to be read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The content is the file's text, written as UTF-8.
    #[default]
    Text,
    /// The content is the file's bytes in standard base64.
    Base64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileParams {
    /// The conversation whose sandbox gets the file.
    pub chat_id: String,
    /// Path relative to /workspace (e.g. "src/main.py"); parent directories are created.
    pub path: String,
    /// The file's content: text, or base64 when `encoding` is "base64".
    pub content: String,
    /// "text" (default) or "base64".
    #[serde(default)]
    pub encoding: Encoding,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathParams {
    /// The conversation whose sandbox holds the file.
    pub chat_id: String,
    /// Path relative to /workspace (e.g. "out/result.csv").
    pub path: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// The conversation whose sandbox is listed.
    pub chat_id: String,
    /// Directory relative to /workspace; absent or empty lists /workspace itself.
    pub path: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatParams {
    /// The conversation whose sandbox is meant.
    pub chat_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartProcessParams {
    /// The conversation whose sandbox runs the process.
    pub chat_id: String,
    /// The program and its arguments, run without a shell. Give this or `command`, not both.
    pub argv: Option<Vec<String>>,
    /// A shell command line, run by `sh -c`. Give this or `argv`, not both.
    pub command: Option<String>,
    /// Your name for the process (1 to 64 of A-Z a-z 0-9 _ . : -); starting the same id with the
    /// same arguments again answers the same process. Generated when absent.
    pub process_id: Option<String>,
    /// How long the process may live, in milliseconds (default 3600000, at most 86400000).
    pub timeout_ms: Option<u64>,
    /// Working directory, absolute (default /workspace).
    pub workdir: Option<String>,
    /// Extra environment variables.
    pub env: Option<BTreeMap<String, String>>,
    /// Text given first to the process's standard input.
    pub stdin: Option<String>,
    /// Keep standard input open for write_process_stdin (default false: closed after `stdin`).
    pub keep_stdin_open: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadProcessParams {
    /// The conversation whose sandbox runs the process.
    pub chat_id: String,
    pub process_id: String,
    /// Where to start reading stdout (default 0; pass the `next_stdout_offset` of the last read).
    pub stdout_offset: Option<u64>,
    /// Where to start reading stderr (default 0; pass the `next_stderr_offset` of the last read).
    pub stderr_offset: Option<u64>,
    /// How long to wait for new output when there is none yet, in milliseconds (default 0, at most 30000).
    pub wait_ms: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteStdinParams {
    /// The conversation whose sandbox runs the process.
    pub chat_id: String,
    pub process_id: String,
    /// Text for the process's standard input.
    pub data: String,
    /// Close standard input after `data` (default false).
    pub close: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillProcessParams {
    /// The conversation whose sandbox runs the process.
    pub chat_id: String,
    pub process_id: String,
    /// Send this signal (e.g. "INT", "TERM") instead of killing the whole tree.
    pub signal: Option<String>,
}
