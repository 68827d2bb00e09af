"""Exceptions: one class per documented ``error.code`` of the service.

Every error answer of the service is ``{"error": {"code": ..., "message": ...}}``;
:func:`error_from_response` turns it into the class registered for its code, or,
for a code this client does not know, into the class of its HTTP status.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from .models import Offsets

if TYPE_CHECKING:
    from .models import ExecResult

__all__ = [
    "SandboxerError",
    "InvalidRequest",
    "InvalidChatId",
    "InvalidPath",
    "InvalidJson",
    "ImageNotFound",
    "NotAFile",
    "NotADirectory",
    "Unauthorized",
    "NotFound",
    "SandboxNotFound",
    "FileNotFound",
    "RouteNotFound",
    "NodeNotFound",
    "ProcessNotFound",
    "InvalidOffset",
    "NoSpace",
    "CursorExpired",
    "UpgradeRequired",
    "TooManyProcesses",
    "MethodNotAllowed",
    "Conflict",
    "PayloadTooLarge",
    "ServerError",
    "SandboxRuntimeError",
    "StoreError",
    "InternalError",
    "ServiceUnavailable",
    "RuntimeUnavailable",
    "StoreUnavailable",
    "Busy",
    "ContainerGone",
    "StoreConflict",
    "Timeout",
    "TransportError",
    "CommandFailed",
    "class_for",
    "error_from_body",
    "error_from_response",
]


class SandboxerError(Exception):
    """An error answer of the service (or, for :class:`TransportError`, no answer).

    ``code`` is the service's ``error.code``, ``message`` its ``error.message``,
    ``status`` the HTTP status (``None`` when no answer came).
    """

    #: The code this class stands for (``None``: a family of codes).
    default_code: ClassVar[str | None] = None

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{code} ({status}): {message}")
        self.code = code
        self.message = message
        self.status = status


# 400
class InvalidRequest(SandboxerError):
    """400: the request was refused as bad input (``invalid_request``, and the base
    of every other 400 code)."""

    default_code = "invalid_request"


class InvalidChatId(InvalidRequest):
    """400 ``invalid_chat_id``: not 1-128 bytes of ``[A-Za-z0-9_.:@-]``."""

    default_code = "invalid_chat_id"


class InvalidPath(InvalidRequest):
    """400 ``invalid_path``: absolute, ``..``, ``.``, empty segments, NUL or backslash."""

    default_code = "invalid_path"


class InvalidJson(InvalidRequest):
    """400 ``invalid_json``: the body is not JSON."""

    default_code = "invalid_json"


class ImageNotFound(InvalidRequest):
    """400 ``image_not_found``: Docker does not have that image."""

    default_code = "image_not_found"


class NotAFile(InvalidRequest):
    """400 ``not_a_file``: the path is a directory (or a file is in the way)."""

    default_code = "not_a_file"


class NotADirectory(InvalidRequest):
    """400 ``not_a_directory``: a listing of a path that is a file."""

    default_code = "not_a_directory"


# 401
class Unauthorized(SandboxerError):
    """401 ``unauthorized``: missing or wrong bearer token."""

    default_code = "unauthorized"


# 404
class NotFound(SandboxerError):
    """404: the base of ``no_sandbox``, ``file_not_found`` and ``route_not_found``."""


class SandboxNotFound(NotFound):
    """404 ``no_sandbox``: the chat has no active sandbox."""

    default_code = "no_sandbox"


class FileNotFound(NotFound):
    """404 ``file_not_found``: no such file in the workspace."""

    default_code = "file_not_found"


class RouteNotFound(NotFound):
    """404 ``route_not_found``: the service has no such route (an older service?)."""

    default_code = "route_not_found"


class NodeNotFound(NotFound):
    """404 ``node_not_found``: an operator route names no Docker node of the service."""

    default_code = "node_not_found"


class ProcessNotFound(NotFound):
    """404 ``process_not_found``: no such live process in the chat's sandbox."""

    default_code = "process_not_found"


