#!/usr/bin/env bash
# The Python client's tests against a real `sandboxer serve` (started by the
# tests on port 0, with a temporary database and an instance of its own).
# Makes a venv under ${CARGO_TARGET_DIR:-target}/python-client-venv, installs
# the package in editable mode with its test extras, finds the binary
# (SANDBOXER_BIN, else `cargo build -p sandboxer`), runs pytest -q.
# Extra arguments go to pytest. Needs Docker and the image sandboxer-base:bookworm
# (scripts/setup.sh builds it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

target="${CARGO_TARGET_DIR:-target}"
target="$(mkdir -p "$target" && cd "$target" && pwd)"
venv="$target/python-client-venv"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "python-client: installing python3-venv"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv
fi

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "python-client: making the venv $venv"
    python3 -m venv --clear "$venv"
fi
# Reinstall only when the package's metadata changed (editable: code changes need none).
stamp="$venv/.sandboxer-client-stamp"
want="$(sha256sum <"$here/pyproject.toml" | cut -d' ' -f1) $here"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "python-client: installing the client (editable) and its test extras"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$here[test]"
    echo "$want" >"$stamp"
fi

if [ -n "${SANDBOXER_BIN:-}" ]; then
    bin="$SANDBOXER_BIN"
else
    cargo build --quiet -p sandboxer
    bin="$target/debug/sandboxer"
fi
if [ ! -x "$bin" ]; then
    echo "python-client: no sandboxer binary at $bin" >&2
    exit 1
fi

cd "$here"
SANDBOXER_BIN="$bin" "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
