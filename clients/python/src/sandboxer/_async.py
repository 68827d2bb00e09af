"""The asynchronous client: :class:`AsyncClient`, :class:`AsyncSandbox`, :class:`AsyncFiles`."""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
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

__all__ = [
    "AsyncClient",
    "AsyncSandbox",
    "AsyncFiles",
    "AsyncProcesses",
    "AsyncProcess",
    "default_async_client",
]


class AsyncClient:
    """The async twin of :class:`sandboxer.Client` (an ``httpx.AsyncClient``);
    same arguments, ``async with`` / ``await aclose()``."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        request_timeout: float | httpx.Timeout | None = _core.DEFAULT_REQUEST_TIMEOUT,
        exec_timeout: float | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = _core.resolve_base_url(base_url)
        self.token = _core.resolve_token(token)
        self.request_timeout = _core.make_timeout(request_timeout)
        self.exec_timeout = exec_timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_core.headers(self.token, headers),
            timeout=self.request_timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r})"

    async def request(
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
            response = await self._http.request(
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

    async def stream_lines(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> AsyncGenerator[str, None]:
        """One streamed call of the API: its lines as they arrive (an error
        answer raises its :class:`SandboxerError`, a cut :class:`TransportError`).
        Closing the generator (``aclose()``) closes the connection."""
        try:
            async with self._http.stream(
                method,
                url,
                json=json,
                params=params,
                timeout=timeout if timeout is not None else self.request_timeout,
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _core.check_response(response)
                async for line in response.aiter_lines():
                    yield line
        except httpx.TransportError as exc:
            raise _core.transport_error(exc, method, url) from exc

    async def sandbox(
        self,
        chat_id: str,
        image: str | None = None,
        env: Mapping[str, str] | None = None,
        idle_ttl: float | None = None,
    ) -> AsyncSandbox:
        """``await AsyncSandbox.for_chat(..., client=self)``."""
        return await AsyncSandbox.for_chat(chat_id, image, env, idle_ttl, client=self)

    async def list_sandboxes(self) -> list[SandboxInfo]:
        """``GET /v1/sandboxes``: the active (and hibernated) sandboxes."""
        data = _core.json_object(await self.request("GET", "/v1/sandboxes"))
        return [SandboxInfo.from_json(s) for s in data.get("sandboxes", [])]


# An httpx.AsyncClient belongs to the event loop it first ran on: one default
# client per loop, dropped with its loop.
_defaults: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def default_async_client() -> AsyncClient:
    """The client ``AsyncSandbox.for_chat`` uses when given none: one per running
    event loop, made on first use from ``SANDBOXER_URL`` / ``SANDBOXER_TOKEN``."""
    loop = asyncio.get_running_loop()
    client = _defaults.get(loop)
    if client is None:
        client = _defaults[loop] = AsyncClient()
    return client


class AsyncFiles:
    """The files of a sandbox's workspace (``/workspace``); paths are relative to it."""

    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._sandbox = sandbox

    async def write(self, path: str, data: FileData) -> FileWritten:
        """Write a file (parents are created): ``str`` (UTF-8), bytes, or a file-like
        object opened in binary or text mode (read synchronously)."""
        sbx = self._sandbox
        response = await sbx.client.request(
            "PUT", _core.file_url(sbx.chat_id, path), content=_core.file_bytes(data)
        )
        return FileWritten.from_json(_core.json_object(response))

    async def read(self, path: str) -> bytes:
        """A file's bytes; :class:`FileNotFound` when there is none."""
        sbx = self._sandbox
        return (await sbx.client.request("GET", _core.file_url(sbx.chat_id, path))).content

    async def read_text(self, path: str, encoding: str = "utf-8", errors: str = "strict") -> str:
        return (await self.read(path)).decode(encoding, errors)

    async def list(self, path: str | None = None) -> list[FileEntry]:
        """A directory's entries, one level, sorted by name (``None``: the workspace)."""
        sbx = self._sandbox
        response = await sbx.client.request(
            "GET", _core.file_url(sbx.chat_id, path), params={"list": "true"}
        )
        return [FileEntry.from_json(e) for e in _core.json_object(response).get("entries", [])]


