#!/usr/bin/env bash
# Shared by the drills (source it). Builds the binaries (release, or
# DRILL_PROFILE=dev), starts `sandboxer serve` on port 0 with a database in
# a temporary directory, an instance id of its own and a warm pool of POOL
# sandboxes (0 unless the drill sets it: the pool is the point of few
# drills), talks to it with curl, counts what Docker holds under that
# instance's labels, and on exit (also on failure or Ctrl-C) kills only the
# processes it started and removes only the containers and volumes
# labelled with its instance.

set -euo pipefail
# Byte order for sort, comm and uniq, whatever the caller's locale.
export LC_ALL=C

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
# Warm pool size the service is started with (--warm-pool-size), and what
# footprint_matches_sessions allows of unclaimed warm sandboxes. 0 unless a
# drill sets it (after sourcing this file, before start_service).
POOL=0
# DOCKER_HOST of extra engines (nodes) a drill started: every count below
# covers them too, and the exit removes what is ours there as well.
EXTRA_HOSTS=()
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
    # More than one pass: the engine may still finish a create that a killed
    # service asked for after the first listing.
    local left=
    for _ in 1 2 3 4 5; do
        left=0
        for host in "" "${EXTRA_HOSTS[@]}"; do
            local d=(docker)
            [[ -n $host ]] && d=(docker -H "$host")
            "${d[@]}" ps -aq "${filter[@]}" 2>/dev/null | xargs -r "${d[@]}" rm -f -v >/dev/null 2>&1
            "${d[@]}" volume ls -q "${filter[@]}" 2>/dev/null | xargs -r "${d[@]}" volume rm -f >/dev/null 2>&1
            left=$((left + $( ("${d[@]}" ps -aq "${filter[@]}"; "${d[@]}" volume ls -q "${filter[@]}") 2>/dev/null | wc -l)))
        done
        [[ $left -eq 0 ]] && break
        sleep 1
    done
    [[ $left -eq 0 ]] || log "cleanup: $left containers or volumes of $INSTANCE could not be removed"
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
        --instance "$INSTANCE" --image "$IMAGE" --prepare-image false --warm-pool-size "$POOL" \
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

# call METHOD PATH [BODY] -> sets STATUS, BODY, TOOK_MS, RETRY_AFTER.
# The body goes as JSON unless CALL_CONTENT_TYPE says otherwise. Safe in
# background subshells (each has files of its own).
call() {
    local method=$1 path=$2 data=${3-}
    local body=$WORK/body.$BASHPID headers=$WORK/headers.$BASHPID
    local args=(-sS -X "$method" -o "$body" -D "$headers" -w '%{http_code} %{time_total}' --max-time "${CALL_TIMEOUT:-120}")
    [[ -n $data ]] && args+=(-H "content-type: ${CALL_CONTENT_TYPE:-application/json}" --data-binary "$data")
    local out
    rm -f "$body" "$headers"
    out=$(curl "${args[@]}" "$URL$path" 2>/dev/null) || out="000 0"
    STATUS=${out%% *}
    TOOK_MS=$(awk -v s="${out##* }" 'BEGIN { printf "%.0f", s * 1000 }')
    BODY=$(cat "$body" 2>/dev/null || true)
    RETRY_AFTER=$(grep -i '^retry-after:' "$headers" 2>/dev/null | tr -d '\r' | awk '{print $2}' || true)
    rm -f "$body" "$headers"
}

code_of() { jq -r '.error.code // empty' <<<"$BODY" 2>/dev/null || true; }

label_filter() { echo "--filter label=sandboxer.managed=true --filter label=sandboxer.instance=$INSTANCE"; }
# shellcheck disable=SC2046
# docker ARGS on the engine and every extra one, outputs one after the other.
docker_all() {
    docker "$@"
    for host in "${EXTRA_HOSTS[@]}"; do docker -H "$host" "$@"; done
}
# shellcheck disable=SC2046
count_containers() { docker_all ps -aq $(label_filter) | wc -l; }
# shellcheck disable=SC2046
count_running() { docker_all ps -q $(label_filter) | wc -l; }
# shellcheck disable=SC2046
count_volumes() { docker_all volume ls -q $(label_filter) | wc -l; }

