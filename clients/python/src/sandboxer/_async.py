"""The asynchronous client: :class:`AsyncClient`, :class:`AsyncSandbox`, :class:`AsyncFiles`."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, NoReturn

import httpx

from . import _core
from ._core import Command, FileData, OutputCallback
from .errors import CommandFailed
from .models import ExecResult, FileEntry, FileWritten, SandboxInfo

__all__ = ["AsyncClient", "AsyncSandbox", "AsyncFiles", "default_async_client"]


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
    def result(self) -> str | None:
        """``created``, ``reused`` or ``replaced``: what :meth:`for_chat` did."""
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
        if on_stdout is not None or on_stderr is not None:
            raise _core.not_yet("exec streaming (on_stdout / on_stderr)", "streamed exec output")
        argv = _core.argv(cmd)
        seconds = timeout if timeout is not None else self.client.exec_timeout
        body = _core.exec_body(argv, seconds, workdir, env, stdin)
        response = await self.client.request(
            "POST",
            _core.chat_url(self.chat_id, "exec"),
            json=body,
            timeout=_core.exec_http_timeout(self.client.request_timeout, seconds),
        )
        result = _core.exec_result(response)
        if check and not result.ok:
            raise CommandFailed(argv, result)
        return result

    async def status(self) -> SandboxInfo:
        """``GET .../sandbox``: the chat's sandbox now, or :class:`SandboxNotFound`."""
        response = await self.client.request("GET", _core.chat_url(self.chat_id, "sandbox"))
        self.info = SandboxInfo.from_json(_core.json_object(response))
        return self.info

    async def delete(self) -> None:
        """Stop and remove the sandbox, workspace included (no error when there is none)."""
        await self.client.request("DELETE", _core.chat_url(self.chat_id, "sandbox"))

    async def hibernate(self) -> NoReturn:
        """Not yet: needs the service's hibernation."""
        raise _core.not_yet("AsyncSandbox.hibernate()", "hibernation")

    @property
    def processes(self) -> NoReturn:
        """Not yet: needs the service's live processes."""
        raise _core.not_yet("AsyncSandbox.processes (start / get / output / stdin / kill)")
