#!/usr/bin/env bash
# Docker away: the service reaches Docker through a proxy this drill
# controls (`sandboxer-bench docker-proxy`; the machine's daemon is never
# touched). Under light load (exec and reuse on 5 seeded chats, creates of
# new chats, store-only GETs, /readyz) Docker is taken away twice: CUT_SECS
# (20) with the socket gone (connection refused), then HOLE_SECS (20) with
# connections accepted and never answered (every call runs into
# --docker-timeout-seconds, DOCKER_TIMEOUT = 5). Each answer must be 503
# with Retry-After or 504, the store-only calls keep working, no request
# may take longer than the bounds below, and once the proxy is back the
# service recovers by itself: /readyz turns 200, the seeded sandboxes are
# the same sessions with their files, a new chat gets a sandbox, and the
# footprint matches the sessions.
source "$(dirname "$0")/lib.sh"

DOCKER_TIMEOUT=${DOCKER_TIMEOUT:-5}
CUT_SECS=${CUT_SECS:-20}
HOLE_SECS=${HOLE_SECS:-20}
# Socket gone: every Docker call fails at once, so an answer may take at
# most one timeout. Black hole: a call runs into the timeout once (a
# create that timed out is not undone against an engine that does not
# answer; reconciliation finishes it), plus waiting behind the calls of the
# same chat ahead of it (exec and reuse load share the 5 seeded chats):
# 3 timeouts.
CUT_MAX_MS=${CUT_MAX_MS:-$((DOCKER_TIMEOUT * 1000 + 1000))}
HOLE_MAX_MS=${HOLE_MAX_MS:-$((DOCKER_TIMEOUT * 3000 + 1000))}
# A reuse asks Docker only when the adapter's liveness cache cannot answer;
# the cache is emptied when the event stream breaks, so a reuse that lands
# between the cut and the stream seeing it is a true 200 (the container
# runs). A few such, no more.
CACHED_REUSE_MAX=${CACHED_REUSE_MAX:-2}

build
"$BENCH" docker-proxy --listen "$WORK/docker.sock" >"$WORK/proxy.out" &
PROXY=$!
OUR_PIDS+=("$PROXY")
for _ in $(seq 100); do grep -q listening "$WORK/proxy.out" && break; sleep 0.05; done
SERVICE_ENV=(DOCKER_HOST="unix://$WORK/docker.sock")
SERVICE_ARGS=(--docker-timeout-seconds "$DOCKER_TIMEOUT")
start_service

log "seeding 5 chats, each with a file"
for i in 0 1 2 3 4; do
    call PUT "/v1/chats/away-seed-$i/sandbox"
    [[ $STATUS == 201 ]] || { log "seed PUT: $STATUS $BODY"; exit 1; }
    call POST "/v1/chats/away-seed-$i/exec" "{\"cmd\":[\"sh\",\"-c\",\"echo seed-$i > note\"]}"
    [[ $STATUS == 200 ]] || { log "seed exec: $STATUS $BODY"; exit 1; }
done
snapshot() {
    call GET /v1/sandboxes
    jq -S '[.sandboxes[] | {chat_id, session_id, container_id, image, status, generation, created_at}] | sort_by(.chat_id)' <<<"$BODY"
}

# load PHASE SECONDS: light load for that long; one JSON summary per kind.
load() {
    local phase=$1 secs=$2 pids=()
    local common=(--url "$URL" --duration-secs "$secs" --timeout-secs 120)
    "$BENCH" fire "${common[@]}" --method POST --path '/v1/chats/{chat}/exec' --body '{"cmd":["true"]}' \
        --chat-prefix away-seed --chats 5 --concurrency 2 --pause-ms 100 >"$WORK/$phase-exec.json" &
    pids+=($!)
    "$BENCH" fire "${common[@]}" --method PUT --path '/v1/chats/{chat}/sandbox' \
        --chat-prefix away-seed --chats 5 --concurrency 1 --pause-ms 100 >"$WORK/$phase-reuse.json" &
    pids+=($!)
    "$BENCH" fire "${common[@]}" --method PUT --path '/v1/chats/{chat}/sandbox' \
        --chat-prefix "away-$phase-new" --chats 100000 --concurrency 1 --pause-ms 250 >"$WORK/$phase-create.json" &
    pids+=($!)
    "$BENCH" fire "${common[@]}" --method GET --path '/v1/chats/{chat}/sandbox' \
        --chat-prefix away-seed --chats 5 --concurrency 1 --pause-ms 100 >"$WORK/$phase-get.json" &
    pids+=($!)
    "$BENCH" fire "${common[@]}" --method GET --path /readyz --concurrency 1 --pause-ms 500 >"$WORK/$phase-ready.json" &
    pids+=($!)
    OUR_PIDS+=("${pids[@]}")
    for pid in "${pids[@]}"; do wait "$pid"; done
    for kind in exec reuse create get ready; do
        figure "$phase $kind: $(jq -c '{sent, status, codes, missing_retry_after, transport_errors, max_ms: (.latency_ms.max | round), p50_ms: (.latency_ms.p50 | round)}' "$WORK/$phase-$kind.json")"
    done
}

