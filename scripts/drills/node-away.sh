#!/usr/bin/env bash
# Node away: one service over two Docker Engines (this machine's, `local`,
# and a second dockerd in a network namespace of its own, `extra`, from
# scripts/extra-dockerd.sh, removed at the end). Ten chats with a file
# each, spread over both nodes, read in a loop (light load) while the extra
# engine's daemon is stopped for 20 s (its containers live on:
# --live-restore). While it is away its chats answer 503
# runtime_unavailable with Retry-After, the local chats answer as before,
# and new chats are placed on the local node; when it is back its chats
# answer again on the same sandboxes, every file is there, and the
# footprint matches the sessions.
source "$(dirname "$0")/lib.sh"

AWAY_SECONDS=20
build
ENGINE="drill-away-$$"
ON_EXIT+=("bash '$ROOT/scripts/extra-dockerd.sh' stop '$ENGINE' >/dev/null 2>&1")
EXTRA=$(bash "$ROOT/scripts/extra-dockerd.sh" start "$ENGINE")
bash "$ROOT/scripts/extra-dockerd.sh" load "$ENGINE" "$IMAGE" >/dev/null
EXTRA_HOSTS=("$EXTRA")
SERVICE_ENV=("SANDBOXER_DOCKER_HOSTS=local=unix:///var/run/docker.sock,extra=$EXTRA")
SERVICE_ARGS=(--cleanup-interval-seconds 2)
start_service
log "second engine $EXTRA"

declare -A NODE SESSION
for i in $(seq 0 9); do
    chat=away-$i
    call PUT "/v1/chats/$chat/sandbox" '{}'
    [[ $STATUS == 201 ]] || { log "PUT $chat: $STATUS $BODY"; FAILED=1; }
    NODE[$chat]=$(jq -r '.container_id | split("/")[0]' <<<"$BODY")
    SESSION[$chat]=$(jq -r .session_id <<<"$BODY")
    CALL_CONTENT_TYPE=application/octet-stream call PUT "/v1/chats/$chat/files/note.txt" "note of $chat"
    [[ $STATUS == 200 || $STATUS == 201 || $STATUS == 204 ]] || { log "file $chat: $STATUS $BODY"; FAILED=1; }
done
on_extra=$(for c in "${!NODE[@]}"; do echo "${NODE[$c]}"; done | grep -c '^extra$' || true)
figure "10 chats: $on_extra on extra, $((10 - on_extra)) on local"
check "both nodes hold chats" le 1 "$on_extra"
check "both nodes hold chats (local)" le 1 "$((10 - on_extra))"

# Reads every chat's file in turn: "elapsed chat node status retry-after code ok".
load() {
    local end=$((SECONDS + AWAY_SECONDS + 16)) n=0 started=$SECONDS
    while ((SECONDS < end)); do
        local chat=away-$((n % 10))
        call POST "/v1/chats/$chat/exec" '{"cmd": ["cat", "note.txt"]}'
        local same=no
        [[ $STATUS == 200 && $(jq -r .stdout <<<"$BODY") == "note of $chat" ]] && same=yes
        local code
        code=$(code_of)
        echo "$((SECONDS - started)) $chat ${NODE[$chat]} $STATUS ${RETRY_AFTER:--} ${code:--} $same"
        n=$((n + 1))
        sleep 0.1
    done >"$WORK/load.txt"
}
load &
LOAD=$!
OUR_PIDS+=("$LOAD")
sleep 3
log "stopping the extra engine's daemon for $AWAY_SECONDS s"
bash "$ROOT/scripts/extra-dockerd.sh" pause "$ENGINE"
sleep 4
placed=""
for i in 0 1 2; do
    call PUT "/v1/chats/new-while-away-$i/sandbox" '{}'
    [[ $STATUS == 201 ]] || { log "PUT new-while-away-$i: $STATUS $BODY"; FAILED=1; }
    placed+="$(jq -r '.container_id | split("/")[0]' <<<"$BODY") "
done
check "new chats while extra is away go to local" eq "$placed" "local local local "
call GET /v1/nodes
figure "nodes while away: $(jq -c '[.nodes[] | {name, up, sandboxes}]' <<<"$BODY")"
sleep $((AWAY_SECONDS - 4))
bash "$ROOT/scripts/extra-dockerd.sh" resume "$ENGINE" >/dev/null
log "extra engine back"
wait "$LOAD"

local_bad=$(awk '$3 == "local" && !($4 == 200 && $7 == "yes")' "$WORK/load.txt" | wc -l)
extra_503=$(awk '$3 == "extra" && $4 == 503 && $6 == "runtime_unavailable"' "$WORK/load.txt" | wc -l)
extra_503_no_retry=$(awk '$3 == "extra" && $4 == 503 && $5 == "-"' "$WORK/load.txt" | wc -l)
extra_other=$(awk '$3 == "extra" && !($4 == 200 && $7 == "yes") && !($4 == 503 && $6 == "runtime_unavailable")' "$WORK/load.txt" | wc -l)
figure "reads: $(wc -l <"$WORK/load.txt") in all; local not 200 with its file: $local_bad; extra 503 runtime_unavailable: $extra_503 (without Retry-After: $extra_503_no_retry), extra other failures: $extra_other"
check "local chats unaffected" eq "$local_bad" 0
check "extra chats 503 runtime_unavailable while away" le 1 "$extra_503"
check "every 503 had Retry-After" eq "$extra_503_no_retry" 0
check "no other failure" eq "$extra_other" 0
first_back=$(awk '$3 == "extra" && $4 == 503 { last = $1 } END { print last + 0 }' "$WORK/load.txt")
figure "extra chats answered again $(( $(awk '$3 == "extra" && $4 == 200 && $1 > '"$first_back"' { print $1; exit }' "$WORK/load.txt") - first_back )) s after their last 503"

log "every chat once more: the same sandbox, its file there"
sleep 4
for i in $(seq 0 9); do
    chat=away-$i
    call POST "/v1/chats/$chat/exec" '{"cmd": ["cat", "note.txt"]}'
    check "$chat (${NODE[$chat]}) reads its file" eq "$STATUS $(jq -r .stdout <<<"$BODY")" "200 note of $chat"
    call GET "/v1/chats/$chat/sandbox"
    check "$chat keeps its session" eq "$(jq -r .session_id <<<"$BODY")" "${SESSION[$chat]}"
done
sleep 4
check "13 containers over the two nodes" eq "$(count_containers)" 13
footprint_matches_sessions

for chat in $(seq -f 'away-%g' 0 9) new-while-away-{0,1,2}; do
    call DELETE "/v1/chats/$chat/sandbox"
    [[ $STATUS == 204 ]] || { log "DELETE $chat: $STATUS $BODY"; FAILED=1; }
done
check "nothing left (containers)" eq "$(count_containers)" 0
check "nothing left (volumes)" eq "$(count_volumes)" 0
stop_service
finish node-away
