//! A command to run in a sandbox, and what came of it.

use std::collections::BTreeMap;
use std::time::Duration;

use thiserror::Error;

use super::env::{InvalidEnv, check_env};
use super::path::WORKSPACE_ROOT;

/// Longest timeout a caller may ask for.
pub const MAX_EXEC_TIMEOUT: Duration = Duration::from_secs(3600);
/// Timeout when the caller names none.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// Per-stream output cap when the caller names none (DESIGN section 7).
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

/// A validated exec request: an argv (no shell unless the caller runs one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    pub stdin: Option<Vec<u8>>,
    pub env: BTreeMap<String, String>,
    pub workdir: String,
    pub timeout: Duration,
    /// Bytes kept per stream; the rest is dropped and `truncated` set.
    pub output_limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidExecRequest {
    #[error("cmd must name a program: it is empty")]
    EmptyCommand,
    #[error("cmd holds a NUL byte")]
    NulInCommand,
    #[error("timeout_ms must be between 1 and {} ms", MAX_EXEC_TIMEOUT.as_millis())]
    Timeout,
    #[error("workdir must be an absolute path without `..`, got {0:?}")]
    Workdir(String),
    #[error(transparent)]
    Env(#[from] InvalidEnv),
}

impl ExecRequest {
    /// A request with the defaults: workdir `/workspace`, 60 s, 1 MiB per stream.
    ///
    /// # Errors
    /// `InvalidExecRequest` when `argv` is empty or holds a NUL byte.
    pub fn new(argv: Vec<String>) -> Result<Self, InvalidExecRequest> {
        if argv.is_empty() || argv[0].is_empty() {
            return Err(InvalidExecRequest::EmptyCommand);
        }
        if argv.iter().any(|a| a.contains('\0')) {
            return Err(InvalidExecRequest::NulInCommand);
        }
        Ok(Self {
            argv,
            stdin: None,
            env: BTreeMap::new(),
            workdir: WORKSPACE_ROOT.to_owned(),
            timeout: DEFAULT_EXEC_TIMEOUT,
            output_limit: DEFAULT_OUTPUT_LIMIT,
        })
    }

    /// # Errors
    /// `InvalidExecRequest::Timeout` outside 1 ms ..= 1 h.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, InvalidExecRequest> {
        if timeout.is_zero() || timeout > MAX_EXEC_TIMEOUT {
            return Err(InvalidExecRequest::Timeout);
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// # Errors
    /// `InvalidExecRequest::Workdir` unless absolute and free of `..` and NUL.
    pub fn with_workdir(mut self, workdir: String) -> Result<Self, InvalidExecRequest> {
        let ok = workdir.starts_with('/')
            && !workdir.contains('\0')
            && !workdir.split('/').any(|part| part == "..");
        if !ok {
            return Err(InvalidExecRequest::Workdir(workdir));
        }
        self.workdir = workdir;
        Ok(self)
    }

    /// # Errors
    /// `InvalidExecRequest` for a bad variable name or a NUL in a value.
    pub fn with_env(mut self, env: BTreeMap<String, String>) -> Result<Self, InvalidExecRequest> {
        check_env(&env)?;
        self.env = env;
        Ok(self)
    }

    pub fn with_stdin(mut self, stdin: Vec<u8>) -> Self {
        self.stdin = Some(stdin);
        self
    }

    pub fn with_output_limit(mut self, limit: usize) -> Self {
        self.output_limit = limit;
        self
    }
}

/// What an exec produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The command's exit code; after a timeout, the code of the killed process.
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    /// At least one stream went over the cap and was cut.
    pub truncated: bool,
    pub duration: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_every_field() {
        assert_eq!(
            ExecRequest::new(vec![]),
            Err(InvalidExecRequest::EmptyCommand)
        );
        assert_eq!(
            ExecRequest::new(vec!["a\0".into()]),
            Err(InvalidExecRequest::NulInCommand)
        );
        let ok = ExecRequest::new(vec!["true".into()]).unwrap();
        assert_eq!(ok.workdir, "/workspace");
        assert_eq!(
            ok.clone().with_timeout(Duration::ZERO),
            Err(InvalidExecRequest::Timeout)
        );
        assert_eq!(
            ok.clone().with_workdir("/workspace/../etc".into()),
            Err(InvalidExecRequest::Workdir("/workspace/../etc".into()))
        );
        assert_eq!(
            ok.clone().with_workdir("rel".into()),
            Err(InvalidExecRequest::Workdir("rel".into()))
        );
        assert!(ok.clone().with_workdir("/tmp".into()).is_ok());
        let env = [("9".to_string(), String::new())].into();
        assert_eq!(
            ok.with_env(env),
            Err(InvalidExecRequest::Env(InvalidEnv::Name("9".into())))
        );
    }
}