# Docker-bound calls while Docker is away: only 503 (with Retry-After) or 504.
away_checks() {
    local phase=$1 max_ms=$2
    for kind in exec reuse create; do
        local f=$WORK/$phase-$kind.json
        local allowed='["503","504"]'
        if [[ $kind == reuse ]]; then
            allowed='["503","504","200"]'
            check "$phase reuse: at most $CACHED_REUSE_MAX answered 200 from the liveness cache" le "$(jq '.status["200"] // 0' "$f")" "$CACHED_REUSE_MAX"
        fi
        check "$phase $kind: statuses only $allowed" eq "$(jq --argjson ok "$allowed" '[.status | keys[] | select(IN($ok[]) | not)] | length' "$f")" 0
        check "$phase $kind: codes runtime_unavailable or timeout" eq "$(jq '[.codes | keys[] | select(. != "runtime_unavailable" and . != "timeout")] | length' "$f")" 0
        check "$phase $kind: every 503 has Retry-After" eq "$(jq .missing_retry_after "$f")" 0
        check "$phase $kind: no transport error" eq "$(jq .transport_errors "$f")" 0
        check "$phase $kind: longest answer <= $max_ms ms" le "$(jq .latency_ms.max "$f")" "$max_ms"
    done
    check "$phase get (store only): all 200" eq "$(jq '.status | keys | join(",")' "$WORK/$phase-get.json")" '"200"'
    check "$phase /readyz: all 503" eq "$(jq '.status | keys | join(",")' "$WORK/$phase-ready.json")" '"503"'
}

log "before: 5 s of load with Docker there"
load before 5
check "before: exec all 200" eq "$(jq '.status | keys | join(",")' "$WORK/before-exec.json")" '"200"'
snapshot >"$WORK/before.json"

log "cut: socket gone for $CUT_SECS s"
kill -USR1 "$PROXY"
load cut "$CUT_SECS"
away_checks cut "$CUT_MAX_MS"

log "black hole: connections accepted, never answered, for $HOLE_SECS s"
kill -HUP "$PROXY"
load hole "$HOLE_SECS"
away_checks hole "$HOLE_MAX_MS"

log "Docker back"
kill -USR2 "$PROXY"
back=$(date +%s%N)
ready_ms=
for _ in $(seq 600); do
    call GET /readyz
    if [[ $STATUS == 200 ]]; then
        ready_ms=$((($(date +%s%N) - back) / 1000000))
        break
    fi
    sleep 0.1
done
check "/readyz is 200 again by itself" test -n "$ready_ms"
figure "recovered: /readyz 200 after ${ready_ms:-never} ms"

snapshot >"$WORK/after.json"
check "the session rows are unchanged (GET /v1/sandboxes before = after)" diff "$WORK/before.json" "$WORK/after.json"
for i in 0 1 2 3 4; do
    call POST "/v1/chats/away-seed-$i/exec" '{"cmd":["cat","note"]}'
    check "seed $i: same sandbox, its file intact" eq "$STATUS $(jq -r .stdout <<<"$BODY")" "200 seed-$i"
done
call PUT /v1/chats/away-after/sandbox
check "a new chat gets a sandbox (201)" eq "$STATUS" 201
call POST /v1/cleanup
check "cleanup after recovery: 200, nothing failed" eq "$STATUS $(jq .failed <<<"$BODY")" "200 0"
figure "cleanup after recovery: $BODY"
footprint_matches_sessions
stop_service
finish docker-away
