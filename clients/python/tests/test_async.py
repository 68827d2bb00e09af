"""The async client against the real service: the same basics."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import sandboxer
from sandboxer import AsyncSandbox

from .conftest import Service


@pytest_asyncio.fixture
async def aclient(service: Service) -> AsyncIterator[sandboxer.AsyncClient]:
    async with sandboxer.AsyncClient(service.url, token=service.token) as c:
        yield c


@pytest_asyncio.fixture
async def achat(aclient: sandboxer.AsyncClient) -> AsyncIterator[str]:
    chat = f"pytest-async-{uuid.uuid4().hex[:12]}"
    try:
        yield chat
    finally:
        await AsyncSandbox(chat, client=aclient).delete()


@pytest.mark.asyncio
async def test_async_lifecycle_exec_files(aclient: sandboxer.AsyncClient, achat: str) -> None:
    sbx = await AsyncSandbox.for_chat(achat, idle_ttl=300, client=aclient)
    assert sbx.result == "created" and sbx.container_id
    again = await aclient.sandbox(achat, idle_ttl=300)
    assert again.result == "reused" and again.session_id == sbx.session_id

    r = await sbx.exec(["python3", "-c", "import sys; print(sys.stdin.read().upper())"], stdin="abc")
    assert (r.stdout, r.exit_code) == ("ABC\n", 0)
    r = await sbx.exec("echo $X; pwd; exit 4", env={"X": "y"}, workdir="/tmp")
    assert (r.stdout, r.exit_code) == ("y\n/tmp\n", 4)
    with pytest.raises(sandboxer.CommandFailed):
        await sbx.exec("exit 1", check=True)
    r = await sbx.exec("sleep 20", timeout=0.5)
    assert r.timed_out

    await sbx.files.write("notes/a.txt", "alpha")
    await sbx.files.write("notes/b.bin", b"\x00beta")
    await sbx.files.write("notes/c.txt", io.BytesIO(b"gamma"))
    assert await sbx.files.read("notes/b.bin") == b"\x00beta"
    assert await sbx.files.read_text("notes/c.txt") == "gamma"
    assert [e.name for e in await sbx.files.list("notes")] == ["a.txt", "b.bin", "c.txt"]
    assert "notes" in [e.name for e in await sbx.files.list()]

    # Concurrent commands in one sandbox.
    results = await asyncio.gather(*(sbx.exec(["echo", str(i)]) for i in range(4)))
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(4)]

    with pytest.raises(sandboxer.FileNotFound):
        await sbx.files.read("notes/missing")
    with pytest.raises(sandboxer.NotADirectory):
        await sbx.files.list("notes/a.txt")
    with pytest.raises(sandboxer.InvalidPath):
        await sbx.files.write("../x", "no")

    assert (await sbx.status()).status == "running"
    await sbx.delete()
    with pytest.raises(sandboxer.SandboxNotFound):
        await sbx.status()


@pytest.mark.asyncio
async def test_async_unauthorized(service: Service, achat: str) -> None:
    async with sandboxer.AsyncClient(service.url, token="wrong") as c:
        with pytest.raises(sandboxer.Unauthorized):
            await AsyncSandbox.for_chat(achat, client=c)


@pytest.mark.asyncio
async def test_async_default_client(
    monkeypatch: pytest.MonkeyPatch, service: Service, achat: str
) -> None:
    monkeypatch.setenv("SANDBOXER_URL", service.url)
    monkeypatch.setenv("SANDBOXER_TOKEN", service.token)
    sbx = await AsyncSandbox.for_chat(achat)
    try:
        assert sbx.client is sandboxer.default_async_client()
        assert (await sbx.exec("echo hi")).stdout == "hi\n"
    finally:
        await sbx.client.aclose()


@pytest.mark.asyncio
async def test_async_hibernate_and_resume(aclient: sandboxer.AsyncClient, achat: str) -> None:
    sbx = AsyncSandbox(achat, client=aclient)
    with pytest.raises(sandboxer.SandboxNotFound):
        await sbx.hibernate()
    await sbx.files.write("kept.txt", "yes")
    workspace = (await sbx.status()).workspace_id
    await sbx.hibernate()
    slept = await sbx.status()
    assert slept.hibernated and slept.retained_until is not None
    assert slept.workspace_id == workspace
    resumed = await AsyncSandbox.for_chat(achat, client=aclient)
    assert resumed.result == "resumed" and resumed.workspace_id == workspace
    assert await resumed.files.read_text("kept.txt") == "yes"
