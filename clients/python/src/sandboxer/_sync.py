"""The synchronous client: :class:`Client`, :class:`Sandbox`, :class:`Files`."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from . import _core
from ._core import Command, FileData, OutputCallback, SignalName
from .errors import CommandFailed, CursorExpired, TransportError
from .models import (
    ExecResult,
    FileEntry,
    FileWritten,
    OutputChunk,
    OutputPosition,
    ProcessInfo,
    ProcessOutput,
    SandboxInfo,
    StdinState,
)

__all__ = ["Client", "Sandbox", "Files", "Processes", "Process", "default_client"]


class Client:
    """A connection to a Sandboxer service (one httpx connection pool).

    ``base_url`` defaults to ``$SANDBOXER_URL``, else ``http://127.0.0.1:7070``;
    ``token`` to ``$SANDBOXER_TOKEN`` (sent as ``Authorization: Bearer``).
    ``request_timeout`` bounds each HTTP call (seconds or an ``httpx.Timeout``);
    exec calls wait that long *plus* the command's timeout. ``exec_timeout`` is
    the default timeout of commands in seconds (``None``: the service's, 60 s).
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        request_timeout: float | httpx.Timeout | None = _core.DEFAULT_REQUEST_TIMEOUT,
        exec_timeout: float | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = _core.resolve_base_url(base_url)
        self.token = _core.resolve_token(token)
        self.request_timeout = _core.make_timeout(request_timeout)
        self.exec_timeout = exec_timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_core.headers(self.token, headers),
            timeout=self.request_timeout,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """One call of the API; an error answer raises its :class:`SandboxerError`."""
        try:
            response = self._http.request(
                method,
                url,
                json=json,
                content=content,
                params=params,
                timeout=timeout if timeout is not None else self.request_timeout,
            )
        except httpx.TransportError as exc:
            raise _core.transport_error(exc, method, url) from exc
        return _core.check_response(response)

    def stream_lines(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> Generator[str, None, None]:
        """One streamed call of the API: its lines as they arrive (an error
        answer raises its :class:`SandboxerError`, a cut :class:`TransportError`).
        Closing the iterator closes the connection."""
        try:
            with self._http.stream(
                method,
                url,
                json=json,
                params=params,
                timeout=timeout if timeout is not None else self.request_timeout,
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    _core.check_response(response)
                yield from response.iter_lines()
        except httpx.TransportError as exc:
            raise _core.transport_error(exc, method, url) from exc

    def sandbox(
        self,
        chat_id: str,
        image: str | None = None,
        env: Mapping[str, str] | None = None,
        idle_ttl: float | None = None,
    ) -> Sandbox:
        """``Sandbox.for_chat(..., client=self)``."""
        return Sandbox.for_chat(chat_id, image, env, idle_ttl, client=self)

    def list_sandboxes(self) -> list[SandboxInfo]:
        """``GET /v1/sandboxes``: the active (and hibernated) sandboxes."""
        data = _core.json_object(self.request("GET", "/v1/sandboxes"))
        return [SandboxInfo.from_json(s) for s in data.get("sandboxes", [])]


_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The process-wide client ``Sandbox.for_chat`` uses when given none
    (made on first use from ``SANDBOXER_URL`` / ``SANDBOXER_TOKEN``)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


class Files:
    """The files of a sandbox's workspace (``/workspace``); paths are relative to it."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def write(self, path: str, data: FileData) -> FileWritten:
        """Write a file (parents are created): ``str`` (UTF-8), bytes, or a file-like
        object opened in binary or text mode."""
        sbx = self._sandbox
        response = sbx.client.request(
            "PUT", _core.file_url(sbx.chat_id, path), content=_core.file_bytes(data)
        )
        return FileWritten.from_json(_core.json_object(response))

    def read(self, path: str) -> bytes:
        """A file's bytes; :class:`FileNotFound` when there is none."""
        sbx = self._sandbox
        return sbx.client.request("GET", _core.file_url(sbx.chat_id, path)).content

    def read_text(self, path: str, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read(path).decode(encoding, errors)

    def list(self, path: str | None = None) -> list[FileEntry]:
        """A directory's entries, one level, sorted by name (``None``: the workspace)."""
        sbx = self._sandbox
        response = sbx.client.request(
            "GET", _core.file_url(sbx.chat_id, path), params={"list": "true"}
        )
        return [FileEntry.from_json(e) for e in _core.json_object(response).get("entries", [])]


class Sandbox:
    """A chat's sandbox. Get one with :meth:`for_chat`; every call names the chat,
    so a ``Sandbox`` is a cheap handle (an idle sandbox hibernates and the next use
    resumes it on its files; ``info`` is what the service said last)."""

    def __init__(
        self, chat_id: str, *, client: Client | None = None, info: SandboxInfo | None = None
    ) -> None:
        self.chat_id = chat_id
        self.client = client if client is not None else default_client()
        self.info = info
        self.files = Files(self)
        self.processes = Processes(self)

    @classmethod
    def for_chat(
        cls,
        chat_id: str,
        image: str | None = None,
        env: Mapping[str, str] | None = None,
        idle_ttl: float | None = None,
        *,
        client: Client | None = None,
    ) -> Sandbox:
        """Get-or-create the chat's sandbox (``PUT /v1/chats/{chat_id}/sandbox``).

        ``image``, ``env`` and ``idle_ttl`` (seconds idle before the sandbox
        expires) left ``None`` take the service's defaults; a live sandbox with
        another spec is replaced. ``info.result`` says ``created``, ``resumed`` (a
        hibernated sandbox, on its files), ``reused`` or ``replaced``.
        """
        client = client if client is not None else default_client()
        response = client.request(
            "PUT", _core.chat_url(chat_id, "sandbox"), json=_core.sandbox_body(image, env, idle_ttl)
        )
        return cls(chat_id, client=client, info=SandboxInfo.from_json(_core.json_object(response)))

    def __repr__(self) -> str:
        return f"Sandbox(chat_id={self.chat_id!r}, session_id={self.session_id!r})"

    @property
    def session_id(self) -> str | None:
        return self.info.session_id if self.info is not None else None

    @property
    def container_id(self) -> str | None:
        return self.info.container_id if self.info is not None else None

    @property
    def workspace_id(self) -> str | None:
        return self.info.workspace_id if self.info is not None else None

    @property
    def result(self) -> str | None:
        """``created``, ``resumed``, ``reused`` or ``replaced``: what :meth:`for_chat` did."""
        return self.info.result if self.info is not None else None

    @property
    def expires_at(self) -> datetime | None:
        return self.info.expires_at if self.info is not None else None

    def exec(
        self,
        cmd: Command,
        *,
        timeout: float | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
        check: bool = False,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ExecResult:
        """Run a command and wait for it (``POST .../exec``; the sandbox is created
        if needed). ``cmd`` is an argv list, or a string run by ``sh -c``.

        ``timeout`` is the command's, in seconds (default: the client's
        ``exec_timeout``, else the service's 60 s); when it passes the command's
        process tree is killed and ``timed_out`` is true. A non-zero exit is not
        an error unless ``check=True`` (then :class:`CommandFailed`).
        """
        argv = _core.argv(cmd)
        seconds = timeout if timeout is not None else self.client.exec_timeout
        body = _core.exec_body(argv, seconds, workdir, env, stdin)
        http_timeout = _core.exec_http_timeout(self.client.request_timeout, seconds)
        url = _core.chat_url(self.chat_id, "exec")
        if on_stdout is not None or on_stderr is not None:
            result = self._exec_streamed(argv, url, body, http_timeout, on_stdout, on_stderr)
        else:
            response = self.client.request("POST", url, json=body, timeout=http_timeout)
            result = _core.exec_result(response)
        if check and not result.ok:
            raise CommandFailed(argv, result)
        return result

    def _exec_streamed(
        self,
        argv: list[str],
        url: str,
        body: dict[str, Any],
        http_timeout: httpx.Timeout,
        on_stdout: OutputCallback | None,
        on_stderr: OutputCallback | None,
    ) -> ExecResult:
        callbacks = {"stdout": on_stdout, "stderr": on_stderr}
        reading = _core.ExecStream(argv)
        lines = self.client.stream_lines(
            "POST", url, json={**body, "stream": True}, timeout=http_timeout
        )
        try:
            for line in lines:
                piece = reading.feed(line)
                if piece is not None:
                    callback = callbacks[piece[0]]
                    if callback is not None:
                        callback(piece[1])
                if reading.result is not None:
                    break
        finally:
            lines.close()  # also when a callback raised: the service then kills the command
        for name, text in reading.flush():
            callback = callbacks[name]
            if callback is not None:
                callback(text)
        return reading.exec_result()

    def status(self) -> SandboxInfo:
        """``GET .../sandbox``: the chat's sandbox now, or :class:`SandboxNotFound`."""
        response = self.client.request("GET", _core.chat_url(self.chat_id, "sandbox"))
        self.info = SandboxInfo.from_json(_core.json_object(response))
        return self.info

    def delete(self) -> None:
        """Stop and remove the sandbox, workspace included, also a hibernated one's
        (no error when there is none)."""
        self.client.request("DELETE", _core.chat_url(self.chat_id, "sandbox"))

    def hibernate(self) -> None:
        """Hibernate now (``POST .../sandbox/hibernate``): the container and its
        processes go, the files under ``/workspace`` are kept until the service's
        retention passes (:meth:`status` says ``retained_until``), and the next call
        (exec, files, processes, :meth:`for_chat`) resumes the sandbox on them. Idle
        sandboxes hibernate by themselves past their ``idle_ttl``.

        Fine when already hibernated; :class:`SandboxNotFound` when the chat has
        nothing to hibernate, :class:`Conflict` when the service keeps no files
        (retention 0), :class:`Busy` while a command, a transfer or an attached
        stream uses the sandbox (retry).
        """
        self.client.request("POST", _core.chat_url(self.chat_id, "sandbox", "hibernate"))


class Processes:
    """The live processes of a sandbox (``/v1/chats/{chat_id}/processes``):
    started in the background, they outlive every connection; their output is
    kept per stream (the service's ``--process-buffer-bytes``, 4 MiB) with
    absolute byte offsets."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def start(
        self,
        cmd: Command,
        *,
        process_id: str | None = None,
        stdin: str | bytes | None = None,
        keep_stdin_open: bool = False,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        timeout: float | None = None,
        pty: tuple[int, int] | None = None,
    ) -> Process:
        """Start a process in the background (the sandbox is created if needed).

        ``cmd`` is an argv list, or a string run by ``sh -c``. ``process_id`` is
        yours to choose (else the service makes one): a repeat with the same id
        and the same arguments is the same process (``info.created`` false), with
        other arguments :class:`Conflict`. ``stdin`` is its first input (text);
        stdin is then closed unless ``keep_stdin_open`` (for :meth:`Process.write_stdin`).
        ``timeout`` is the process's lifetime in seconds (the API's ``timeout_ms``;
        default the service's 1 h, at most 24 h): past it its tree is killed.
        ``pty=(cols, rows)`` runs it on a terminal (output all on stdout).
        """
        sbx = self._sandbox
        body = _core.process_body(
            _core.argv(cmd),
            process_id=process_id,
            stdin=stdin,
            keep_stdin_open=keep_stdin_open,
            env=env,
            workdir=workdir,
            timeout=timeout,
            pty=pty,
        )
        response = sbx.client.request("POST", _core.process_url(sbx.chat_id), json=body)
        info = ProcessInfo.from_json(_core.json_object(response))
        return Process(sbx, info.process_id, info=info)

    def list(self) -> list[Process]:
        """The sandbox's processes, running and recently ended, by start time."""
        sbx = self._sandbox
        data = _core.json_object(sbx.client.request("GET", _core.process_url(sbx.chat_id)))
        infos = [ProcessInfo.from_json(p) for p in data.get("processes", [])]
        return [Process(sbx, i.process_id, info=i) for i in infos]

    def get(self, process_id: str) -> Process:
        """One process (its ``info`` fresh), or :class:`ProcessNotFound`."""
        process = Process(self._sandbox, process_id)
        process.status()
        return process


class Process:
    """A handle on a live process: every call asks the service (``info`` is
    what it said last). ``Process(sbx, "id")`` makes one without a call."""

    def __init__(
        self, sandbox: Sandbox, process_id: str, *, info: ProcessInfo | None = None
    ) -> None:
        self.sandbox = sandbox
        self.process_id = process_id
        self.info = info

    def __repr__(self) -> str:
        status = self.info.status if self.info is not None else "?"
        return (
            f"Process(chat_id={self.sandbox.chat_id!r}, "
            f"process_id={self.process_id!r}, status={status!r})"
        )

    @property
    def created(self) -> bool | None:
        """From :meth:`Processes.start`: whether that call made the process."""
        return self.info.created if self.info is not None else None

    def _url(self, *rest: str) -> str:
        return _core.process_url(self.sandbox.chat_id, self.process_id, *rest)

    def status(self) -> ProcessInfo:
        """``GET``: the process now (status, exit code, offsets), or :class:`ProcessNotFound`."""
        response = self.sandbox.client.request("GET", self._url())
        self.info = ProcessInfo.from_json(_core.json_object(response))
        return self.info

    def output(
        self,
        stdout_offset: int = 0,
        stderr_offset: int = 0,
        *,
        follow: bool = False,
        reconnect: bool = True,
    ) -> Iterator[OutputChunk | OutputPosition]:
        """The process's output from the offsets, as events: :class:`OutputChunk`
        (``stream``, ``offset``, ``data`` bytes), then an :class:`OutputPosition`.

        Without ``follow``: what is buffered, then where the read ended
        (``status`` ``running`` or ``exited``). With ``follow``: until the process
        ends, the last event an ``OutputPosition`` with ``exited`` true (and one
        after every 15 s of silence, ``running``). An offset older than the
        buffer raises :class:`CursorExpired` (``oldest`` says where to read
        from), also in the middle of a follow too slow for the buffer.

        A follow whose connection drops reconnects from the offsets of the last
        event it had (``reconnect``; up to 3 times in a row, 0.5 / 1 / 2 s
        apart), so no byte is lost or repeated; then :class:`TransportError`.
        Leaving the loop early closes the connection.
        """
        cursor = _core.Cursor(stdout_offset, stderr_offset)
        return self._events(cursor, follow=follow, reconnect=reconnect, deadline=None)

    def _events(
        self, cursor: _core.Cursor, *, follow: bool, reconnect: bool, deadline: float | None
    ) -> Iterator[OutputChunk | OutputPosition]:
        client = self.sandbox.client
        base = client.request_timeout
        if follow:
            base = _core.stream_http_timeout(base)
        failures = 0
        while True:
            http_timeout = base
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"process {self.process_id!r} still running")
                read = remaining if base.read is None else min(base.read, remaining)
                http_timeout = httpx.Timeout(
                    connect=base.connect, read=read, write=base.write, pool=base.pool
                )
            params = _core.output_params(cursor.stdout, cursor.stderr, follow)
            lines = client.stream_lines(
                "GET", self._url("output"), params=params, timeout=http_timeout
            )
            try:
                for line in lines:
                    data = _core.parse_line(line)
                    if data is None:
                        continue
                    event = _core.output_event(data)
                    cursor.advance(event)
                    failures = 0
                    yield event
                    if isinstance(event, OutputPosition) and (event.exited or not follow):
                        return
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(f"process {self.process_id!r} still running")
                raise TransportError("the output stream ended before its last event")
            except TransportError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"process {self.process_id!r} still running") from None
                if not (follow and reconnect) or failures >= _core.FOLLOW_RECONNECTS:
                    raise
                failures += 1
                time.sleep(0.5 * 2 ** (failures - 1))
            finally:
                lines.close()

    def read_output(
        self, stdout_offset: int = 0, stderr_offset: int = 0, *, follow: bool = False
    ) -> ProcessOutput:
        """:meth:`output` gathered: each stream's bytes from its offset and the
        last position (with ``follow``: once the process has ended)."""
        out, err = bytearray(), bytearray()
        end: OutputPosition | None = None
        for event in self.output(stdout_offset, stderr_offset, follow=follow):
            if isinstance(event, OutputChunk):
                (err if event.stream == "stderr" else out).extend(event.data)
            else:
                end = event
        assert end is not None  # output() ends with a position, or raises
        return ProcessOutput(stdout=bytes(out), stderr=bytes(err), end=end)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to end and return its exit code (128 + the
        signal when a signal ended it). Follows the output from where it stands
        (the bytes are not kept: read them with :meth:`output`). Past
        ``timeout`` seconds, ``TimeoutError`` (the process runs on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.status()
            if info.exited:
                return _core.exit_code_of(info.exit_code)
            cursor = _core.Cursor(info.stdout.end, info.stderr.end)
            try:
                for event in self._events(cursor, follow=True, reconnect=True, deadline=deadline):
                    if isinstance(event, OutputPosition) and event.exited:
                        return _core.exit_code_of(event.exit_code)
            except CursorExpired:
                continue  # fell behind the buffer: start again from where it ends now

    def write_stdin(
        self, data: str | bytes, offset: int | None = None, close: bool = False
    ) -> StdinState:
        """Bytes (``str``: UTF-8) to the process's stdin (started with
        ``keep_stdin_open``); ``offset`` is where they start in stdin, so a retry
        is not doubled; ``close`` closes stdin after them. Returns
        ``(offset, open)``: bytes stdin took in all, less than asked when the
        process stopped reading. A closed stdin is :class:`Conflict`."""
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        response = self.sandbox.client.request(
            "POST", self._url("stdin"), content=payload, params=_core.stdin_params(offset, close)
        )
        return _core.stdin_state(response)

    def close_stdin(self) -> StdinState:
        """``write_stdin(b"", close=True)``: end of input."""
        return self.write_stdin(b"", close=True)

    def signal(self, sig: SignalName) -> None:
        """Send a signal (``"TERM"``, ``"INT"``, ``signal.SIGHUP``, ...) to the process's group."""
        self.sandbox.client.request(
            "POST", self._url("signal"), json={"signal": _core.signal_name(sig)}
        )

    def kill(self) -> None:
        """Kill the process's whole tree (``DELETE``); returns once it is gone.
        The ended process stays listed, with its output, for a while."""
        self.sandbox.client.request("DELETE", self._url())
