"""What the sync and async clients share: configuration, URLs, bodies, answers."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import IO, Any, Callable, Union
from urllib.parse import quote

import httpx

from .errors import TransportError, error_from_response
from .models import ExecResult

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
OutputCallback = Callable[[str], object]

_NOT_YET = (
    "{what} needs the service's {feature}, which this Sandboxer service does not have yet "
    "(DESIGN.md section 10); this client will support it once the service does"
)


def not_yet(what: str, feature: str = "live processes") -> NotImplementedError:
    return NotImplementedError(_NOT_YET.format(what=what, feature=feature))


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

