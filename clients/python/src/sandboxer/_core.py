"""What the sync and async clients share: configuration, URLs, bodies, answers."""

from __future__ import annotations

import base64
import codecs
import json
import math
import os
import signal as _signal
from collections.abc import Mapping, Sequence
from typing import IO, Any, Callable, Union
from urllib.parse import quote

import httpx

from .errors import TransportError, error_from_body, error_from_response
from .models import ExecResult, OutputChunk, OutputPosition, StdinState

DEFAULT_URL = "http://127.0.0.1:7070"
#: Seconds an HTTP call may take (connect, read, write, pool), exec calls aside.
DEFAULT_REQUEST_TIMEOUT = 60.0
#: The service's own default exec timeout, in seconds (``timeout_ms`` unset).
SERVICE_EXEC_TIMEOUT = 60.0
#: Added to an exec call's HTTP timeout beyond the command's own: the get-or-create
#: before the command and the kill sweep after a timeout.
EXEC_GRACE = 10.0

FileData = Union[str, bytes, bytearray, memoryview, IO[bytes], IO[str]]
Command = Union[str, Sequence[str]]
#: Called with each piece of a streamed exec's output, as text. The async
#: client awaits what it returns when that is awaitable (``async def`` works).
OutputCallback = Callable[[str], object]
#: ``"TERM"``, ``"SIGTERM"`` or ``signal.SIGTERM``.
SignalName = Union[str, _signal.Signals]

#: Bytes of each stream a streamed exec keeps for its ``ExecResult`` (the
#: callbacks see everything): the service's default ``--exec-output-bytes``.
STREAM_KEEP_BYTES = 1 << 20
#: A follow stream says where it stands after this many seconds of silence.
FOLLOW_HEARTBEAT = 15.0
#: Reconnections of a follow in a row without an event before it gives up.
FOLLOW_RECONNECTS = 3


def resolve_base_url(base_url: str | None) -> str:
    url = base_url or os.environ.get("SANDBOXER_URL") or DEFAULT_URL
    return url.rstrip("/")


def resolve_token(token: str | None) -> str | None:
    if token is None:
        token = os.environ.get("SANDBOXER_TOKEN")
    return token or None


