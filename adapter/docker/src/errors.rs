//! The one place where engine failures become `RuntimeError`s.
//!
//! Every call first becomes a `Fault` (what the engine said, independent of
//! the call), then `Fault::on` turns it into the port's error for what the
//! call was about: a 404 on an image is `ImageNotFound`, on a container
//! `ContainerGone`, on a file `FileNotFound`. A 400 is the caller's fault
//! (`Rejected`) only when it is about what a caller chose; the rest of what
//! we send comes from the operator's configuration or from this adapter, so
//! the engine refusing it is a `runtime_error`, its text kept for the log.
//! A full disk, whatever the call, is its own recognizable answer
//! (`no_space`).

use std::error::Error as _;
use std::io;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use sandboxer_core::port::RuntimeError;

/// What went wrong with one engine call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    NotFound(String),
    Conflict(String),
    BadRequest(String),
    Unavailable(String),
    Timeout { what: &'static str, after: Duration },
    Other(String),
}

/// What a failed call was about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject<'a> {
    Engine,
    Container,
    Image(&'a str),
    File(&'a str),
}

impl Fault {
    pub(crate) fn timeout(what: &'static str, after: Duration) -> Self {
        Self::Timeout { what, after }
    }

    pub(crate) fn on(self, subject: Subject<'_>) -> RuntimeError {
        if let Some(msg) = self.message()
            && says_no_space(msg)
        {
            return no_space(msg);
        }
        match (self, subject) {
            (Self::NotFound(msg), Subject::Container) => {
                tracing::debug!(%msg, "container not found");
                RuntimeError::ContainerGone
            }
            (Self::NotFound(msg), Subject::Image(name)) if msg.to_lowercase().contains("image") => {
                RuntimeError::ImageNotFound(name.to_owned())
            }
            (Self::NotFound(msg), Subject::File(path)) if !mentions_container(&msg) => {
                RuntimeError::FileNotFound(path.to_owned())
            }
            (Self::NotFound(msg), Subject::File(_)) => {
                tracing::debug!(%msg, "container not found");
                RuntimeError::ContainerGone
            }
            (Self::NotFound(msg), Subject::Image(_)) => RuntimeError::Other(msg),
            (Self::NotFound(msg), Subject::Engine) => RuntimeError::Other(msg),
            // An exec or copy into a stopped container: the sandbox no longer runs.
            (Self::Conflict(msg), _) if msg.contains("is not running") => {
                RuntimeError::ContainerGone
            }
            (Self::Conflict(msg), _) => RuntimeError::Conflict(msg),
            (Self::BadRequest(msg), Subject::Image(_)) if is_bad_image_reference(&msg) => {
                RuntimeError::Rejected(msg)
            }
            // An unknown runtime, a limit the engine refuses, ...: the
            // operator's settings, which no caller can fix.
            (Self::BadRequest(msg), _) => {
                RuntimeError::Other(format!("the engine refused the request (400): {msg}"))
            }
            (Self::Unavailable(msg), _) => RuntimeError::Unavailable(msg),
            (Self::Timeout { what, after }, _) => {
                RuntimeError::Timeout(format!("{what} took longer than {after:?}"))
            }
            (Self::Other(msg), _) => RuntimeError::Other(msg),
        }
    }

    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    fn message(&self) -> Option<&str> {
        match self {
            Self::NotFound(msg)
            | Self::Conflict(msg)
            | Self::BadRequest(msg)
            | Self::Unavailable(msg)
            | Self::Other(msg) => Some(msg),
            Self::Timeout { .. } => None,
        }
    }
}

/// How the engine (and the kernel, through it or the agent) says a disk is
/// full: a volume, a container's layer or the workspace cannot grow.
const NO_SPACE: &str = "no space left on device";

fn says_no_space(msg: &str) -> bool {
    msg.to_lowercase().contains(NO_SPACE)
}

/// A full disk, as every path of this adapter answers it: `NoSpace`, its
/// text starting with `no space left on device`.
pub(crate) fn no_space(detail: &str) -> RuntimeError {
    RuntimeError::NoSpace(format!(
        "{NO_SPACE}: the disk that holds the sandboxes and their workspaces is full ({detail})"
    ))
}

/// A caller may name the image (`SpecOverrides::image`); the engine says
/// `invalid reference format` when that name is not one.
fn is_bad_image_reference(msg: &str) -> bool {
    msg.contains("invalid reference format")
}

fn mentions_container(msg: &str) -> bool {
    msg.contains("No such container")
}

impl From<BollardError> for Fault {
    fn from(err: BollardError) -> Self {
        match err {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => match status_code {
                404 => Self::NotFound(message),
                409 => Self::Conflict(message),
                400 => Self::BadRequest(message),
                _ => Self::Other(format!("engine answered {status_code}: {message}")),
            },
            BollardError::SocketNotFoundError(path) => {
                Self::Unavailable(format!("no Docker socket at {path}"))
            }
            BollardError::RequestTimeoutError => Self::timeout("engine request", Duration::ZERO),
            BollardError::DockerStreamError { error } => Self::Other(error),
            other => {
                if is_connection_failure(&other) {
                    Self::Unavailable(sandboxer_core::trace::error_chain(&other))
                } else {
                    Self::Other(sandboxer_core::trace::error_chain(&other))
                }
            }
        }
    }
}

/// Whether the error (or a cause) says the engine could not be reached or
/// dropped the connection: refused, socket missing, reset, closed early.
fn is_connection_failure(err: &BollardError) -> bool {
    if let BollardError::HyperLegacyError { err } = err
        && err.is_connect()
    {
        return true;
    }
    if let BollardError::HyperResponseError { err } = err
        && (err.is_closed() || err.is_incomplete_message() || err.is_canceled())
    {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    if let BollardError::IOError { err } = err {
        return is_connection_io(err.kind());
    }
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return is_connection_io(io.kind());
        }
        source = cause.source();
    }
    false
}

