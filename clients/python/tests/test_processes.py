"""Streamed exec and live processes with the sync client, against the real service."""

from __future__ import annotations

import signal
import time
import uuid

import pytest

import sandboxer
from sandboxer import OutputChunk, OutputPosition, Sandbox


def pid() -> str:
    """A process id of its own for each test (the shared sandbox keeps them all)."""
    return f"p-{uuid.uuid4().hex[:12]}"


def test_streamed_exec_calls_back_before_the_end(shared: Sandbox) -> None:
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    r = shared.exec(
        ["sh", "-c", "echo one; sleep 2; echo two"],
        on_stdout=lambda text: seen.append((time.monotonic() - started, text)),
    )
    returned = time.monotonic() - started
    assert (r.stdout, r.stderr, r.exit_code, r.timed_out, r.truncated) == (
        "one\ntwo\n",
        "",
        0,
        False,
        False,
    )
    assert "".join(text for _, text in seen) == "one\ntwo\n"
    first = next(at for at, text in seen if "one" in text)
    assert first < returned - 1.0, (first, returned, seen)
    assert r.process_id and r.session_id == shared.session_id
    assert r.duration_ms >= 1500


def test_streamed_exec_separates_stdout_and_stderr(shared: Sandbox) -> None:
    out: list[str] = []
    err: list[str] = []
    r = shared.exec(
        "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3",
        on_stdout=out.append,
        on_stderr=err.append,
    )
    assert "".join(out) == "out1\nout2\n" and "".join(err) == "err1\nerr2\n"
    assert (r.stdout, r.stderr, r.exit_code, r.ok) == ("out1\nout2\n", "err1\nerr2\n", 3, False)

    # Only one callback: the other stream is still in the result.
    out.clear()
    r = shared.exec(["sh", "-c", "echo a; echo b >&2"], on_stderr=err.append)
    assert (r.stdout, r.stderr) == ("a\n", "b\n")

    # check= behaves as without streaming; stdin, env, workdir too.
    with pytest.raises(sandboxer.CommandFailed) as caught:
        shared.exec(["sh", "-c", "echo boom >&2; exit 7"], check=True, on_stdout=out.append)
    assert caught.value.exit_code == 7 and caught.value.stderr == "boom\n"
    r = shared.exec(
        ["sh", "-c", 'cat; echo "$A"; pwd'],
        stdin="in\n",
        env={"A": "x"},
        workdir="/tmp",
        on_stdout=out.append,
    )
    assert r.stdout == "in\nx\n/tmp\n"


def test_streamed_exec_timeout_and_errors(shared: Sandbox) -> None:
    lines: list[str] = []
    r = shared.exec(["sh", "-c", "echo start; sleep 30"], timeout=1, on_stdout=lines.append)
    assert r.timed_out and not r.ok and r.stdout == "start\n"
    with pytest.raises(sandboxer.CommandFailed):
        shared.exec("sleep 30", timeout=0.5, check=True, on_stdout=lines.append)
    with pytest.raises(sandboxer.InvalidRequest):
        shared.exec(["true"], workdir="relative", on_stdout=lines.append)
    # Bytes that are not UTF-8 reach the callback as text, replaced.
    r = shared.exec(
        ["python3", "-c", "import sys; sys.stdout.buffer.write(b'a\\xffb\\xc3\\xa9')"],
        on_stdout=lines.append,
    )
    assert r.stdout == "a\ufffdbé"


def test_background_cat_with_stdin(shared: Sandbox) -> None:
    p = shared.processes.start(["cat"], process_id=pid(), keep_stdin_open=True)
    assert p.created is True and p.info is not None
    assert p.info.status == "running" and p.info.stdin.open and p.info.cmd == ["cat"]
    assert shared.processes.get(p.process_id).info == p.status()

    assert p.write_stdin("hello ") == (6, True)
    # A retried write at the same offset is not doubled.
    assert p.write_stdin(b"world", offset=6) == (11, True)
    assert p.write_stdin(b"world", offset=6) == (11, True)
    state = p.write_stdin("!\n", offset=11, close=True)
    assert (state.offset, state.open) == (13, False)
    with pytest.raises(sandboxer.Conflict):
        p.write_stdin("late")

    assert p.wait(timeout=30) == 0
    out = p.read_output()
    assert (out.stdout, out.stderr, out.stdout_text) == (b"hello world!\n", b"", "hello world!\n")
    assert out.end.exited and out.end.exit_code == 0 and out.end.stdout_offset == 13
    info = p.status()
    assert info.exited and info.exit_code == 0 and not info.killed
    assert info.stdout == (0, 13) and info.ended_at is not None