def make_timeout(request_timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(request_timeout, httpx.Timeout):
        return request_timeout
    return httpx.Timeout(request_timeout)


def headers(token: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    out = {"user-agent": "sandboxer-python/0.1"}
    if extra:
        out.update(extra)
    if token:
        out["authorization"] = f"Bearer {token}"
    return out


def _segment(text: str) -> str:
    # Percent-encode everything but unreserved characters; "." and ".." are
    # encoded too, so httpx does not resolve them away before the service
    # sees (and refuses) them.
    if text in (".", ".."):
        return text.replace(".", "%2E")
    return quote(text, safe="")


def chat_url(chat_id: str, *rest: str) -> str:
    return "/".join(["/v1/chats", _segment(chat_id), *rest])


def file_url(chat_id: str, path: str | None) -> str:
    if path is None or path == "":
        return chat_url(chat_id, "files")
    return chat_url(chat_id, "files", "/".join(_segment(s) for s in path.split("/")))


def sandbox_body(
    image: str | None, env: Mapping[str, str] | None, idle_ttl: float | None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if image is not None:
        body["image"] = image
    if env is not None:
        body["env"] = dict(env)
    if idle_ttl is not None:
        body["ttl_seconds"] = math.ceil(idle_ttl)
    return body


def argv(cmd: Command) -> list[str]:
    if isinstance(cmd, str):
        return ["sh", "-c", cmd]
    if isinstance(cmd, (bytes, bytearray)):
        raise TypeError("cmd is a str (run by sh -c) or a sequence of str (argv), not bytes")
    return [str(a) for a in cmd]


def exec_body(
    cmd: list[str],
    timeout: float | None,
    workdir: str | None,
    env: Mapping[str, str] | None,
    stdin: str | bytes | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"cmd": cmd}
    if timeout is not None:
        if timeout <= 0:
            raise ValueError("timeout is in seconds and must be > 0")
        body["timeout_ms"] = max(1, math.ceil(timeout * 1000))
    if workdir is not None:
        body["workdir"] = workdir
    if env is not None:
        body["env"] = dict(env)
    if stdin is not None:
        body["stdin"] = stdin.decode("utf-8") if isinstance(stdin, (bytes, bytearray)) else stdin
    return body


def exec_http_timeout(base: httpx.Timeout, exec_timeout: float | None) -> httpx.Timeout:
    """The HTTP timeout of an exec call: the read waits for the command too."""
    seconds = SERVICE_EXEC_TIMEOUT if exec_timeout is None else exec_timeout
    read = None if base.read is None else base.read + seconds + EXEC_GRACE
    return httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)


def file_bytes(data: FileData) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if hasattr(data, "read"):
        content = data.read()
        if isinstance(content, str):
            return content.encode("utf-8")
        if isinstance(content, (bytes, bytearray, memoryview)):
            return bytes(content)
        raise TypeError(f"the file-like object's read() returned {type(content).__name__}")
    raise TypeError(f"data is str, bytes or a file-like object, not {type(data).__name__}")


def check_response(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise error_from_response(response)
    return response


def transport_error(exc: httpx.TransportError, method: str, url: str) -> TransportError:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return TransportError(f"{method} {url} {kind}: {exc!r}")


def json_object(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    if not isinstance(data, dict):
        raise TransportError(f"expected a JSON object from {response.request.url}, got {data!r}")
    return data


def exec_result(response: httpx.Response) -> ExecResult:
    return ExecResult.from_json(json_object(response))



# Live processes and streams.


def stream_http_timeout(base: httpx.Timeout) -> httpx.Timeout:
    """The HTTP timeout of a follow: a read waits for at least a heartbeat."""
    read = None if base.read is None else max(base.read, FOLLOW_HEARTBEAT * 3)
    return httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)


def process_url(chat_id: str, process_id: str | None = None, *rest: str) -> str:
    if process_id is None:
        return chat_url(chat_id, "processes")
    return chat_url(chat_id, "processes", _segment(process_id), *rest)


def process_body(
    cmd: list[str],
    *,
    process_id: str | None,
    stdin: str | bytes | None,
    keep_stdin_open: bool,
    env: Mapping[str, str] | None,
    workdir: str | None,
    timeout: float | None,
    pty: tuple[int, int] | None,
) -> dict[str, Any]:
    body = exec_body(cmd, timeout, workdir, env, stdin)
    if process_id is not None:
        body["process_id"] = process_id
    if keep_stdin_open:
        body["keep_stdin_open"] = True
    if pty is not None:
        cols, rows = pty
        body["pty"] = {"cols": int(cols), "rows": int(rows)}
    return body


def exit_code_of(code: int | None) -> int:
    """An ended process's exit code (-1 if the service had none, as a streamed exec says)."""
    return -1 if code is None else code


def stdin_state(response: httpx.Response) -> StdinState:
    return StdinState.from_json(json_object(response))


def signal_name(sig: SignalName) -> str:
    if isinstance(sig, _signal.Signals):
        return sig.name
    return str(sig)


def stdin_params(offset: int | None, close: bool) -> dict[str, str]:
    params: dict[str, str] = {}
    if offset is not None:
        params["offset"] = str(int(offset))
    if close:
        params["close"] = "true"
    return params


def output_params(stdout_offset: int, stderr_offset: int, follow: bool) -> dict[str, str]:
    params = {"stdout_offset": str(int(stdout_offset)), "stderr_offset": str(int(stderr_offset))}
    if follow:
        params["follow"] = "true"
    return params


def parse_line(line: str) -> dict[str, Any] | None:
    """One NDJSON line as an object (``None`` for a blank line); an
    ``{"error": {...}}`` line raises its :class:`SandboxerError`."""
    line = line.strip()
    if not line:
        return None
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise TransportError(f"not a JSON line in the stream: {line[:200]!r}") from exc
    if not isinstance(data, dict):
        raise TransportError(f"not a JSON object in the stream: {line[:200]!r}")
    if isinstance(data.get("error"), dict):
        raise error_from_body(data["error"])
    return data


def chunk_bytes(data: dict[str, Any]) -> bytes:
    raw = str(data.get("data", ""))
    if data.get("encoding") == "base64":
        return base64.b64decode(raw)
    return raw.encode("utf-8")


def output_event(data: dict[str, Any]) -> OutputChunk | OutputPosition:
    """An output line of a follow as its event."""
    if "stream" in data:
        return OutputChunk(
            stream=str(data["stream"]), offset=int(data.get("offset", 0)), data=chunk_bytes(data)
        )
    if "status" in data:
        return OutputPosition.from_json(data)
    raise TransportError(f"an output line of an unknown shape: {data!r}")


class Cursor:
    """Where a reader of a process's output stands, moved by each event."""

    def __init__(self, stdout: int, stderr: int) -> None:
        self.stdout = stdout
        self.stderr = stderr

    def advance(self, event: OutputChunk | OutputPosition) -> None:
        if isinstance(event, OutputChunk):
            if event.stream == "stderr":
                self.stderr = max(self.stderr, event.end)
            else:
                self.stdout = max(self.stdout, event.end)
        else:
            self.stdout, self.stderr = event.stdout_offset, event.stderr_offset


class ExecStream:
    """The reading of a streamed exec: each output line becomes text for its
    callback (decoded incrementally, so a character cut between two lines is
    whole), the bytes are kept up to ``keep`` per stream, and the last line
    is the result."""

    def __init__(self, cmd: list[str], keep: int = STREAM_KEEP_BYTES) -> None:
        self.cmd = cmd
        self.keep = keep
        self.kept = {"stdout": bytearray(), "stderr": bytearray()}
        self.cut = False
        self.decoders = {
            name: codecs.getincrementaldecoder("utf-8")(errors="replace")
            for name in ("stdout", "stderr")
        }
        self.result: dict[str, Any] | None = None

    def feed(self, line: str) -> tuple[str, str] | None:
        """``(stream, text)`` for an output line with text to pass on, else
        ``None``; the result line is kept; an error line raises."""
        data = parse_line(line)
        if data is None:
            return None
        if "stream" in data:
            name = "stderr" if data["stream"] == "stderr" else "stdout"
            raw = chunk_bytes(data)
            kept = self.kept[name]
            room = self.keep - len(kept)
            if len(raw) > room:
                self.cut = True
            if room > 0:
                kept += raw[:room]
            text = self.decoders[name].decode(raw)
            return (name, text) if text else None
        if "exit_code" in data and "status" not in data:
            self.result = data
            return None
        return None  # a position line: nothing to pass on

    def flush(self) -> list[tuple[str, str]]:
        """What the decoders still hold (a character cut at the very end)."""
        out = []
        for name, decoder in self.decoders.items():
            text = decoder.decode(b"", final=True)
            if text:
                out.append((name, text))
        return out

    def exec_result(self) -> ExecResult:
        if self.result is None:
            raise TransportError(f"the streamed exec of {self.cmd!r} ended without its result")
        data = dict(self.result)
        data["stdout"] = bytes(self.kept["stdout"]).decode("utf-8", "replace")
        data["stderr"] = bytes(self.kept["stderr"]).decode("utf-8", "replace")
        data["truncated"] = bool(data.get("truncated", False)) or self.cut
        return ExecResult.from_json(data)
