"""A chat bot's use: one chat, several messages, each handled as a bot would
(get the chat's sandbox, act, answer), with a file living across messages."""

from __future__ import annotations

import sandboxer
from sandboxer import Sandbox


def handle_message(client: sandboxer.Client, chat_id: str, text: str) -> str:
    """What a bot's handler does for one user message."""
    sbx = Sandbox.for_chat(chat_id, idle_ttl=900, client=client)
    if text.startswith("save "):
        sbx.files.write("notes.txt", text.removeprefix("save ") + "\n")
        return f"saved ({sbx.result})"
    if text == "count":
        r = sbx.exec(["wc", "-l", "notes.txt"])
        return r.stdout.split()[0] if r.ok else f"error: {r.stderr.strip()}"
    if text.startswith("run "):
        r = sbx.exec(text.removeprefix("run "), timeout=10)
        return r.stdout + r.stderr + ("" if r.ok else f"[exit {r.exit_code}]")
    if text == "files":
        return ", ".join(f"{e.name}:{e.size}" for e in sbx.files.list())
    if text == "show":
        return sbx.files.read_text("notes.txt")
    return "?"


def test_bot_conversation(client: sandboxer.Client, chat_id: str) -> None:
    assert handle_message(client, chat_id, "save first line") == "saved (created)"
    assert handle_message(client, chat_id, "run echo more >> notes.txt") == ""
    assert handle_message(client, chat_id, "count") == "2"
    assert handle_message(client, chat_id, "files") == "notes.txt:16"
    assert handle_message(client, chat_id, "run python3 -c 'print(sum(range(10)))'") == "45\n"
    assert handle_message(client, chat_id, "run cat nope").endswith("[exit 1]")
    assert handle_message(client, chat_id, "show") == "first line\nmore\n"
    # Every message after the first reused the same sandbox.
    sbx = Sandbox.for_chat(chat_id, idle_ttl=900, client=client)
    assert sbx.result == "reused"
