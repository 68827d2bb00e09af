"""Streams without a service (httpx.MockTransport): a streamed exec's lines, a
follow's events, errors inside a stream, and a follow reconnecting after a cut."""

from __future__ import annotations

import base64
import json
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

import sandboxer
from sandboxer import OutputChunk, OutputPosition, _core, errors


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ndjson(*objects: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objects)


RESULT = {
    "exit_code": 0,
    "timed_out": False,
    "truncated": False,
    "duration_ms": 12,
    "session_id": "s-1",
    "process_id": "p-1",
}

# "é" is cut between two chunks, and a byte that is not UTF-8 follows.
EXEC_LINES = ndjson(
    {"stream": "stdout", "offset": 0, "data": b64(b"a\xc3"), "encoding": "base64"},
    {"stream": "stderr", "offset": 0, "data": "warn\n", "encoding": "utf-8"},
    {"stream": "stdout", "offset": 2, "data": b64(b"\xa9b\xff"), "encoding": "base64"},
    RESULT,
)


def exec_handler(body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chats/web:1/exec"
        sent = json.loads(request.content)
        assert sent["stream"] is True and sent["cmd"] == ["sh", "-c", "x"]
        return httpx.Response(200, content=body, headers={"content-type": "application/x-ndjson"})

    return handler


def sync_sandbox(handler: Callable[[httpx.Request], httpx.Response]) -> sandboxer.Sandbox:
    client = sandboxer.Client("http://sandboxer.test", token="t", transport=httpx.MockTransport(handler))
    return sandboxer.Sandbox("web:1", client=client)


def test_streamed_exec_decodes_across_chunks() -> None:
    out: list[str] = []
    err: list[str] = []
    r = sync_sandbox(exec_handler(EXEC_LINES)).exec("x", on_stdout=out.append, on_stderr=err.append)
    assert "".join(out) == "aéb\ufffd" and err == ["warn\n"]
    assert out[0] == "a"  # the cut character waits for its end
    assert (r.stdout, r.stderr, r.exit_code, r.truncated) == ("aéb\ufffd", "warn\n", 0, False)
    assert (r.process_id, r.session_id, r.duration_ms) == ("p-1", "s-1", 12)


def test_streamed_exec_error_line_raises_its_class() -> None:
    lines = ndjson(
        {"stream": "stdout", "offset": 0, "data": "partial\n", "encoding": "utf-8"},
        {"error": {"code": "runtime_unavailable", "message": "docker went away"}},
    )
    out: list[str] = []
    with pytest.raises(sandboxer.RuntimeUnavailable) as caught:
        sync_sandbox(exec_handler(lines)).exec("x", on_stdout=out.append)
    assert out == ["partial\n"]
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        "runtime_unavailable",
        503,
        "docker went away",
    )


def test_streamed_exec_without_result_is_a_transport_error() -> None:
    lines = ndjson({"stream": "stdout", "offset": 0, "data": "x", "encoding": "utf-8"})
    with pytest.raises(sandboxer.TransportError, match="without its result"):
        sync_sandbox(exec_handler(lines)).exec("x", on_stdout=lambda _: None)


def test_streamed_exec_error_answer_before_the_stream() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            json={"error": {"code": "too_many_processes", "message": "64 running"}},
            headers={"retry-after": "1"},
        )

    with pytest.raises(sandboxer.TooManyProcesses) as caught:
        sync_sandbox(handler).exec("x", on_stdout=print)
    assert caught.value.retry_after == 1.0 and caught.value.status == 429


def test_streamed_exec_keeps_at_most_the_cap() -> None:
    reading = _core.ExecStream(["x"], keep=4)
    for offset in (0, 3):
        line = json.dumps({"stream": "stdout", "offset": offset, "data": "abc", "encoding": "utf-8"})
        assert reading.feed(line) == ("stdout", "abc")
    reading.feed(json.dumps(RESULT))
    r = reading.exec_result()
    assert (r.stdout, r.truncated) == ("abca", True)
    assert _core.STREAM_KEEP_BYTES == 1 << 20


def test_cursor_expired_carries_the_oldest_offsets() -> None:
    response = httpx.Response(
        410,
        json={"error": {"code": "cursor_expired", "message": "gone", "oldest": {"stdout": 10, "stderr": 2}}},
        request=httpx.Request("GET", "http://x/"),
    )
    err = errors.error_from_response(response)
    assert isinstance(err, sandboxer.CursorExpired)
    assert err.oldest == sandboxer.Offsets(10, 2) and err.oldest.stdout == 10
    assert err.status == 410
    # Inside a stream: the same class, the status of the code.
    inline = errors.error_from_body({"code": "cursor_expired", "message": "slow", "oldest": {"stdout": 5, "stderr": 0}})
    assert isinstance(inline, sandboxer.CursorExpired) and inline.oldest == (5, 0)
    assert inline.status == 410
    # Without oldest (or made by hand): None.
    assert errors.error_from_body({"code": "cursor_expired", "message": "m"}).oldest is None  # type: ignore[attr-defined]
    assert sandboxer.CursorExpired("cursor_expired", "m").oldest is None
    # Other codes inside a stream keep their classes and statuses.
    for code, cls, status in [
        ("process_not_found", sandboxer.ProcessNotFound, 404),
        ("invalid_offset", sandboxer.InvalidOffset, 400),
        ("container_gone", sandboxer.ContainerGone, 503),
        ("internal", sandboxer.InternalError, 500),
        ("conflict", sandboxer.Conflict, 409),
        ("brand_new", sandboxer.ServerError, 500),
    ]:
        e = errors.error_from_body({"code": code, "message": "m"})
        assert type(e) is cls and e.status == status, code