# "session chat pool state workspace" of every sandbox container of ours
# (workspace helpers aside), sorted; "-" for a label it lacks. A warm
# sandbox has no chat label, also once a chat claimed it.
# shellcheck disable=SC2046
sandbox_containers() {
    docker_all ps -a $(label_filter) --format '{{.Label "sandboxer.role"}}|{{.Label "sandboxer.session-id"}}|{{.Label "sandboxer.chat-id"}}|{{.Label "sandboxer.pool"}}|{{.State}}|{{.Label "sandboxer.workspace-id"}}' |
        awk -F'|' '$1 == "" { for (i = 2; i <= 6; i++) if ($i == "") $i = "-"; print $2, $3, $4, $5, $6 }' | sort
}

# Workspace helpers (sandboxer.role set) of ours, one line each.
# shellcheck disable=SC2046
helper_containers() {
    docker_all ps -a $(label_filter) --format '{{.Label "sandboxer.role"}}|{{.Names}}|{{.State}}' | awk -F'|' '$1 != "" { print $1, $2, $3 }'
}

# Names of the volumes of ours, sorted.
# shellcheck disable=SC2046
volume_names() { docker_all volume ls -q $(label_filter) | sort; }

# "chat session workspace status" of every chat GET /v1/sandboxes lists
# (active and hibernated; a hibernated one's session is "-"), sorted.
listed_sandboxes() {
    call GET /v1/sandboxes
    [[ $STATUS == 200 ]] || { log "GET /v1/sandboxes: $STATUS $BODY" >&2; return 1; }
    jq -r '.sandboxes[] | "\(.chat_id) \(.session_id // "-") \(.workspace_id) \(.status)"' <<<"$BODY" | sort
}

# "chat session" of every active session the service lists, sorted.
active_sessions() { listed_sandboxes | awk '$4 != "hibernated" { print $1, $2 }'; }

# Chats the service lists as hibernated, sorted.
hibernated_chats() { listed_sandboxes | awk '$4 == "hibernated" { print $1 }'; }

# "session pool state workspace" of the warm sandboxes no chat claimed:
# containers labelled pool=true whose session is no active session.
# Takes listed_sandboxes and sandbox_containers output.
unclaimed_warm() {
    awk 'NR == FNR { if ($4 != "hibernated") active[$2] = 1; next }
        NF && $3 == "true" && !($1 in active) { print $1, $3, $4, $5 }' <(echo "$1") <(echo "$2")
}

# metric NAME: the value of an unlabelled metric of GET /metrics, or empty.
metric() {
    curl -sS --max-time 10 "$URL/metrics" 2>/dev/null | awk -v m="$1" '$1 == m { print $2; exit }'
}

