"""What the service answers, as typed values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["SandboxInfo", "ExecResult", "FileEntry", "FileWritten"]

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


@dataclass(frozen=True)
class SandboxInfo:
    """A chat's sandbox (one session): what ``PUT`` / ``GET .../sandbox`` answer."""

    session_id: str
    chat_id: str
    container_id: str | None
    image: str
    #: ``creating``, ``running``, ``ended`` (or ``hibernated`` once the service has it).
    status: str
    generation: int
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    #: ``created``, ``reused`` or ``replaced`` (only from ``Sandbox.for_chat``).
    result: str | None = None
    #: ``expired``, ``container_gone`` or ``spec_changed`` when replaced.
    replace_reason: str | None = None
    #: Until when a hibernated sandbox's workspace is kept.
    retained_until: datetime | None = None
    #: The answer as received, fields this client does not know included.
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxInfo:
        return cls(
            session_id=str(data["session_id"]),
            chat_id=str(data["chat_id"]),
            container_id=data.get("container_id"),
            image=str(data.get("image", "")),
            status=str(data["status"]),
            generation=int(data.get("generation", 0)),
            created_at=parse_time(data["created_at"]),
            last_used_at=parse_time(data["last_used_at"]),
            expires_at=parse_time(data["expires_at"]),
            result=data.get("result"),
            replace_reason=data.get("replace_reason"),
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