class InvalidOffset(InvalidRequest):
    """400 ``invalid_offset``: an output or stdin offset past what the stream holds."""

    default_code = "invalid_offset"


class CursorExpired(SandboxerError):
    """410 ``cursor_expired``: that output is no longer buffered; read from the oldest offset.

    ``oldest`` is the oldest offsets still buffered (``Offsets(stdout, stderr)``,
    the service's ``error.oldest``), ``None`` when the answer did not have them.
    """

    default_code = "cursor_expired"

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = 410,
        oldest: Offsets | None = None,
    ) -> None:
        super().__init__(code, message, status)
        self.oldest = oldest


class UpgradeRequired(SandboxerError):
    """426 ``upgrade_required``: the terminal route is a WebSocket."""

    default_code = "upgrade_required"


# 405, 409, 413
class MethodNotAllowed(SandboxerError):
    """405 ``method_not_allowed``."""

    default_code = "method_not_allowed"


class Conflict(SandboxerError):
    """409 ``conflict``: Docker reported a conflict it could not resolve; a process
    id taken by another body; stdin already closed."""

    default_code = "conflict"


class PayloadTooLarge(SandboxerError):
    """413 ``body_too_large``: over 1 MiB of JSON, or over ``max_file_bytes`` uploaded."""

    default_code = "body_too_large"


# 500
class ServerError(SandboxerError):
    """500: the base of ``runtime_error``, ``store_error`` and ``internal``
    (details are in the service's log, never in the answer)."""


class NoSpace(ServerError):
    """507 ``no_space``: the service's disk is full; nothing was half done."""

    default_code = "no_space"


class SandboxRuntimeError(ServerError):
    """500 ``runtime_error``: Docker failed or refused an operator setting."""

    default_code = "runtime_error"


class StoreError(ServerError):
    """500 ``store_error``."""

    default_code = "store_error"


class InternalError(ServerError):
    """500 ``internal``."""

    default_code = "internal"


