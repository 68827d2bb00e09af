#!/usr/bin/env bash
# The MCP server against the official Python `mcp` client: a venv under the
# target directory with `mcp` and `pytest`, the `sandboxer` binary built
# here, then test_mcp.py (which starts and stops its own service).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/mcp-venv"
if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c 'import mcp' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet "mcp==2.3.0" "pytest==9.2.0"
fi
(cd "$root" && cargo build --quiet -p sandboxer)
export SANDBOXER_BIN="${SANDBOXER_BIN:-$target/debug/sandboxer}"
exec "$venv/bin/pytest" -q "$here/test_mcp.py" "$@"
