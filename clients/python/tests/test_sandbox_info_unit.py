"""What the sandbox answers become, and ``hibernate()``'s call, without a
service (``httpx.MockTransport``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

import sandboxer
from sandboxer import AsyncSandbox, Sandbox, SandboxInfo

ACTIVE: dict[str, Any] = {
    "session_id": "0190a0a0-0000-7000-8000-000000000001",
    "chat_id": "web:42",
    "workspace_id": "0190a0a0-0000-7000-8000-0000000000aa",
    "container_id": "c0ffee",
    "image": "sandboxer-base:bookworm",
    "status": "running",
    "generation": 2,
    "created_at": "2026-01-01T00:00:00.000Z",
    "last_used_at": "2026-01-01T00:10:00.000Z",
    "expires_at": "2026-01-01T00:40:00.000Z",
}
HIBERNATED: dict[str, Any] = {
    "chat_id": "web:42",
    "status": "hibernated",
    "workspace_id": "0190a0a0-0000-7000-8000-0000000000aa",
    "hibernated_at": "2026-01-01T00:40:00.000Z",
    "retained_until": "2026-01-08T00:40:00.000Z",
    "session_id": "0190a0a0-0000-7000-8000-000000000001",
    "image": "sandboxer-base:bookworm",
}


def test_an_active_sandbox() -> None:
    info = SandboxInfo.from_json({**ACTIVE, "result": "resumed"})
    assert (info.status, info.hibernated, info.result) == ("running", False, "resumed")
    assert info.workspace_id == ACTIVE["workspace_id"] and info.generation == 2
    assert info.expires_at == datetime(2026, 1, 1, 0, 40, tzinfo=timezone.utc)
    assert info.retained_until is None and info.hibernated_at is None


def test_a_hibernated_sandbox() -> None:
    info = SandboxInfo.from_json(HIBERNATED)
    assert info.hibernated and info.status == "hibernated"
    assert info.retained_until == datetime(2026, 1, 8, 0, 40, tzinfo=timezone.utc)
    assert info.hibernated_at == datetime(2026, 1, 1, 0, 40, tzinfo=timezone.utc)
    assert (info.session_id, info.image) == (HIBERNATED["session_id"], HIBERNATED["image"])
    assert info.container_id is None and info.generation is None and info.expires_at is None
    # The last session may be unknown (a listing does not name it).
    bare = SandboxInfo.from_json({k: v for k, v in HIBERNATED.items() if k not in ("session_id", "image")})
    assert bare.session_id is None and bare.image is None and bare.hibernated


def answers(seen: list[tuple[str, str]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.raw_path.decode()))
        if request.url.path.endswith("/hibernate"):
            return httpx.Response(204)
        if request.url.path == "/v1/sandboxes":
            return httpx.Response(200, json={"sandboxes": [ACTIVE, HIBERNATED]})
        return httpx.Response(200, json=HIBERNATED)

    return httpx.MockTransport(handler)


def test_hibernate_posts_and_status_reads() -> None:
    seen: list[tuple[str, str]] = []
    with sandboxer.Client("http://sandboxer.test", transport=answers(seen)) as c:
        sbx = Sandbox("web:42", client=c)
        sbx.hibernate()
        assert sbx.status().hibernated and sbx.workspace_id == HIBERNATED["workspace_id"]
        assert [s.status for s in c.list_sandboxes()] == ["running", "hibernated"]
    assert seen == [
        ("POST", "/v1/chats/web%3A42/sandbox/hibernate"),
        ("GET", "/v1/chats/web%3A42/sandbox"),
        ("GET", "/v1/sandboxes"),
    ]


@pytest.mark.asyncio
async def test_async_hibernate_posts() -> None:
    seen: list[tuple[str, str]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.raw_path.decode()))
        return httpx.Response(204)

    async with sandboxer.AsyncClient(
        "http://sandboxer.test", transport=httpx.MockTransport(handler)
    ) as c:
        await AsyncSandbox("web:42", client=c).hibernate()
    assert seen == [("POST", "/v1/chats/web%3A42/sandbox/hibernate")]


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (404, "no_sandbox", sandboxer.SandboxNotFound),
        (409, "conflict", sandboxer.Conflict),
        (503, "busy", sandboxer.Busy),
    ],
)
def test_hibernate_refusals_raise_their_class(
    status: int, code: str, cls: type[sandboxer.SandboxerError]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": code, "message": "no"}}
        return httpx.Response(status, json=body, headers={"retry-after": "1"})

    with sandboxer.Client("http://sandboxer.test", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(cls):
            Sandbox("web:42", client=c).hibernate()
