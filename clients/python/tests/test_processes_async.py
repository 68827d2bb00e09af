"""Streamed exec and live processes with the async client, against the real service."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest
import pytest_asyncio

import sandboxer
from sandboxer import AsyncSandbox, OutputChunk, OutputPosition

from .conftest import Service


@pytest_asyncio.fixture
async def asbx(service: Service) -> AsyncIterator[AsyncSandbox]:
    async with sandboxer.AsyncClient(service.url, token=service.token) as client:
        sbx = await AsyncSandbox.for_chat(f"pytest-aproc-{uuid.uuid4().hex[:12]}", client=client)
        try:
            yield sbx
        finally:
            await sbx.delete()


@pytest.mark.asyncio
async def test_async_streamed_exec(asbx: AsyncSandbox) -> None:
    started = time.monotonic()
    seen: list[tuple[float, str]] = []
    errs: list[str] = []

    async def on_stdout(text: str) -> None:  # an async callback is awaited
        await asyncio.sleep(0)
        seen.append((time.monotonic() - started, text))

    r = await asbx.exec(
        ["sh", "-c", "echo one; sleep 2; echo two; echo bad >&2; exit 2"],
        on_stdout=on_stdout,
        on_stderr=errs.append,  # a plain callable too
    )
    returned = time.monotonic() - started
    assert (r.stdout, r.stderr, r.exit_code) == ("one\ntwo\n", "bad\n", 2)
    assert "".join(t for _, t in seen) == "one\ntwo\n" and errs == ["bad\n"]
    first = next(at for at, text in seen if "one" in text)
    assert first < returned - 1.0, (first, returned)
    assert r.process_id and r.session_id == asbx.session_id
    with pytest.raises(sandboxer.CommandFailed):
        await asbx.exec("exit 1", check=True, on_stderr=errs.append)
    r = await asbx.exec("echo x; sleep 20", timeout=0.5, on_stdout=errs.append)
    assert r.timed_out and r.stdout == "x\n"


@pytest.mark.asyncio
async def test_async_processes(asbx: AsyncSandbox) -> None:
    procs = asbx.processes
    cat = await procs.start(["cat"], process_id="cat", keep_stdin_open=True)
    assert cat.created is True and cat.info is not None and cat.info.running
    assert (await cat.write_stdin("abc", offset=0)) == (3, True)
    assert (await cat.write_stdin("abc", offset=0)) == (3, True)  # a retry, not doubled
    assert (await cat.write_stdin(b"def", offset=3, close=True)) == (6, False)
    assert await cat.wait(timeout=30) == 0
    out = await cat.read_output()
    assert out.stdout == b"abcdef" and out.end.exited

    again = await procs.start(["cat"], process_id="cat", keep_stdin_open=True)
    assert again.created is False
    with pytest.raises(sandboxer.Conflict):
        await procs.start(["cat", "-n"], process_id="cat")

    sleeper = await procs.start(["sleep", "1000"], process_id="sleeper")
    termed = await procs.start(["sleep", "1000"], process_id="termed")
    await termed.signal("TERM")
    assert await termed.wait(timeout=30) == 143
    with pytest.raises(TimeoutError):
        await sleeper.wait(timeout=0.5)
    assert (await sleeper.status()).running

    listed = {p.process_id: p.info for p in await procs.list()}
    assert set(listed) == {"cat", "sleeper", "termed"}
    assert listed["sleeper"] is not None and listed["sleeper"].running
    assert (await procs.get("termed")).info == await termed.status()

    await sleeper.kill()
    info = await sleeper.status()
    assert info.exited and info.killed

    with pytest.raises(sandboxer.ProcessNotFound) as caught:
        await procs.get("missing")
    assert caught.value.status == 404
    with pytest.raises(sandboxer.ProcessNotFound):
        await sandboxer.AsyncProcess(asbx, "missing").kill()


@pytest.mark.asyncio
async def test_async_follow(asbx: AsyncSandbox) -> None:
    p = await asbx.processes.start(
        ["sh", "-c", "printf abcdef; sleep 1; printf ghi >&2; printf jkl"], process_id="f"
    )
    deadline = time.monotonic() + 10  # an offset past the stream's end is InvalidOffset
    while (await p.status()).stdout.end < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    events = [e async for e in p.output(stdout_offset=2, follow=True)]
    chunks = [e for e in events if isinstance(e, OutputChunk)]
    assert b"".join(c.data for c in chunks if c.stream == "stdout") == b"cdefjkl"
    assert b"".join(c.data for c in chunks if c.stream == "stderr") == b"ghi"
    end = events[-1]
    assert isinstance(end, OutputPosition) and end.exited and end.offsets == (9, 3)

    # Leaving a follow early closes it; the process runs on.
    q = await asbx.processes.start(["sh", "-c", "echo go; sleep 1000"], process_id="early")
    async with aclosing(q.output(follow=True)) as stream:
        async for event in stream:
            assert isinstance(event, OutputChunk) and event.data == b"go\n"
            break
    assert (await q.status()).running
    with pytest.raises(sandboxer.InvalidOffset):
        await q.read_output(stdout_offset=1000)
    await q.kill()
