"""The error mapping, without a service: every code of the README's table
becomes its own class with its status; unknown codes fall back by status."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

import sandboxer
from sandboxer import errors

README = Path(__file__).resolve().parents[3] / "README.md"

# code -> (status, class, Retry-After), as the README's "Error codes" table says.
TABLE: dict[str, tuple[int, type[sandboxer.SandboxerError], str | None]] = {
    "invalid_chat_id": (400, sandboxer.InvalidChatId, None),
    "invalid_path": (400, sandboxer.InvalidPath, None),
    "invalid_json": (400, sandboxer.InvalidJson, None),
    "invalid_request": (400, sandboxer.InvalidRequest, None),
    "image_not_found": (400, sandboxer.ImageNotFound, None),
    "not_a_file": (400, sandboxer.NotAFile, None),
    "not_a_directory": (400, sandboxer.NotADirectory, None),
    "unauthorized": (401, sandboxer.Unauthorized, None),
    "no_sandbox": (404, sandboxer.SandboxNotFound, None),
    "file_not_found": (404, sandboxer.FileNotFound, None),
    "route_not_found": (404, sandboxer.RouteNotFound, None),
    "method_not_allowed": (405, sandboxer.MethodNotAllowed, None),
    "conflict": (409, sandboxer.Conflict, None),
    "body_too_large": (413, sandboxer.PayloadTooLarge, None),
    "runtime_unavailable": (503, sandboxer.RuntimeUnavailable, "5"),
    "store_unavailable": (503, sandboxer.StoreUnavailable, "1"),
    "busy": (503, sandboxer.Busy, "1"),
    "container_gone": (503, sandboxer.ContainerGone, "1"),
    "store_conflict": (503, sandboxer.StoreConflict, "1"),
    "timeout": (504, sandboxer.Timeout, None),
    "runtime_error": (500, sandboxer.SandboxRuntimeError, None),
    "store_error": (500, sandboxer.StoreError, None),
    "internal": (500, sandboxer.InternalError, None),
    "node_not_found": (404, sandboxer.NodeNotFound, None),
    "process_not_found": (404, sandboxer.ProcessNotFound, None),
    "invalid_offset": (400, sandboxer.InvalidOffset, None),
    "no_space": (507, sandboxer.NoSpace, None),
    "cursor_expired": (410, sandboxer.CursorExpired, None),
    "upgrade_required": (426, sandboxer.UpgradeRequired, None),
    "too_many_processes": (429, sandboxer.TooManyProcesses, "1"),
}


def readme_codes() -> set[str]:
    text = README.read_text()
    section = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    codes: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            codes.update(re.findall(r"`([a-z_]+)`", first_cell))
    return codes


@pytest.mark.skipif(not README.exists(), reason="outside the repository")
def test_every_readme_code_is_mapped() -> None:
    codes = readme_codes()
    assert codes, "no codes found in the README's table"
    assert codes == set(TABLE), f"README and client differ: {codes ^ set(TABLE)}"


def answer(status: int, code: str, retry_after: str | None) -> httpx.Response:
    headers = {"retry-after": retry_after} if retry_after else {}
    return httpx.Response(
        status,
        json={"error": {"code": code, "message": f"the {code} message"}},
        headers=headers,
        request=httpx.Request("GET", "http://x/"),
    )


@pytest.mark.parametrize("code", sorted(TABLE))
def test_code_maps_to_its_class(code: str) -> None:
    status, cls, retry = TABLE[code]
    err = errors.error_from_response(answer(status, code, retry))
    assert type(err) is cls
    assert cls.default_code == code
    assert (err.code, err.message, err.status) == (code, f"the {code} message", status)
    assert isinstance(err, sandboxer.SandboxerError)
    if status == 503:
        assert isinstance(err, sandboxer.ServiceUnavailable)
        assert err.retry_after == float(retry or 0)
    if status == 400:
        assert isinstance(err, sandboxer.InvalidRequest)
    if status == 404:
        assert isinstance(err, sandboxer.NotFound)
    if status == 500:
        assert isinstance(err, sandboxer.ServerError)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, sandboxer.InvalidRequest),
        (401, sandboxer.Unauthorized),
        (404, sandboxer.NotFound),
        (409, sandboxer.Conflict),
        (413, sandboxer.PayloadTooLarge),
        (500, sandboxer.ServerError),
        (502, sandboxer.ServerError),
        (503, sandboxer.ServiceUnavailable),
        (504, sandboxer.Timeout),
        (418, sandboxer.SandboxerError),
    ],
)
def test_unknown_code_maps_by_status(status: int, cls: type[sandboxer.SandboxerError]) -> None:
    err = errors.error_from_response(answer(status, "brand_new_code", "7"))
    assert type(err) is cls
    assert err.code == "brand_new_code" and err.status == status
    if isinstance(err, sandboxer.ServiceUnavailable):
        assert err.retry_after == 7.0


def test_non_json_error_body() -> None:
    response = httpx.Response(
        502, text="Bad Gateway from a proxy", request=httpx.Request("GET", "http://x/")
    )
    err = errors.error_from_response(response)
    assert type(err) is sandboxer.ServerError
    assert (err.code, err.status) == ("http_502", 502)
    assert "proxy" in err.message


def test_mock_transport_raises_through_the_client() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer t0k"
        return httpx.Response(
            503,
            json={"error": {"code": "runtime_unavailable", "message": "docker is away"}},
            headers={"retry-after": "5"},
        )

    with sandboxer.Client("http://sandboxer.test", token="t0k", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(sandboxer.RuntimeUnavailable) as caught:
            sandboxer.Sandbox.for_chat("web:1", client=c)
    assert caught.value.retry_after == 5.0


def test_unreachable_service_is_a_transport_error() -> None:
    with sandboxer.Client("http://127.0.0.1:9", request_timeout=5) as c:
        with pytest.raises(sandboxer.TransportError) as caught:
            sandboxer.Sandbox(chat_id="web:1", client=c).status()
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, httpx.TransportError)


def test_env_configures_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOXER_URL", "http://elsewhere:1234/")
    monkeypatch.setenv("SANDBOXER_TOKEN", "from-env")
    c = sandboxer.Client()
    try:
        assert c.base_url == "http://elsewhere:1234"
        assert c.token == "from-env"
    finally:
        c.close()
    monkeypatch.delenv("SANDBOXER_URL")
    monkeypatch.delenv("SANDBOXER_TOKEN")
    c = sandboxer.Client()
    try:
        assert (c.base_url, c.token) == ("http://127.0.0.1:7070", None)
    finally:
        c.close()


def test_urls_keep_dot_segments_for_the_service_to_refuse() -> None:
    from sandboxer import _core

    assert _core.file_url("web:42", "../etc/passwd") == "/v1/chats/web%3A42/files/%2E%2E/etc/passwd"
    assert _core.file_url("c", None) == "/v1/chats/c/files"
    assert _core.file_url("c", "a b/ü.txt") == "/v1/chats/c/files/a%20b/%C3%BC.txt"


def test_exec_http_timeout_exceeds_the_command_timeout() -> None:
    from sandboxer import _core

    t = _core.exec_http_timeout(httpx.Timeout(5.0), 100.0)
    assert t.read is not None and t.read > 100.0
    assert t.connect == 5.0
    # Without an exec timeout, the service's default (60 s) is waited for.
    t = _core.exec_http_timeout(httpx.Timeout(5.0), None)
    assert t.read is not None and t.read > 60.0
