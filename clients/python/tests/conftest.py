"""A real `sandboxer serve` for the whole session: port 0, a temporary
database, an instance id of its own (so it only touches what these tests make),
a bearer token, and the default image. At the end every sandbox of the instance
is removed and the service stopped, even when tests failed."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import sandboxer

REPO = Path(__file__).resolve().parents[3]
IMAGE = os.environ.get("SANDBOXER_TEST_IMAGE", "sandboxer-base:bookworm")
#: Small, so the 413 test uploads little.
MAX_FILE_BYTES = 1 << 20


@dataclass
class Service:
    url: str
    token: str
    instance: str
    log_path: Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _binary() -> str:
    explicit = os.environ.get("SANDBOXER_BIN")
    if explicit:
        return explicit
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    candidate = target / "debug" / "sandboxer"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("sandboxer")
    if found:
        return found
    pytest.exit(
        "no sandboxer binary: set SANDBOXER_BIN, or run clients/python/run-tests.sh", returncode=2
    )


def _docker(*args: str) -> list[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    return [line for line in out.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def service() -> Iterator[Service]:
    workdir = Path(tempfile.mkdtemp(prefix="sandboxer-pytest-"))
    instance = f"pytest-{uuid.uuid4().hex[:16]}"
    token = secrets.token_urlsafe(24)
    log_path = workdir / "service.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SANDBOXER_", "OTEL_EXPORTER_OTLP"))
    }
    env["RUST_LOG"] = "info,sandboxer=debug"
    args = [
        _binary(),
        "serve",
        "--listen", "127.0.0.1:0",
        "--database", str(workdir / "sandboxer.db"),
        "--instance", instance,
        "--image", IMAGE,
        "--token", token,
        "--prepare-image", "false",
        "--max-file-bytes", str(MAX_FILE_BYTES),
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=log, env=env, cwd=workdir, text=True
        )
    assert proc.stdout is not None
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout=60)
    line = first[0].strip() if first else ""
    prefix = "sandboxer listening on "
    svc = Service(url=line[len(prefix):], token=token, instance=instance, log_path=log_path)

    def drain() -> None:  # so the service never blocks on a full pipe
        for _ in proc.stdout:  # type: ignore[union-attr]
            pass

    try:
        if not line.startswith(prefix):
            proc.kill()
            raise RuntimeError(f"the service did not start (first line {line!r}); log:\n{svc.log()}")
        threading.Thread(target=drain, daemon=True).start()
        yield svc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        label = f"label=sandboxer.instance={instance}"
        containers = _docker("ps", "-aq", "--no-trunc", "--filter", label)
        if containers:
            _docker("rm", "-f", "-v", *containers)
        volumes = _docker("volume", "ls", "-q", "--filter", label)
        if volumes:
            _docker("volume", "rm", "-f", *volumes)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def client(service: Service) -> Iterator[sandboxer.Client]:
    with sandboxer.Client(service.url, token=service.token, request_timeout=60) as c:
        yield c


@pytest.fixture
def new_chat_id(client: sandboxer.Client) -> Iterator[Callable[[], str]]:
    """A factory of unique chat ids; their sandboxes are deleted after the test."""
    made: list[str] = []

    def make() -> str:
        chat = f"pytest-{uuid.uuid4().hex[:12]}"
        made.append(chat)
        return chat

    yield make
    for chat in made:
        try:
            sandboxer.Sandbox(chat, client=client).delete()
        except sandboxer.SandboxerError:
            pass


@pytest.fixture
def chat_id(new_chat_id: Callable[[], str]) -> str:
    return new_chat_id()


@pytest.fixture(scope="session")
def shared(client: sandboxer.Client) -> Iterator[sandboxer.Sandbox]:
    """One sandbox for the tests that only run commands and move files (each
    under paths of its own), so the suite makes few containers."""
    sbx = sandboxer.Sandbox.for_chat(f"pytest-shared-{uuid.uuid4().hex[:12]}", client=client)
    try:
        yield sbx
    finally:
        sbx.delete()