def test_first_stdin_and_close_stdin(shared: Sandbox) -> None:
    p = shared.processes.start(
        ["sh", "-c", "cat; echo done >&2"], stdin="first\n", keep_stdin_open=True, process_id=pid()
    )
    p.write_stdin("second\n", offset=6)
    assert p.close_stdin().open is False
    assert p.wait(timeout=30) == 0
    out = p.read_output()
    assert (out.stdout, out.stderr) == (b"first\nsecond\n", b"done\n")


def test_kill(shared: Sandbox) -> None:
    p = shared.processes.start(["sleep", "1000"], process_id=pid())
    assert p.status().running
    started = time.monotonic()
    p.kill()
    assert time.monotonic() - started < 15
    info = p.status()
    assert info.exited and info.killed and info.exit_code is not None
    assert p.wait(timeout=5) == info.exit_code


def test_signal_term_exits_143(shared: Sandbox) -> None:
    p = shared.processes.start(["sleep", "1000"], process_id=pid())
    p.signal("TERM")
    assert p.wait(timeout=30) == 143
    # Signals by number and with the SIG prefix are taken too.
    q = shared.processes.start(["sleep", "1000"], process_id=pid())
    q.signal(signal.SIGINT)
    assert q.wait(timeout=30) == 130
    r = shared.processes.start(["sleep", "1000"], process_id=pid())
    r.signal("SIGKILL")
    assert r.wait(timeout=30) == 137
    with pytest.raises(sandboxer.InvalidRequest):
        r.signal("NOPE")


def test_wait_timeout(shared: Sandbox) -> None:
    p = shared.processes.start(["sleep", "1000"], process_id=pid())
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        p.wait(timeout=1)
    assert time.monotonic() - started < 10
    assert p.status().running
    p.kill()


def test_list_and_get(client: sandboxer.Client, chat_id: str) -> None:
    sbx = Sandbox(chat_id, client=client)
    assert sbx.processes.list() == []  # every process call gets-or-creates the sandbox
    a = sbx.processes.start(["sleep", "1000"], process_id="a")
    b = sbx.processes.start("echo hi", process_id="b")
    assert b.wait(timeout=30) == 0
    listed = {p.process_id: p for p in sbx.processes.list()}
    assert set(listed) == {"a", "b"}
    assert listed["a"].info is not None and listed["a"].info.running
    assert listed["b"].info is not None and listed["b"].info.exit_code == 0
    assert listed["b"].info.cmd == ["sh", "-c", "echo hi"]
    got = sbx.processes.get("a")
    assert got.info is not None and a.info is not None and got.info.pid == a.info.pid
    assert "a" in repr(got)

    with pytest.raises(sandboxer.ProcessNotFound) as caught:
        sbx.processes.get("no-such-process")
    assert (caught.value.code, caught.value.status) == ("process_not_found", 404)
    assert isinstance(caught.value, sandboxer.NotFound)
    ghost = sandboxer.Process(sbx, "no-such-process")
    for call in (ghost.kill, lambda: ghost.signal("TERM"), lambda: ghost.write_stdin("x"), ghost.wait):
        with pytest.raises(sandboxer.ProcessNotFound):
            call()
    with pytest.raises(sandboxer.ProcessNotFound):
        list(ghost.output(follow=True))
    a.kill()


