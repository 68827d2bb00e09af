"""Sandboxer's MCP server through the official Python `mcp` client: a real
`sandboxer serve` (port 0, a temporary database, an instance id of its own,
a token), then streamable HTTP at /mcp and stdio through `sandboxer mcp`.
Sandboxes made here are deleted, and the service stopped, even on failure."""

import json
import os
import subprocess
import tempfile
import uuid
from contextlib import asynccontextmanager

import anyio
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

BIN = os.environ.get("SANDBOXER_BIN", "sandboxer")
IMAGE = os.environ.get("SANDBOXER_TEST_IMAGE", "sandboxer-base:bookworm")
TOKEN = "mcp-test-" + uuid.uuid4().hex
TOOLS = {
    "exec",
    "write_file",
    "read_file",
    "list_files",
    "sandbox_status",
    "hibernate_sandbox",
    "delete_sandbox",
    "start_process",
    "read_process_output",
    "write_process_stdin",
    "kill_process",
}


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def service():
    """The service's base URL; it is stopped, and its containers removed, at the end."""
    tmp = tempfile.TemporaryDirectory(prefix="sandboxer-mcp-")
    instance = "mcp-test-" + uuid.uuid4().hex[:12]
    log = open(os.path.join(tmp.name, "service.log"), "w")
    proc = subprocess.Popen(
        [BIN, "serve", "--listen", "127.0.0.1:0",
         "--database", os.path.join(tmp.name, "sandboxer.db"),
         "--instance", instance, "--image", IMAGE, "--token", TOKEN],
        stdout=subprocess.PIPE, stderr=log, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("sandboxer listening on "), (
            f"the service did not start: {line!r}\n{open(log.name).read()}")
        yield line.removeprefix("sandboxer listening on ")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        # Whatever a failed test left behind: this instance's containers and volumes.
        label = f"label=sandboxer.instance={instance}"
        for kind, args in (("container", ["ps", "-aq", "--filter", label]),
                           ("volume", ["volume", "ls", "-q", "--filter", label])):
            ids = subprocess.run(["docker", *args], capture_output=True, text=True).stdout.split()
            if ids:
                rm = ["docker", "rm", "-f"] if kind == "container" else ["docker", "volume", "rm", "-f"]
                subprocess.run([*rm, *ids], capture_output=True)
        log.close()
        tmp.cleanup()


@asynccontextmanager
async def http_session(base):
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    async with client, streamable_http_client(f"{base}/mcp", http_client=client) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            yield session


def structured(result):
    return result.structured_content


@pytest.mark.anyio
async def test_streamable_http_tools(service):
    chat = "mcp-py-" + uuid.uuid4().hex[:8]
    async with http_session(service) as session:
        try:
            tools = await session.list_tools()
            assert {t.name for t in tools.tools} == TOOLS
            assert all("chat_id" in t.input_schema["required"] for t in tools.tools)

            ran = await session.call_tool("exec", {"chat_id": chat, "argv": ["echo", "hi"]})
            assert not ran.is_error, ran
            assert structured(ran)["exit_code"] == 0
            assert structured(ran)["stdout"] == "hi\n"
            assert "hi" in ran.content[0].text

            shell = await session.call_tool(
                "exec", {"chat_id": chat, "command": "echo $((6 * 7)) | tee n.txt; exit 3"})
            assert structured(shell)["exit_code"] == 3 and structured(shell)["stdout"] == "42\n"

            wrote = await session.call_tool(
                "write_file", {"chat_id": chat, "path": "dir/hello.txt", "content": "héllo\n"})
            assert not wrote.is_error, wrote
            raw = await session.call_tool(
                "write_file", {"chat_id": chat, "path": "dir/blob.bin",
                               "content": "AAEC/w==", "encoding": "base64"})
            assert structured(raw)["size"] == 4
            text = await session.call_tool("read_file", {"chat_id": chat, "path": "dir/hello.txt"})
            assert structured(text)["content"] == "héllo\n" and structured(text)["encoding"] == "text"
            blob = await session.call_tool("read_file", {"chat_id": chat, "path": "/workspace/dir/blob.bin"})
            assert (structured(blob)["encoding"], structured(blob)["content"]) == ("base64", "AAEC/w==")
            listed = await session.call_tool("list_files", {"chat_id": chat, "path": "dir"})
            assert [e["name"] for e in structured(listed)["entries"]] == ["blob.bin", "hello.txt"]
            top = await session.call_tool("list_files", {"chat_id": chat})
            assert "n.txt" in [e["name"] for e in structured(top)["entries"]]

            status = await session.call_tool("sandbox_status", {"chat_id": chat})
            assert structured(status)["status"] == "running"

            started = await session.call_tool(
                "start_process", {"chat_id": chat, "command": "read line; echo got $line; exit 4",
                                  "process_id": "reader", "keep_stdin_open": True})
            assert not started.is_error and structured(started)["process"]["status"] == "running"
            fed = await session.call_tool(
                "write_process_stdin", {"chat_id": chat, "process_id": "reader", "data": "x\n"})
            assert structured(fed)["stdin_offset"] == 2
            out, offset = "", 0
            for _ in range(20):
                read = await session.call_tool(
                    "read_process_output", {"chat_id": chat, "process_id": "reader",
                                            "stdout_offset": offset, "wait_ms": 2000})
                out += structured(read)["stdout"]
                offset = structured(read)["next_stdout_offset"]
                if structured(read)["status"] == "exited":
                    break
            assert out == "got x\n" and structured(read)["exit_code"] == 4
            sleeper = await session.call_tool(
                "start_process", {"chat_id": chat, "argv": ["sleep", "1000"], "process_id": "s"})
            assert not sleeper.is_error
            killed = await session.call_tool("kill_process", {"chat_id": chat, "process_id": "s"})
            assert structured(killed)["process"]["exit_code"] == 137

            slept = await session.call_tool("hibernate_sandbox", {"chat_id": chat})
            assert not slept.is_error and structured(slept)["result"] == "hibernated", slept
            status = await session.call_tool("sandbox_status", {"chat_id": chat})
            assert structured(status)["status"] == "hibernated", status
            assert structured(status)["retained_until"]
            kept = await session.call_tool("read_file", {"chat_id": chat, "path": "dir/hello.txt"})
            assert structured(kept)["content"] == "héllo\n", kept
            status = await session.call_tool("sandbox_status", {"chat_id": chat})
            assert structured(status)["status"] == "running"

            bad = await session.call_tool("exec", {"chat_id": "not a chat id", "argv": ["true"]})
            assert bad.is_error and structured(bad)["error"]["code"] == "invalid_chat_id"
            assert structured(bad)["error"]["hint"]
            missing = await session.call_tool("read_file", {"chat_id": chat, "path": "nope.txt"})
            assert missing.is_error and structured(missing)["error"]["code"] == "file_not_found"
        finally:
            gone = await session.call_tool("delete_sandbox", {"chat_id": chat})
        assert structured(gone)["result"] == "stopped"
        after = await session.call_tool("sandbox_status", {"chat_id": chat})
        assert structured(after)["status"] == "none"


@pytest.mark.anyio
async def test_mcp_without_token_is_401(service):
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}
    async with httpx2.AsyncClient() as client:
        answer = await client.post(f"{service}/mcp", json=body,
                                   headers={"Accept": "application/json, text/event-stream"})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"


@pytest.mark.anyio
async def test_stdio_through_sandboxer_mcp(service):
    chat = "mcp-stdio-" + uuid.uuid4().hex[:8]
    params = StdioServerParameters(
        command=BIN, args=["mcp"],
        env={"SANDBOXER_URL": service, "SANDBOXER_TOKEN": TOKEN})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            try:
                tools = await session.list_tools()
                assert {t.name for t in tools.tools} == TOOLS
                ran = await session.call_tool("exec", {"chat_id": chat, "command": "uname -s"})
                assert not ran.is_error, ran
                assert structured(ran)["stdout"] == "Linux\n"
            finally:
                await session.call_tool("delete_sandbox", {"chat_id": chat})