# 503
class ServiceUnavailable(SandboxerError):
    """503: retry later. ``retry_after`` is the ``Retry-After`` header in seconds
    (``None`` when absent)."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = 503,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message, status)
        self.retry_after = retry_after


class TooManyProcesses(ServiceUnavailable):
    """429 ``too_many_processes`` (``Retry-After: 1``): the sandbox runs its limit of processes."""

    default_code = "too_many_processes"


class RuntimeUnavailable(ServiceUnavailable):
    """503 ``runtime_unavailable`` (``Retry-After: 5``): Docker does not answer."""

    default_code = "runtime_unavailable"


class StoreUnavailable(ServiceUnavailable):
    """503 ``store_unavailable`` (``Retry-After: 1``): the database is locked or away."""

    default_code = "store_unavailable"


class Busy(ServiceUnavailable):
    """503 ``busy``: a concurrent change won; retry."""

    default_code = "busy"


class ContainerGone(ServiceUnavailable):
    """503 ``container_gone``: the container went away mid-call; retry."""

    default_code = "container_gone"


class StoreConflict(ServiceUnavailable):
    """503 ``store_conflict``: a concurrent change won; retry."""

    default_code = "store_conflict"


# 504
class Timeout(SandboxerError):
    """504 ``timeout``: Docker did not answer in time (not a command's timeout:
    that is ``ExecResult.timed_out``)."""

    default_code = "timeout"


# No answer
class TransportError(SandboxerError):
    """No answer from the service: connection refused or cut, or the HTTP call
    went over ``request_timeout``. The httpx exception is ``__cause__``."""

    def __init__(self, message: str) -> None:
        super().__init__("transport_error", message, None)


class CommandFailed(Exception):
    """Raised by ``exec(..., check=True)`` when the command exited non-zero or timed out.

    Not a :class:`SandboxerError`: the service did what was asked.
    """

    def __init__(self, cmd: list[str], result: ExecResult) -> None:
        what = "timed out" if result.timed_out else f"exited with {result.exit_code}"
        tail = result.stderr.strip().splitlines()[-1:] if result.stderr.strip() else []
        super().__init__(f"command {cmd!r} {what}" + (f": {tail[0]}" if tail else ""))
        self.cmd = cmd
        self.result = result

    @property
    def exit_code(self) -> int:
        return self.result.exit_code

    @property
    def stdout(self) -> str:
        return self.result.stdout

    @property
    def stderr(self) -> str:
        return self.result.stderr


_BY_CODE: dict[str, type[SandboxerError]] = {
    cls.default_code: cls
    for cls in (
        InvalidRequest,
        InvalidChatId,
        InvalidPath,
        InvalidJson,
        ImageNotFound,
        NotAFile,
        NotADirectory,
        Unauthorized,
        SandboxNotFound,
        FileNotFound,
        RouteNotFound,
        NodeNotFound,
        ProcessNotFound,
        InvalidOffset,
        NoSpace,
        CursorExpired,
        UpgradeRequired,
        TooManyProcesses,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        SandboxRuntimeError,
        StoreError,
        InternalError,
        RuntimeUnavailable,
        StoreUnavailable,
        Busy,
        ContainerGone,
        StoreConflict,
        Timeout,
    )
    if cls.default_code is not None
}

_BY_STATUS: dict[int, type[SandboxerError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    500: ServerError,
    503: ServiceUnavailable,
    504: Timeout,
    507: NoSpace,
}


def class_for(code: str, status: int) -> type[SandboxerError]:
    """The class of a code, else of its status, else the base class."""
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if 500 <= status < 600 else SandboxerError
    return cls


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_from_response(response: httpx.Response) -> SandboxerError:
    """The exception for an error answer (status >= 400); the body must be read."""
    status = response.status_code
    code = f"http_{status}"
    message = response.reason_phrase or "error"
    err: dict[str, Any] = {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        if isinstance(err.get("code"), str):
            code = err["code"]
        if isinstance(err.get("message"), str):
            message = err["message"]
    elif response.content:
        message = response.text.strip()[:500] or message
    return _make(code, message, status, err, _retry_after(response.headers.get("retry-after")))


#: The status of the codes whose class does not tell it (see ``_status_of``).
_STATUS_OF_CODE: dict[str, int] = {
    "unauthorized": 401,
    "method_not_allowed": 405,
    "conflict": 409,
    "cursor_expired": 410,
    "body_too_large": 413,
    "upgrade_required": 426,
    "too_many_processes": 429,
    "timeout": 504,
}


def _status_of(code: str) -> int:
    """The status a code answers with as a whole response: for errors that come
    inside a stream, whose HTTP status was 200 when the stream began."""
    if code in _STATUS_OF_CODE:
        return _STATUS_OF_CODE[code]
    cls = _BY_CODE.get(code)
    if cls is not None:
        for base, status in ((InvalidRequest, 400), (NotFound, 404), (ServiceUnavailable, 503)):
            if issubclass(cls, base):
                return status
    return 500


def error_from_body(err: Mapping[str, Any], status: int | None = None) -> SandboxerError:
    """The exception for an ``{"error": {...}}`` line inside a stream (a follow's
    or a streamed exec's): ``err`` is the inner object. ``status`` defaults to
    the one the code answers with as a whole response."""
    raw_code, raw_message = err.get("code"), err.get("message")
    code = raw_code if isinstance(raw_code, str) else "internal"
    message = raw_message if isinstance(raw_message, str) else "error"
    if status is None:
        status = _status_of(code)
    return _make(code, message, status, err, None)


def _make(
    code: str, message: str, status: int, err: Mapping[str, Any], retry_after: float | None
) -> SandboxerError:
    cls = class_for(code, status)
    if issubclass(cls, ServiceUnavailable):
        return cls(code, message, status, retry_after)
    if issubclass(cls, CursorExpired):
        return cls(code, message, status, Offsets.from_json(err.get("oldest")))
    return cls(code, message, status)