def test_start_is_idempotent_by_id(shared: Sandbox) -> None:
    name = pid()
    first = shared.processes.start(["sleep", "1000"], process_id=name, env={"A": "1"})
    again = shared.processes.start(["sleep", "1000"], process_id=name, env={"A": "1"})
    assert (first.created, again.created) == (True, False)
    assert first.info is not None and again.info is not None
    assert again.info.pid == first.info.pid and again.process_id == name
    with pytest.raises(sandboxer.Conflict) as caught:
        shared.processes.start(["sleep", "999"], process_id=name)
    assert caught.value.status == 409
    with pytest.raises(sandboxer.Conflict):
        shared.processes.start(["sleep", "1000"], process_id=name, env={"A": "2"})
    first.kill()


def test_follow_from_an_offset(shared: Sandbox) -> None:
    p = shared.processes.start(
        ["sh", "-c", "printf abcdef; sleep 1; printf ghi >&2; printf jkl"], process_id=pid()
    )
    # An offset past what the stream has is InvalidOffset, even to follow: wait for it.
    deadline = time.monotonic() + 10
    while p.status().stdout.end < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    events = list(p.output(stdout_offset=3, follow=True))
    chunks = [e for e in events if isinstance(e, OutputChunk)]
    assert b"".join(c.data for c in chunks if c.stream == "stdout") == b"defjkl"
    assert b"".join(c.data for c in chunks if c.stream == "stderr") == b"ghi"
    assert [c for c in chunks if c.stream == "stdout"][0].offset == 3
    end = events[-1]
    assert isinstance(end, OutputPosition) and end.exited and end.exit_code == 0
    assert end.offsets == (9, 3)
    assert all(isinstance(e, OutputChunk) or not e.exited for e in events[:-1])

    # A snapshot from both offsets; one past the end is InvalidOffset.
    out = p.read_output(stdout_offset=6, stderr_offset=1)
    assert (out.stdout, out.stderr) == (b"jkl", b"hi")
    with pytest.raises(sandboxer.InvalidOffset):
        p.read_output(stdout_offset=100)


def test_follow_sees_output_before_the_end(shared: Sandbox) -> None:
    p = shared.processes.start(["sh", "-c", "echo one; sleep 2; echo two"], process_id=pid())
    started = time.monotonic()
    seen: list[tuple[float, bytes]] = []
    for event in p.output(follow=True):
        if isinstance(event, OutputChunk):
            seen.append((time.monotonic() - started, event.data))
    ended = time.monotonic() - started
    assert b"".join(d for _, d in seen) == b"one\ntwo\n"
    assert seen[0][0] < ended - 1.0
    # A snapshot of a running process ends with where it stands.
    q = shared.processes.start(["sh", "-c", "echo now; sleep 1000"], process_id=pid())
    time.sleep(0.5)
    out = q.read_output()
    assert out.end.status == "running" and out.end.exit_code is None
    assert out.stdout == b"now\n" and out.end.stdout_offset == 4
    q.kill()


def test_binary_output_and_cursor_expired(shared: Sandbox) -> None:
    p = shared.processes.start(
        ["python3", "-c", "import sys; sys.stdout.buffer.write(b'\\xff\\x00ok')"], process_id=pid()
    )
    assert p.wait(timeout=30) == 0
    assert p.read_output().stdout == b"\xff\x00ok"

    # More than the 4 MiB buffer: the start is gone.
    big = shared.processes.start(["head", "-c", "6000000", "/dev/zero"], process_id=pid())
    assert big.wait(timeout=60) == 0
    with pytest.raises(sandboxer.CursorExpired) as caught:
        big.read_output()
    err = caught.value
    assert (err.code, err.status) == ("cursor_expired", 410)
    assert err.oldest is not None and err.oldest.stdout > 0 and err.oldest.stderr == 0
    out = big.read_output(err.oldest.stdout, err.oldest.stderr)
    assert len(out.stdout) == 6_000_000 - err.oldest.stdout
    assert big.status().stdout == (err.oldest.stdout, 6_000_000)


def test_pty(shared: Sandbox) -> None:
    p = shared.processes.start(["sh", "-c", "tty; stty size"], pty=(100, 30), process_id=pid())
    assert p.info is not None and p.info.pty
    assert p.wait(timeout=30) == 0
    text = p.read_output().stdout_text
    assert "/dev/pts/" in text and "30 100" in text