# Waits (up to SECS, 60) until the warm pool has settled: the service
# reports POOL ready warm sandboxes (gauge sandboxer_pool_ready, set by
# each refill, at least every 5 s), exactly POOL unclaimed warm containers
# exist, all running, and no workspace helper runs. So the footprint is not
# caught mid-refill, and a member a killed process left half made has been
# drained (a `warming` one counts as the pool's until it times out: 4 x the
# Docker timeout).
wait_pool_full() {
    local secs=${1:-60} listed warm running ready
    local deadline=$((SECONDS + secs))
    while true; do
        listed=$(listed_sandboxes) || listed=
        warm=$(unclaimed_warm "$listed" "$(sandbox_containers)")
        running=$(awk '$3 == "running"' <<<"$warm" | grep -c . || true)
        warm=$(grep -c . <<<"$warm" || true)
        ready=0
        [[ $POOL -gt 0 ]] && ready=$(metric sandboxer_pool_ready)
        if [[ ${ready%.*} == "$POOL" && $warm -eq $POOL && $running -eq $POOL && -z $(helper_containers) ]]; then
            return 0
        fi
        if [[ $SECONDS -ge $deadline ]]; then
            log "       after ${secs}s: pool ready ${ready:-?} of $POOL; unclaimed warm containers $warm, $running running; helpers: $(helper_containers | tr '\n' ';')"
            return 1
        fi
        sleep 0.2
    done
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

# The invariant after recovery (POOL: the warm pool size):
# - no chat is listed twice by GET /v1/sandboxes (active and hibernated);
# - every active session has exactly one container, running, found by its
#   session id (a claimed warm sandbox has no chat label), and is running;
# - every sandbox container of the instance is an active session's (with
#   that chat's label, if it has one) or an unclaimed warm one (pool=true,
#   running), at most POOL of those; no chat has two containers, no
#   session id is on two;
# - the volumes of the instance are the workspaces of the listed chats
#   (`sandboxer-<workspace_id>`, active and hibernated) plus the unclaimed
#   warm sandboxes' volumes, no others.
footprint_matches_sessions() {
    local listed containers volumes warm want_volumes
    if ! listed=$(listed_sandboxes); then
        check "GET /v1/sandboxes answers 200" false
        return
    fi
    containers=$(sandbox_containers)
    volumes=$(volume_names)
    warm=$(unclaimed_warm "$listed" "$containers")
    local n_active n_hibernated n_warm
    n_active=$(awk '$4 != "hibernated"' <<<"$listed" | grep -c . || true)
    n_hibernated=$(awk '$4 == "hibernated"' <<<"$listed" | grep -c . || true)
    n_warm=$(grep -c . <<<"$warm" || true)
    log "  footprint: $n_active active, $n_hibernated hibernated, $n_warm unclaimed warm; $(grep -c . <<<"$containers" || true) containers, $(grep -c . <<<"$volumes" || true) volumes"
    check "no chat listed twice" eq "$(awk 'NF { print $1 }' <<<"$listed" | sort | uniq -d)" ""
    check "every active session is running" eq "$(awk 'NF && $4 != "running" && $4 != "hibernated"' <<<"$listed")" ""
    # Active sessions without exactly one container, or whose one is not running.
    check "every active session has exactly one container, running ($n_active active)" eq "$(
        awk 'NR == FNR { n[$1]++; if ($4 == "running") r[$1]++; next }
            NF && $4 != "hibernated" && !(n[$2] == 1 && r[$2] == 1) { print $1, $2, "containers:", n[$2] + 0, "running:", r[$2] + 0 }' \
            <(echo "$containers") <(echo "$listed"))" ""
    # Containers that are neither an active session's nor a running warm one.
    check "every container is an active session's or an unclaimed warm one" eq "$(
        awk 'NR == FNR { if ($4 != "hibernated") chat[$2] = $1; next }
            !NF { next }
            ($1 in chat) { if ($2 != "-" && $2 != chat[$1]) print "labelled", $2, "but the session of", chat[$1] ":", $0; next }
            !($3 == "true" && $4 == "running") { print "stray:", $0 }' \
            <(echo "$listed") <(echo "$containers"))" ""
    check "at most $POOL unclaimed warm sandboxes ($n_warm)" le "$n_warm" "$POOL"
    # A container's chat: its session's, else its label's.
    check "no chat has two containers" eq "$(
        awk 'NR == FNR { if ($4 != "hibernated") chat[$2] = $1; next }
            NF { c = ($1 in chat) ? chat[$1] : $2; if (c != "-") print c }' \
            <(echo "$listed") <(echo "$containers") | sort | uniq -d)" ""
    check "no session id on two containers" eq "$(awk 'NF { print $1 }' <<<"$containers" | sort | uniq -d)" ""
    want_volumes=$( (awk 'NF { print "sandboxer-" $3 }' <<<"$listed"
        awk 'NF { print "sandboxer-" $4 }' <<<"$warm") | sort -u)
    check "volumes = the listed chats' workspaces + the unclaimed warm ones'" eq "$volumes" "$want_volumes"
    if [[ $volumes != "$want_volumes" ]]; then
        log "       extra: $(comm -23 <(echo "$volumes") <(echo "$want_volumes") | tr '\n' ' ')"
        log "       missing: $(comm -13 <(echo "$volumes") <(echo "$want_volumes") | tr '\n' ' ')"
    fi
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
