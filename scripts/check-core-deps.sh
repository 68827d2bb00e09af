#!/usr/bin/env bash
# The core crate must name no Docker, SQL, HTTP or OpenTelemetry crate
# (DESIGN section 4), not even through another dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
deps=$(cargo tree -q -p sandboxer-core -e normal --prefix none | awk '{print $1}' | sort -u)
forbidden=$(echo "$deps" | grep -E '^(bollard|docker.*|sqlx.*|rusqlite|libsqlite3-sys|postgres.*|axum.*|hyper.*|http|reqwest|tower.*|tonic|opentelemetry.*)$' || true)
if [ -n "$forbidden" ]; then
  echo "check-core-deps: sandboxer-core depends on: $forbidden" >&2
  exit 1
fi
echo "check-core-deps: sandboxer-core depends on $(echo "$deps" | wc -l) crates, none of Docker, SQL, HTTP or OpenTelemetry"
