#!/usr/bin/env bash
# The OpenAPI document against the server, both ways: schemathesis generates
# requests from /openapi.json and checks that schema-valid ones are not
# refused as invalid, schema-invalid ones are refused with a 4xx, nothing is a
# 5xx, and every answer matches its documented status, type and schema. The
# server is the real router over the in-memory fakes (examples/fake_service),
# so the thousands of requests cost no container. Under ~2 minutes once built.
#
# OPENAPI_CHECK_EXAMPLES (default 150 per operation) and OPENAPI_CHECK_SEED
# (default fixed, so CI reruns the same cases; set another to explore).
set -euo pipefail
cd "$(dirname "$0")/.."

schemathesis_version=4.32.5
examples="${OPENAPI_CHECK_EXAMPLES:-150}"
seed="${OPENAPI_CHECK_SEED:-20261201}"
target="${CARGO_TARGET_DIR:-target}"
venv="$(mkdir -p "$target" && cd "$target" && pwd)/openapi-check/venv"

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$schemathesis_version"; then
    echo "openapi-check: installing schemathesis $schemathesis_version into $venv"
    python3 -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi

cargo build --quiet -p sandboxer-http --example fake_service

# schemathesis keeps state in ./.schemathesis: run it in a scratch directory.
work="$(mktemp -d)"
log="$work/fake_service.log"
server_bin="$(cd "$target" && pwd)/debug/examples/fake_service"
"$server_bin" 0 >"$log" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port=""
for _ in $(seq 100); do
    port="$(sed -n 's/^listening on //p' "$log")"
    [ -n "$port" ] && break
    if ! kill -0 "$server" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "openapi-check: fake_service did not start:" >&2
    cat "$log" >&2
    exit 1
fi

# No stateful phase: the document declares no links between operations.
# positive_data_acceptance_but_state (scripts/openapi_hooks.py) is the
# positive check with the state-made refusals (`not_a_file`, `not_a_directory`) let through.
hooks_dir="$(pwd)/scripts"
(cd "$work" && PYTHONPATH="$hooks_dir" SCHEMATHESIS_HOOKS=openapi_hooks "$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
    --checks not_a_server_error,positive_data_acceptance_but_state,negative_data_rejection,response_schema_conformance,status_code_conformance,content_type_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$examples" \
    --seed "$seed" \
    --generation-allow-x00 true \
    --generation-database none \
    --request-timeout 10 \
    --no-color)
echo "openapi-check: passed"
