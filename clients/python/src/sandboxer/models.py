"""What the service answers, as typed values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple, Union

__all__ = [
    "SandboxInfo",
    "ExecResult",
    "FileEntry",
    "FileWritten",
    "StreamRange",
    "StdinState",
    "Offsets",
    "ProcessInfo",
    "OutputChunk",
    "OutputPosition",
    "OutputEvent",
    "ProcessOutput",
]

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: str) -> datetime:
    """An RFC 3339 time of the service as an aware datetime (UTC).

    Python 3.10's ``fromisoformat`` takes neither ``Z`` nor fractions other than
    3 or 6 digits, and ``datetime`` has no year 0 (a file's mtime can be anything):
    out of range clamps to ``datetime.min`` / ``max``.
    """
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        if text.startswith("0000"):
            return datetime.min.replace(tzinfo=timezone.utc)
        if text.startswith("-"):
            return datetime.min.replace(tzinfo=timezone.utc)
        raise
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _opt_time(value: Any) -> datetime | None:
    return parse_time(value) if isinstance(value, str) and value else None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class SandboxInfo:
    """A chat's sandbox: what ``PUT`` / ``GET .../sandbox`` and ``list_sandboxes`` answer.

    Active (``status`` ``creating`` or ``running``): one session, with its container
    and times. Hibernated (``status`` ``hibernated``): no container and no processes;
    the files are kept until ``retained_until`` and the next use resumes the sandbox
    on them. Then ``session_id`` and ``image`` are the last session's (when the
    service knows them) and the session's times are ``None``.
    """

    chat_id: str
    #: ``creating``, ``running`` or ``hibernated``.
    status: str
    session_id: str | None = None
    #: The chat's files (its ``/workspace``), kept across its sessions and hibernation.
    workspace_id: str | None = None
    container_id: str | None = None
    image: str | None = None
    generation: int | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    #: When an active sandbox hibernates if left idle.
    expires_at: datetime | None = None
    #: ``created``, ``resumed``, ``reused`` or ``replaced`` (only from ``Sandbox.for_chat``).
    result: str | None = None
    #: ``container_gone``, ``spec_changed`` or ``max_lifetime`` when replaced.
    replace_reason: str | None = None
    #: When a hibernated sandbox's last session ended.
    hibernated_at: datetime | None = None
    #: Until when a hibernated sandbox's files are kept.
    retained_until: datetime | None = None
    #: The answer as received, fields this client does not know included.
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def hibernated(self) -> bool:
        return self.status == "hibernated"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxInfo:
        return cls(
            chat_id=str(data["chat_id"]),
            status=str(data["status"]),
            session_id=_opt_str(data.get("session_id")),
            workspace_id=_opt_str(data.get("workspace_id")),
            container_id=_opt_str(data.get("container_id")),
            image=_opt_str(data.get("image")),
            generation=_opt_int(data.get("generation")),
            created_at=_opt_time(data.get("created_at")),
            last_used_at=_opt_time(data.get("last_used_at")),
            expires_at=_opt_time(data.get("expires_at")),
            result=_opt_str(data.get("result")),
            replace_reason=_opt_str(data.get("replace_reason")),
            hibernated_at=_opt_time(data.get("hibernated_at")),
            retained_until=_opt_time(data.get("retained_until")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class ExecResult:
    """The outcome of a command. ``stdout`` / ``stderr`` are UTF-8 text (invalid
    bytes replaced), each cut at the service's per-stream cap (``truncated``)."""

    stdout: str
    stderr: str
    exit_code: int
    timed_out: bool
    truncated: bool
    duration_ms: int
    session_id: str
    #: The id of the process a streamed exec ran as (``None`` when not streamed).
    process_id: str | None = None

    @property
    def ok(self) -> bool:
        """Exit code 0 and no timeout."""
        return self.exit_code == 0 and not self.timed_out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExecResult:
        return cls(
            stdout=str(data.get("stdout", "")),
            stderr=str(data.get("stderr", "")),
            exit_code=int(data["exit_code"]),
            timed_out=bool(data.get("timed_out", False)),
            truncated=bool(data.get("truncated", False)),
            duration_ms=int(data.get("duration_ms", 0)),
            session_id=str(data.get("session_id", "")),
            process_id=_opt_str(data.get("process_id")),
        )


@dataclass(frozen=True)
class FileEntry:
    """One entry of a directory listing."""

    name: str
    #: ``file``, ``dir``, ``symlink`` or ``other``.
    type: str
    size: int
    modified_at: datetime

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"

    @property
    def is_file(self) -> bool:
        return self.type == "file"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileEntry:
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            size=int(data.get("size", 0)),
            modified_at=parse_time(str(data["modified_at"])),
        )


@dataclass(frozen=True)
class FileWritten:
    """The answer to a file upload."""

    path: str
    size: int
    session_id: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileWritten:
        return cls(
            path=str(data["path"]),
            size=int(data["size"]),
            session_id=str(data.get("session_id", "")),
        )


