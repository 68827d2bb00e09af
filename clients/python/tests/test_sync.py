"""The sync client against the real service."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

import sandboxer
from sandboxer import Sandbox

from .conftest import MAX_FILE_BYTES, Service


def test_for_chat_creates_then_reuses(client: sandboxer.Client, chat_id: str) -> None:
    first = Sandbox.for_chat(chat_id, env={"GREETING": "hi"}, idle_ttl=600, client=client)
    assert first.result == "created"
    assert first.info is not None
    assert first.info.chat_id == chat_id and first.info.status == "running"
    assert first.session_id and first.container_id
    assert first.expires_at is not None
    ttl = first.expires_at - datetime.now(timezone.utc)
    assert timedelta(seconds=500) < ttl <= timedelta(seconds=601)

    again = Sandbox.for_chat(chat_id, env={"GREETING": "hi"}, idle_ttl=600, client=client)
    assert again.result == "reused"
    assert (again.session_id, again.container_id) == (first.session_id, first.container_id)
    assert again.exec("echo $GREETING").stdout == "hi\n"

    status = again.status()
    assert status.session_id == first.session_id and status.result is None


def test_for_chat_replaces_on_another_spec(client: sandboxer.Client, chat_id: str) -> None:
    first = Sandbox.for_chat(chat_id, env={"V": "1"}, client=client)
    second = Sandbox.for_chat(chat_id, env={"V": "2"}, client=client)
    assert second.result == "replaced"
    assert second.info is not None and second.info.replace_reason == "spec_changed"
    assert second.session_id != first.session_id
    assert second.exec(["sh", "-c", "echo $V"]).stdout == "2\n"


def test_exec_argv_and_shell_string(shared: Sandbox) -> None:
    r = shared.exec(["python3", "-c", "print(6*7)"])
    assert (r.stdout, r.stderr, r.exit_code, r.timed_out, r.truncated) == ("42\n", "", 0, False, False)
    assert r.ok and r.duration_ms >= 0 and r.session_id == shared.session_id
    # A string runs under sh -c: pipes and expansion work.
    r = shared.exec("echo one two | wc -w; echo err >&2")
    assert r.stdout.strip() == "2" and r.stderr == "err\n"
    # argv is not a shell: the metacharacters are plain arguments.
    assert shared.exec(["echo", "a|b", "$HOME"]).stdout == "a|b $HOME\n"


def test_exit_codes_and_check(shared: Sandbox) -> None:
    r = shared.exec("exit 3")
    assert r.exit_code == 3 and not r.ok
    with pytest.raises(sandboxer.CommandFailed) as caught:
        shared.exec(["sh", "-c", "echo boom >&2; exit 7"], check=True)
    assert caught.value.exit_code == 7
    assert caught.value.stderr == "boom\n"
    assert caught.value.cmd == ["sh", "-c", "echo boom >&2; exit 7"]
    assert "boom" in str(caught.value)
    assert shared.exec("true", check=True).exit_code == 0


def test_stdin_env_workdir(shared: Sandbox) -> None:
    assert shared.exec(["cat"], stdin="hello\nworld").stdout == "hello\nworld"
    assert shared.exec(["wc", "-c"], stdin=b"12345").stdout.strip() == "5"
    r = shared.exec(["sh", "-c", 'echo "$A-$B"'], env={"A": "1", "B": "two words"})
    assert r.stdout == "1-two words\n"
    assert shared.exec(["pwd"]).stdout == "/workspace\n"
    assert shared.exec(["pwd"], workdir="/tmp").stdout == "/tmp\n"


def test_timeout(shared: Sandbox) -> None:
    r = shared.exec(["sleep", "30"], timeout=1)
    assert r.timed_out and not r.ok
    assert r.duration_ms < 15_000
    with pytest.raises(sandboxer.CommandFailed) as caught:
        shared.exec("sleep 30", timeout=0.5, check=True)
    assert caught.value.result.timed_out
    # The sandbox is still usable after a timeout.
    assert shared.exec("echo alive").stdout == "alive\n"


def test_exec_waits_past_the_request_timeout(service: Service, shared: Sandbox) -> None:
    # The HTTP timeout of an exec call is raised by the command's own.
    with sandboxer.Client(service.url, token=service.token, request_timeout=1) as short:
        sbx = Sandbox(shared.chat_id, client=short)
        r = sbx.exec("sleep 2; echo done", timeout=10)
    assert r.stdout == "done\n" and not r.timed_out


def test_files_write_read_list(shared: Sandbox) -> None:
    base = "files-test"
    w = shared.files.write(f"{base}/text.txt", "héllo\n")
    assert (w.path, w.size) == (f"{base}/text.txt", len("héllo\n".encode()))
    shared.files.write(f"{base}/raw.bin", bytes(range(256)))
    shared.files.write(f"{base}/from-binary-file.bin", io.BytesIO(b"\x00\x01binary"))
    shared.files.write(f"{base}/from-text-file.txt", io.StringIO("text file\n"))
    shared.files.write(f"{base}/sub/deeper/empty", b"")

    assert shared.files.read(f"{base}/text.txt") == "héllo\n".encode()
    assert shared.files.read_text(f"{base}/text.txt") == "héllo\n"
    assert shared.files.read(f"{base}/raw.bin") == bytes(range(256))
    assert shared.files.read(f"{base}/from-binary-file.bin") == b"\x00\x01binary"
    assert shared.files.read_text(f"{base}/from-text-file.txt") == "text file\n"
    assert shared.files.read(f"{base}/sub/deeper/empty") == b""
    # The command sees what the files API wrote, and the other way round.
    assert shared.exec(["cat", f"{base}/text.txt"]).stdout == "héllo\n"
    shared.exec(f"echo from-exec > {base}/made-by-exec.txt", check=True)
    assert shared.files.read_text(f"{base}/made-by-exec.txt") == "from-exec\n"

    entries = shared.files.list(base)
    names = [e.name for e in entries]
    assert names == sorted(names)
    assert names == [
        "from-binary-file.bin",
        "from-text-file.txt",
        "made-by-exec.txt",
        "raw.bin",
        "sub",
        "text.txt",
    ]
    by_name = {e.name: e for e in entries}
    assert by_name["raw.bin"].type == "file" and by_name["raw.bin"].size == 256
    assert by_name["sub"].is_dir and not by_name["sub"].is_file
    assert isinstance(by_name["raw.bin"].modified_at, datetime)
    assert abs(by_name["raw.bin"].modified_at - datetime.now(timezone.utc)) < timedelta(minutes=10)

    root = shared.files.list()
    assert base in [e.name for e in root if e.is_dir]
    assert [e.name for e in shared.files.list(f"{base}/sub")] == ["deeper"]


def test_file_errors(shared: Sandbox) -> None:
    shared.files.write("errors-test/a-file", "x")
    with pytest.raises(sandboxer.FileNotFound) as missing:
        shared.files.read("errors-test/missing")
    assert missing.value.status == 404 and missing.value.code == "file_not_found"
    with pytest.raises(sandboxer.NotADirectory):
        shared.files.list("errors-test/a-file")
    with pytest.raises(sandboxer.NotAFile):
        shared.files.read("errors-test")
    for bad in ["../escape", "/etc/passwd", "a/./b", "a//b", "a\\b"]:
        with pytest.raises(sandboxer.InvalidRequest) as caught:
            shared.files.write(bad, "nope")
        assert isinstance(caught.value, sandboxer.InvalidPath), bad
        assert caught.value.status == 400


def test_upload_too_large(shared: Sandbox) -> None:
    with pytest.raises(sandboxer.PayloadTooLarge) as caught:
        shared.files.write("too-large.bin", b"x" * (MAX_FILE_BYTES + 1))
    assert caught.value.status == 413
    shared.files.write("just-fits.bin", b"x" * MAX_FILE_BYTES)


def test_invalid_requests(client: sandboxer.Client, shared: Sandbox) -> None:
    with pytest.raises(sandboxer.InvalidRequest) as caught:
        shared.exec([])
    assert caught.value.code == "invalid_request"
    with pytest.raises(sandboxer.InvalidRequest):
        shared.exec(["true"], workdir="relative/dir")
    with pytest.raises(sandboxer.InvalidChatId):
        Sandbox.for_chat("not a valid chat id!", client=client)
    with pytest.raises(sandboxer.ImageNotFound):
        Sandbox.for_chat("pytest-no-such-image", image="sandboxer-no-such-image:never", client=client)


def test_unauthorized(service: Service, chat_id: str) -> None:
    for token in ["wrong-token", ""]:
        with sandboxer.Client(service.url, token=token) as c:
            with pytest.raises(sandboxer.Unauthorized) as caught:
                Sandbox.for_chat(chat_id, client=c)
            assert caught.value.status == 401
            with pytest.raises(sandboxer.Unauthorized):
                Sandbox(chat_id, client=c).exec("true")


def test_status_after_delete(client: sandboxer.Client, chat_id: str) -> None:
    sbx = Sandbox.for_chat(chat_id, client=client)
    first_session = sbx.session_id
    assert sbx.status().status == "running"
    sbx.delete()
    with pytest.raises(sandboxer.SandboxNotFound) as caught:
        sbx.status()
    assert (caught.value.code, caught.value.status) == ("no_sandbox", 404)
    assert isinstance(caught.value, sandboxer.NotFound)
    sbx.delete()  # deleting what is gone is fine
    # Exec makes a new one; the workspace is new too.
    assert sbx.exec("ls -A /workspace").stdout == ""
    assert sbx.status().session_id != first_session


def test_default_client_from_env(
    monkeypatch: pytest.MonkeyPatch, service: Service, chat_id: str
) -> None:
    from sandboxer import _sync

    monkeypatch.setenv("SANDBOXER_URL", service.url)
    monkeypatch.setenv("SANDBOXER_TOKEN", service.token)
    monkeypatch.setattr(_sync, "_default", None)
    try:
        sbx = Sandbox.for_chat(chat_id)
        assert sbx.client is sandboxer.default_client()
        assert sbx.exec("echo env").stdout == "env\n"
        assert chat_id in [s.chat_id for s in sbx.client.list_sandboxes()]
    finally:
        if _sync._default is not None:
            _sync._default.close()


def test_hibernate_keeps_the_files_and_the_next_call_resumes(
    client: sandboxer.Client, chat_id: str
) -> None:
    sbx = Sandbox.for_chat(chat_id, client=client)
    sbx.files.write("notes/kept.txt", "still here\n")
    assert sbx.exec("echo -n more >> notes/kept.txt").ok
    running = sbx.status()
    assert running.status == "running" and not running.hibernated
    assert running.workspace_id and running.retained_until is None

    sbx.hibernate()
    sbx.hibernate()  # hibernated already: fine
    slept = sbx.status()
    assert slept.hibernated and slept.status == "hibernated"
    assert slept.chat_id == chat_id
    assert slept.workspace_id == running.workspace_id
    assert slept.session_id == running.session_id and slept.image == running.image
    assert slept.container_id is None and slept.expires_at is None
    assert slept.hibernated_at is not None and slept.retained_until is not None
    assert slept.retained_until - slept.hibernated_at > timedelta(days=1)
    assert sbx.status().hibernated, "status() resumes nothing"
    listed = {s.chat_id: s for s in client.list_sandboxes()}
    assert listed[chat_id].hibernated and listed[chat_id].retained_until == slept.retained_until

    # The next call resumes it on the same files (its processes did not survive).
    assert sbx.exec("cat notes/kept.txt").stdout == "still here\nmore"
    back = sbx.status()
    assert back.status == "running" and back.workspace_id == running.workspace_id
    assert back.session_id != running.session_id

    sbx.hibernate()
    resumed = Sandbox.for_chat(chat_id, client=client)
    assert resumed.result == "resumed" and resumed.workspace_id == running.workspace_id
    assert resumed.files.read_text("notes/kept.txt") == "still here\nmore"

    sbx.hibernate()
    sbx.delete()  # a hibernated chat's files go too
    with pytest.raises(sandboxer.SandboxNotFound):
        sbx.status()
    with pytest.raises(sandboxer.SandboxNotFound):
        sbx.hibernate()
    assert Sandbox.for_chat(chat_id, client=client).result == "created"
    assert sbx.exec("ls -A /workspace").stdout == ""


def test_chat_ids_with_colon_and_at(client: sandboxer.Client, new_chat_id: Callable[[], str]) -> None:
    chat = f"telegram:{new_chat_id()}@group.1"
    try:
        sbx = Sandbox.for_chat(chat, client=client)
        assert sbx.info is not None and sbx.info.chat_id == chat
        assert sbx.exec("echo ok").stdout == "ok\n"
    finally:
        Sandbox(chat, client=client).delete()