class AsyncSandbox:
    """The async twin of :class:`sandboxer.Sandbox`."""

    def __init__(
        self,
        chat_id: str,
        *,
        client: AsyncClient | None = None,
        info: SandboxInfo | None = None,
    ) -> None:
        self.chat_id = chat_id
        self.client = client if client is not None else default_async_client()
        self.info = info
        self.files = AsyncFiles(self)
        self.processes = AsyncProcesses(self)

    @classmethod
    async def for_chat(
        cls,
        chat_id: str,
        image: str | None = None,
        env: Mapping[str, str] | None = None,
        idle_ttl: float | None = None,
        *,
        client: AsyncClient | None = None,
    ) -> AsyncSandbox:
        """Get-or-create the chat's sandbox (``PUT /v1/chats/{chat_id}/sandbox``);
        see :meth:`sandboxer.Sandbox.for_chat`."""
        client = client if client is not None else default_async_client()
        response = await client.request(
            "PUT", _core.chat_url(chat_id, "sandbox"), json=_core.sandbox_body(image, env, idle_ttl)
        )
        return cls(chat_id, client=client, info=SandboxInfo.from_json(_core.json_object(response)))

    def __repr__(self) -> str:
        return f"AsyncSandbox(chat_id={self.chat_id!r}, session_id={self.session_id!r})"

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

    async def exec(
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
        """Run a command and wait for it; see :meth:`sandboxer.Sandbox.exec`."""
        argv = _core.argv(cmd)
        seconds = timeout if timeout is not None else self.client.exec_timeout
        body = _core.exec_body(argv, seconds, workdir, env, stdin)
        http_timeout = _core.exec_http_timeout(self.client.request_timeout, seconds)
        url = _core.chat_url(self.chat_id, "exec")
        if on_stdout is not None or on_stderr is not None:
            result = await self._exec_streamed(argv, url, body, http_timeout, on_stdout, on_stderr)
        else:
            response = await self.client.request("POST", url, json=body, timeout=http_timeout)
            result = _core.exec_result(response)
        if check and not result.ok:
            raise CommandFailed(argv, result)
        return result

    async def _exec_streamed(
        self,
        argv: list[str],
        url: str,
        body: dict[str, Any],
        http_timeout: httpx.Timeout,
        on_stdout: OutputCallback | None,
        on_stderr: OutputCallback | None,
    ) -> ExecResult:
        callbacks = {"stdout": on_stdout, "stderr": on_stderr}

        async def call(name: str, text: str) -> None:
            callback = callbacks[name]
            if callback is not None:
                returned = callback(text)
                if inspect.isawaitable(returned):
                    await returned

        reading = _core.ExecStream(argv)
        lines = self.client.stream_lines(
            "POST", url, json={**body, "stream": True}, timeout=http_timeout
        )
        async with aclosing(lines):  # also when a callback raised: the service kills the command
            async for line in lines:
                piece = reading.feed(line)
                if piece is not None:
                    await call(*piece)
                if reading.result is not None:
                    break
        for name, text in reading.flush():
            await call(name, text)
        return reading.exec_result()

    async def status(self) -> SandboxInfo:
        """``GET .../sandbox``: the chat's sandbox now, or :class:`SandboxNotFound`."""
        response = await self.client.request("GET", _core.chat_url(self.chat_id, "sandbox"))
        self.info = SandboxInfo.from_json(_core.json_object(response))
        return self.info

    async def delete(self) -> None:
        """Stop and remove the sandbox, workspace included, also a hibernated one's
        (no error when there is none)."""
        await self.client.request("DELETE", _core.chat_url(self.chat_id, "sandbox"))

    async def hibernate(self) -> None:
        """Hibernate now; see :meth:`sandboxer.Sandbox.hibernate`."""
        await self.client.request("POST", _core.chat_url(self.chat_id, "sandbox", "hibernate"))


class AsyncProcesses:
    """The async twin of :class:`sandboxer.Processes`."""

    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._sandbox = sandbox

    async def start(
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
    ) -> AsyncProcess:
        """Start a process in the background; see :meth:`sandboxer.Processes.start`."""
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
        response = await sbx.client.request("POST", _core.process_url(sbx.chat_id), json=body)
        info = ProcessInfo.from_json(_core.json_object(response))
        return AsyncProcess(sbx, info.process_id, info=info)

    async def list(self) -> list[AsyncProcess]:
        """The sandbox's processes, running and recently ended, by start time."""
        sbx = self._sandbox
        data = _core.json_object(await sbx.client.request("GET", _core.process_url(sbx.chat_id)))
        infos = [ProcessInfo.from_json(p) for p in data.get("processes", [])]
        return [AsyncProcess(sbx, i.process_id, info=i) for i in infos]

    async def get(self, process_id: str) -> AsyncProcess:
        """One process (its ``info`` fresh), or :class:`ProcessNotFound`."""
        process = AsyncProcess(self._sandbox, process_id)
        await process.status()
        return process


class AsyncProcess:
    """The async twin of :class:`sandboxer.Process`. :meth:`output` is an async
    generator: leave it early inside ``contextlib.aclosing(...)`` to close its
    connection at once."""

    def __init__(
        self, sandbox: AsyncSandbox, process_id: str, *, info: ProcessInfo | None = None
    ) -> None:
        self.sandbox = sandbox
        self.process_id = process_id
        self.info = info

    def __repr__(self) -> str:
        status = self.info.status if self.info is not None else "?"
        return (
            f"AsyncProcess(chat_id={self.sandbox.chat_id!r}, "
            f"process_id={self.process_id!r}, status={status!r})"
        )

    @property
    def created(self) -> bool | None:
        """From :meth:`AsyncProcesses.start`: whether that call made the process."""
        return self.info.created if self.info is not None else None

    def _url(self, *rest: str) -> str:
        return _core.process_url(self.sandbox.chat_id, self.process_id, *rest)

    async def status(self) -> ProcessInfo:
        """``GET``: the process now (status, exit code, offsets), or :class:`ProcessNotFound`."""
        response = await self.sandbox.client.request("GET", self._url())
        self.info = ProcessInfo.from_json(_core.json_object(response))
        return self.info

    def output(
        self,
        stdout_offset: int = 0,
        stderr_offset: int = 0,
        *,
        follow: bool = False,
        reconnect: bool = True,
    ) -> AsyncGenerator[OutputChunk | OutputPosition, None]:
        """The process's output from the offsets, as events (``async for``);
        see :meth:`sandboxer.Process.output`."""
        return self._events(_core.Cursor(stdout_offset, stderr_offset), follow, reconnect)

    async def _events(
        self, cursor: _core.Cursor, follow: bool, reconnect: bool
    ) -> AsyncGenerator[OutputChunk | OutputPosition, None]:
        client = self.sandbox.client
        base = client.request_timeout
        if follow:
            base = _core.stream_http_timeout(base)
        failures = 0
        while True:
            params = _core.output_params(cursor.stdout, cursor.stderr, follow)
            lines = client.stream_lines("GET", self._url("output"), params=params, timeout=base)
            try:
                async with aclosing(lines):
                    async for line in lines:
                        data = _core.parse_line(line)
                        if data is None:
                            continue
                        event = _core.output_event(data)
                        cursor.advance(event)
                        failures = 0
                        yield event
                        if isinstance(event, OutputPosition) and (event.exited or not follow):
                            return
                raise TransportError("the output stream ended before its last event")
            except TransportError:
                if not (follow and reconnect) or failures >= _core.FOLLOW_RECONNECTS:
                    raise
                failures += 1
                await asyncio.sleep(0.5 * 2 ** (failures - 1))

    async def read_output(
        self, stdout_offset: int = 0, stderr_offset: int = 0, *, follow: bool = False
    ) -> ProcessOutput:
        """:meth:`output` gathered; see :meth:`sandboxer.Process.read_output`."""
        out, err = bytearray(), bytearray()
        end: OutputPosition | None = None
        async with aclosing(self.output(stdout_offset, stderr_offset, follow=follow)) as events:
            async for event in events:
                if isinstance(event, OutputChunk):
                    (err if event.stream == "stderr" else out).extend(event.data)
                else:
                    end = event
        assert end is not None  # output() ends with a position, or raises
        return ProcessOutput(stdout=bytes(out), stderr=bytes(err), end=end)

    async def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to end and return its exit code; past ``timeout``
        seconds ``TimeoutError`` (the process runs on). See :meth:`sandboxer.Process.wait`."""
        try:
            return await asyncio.wait_for(self._wait(), timeout)
        except asyncio.TimeoutError:  # not the builtin before Python 3.11
            raise TimeoutError(f"process {self.process_id!r} still running") from None

    async def _wait(self) -> int:
        while True:
            info = await self.status()
            if info.exited:
                return _core.exit_code_of(info.exit_code)
            cursor = _core.Cursor(info.stdout.end, info.stderr.end)
            try:
                async with aclosing(self._events(cursor, True, True)) as events:
                    async for event in events:
                        if isinstance(event, OutputPosition) and event.exited:
                            return _core.exit_code_of(event.exit_code)
            except CursorExpired:
                continue  # fell behind the buffer: start again from where it ends now

    async def write_stdin(
        self, data: str | bytes, offset: int | None = None, close: bool = False
    ) -> StdinState:
        """Bytes to the process's stdin; see :meth:`sandboxer.Process.write_stdin`."""
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        response = await self.sandbox.client.request(
            "POST", self._url("stdin"), content=payload, params=_core.stdin_params(offset, close)
        )
        return _core.stdin_state(response)

    async def close_stdin(self) -> StdinState:
        """``write_stdin(b"", close=True)``: end of input."""
        return await self.write_stdin(b"", close=True)

    async def signal(self, sig: SignalName) -> None:
        """Send a signal (``"TERM"``, ``"INT"``, ``signal.SIGHUP``, ...) to the process's group."""
        await self.sandbox.client.request(
            "POST", self._url("signal"), json={"signal": _core.signal_name(sig)}
        )

    async def kill(self) -> None:
        """Kill the process's whole tree (``DELETE``); returns once it is gone."""
        await self.sandbox.client.request("DELETE", self._url())
