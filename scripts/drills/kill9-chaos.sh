#!/usr/bin/env bash
# Kill -9 chaos: in each round the service starts, 100 PUTs create chats'
# sandboxes (10 at a time), and the service is SIGKILLed at a random moment
# while they run: once a random number (1 to 40) of new containers exist,
# plus a random 0-300 ms, so the kill lands mid-flight however fast the
# machine is. Rounds overlap their chats (round r uses chats 50(r-1) ..
# 50(r-1)+99), so later rounds also meet sandboxes and `creating` rows left
# by a kill. Then the service starts once more (startup reconciliation) and
# one `POST /v1/cleanup` runs (orphan grace 0). After that the containers
# and volumes of the instance must be exactly the active sessions, no chat
# may have two, no sandbox whose PUT was answered may be lost, and every
# sandbox must work. ROUNDS (5), CREATES (100), CONCURRENCY (10) and SEED
# (random; printed, to replay a run) tune it.
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
CREATES=${CREATES:-100}
CONCURRENCY=${CONCURRENCY:-10}
SEED=${SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$SEED

build
SERVICE_ARGS=(--orphan-grace-seconds 0)
log "seed $SEED"
figure "seed $SEED, $ROUNDS rounds of $CREATES creates at concurrency $CONCURRENCY"

reconciled() {
    grep -o 'startup reconciliation done.*' "$WORK/service.$STARTS.log" | head -1 |
        sed 's/\x1b\[[0-9;]*m//g; s/startup reconciliation done //' || true
}

for round in $(seq "$ROUNDS"); do
    start_service
    [[ $round -gt 1 ]] && figure "round $round start: reconciled $(reconciled)"
    before=$(count_containers)
    target=$((before + 1 + RANDOM % 40))
    extra_ms=$((RANDOM % 300))
    fired=$(date +%s%N)
    "$BENCH" fire --url "$URL" --method PUT --path '/v1/chats/{chat}/sandbox' \
        --chat-prefix chaos --chat-offset $(((round - 1) * 50)) --chats "$CREATES" \
        --count "$CREATES" --concurrency "$CONCURRENCY" --timeout-secs 60 \
        --sessions-out "$WORK/answered$round.txt" >"$WORK/round$round.json" &
    fire=$!
    OUR_PIDS+=("$fire")
    deadline=$((SECONDS + 60))
    while [[ $(count_containers) -lt $target && $SECONDS -lt $deadline ]]; do sleep 0.05; done
    sleep "$(awk -v ms="$extra_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
    kill9_service
    delay_ms=$((($(date +%s%N) - fired) / 1000000))
    at_kill=$(count_containers)
    wait "$fire" || true
    answered=$(jq '[.status[]] | add // 0' "$WORK/round$round.json")
    cut=$(jq .transport_errors "$WORK/round$round.json")
    figure "round $round: SIGKILL ${delay_ms} ms in (aimed at +$((target - before)) containers, +${extra_ms} ms); $answered PUTs answered, $cut cut by the kill; $at_kill containers at the kill"
done

log "restarting once more (startup reconciliation), then one cleanup"
start_service
figure "final start: reconciled $(reconciled)"
call POST /v1/cleanup
check "cleanup answers 200" eq "$STATUS" 200
check "cleanup failed nothing" eq "$(jq .failed <<<"$BODY")" 0
figure "cleanup: $BODY"
figure "after: $(count_containers) containers, $(count_volumes) volumes, $(active_sessions | grep -c . || true) active sessions"
footprint_matches_sessions
lost=$(cat "$WORK"/answered*.txt | awk 'NF { print $1, $2 }' | sort -u | comm -23 - <(active_sessions))
check "no sandbox a PUT answered for before a kill was lost ($(cat "$WORK"/answered*.txt | awk 'NF' | wc -l) answers)" eq "$lost" ""

log "every surviving sandbox runs a command"
broken=0
while read -r chat _; do
    [[ -z $chat ]] && continue
    call POST "/v1/chats/$chat/exec" '{"cmd":["true"]}'
    if [[ $STATUS != 200 || $(jq .exit_code <<<"$BODY") != 0 ]]; then
        log "exec in $chat: $STATUS $BODY"
        broken=$((broken + 1))
    fi
done < <(active_sessions)
check "every active sandbox runs exec true" eq "$broken" 0
log "and a new chat still gets one"
call PUT /v1/chats/chaos-after/sandbox
check "a new chat's PUT is 201" eq "$STATUS" 201
stop_service
finish kill9-chaos