class StreamRange(NamedTuple):
    """One output stream of a process, as absolute byte offsets."""

    #: The oldest offset still buffered (older output is gone: ``CursorExpired``).
    start: int
    #: Bytes the stream produced in all: where the next output begins.
    end: int

    @classmethod
    def from_json(cls, data: Any) -> StreamRange:
        data = data if isinstance(data, dict) else {}
        return cls(start=int(data.get("start", 0)), end=int(data.get("end", 0)))


class StdinState(NamedTuple):
    """A process's stdin: bytes taken so far (the ``offset`` of the next write)
    and whether it is still open. What ``Process.write_stdin`` returns."""

    offset: int
    open: bool

    @classmethod
    def from_json(cls, data: Any) -> StdinState:
        data = data if isinstance(data, dict) else {}
        return cls(offset=int(data.get("offset", 0)), open=bool(data.get("open", False)))


class Offsets(NamedTuple):
    """A position in both output streams (where a read starts or stands)."""

    stdout: int
    stderr: int

    @classmethod
    def from_json(cls, data: Any) -> Offsets | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(stdout=int(data["stdout"]), stderr=int(data["stderr"]))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class ProcessInfo:
    """A live process of a chat's sandbox (``GET .../processes/{process_id}``)."""

    process_id: str
    cmd: list[str]
    #: Runs on a terminal.
    pty: bool
    #: Inside the sandbox.
    pid: int
    #: ``running`` or ``exited``.
    status: str
    #: When exited: the code, or 128 + the signal that ended it (143 for TERM).
    exit_code: int | None
    #: Ended by its lifetime (``timeout``).
    timed_out: bool
    #: Ended by ``kill()`` (``DELETE``).
    killed: bool
    started_at: datetime
    ended_at: datetime | None
    stdout: StreamRange
    stderr: StreamRange
    stdin: StdinState
    session_id: str
    #: From a start only: ``True`` when this call made the process, ``False`` when
    #: the same process was there (a repeated start with the same id and body).
    created: bool | None = None
    #: The answer as received, fields this client does not know included.
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def exited(self) -> bool:
        return self.status == "exited"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessInfo:
        created = data.get("created")
        return cls(
            process_id=str(data["process_id"]),
            cmd=[str(a) for a in data.get("cmd", [])],
            pty=bool(data.get("pty", False)),
            pid=int(data.get("pid", 0)),
            status=str(data["status"]),
            exit_code=_opt_int(data.get("exit_code")),
            timed_out=bool(data.get("timed_out", False)),
            killed=bool(data.get("killed", False)),
            started_at=parse_time(str(data["started_at"])),
            ended_at=_opt_time(data.get("ended_at")),
            stdout=StreamRange.from_json(data.get("stdout")),
            stderr=StreamRange.from_json(data.get("stderr")),
            stdin=StdinState.from_json(data.get("stdin")),
            session_id=str(data.get("session_id", "")),
            created=None if created is None else bool(created),
            raw=dict(data),
        )


@dataclass(frozen=True)
class OutputChunk:
    """Bytes of one output stream of a process, from ``offset`` in that stream."""

    #: ``stdout`` or ``stderr`` (a terminal's output is all ``stdout``).
    stream: str
    offset: int
    data: bytes

    @property
    def end(self) -> int:
        """The offset after these bytes: where the next read of the stream starts."""
        return self.offset + len(self.data)

    def text(self, errors: str = "replace") -> str:
        """The bytes as UTF-8 (a chunk may end inside a character: decode the
        concatenation when that matters)."""
        return self.data.decode("utf-8", errors)


@dataclass(frozen=True)
class OutputPosition:
    """Where a reader of a process's output stands, and the process's state:
    the last event of a read (``status == "exited"`` at the process's end,
    ``"running"`` at the end of a snapshot), and a follow's heartbeat after
    15 s of silence."""

    #: ``running`` or ``exited``.
    status: str
    exit_code: int | None
    timed_out: bool
    killed: bool
    #: Where the next read starts.
    stdout_offset: int
    stderr_offset: int

    @property
    def exited(self) -> bool:
        return self.status == "exited"

    @property
    def offsets(self) -> Offsets:
        return Offsets(self.stdout_offset, self.stderr_offset)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutputPosition:
        return cls(
            status=str(data["status"]),
            exit_code=_opt_int(data.get("exit_code")),
            timed_out=bool(data.get("timed_out", False)),
            killed=bool(data.get("killed", False)),
            stdout_offset=int(data.get("stdout_offset", 0)),
            stderr_offset=int(data.get("stderr_offset", 0)),
        )


#: One event of a process's output: bytes, or where the reader stands.
OutputEvent = Union[OutputChunk, OutputPosition]


@dataclass(frozen=True)
class ProcessOutput:
    """A process's output read at once (``Process.read_output``): the bytes of
    each stream from the offsets asked for, and where the read ended."""

    stdout: bytes
    stderr: bytes
    end: OutputPosition

    @property
    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")