fn is_connection_io(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | NotFound
            | BrokenPipe
            | UnexpectedEof
            | PermissionDenied
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandboxer_core::trace::ErrorType;

    fn server(status_code: u16, message: &str) -> Fault {
        Fault::from(BollardError::DockerResponseServerError {
            status_code,
            message: message.into(),
        })
    }

    #[test]
    fn maps_status_codes_by_subject() {
        assert_eq!(
            server(404, "No such image: x:1").on(Subject::Image("x:1")),
            RuntimeError::ImageNotFound("x:1".into())
        );
        assert_eq!(
            server(404, "No such container: abc").on(Subject::Container),
            RuntimeError::ContainerGone
        );
        assert_eq!(
            server(404, "Could not find the file /workspace/a").on(Subject::File("a")),
            RuntimeError::FileNotFound("a".into())
        );
        assert_eq!(
            server(404, "No such container: abc").on(Subject::File("a")),
            RuntimeError::ContainerGone
        );
        assert_eq!(
            server(409, "Container abc is not running").on(Subject::Container),
            RuntimeError::ContainerGone
        );
        assert!(matches!(
            server(409, "name in use").on(Subject::Container),
            RuntimeError::Conflict(_)
        ));
        assert_eq!(
            server(
                400,
                "invalid reference format: repository name must be lowercase"
            )
            .on(Subject::Image("A:1")),
            RuntimeError::Rejected(
                "invalid reference format: repository name must be lowercase".into()
            )
        );
        // Docker 20.10's and 25's words for `--runtime nosuch`.
        for msg in [
            "Unknown runtime specified nosuch",
            "unknown or invalid runtime name: nosuch",
        ] {
            let err = server(400, msg).on(Subject::Image("img:1"));
            assert!(
                matches!(&err, RuntimeError::Other(m) if m.contains(msg)),
                "{err:?}"
            );
            assert_eq!(err.error_type().as_str(), "runtime_error");
        }
        assert!(matches!(
            server(400, "bad parameter").on(Subject::Container),
            RuntimeError::Other(_)
        ));
        assert!(matches!(
            server(500, "boom").on(Subject::Engine),
            RuntimeError::Other(_)
        ));
        assert!(matches!(
            Fault::from(BollardError::SocketNotFoundError("/nope".into())).on(Subject::Engine),
            RuntimeError::Unavailable(_)
        ));
        assert!(matches!(
            Fault::from(BollardError::IOError {
                err: io::Error::from(io::ErrorKind::ConnectionRefused)
            })
            .on(Subject::Engine),
            RuntimeError::Unavailable(_)
        ));
        assert!(matches!(
            Fault::timeout("ping", Duration::from_secs(1)).on(Subject::Engine),
            RuntimeError::Timeout(_)
        ));
    }

    #[test]
    fn a_full_disk_is_recognizable_whatever_the_call() {
        for (fault, subject) in [
            (
                server(
                    500,
                    "mkdir /var/lib/docker/volumes/x: no space left on device",
                ),
                Subject::Engine,
            ),
            (
                server(500, "write /workspace/a: No space left on device"),
                Subject::File("a"),
            ),
            (
                server(400, "failed to copy files: no space left on device"),
                Subject::Image("img:1"),
            ),
            (
                Fault::from(BollardError::DockerStreamError {
                    error: "copying: no space left on device".into(),
                }),
                Subject::Container,
            ),
        ] {
            let err = fault.on(subject);
            assert!(
                matches!(&err, RuntimeError::NoSpace(m) if m.starts_with("no space left on device: ")),
                "{err:?}"
            );
        }
    }
}