def test_request_shapes() -> None:
    assert _core.process_url("web:1") == "/v1/chats/web%3A1/processes"
    assert _core.process_url("web:1", "a b", "output") == "/v1/chats/web%3A1/processes/a%20b/output"
    body = _core.process_body(
        ["cat"],
        process_id="p",
        stdin=b"hi",
        keep_stdin_open=True,
        env={"A": "1"},
        workdir="/tmp",
        timeout=1.5,
        pty=(80, 24),
    )
    assert body == {
        "cmd": ["cat"],
        "process_id": "p",
        "stdin": "hi",
        "keep_stdin_open": True,
        "env": {"A": "1"},
        "workdir": "/tmp",
        "timeout_ms": 1500,
        "pty": {"cols": 80, "rows": 24},
    }
    assert _core.process_body(
        ["cat"], process_id=None, stdin=None, keep_stdin_open=False, env=None, workdir=None, timeout=None, pty=None
    ) == {"cmd": ["cat"]}
    assert _core.signal_name(signal.SIGTERM) == "SIGTERM" and _core.signal_name("INT") == "INT"
    assert _core.stdin_params(None, False) == {}
    assert _core.stdin_params(3, True) == {"offset": "3", "close": "true"}
    t = _core.stream_http_timeout(httpx.Timeout(5.0))
    assert t.read is not None and t.read > _core.FOLLOW_HEARTBEAT


# A follow cut after its first chunk, then resumed from the offsets it had.

FIRST = {"stream": "stdout", "offset": 0, "data": "abc", "encoding": "utf-8"}
SECOND = {"stream": "stderr", "offset": 0, "data": b64(b"\xff"), "encoding": "base64"}
THIRD = {"stream": "stdout", "offset": 3, "data": "def", "encoding": "utf-8"}
END = {
    "status": "exited",
    "exit_code": 0,
    "timed_out": False,
    "killed": False,
    "stdout_offset": 6,
    "stderr_offset": 1,
}


class Cut(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Some lines, then the connection breaks."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self.body
        raise httpx.ReadError("connection reset")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body
        raise httpx.ReadError("connection reset")


def follow_handler(calls: list[dict[str, str]], cuts: int = 1) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chats/web:1/processes/p/output"
        calls.append(dict(request.url.params))
        if len(calls) <= cuts:
            return httpx.Response(200, stream=Cut(ndjson(FIRST, SECOND) if len(calls) == 1 else b""))
        return httpx.Response(200, content=ndjson(THIRD, END))

    return handler


def check_resumed(events: list[OutputChunk | OutputPosition], calls: list[dict[str, str]]) -> None:
    assert calls[0] == {"stdout_offset": "0", "stderr_offset": "0", "follow": "true"}
    assert calls[-1] == {"stdout_offset": "3", "stderr_offset": "1", "follow": "true"}
    assert events == [
        OutputChunk("stdout", 0, b"abc"),
        OutputChunk("stderr", 0, b"\xff"),
        OutputChunk("stdout", 3, b"def"),
        OutputPosition("exited", 0, False, False, 6, 1),
    ]


def test_follow_reconnects_from_its_offsets() -> None:
    calls: list[dict[str, str]] = []
    sbx = sync_sandbox(follow_handler(calls))
    events = list(sandboxer.Process(sbx, "p").output(follow=True))
    check_resumed(events, calls)
    assert len(calls) == 2


def test_follow_gives_up_after_three_cuts_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr("sandboxer._sync.time.sleep", pauses.append)
    calls: list[dict[str, str]] = []
    sbx = sync_sandbox(follow_handler(calls, cuts=10))
    with pytest.raises(sandboxer.TransportError):
        list(sandboxer.Process(sbx, "p").output(follow=True))
    assert len(calls) == 1 + _core.FOLLOW_RECONNECTS
    assert pauses == [0.5, 1.0, 2.0]


def test_no_reconnect_when_not_asked_or_not_following() -> None:
    calls: list[dict[str, str]] = []
    sbx = sync_sandbox(follow_handler(calls))
    with pytest.raises(sandboxer.TransportError):
        list(sandboxer.Process(sbx, "p").output(follow=True, reconnect=False))
    calls.clear()
    with pytest.raises(sandboxer.TransportError):
        list(sandboxer.Process(sbx, "p").output())
    assert calls == [{"stdout_offset": "0", "stderr_offset": "0"}]


def async_sandbox(handler: Callable[[httpx.Request], httpx.Response]) -> sandboxer.AsyncSandbox:
    client = sandboxer.AsyncClient("http://sandboxer.test", token="t", transport=httpx.MockTransport(handler))
    return sandboxer.AsyncSandbox("web:1", client=client)


@pytest.mark.asyncio
async def test_async_streamed_exec_and_follow_reconnect() -> None:
    out: list[str] = []

    async def on_stdout(text: str) -> None:
        out.append(text)

    sbx = async_sandbox(exec_handler(EXEC_LINES))
    r = await sbx.exec("x", on_stdout=on_stdout)
    assert "".join(out) == "aéb\ufffd" and r.stderr == "warn\n" and r.process_id == "p-1"
    await sbx.client.aclose()

    calls: list[dict[str, str]] = []
    sbx = async_sandbox(follow_handler(calls))
    events = [e async for e in sandboxer.AsyncProcess(sbx, "p").output(follow=True)]
    check_resumed(events, calls)
    await sbx.client.aclose()
