"""The synchronous client: :class:`Client`, :class:`Sandbox`, :class:`Files`."""

from __future__ import annotations

import threading
from datetime import datetime
from collections.abc import Mapping
from types import TracebackType
from typing import Any, NoReturn

import httpx

from . import _core
from ._core import Command, FileData, OutputCallback
from .errors import CommandFailed
from .models import ExecResult, FileEntry, FileWritten, SandboxInfo

__all__ = ["Client", "Sandbox", "Files", "default_client"]


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
    so a ``Sandbox`` is a cheap handle (the service replaces an expired sandbox
    at the next use, workspace gone; ``info`` is what the service said last)."""

    def __init__(
        self, chat_id: str, *, client: Client | None = None, info: SandboxInfo | None = None
    ) -> None:
        self.chat_id = chat_id
        self.client = client if client is not None else default_client()
        self.info = info
        self.files = Files(self)

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
        another spec is replaced. ``info.result`` says ``created``, ``reused`` or
        ``replaced``.
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
    def result(self) -> str | None:
        """``created``, ``reused`` or ``replaced``: what :meth:`for_chat` did."""
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
        if on_stdout is not None or on_stderr is not None:
            raise _core.not_yet("exec streaming (on_stdout / on_stderr)", "streamed exec output")
        argv = _core.argv(cmd)
        seconds = timeout if timeout is not None else self.client.exec_timeout
        body = _core.exec_body(argv, seconds, workdir, env, stdin)
        response = self.client.request(
            "POST",
            _core.chat_url(self.chat_id, "exec"),
            json=body,
            timeout=_core.exec_http_timeout(self.client.request_timeout, seconds),
        )
        result = _core.exec_result(response)
        if check and not result.ok:
            raise CommandFailed(argv, result)
        return result

    def status(self) -> SandboxInfo:
        """``GET .../sandbox``: the chat's sandbox now, or :class:`SandboxNotFound`."""
        response = self.client.request("GET", _core.chat_url(self.chat_id, "sandbox"))
        self.info = SandboxInfo.from_json(_core.json_object(response))
        return self.info

    def delete(self) -> None:
        """Stop and remove the sandbox, workspace included (no error when there is none)."""
        self.client.request("DELETE", _core.chat_url(self.chat_id, "sandbox"))

    def hibernate(self) -> NoReturn:
        """Not yet: needs the service's hibernation."""
        raise _core.not_yet("Sandbox.hibernate()", "hibernation")

    @property
    def processes(self) -> NoReturn:
        """Not yet: needs the service's live processes."""
        raise _core.not_yet("Sandbox.processes (start / get / output / stdin / kill)")
