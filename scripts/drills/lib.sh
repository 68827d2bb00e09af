#!/usr/bin/env bash
# Shared by the drills (source it). Builds the binaries (release, or
# DRILL_PROFILE=dev), starts `sandboxer serve` on port 0 with a database in
# a temporary directory and an instance id of its own, talks to it with
# curl, counts what Docker holds under that instance's labels, and on exit
# (also on failure or Ctrl-C) kills only the processes it started and
# removes only the containers and volumes labelled with its instance.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# DRILL_PROFILE=dev reuses the debug build `cargo test` already made (CI).
PROFILE=${DRILL_PROFILE:-release}
PROFILE_DIR=$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")
SANDBOXER=$TARGET/$PROFILE_DIR/sandboxer
BENCH=$TARGET/$PROFILE_DIR/sandboxer-bench

WORK=$(mktemp -d /tmp/sandboxer-drill.XXXXXX)
INSTANCE="drill-$(basename "$0" .sh)-$(date +%s)-$$"
DB=$WORK/sandboxer.db
URL=
SERVICE_PID=
SERVICE_ARGS=()
SERVICE_ENV=()
STARTS=0
OUR_PIDS=()
FAILED=0
FIGURES=()
ON_EXIT=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

cleanup() {
    local rc=$?
    set +e
    for hook in "${ON_EXIT[@]}"; do eval "$hook"; done
    for pid in "${OUR_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
    for pid in "${OUR_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    local filter=(--filter label=sandboxer.managed=true --filter "label=sandboxer.instance=$INSTANCE")
    docker ps -aq "${filter[@]}" | xargs -r docker rm -f -v >/dev/null
    docker volume ls -q "${filter[@]}" | xargs -r docker volume rm -f >/dev/null
    if [[ $rc -ne 0 && -n ${KEEP_WORK:-} ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build() {
    log "building the binaries ($PROFILE)"
    # Two builds, not one: built together, cargo would unify features and
    # give the service the bench's `testing` feature of the docker crate.
    (cd "$ROOT" && cargo build --profile "$PROFILE" -q -p sandboxer &&
        cargo build --profile "$PROFILE" -q -p sandboxer-bench)
    IMAGE=${IMAGE:-$("$BENCH" image 2>/dev/null)}
    log "image $IMAGE, instance $INSTANCE, work dir $WORK"
}

# Starts the service (SERVICE_ARGS, SERVICE_ENV) and waits for its URL.
start_service() {
    STARTS=$((STARTS + 1))
    local out=$WORK/stdout.$STARTS
    : >"$out"
    env "${SERVICE_ENV[@]}" "$SANDBOXER" serve --listen 127.0.0.1:0 --database "$DB" \
        --instance "$INSTANCE" --image "$IMAGE" --prepare-image false \
        "${SERVICE_ARGS[@]}" >"$out" 2>"$WORK/service.$STARTS.log" &
    SERVICE_PID=$!
    OUR_PIDS+=("$SERVICE_PID")
    for _ in $(seq 600); do
        if grep -q '^sandboxer listening on ' "$out"; then
            URL=$(sed -n 's/^sandboxer listening on //p' "$out" | head -1)
            return 0
        fi
        if ! kill -0 "$SERVICE_PID" 2>/dev/null; then
            log "the service died at start; its log:"
            tail -20 "$WORK/service.$STARTS.log"
            return 1
        fi
        sleep 0.1
    done
    log "the service did not listen within 60 s"
    return 1
}

stop_service() {
    kill -TERM "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
}

kill9_service() {
    kill -9 "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
}

# call METHOD PATH [BODY] -> sets STATUS, BODY, TOOK_MS, RETRY_AFTER
call() {
    local method=$1 path=$2 data=${3-}
    local args=(-sS -X "$method" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code} %{time_total}' --max-time "${CALL_TIMEOUT:-120}")
    [[ -n $data ]] && args+=(-H 'content-type: application/json' --data-binary "$data")
    local out
    out=$(curl "${args[@]}" "$URL$path" 2>/dev/null) || out="000 0"
    STATUS=${out%% *}
    TOOK_MS=$(awk -v s="${out##* }" 'BEGIN { printf "%.0f", s * 1000 }')
    BODY=$(cat "$WORK/body" 2>/dev/null || true)
    RETRY_AFTER=$(grep -i '^retry-after:' "$WORK/headers" 2>/dev/null | tr -d '\r' | awk '{print $2}' || true)
}

code_of() { jq -r '.error.code // empty' <<<"$BODY" 2>/dev/null || true; }

label_filter() { echo "--filter label=sandboxer.managed=true --filter label=sandboxer.instance=$INSTANCE"; }
# shellcheck disable=SC2046
count_containers() { docker ps -aq $(label_filter) | wc -l; }
# shellcheck disable=SC2046
count_running() { docker ps -q $(label_filter) | wc -l; }
# shellcheck disable=SC2046
count_volumes() { docker volume ls -q $(label_filter) | wc -l; }

# "chat session" of every sandbox container of ours (workspace helpers aside), sorted.
# shellcheck disable=SC2046
container_sessions() {
    docker ps -a $(label_filter) --format '{{.Label "sandboxer.role"}}|{{.Label "sandboxer.chat-id"}} {{.Label "sandboxer.session-id"}}' |
        awk -F'|' '$1 == "" { print $2 }' | sort
}

# Names of the volumes of ours, sorted.
# shellcheck disable=SC2046
volume_names() { docker volume ls -q $(label_filter) | sort; }

# "chat session" of every active session the service lists, sorted.
active_sessions() {
    call GET /v1/sandboxes
    jq -r '.sandboxes[] | "\(.chat_id) \(.session_id)"' <<<"$BODY" | sort
}

# check DESCRIPTION COMMAND... : runs the command; records a failure.
check() {
    local what=$1
    shift
    if "$@"; then
        log "  ok   $what"
    else
        log "  FAIL $what"
        FAILED=1
    fi
}

eq() { [[ $1 == "$2" ]] || { log "       expected [$2], got [$1]"; return 1; }; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }' || { log "       $1 is above $2"; return 1; }; }

figure() { FIGURES+=("$*"); log "  figure: $*"; }

# The invariant after recovery: every container of ours is an active
# session's, every active session has its container (running) and its
# volume, and no chat has two.
footprint_matches_sessions() {
    local active containers volumes want_volumes dup
    active=$(active_sessions)
    containers=$(container_sessions)
    volumes=$(volume_names)
    want_volumes=$(awk 'NF { print "sandboxer-" $2 }' <<<"$active" | sort)
    dup=$(awk 'NF { print $1 }' <<<"$containers" | sort | uniq -d)
    check "containers of the instance = active sessions ($(grep -c . <<<"$active" || true) active)" eq "$containers" "$active"
    check "volumes of the instance = the active sessions' workspaces" eq "$volumes" "$want_volumes"
    check "no chat has two containers" eq "$dup" ""
    check "every container of the instance runs" eq "$(count_running)" "$(count_containers)"
    call GET /v1/sandboxes
    check "every active session is running" eq "$(jq -r '[.sandboxes[] | select(.status != "running")] | length' <<<"$BODY")" "0"
}

finish() {
    local name=$1
    echo
    if [[ $FAILED -eq 0 ]]; then
        echo "PASS $name (${SECONDS}s)"
    else
        echo "FAIL $name (${SECONDS}s)"
    fi
    for f in "${FIGURES[@]}"; do echo "  $f"; done
    [[ $FAILED -eq 0 ]]
}
