#!/usr/bin/env bash
# Duplicate storm: 200 concurrent PUTs for one chat and, at the same time,
# 200 spread over 20 chats. Exactly 21 containers and 21 volumes must
# result, every caller of a chat must get the same session, and each chat
# must have been created exactly once. No warm pool (lib.sh's POOL=0): its
# sandboxes would add to the count.
source "$(dirname "$0")/lib.sh"

build
start_service

log "firing 200 PUTs at one chat and 200 over 20 chats, all at once"
"$BENCH" fire --url "$URL" --method PUT --path '/v1/chats/{chat}/sandbox' \
    --chat-prefix storm-one --chats 1 --count 200 --concurrency 200 >"$WORK/one.json" &
ONE=$!
"$BENCH" fire --url "$URL" --method PUT --path '/v1/chats/{chat}/sandbox' \
    --chat-prefix storm-many --chats 20 --count 200 --concurrency 200 >"$WORK/many.json" &
MANY=$!
OUR_PIDS+=("$ONE" "$MANY")
wait "$ONE"
wait "$MANY"
cat "$WORK/one.json" "$WORK/many.json"

for side in one many; do
    f=$WORK/$side.json
    chats=$([[ $side == one ]] && echo 1 || echo 20)
    check "$side: no transport error" eq "$(jq .transport_errors "$f")" 0
    check "$side: 200 answers, all 200 or 201" eq "$(jq '(.status["200"] // 0) + (.status["201"] // 0)' "$f")" 200
    check "$side: one 201 (created) per chat" eq "$(jq '.status["201"] // 0' "$f")" "$chats"
    check "$side: every caller of a chat got the same session" eq "$(jq .max_sessions_per_chat "$f")" 1
    check "$side: $chats chats answered with a session" eq "$(jq .chats_with_session "$f")" "$chats"
    figure "$side ($chats chat(s)): $(jq -r '"\(.sent) PUTs in \(.elapsed_s * 100 | round / 100) s, latency p50 \(.latency_ms.p50 | round) ms, p99 \(.latency_ms.p99 | round) ms, max \(.latency_ms.max | round) ms"' "$f")"
done

containers=$(count_containers)
volumes=$(count_volumes)
figure "containers $containers, volumes $volumes, running $(count_running)"
check "exactly 21 containers" eq "$containers" 21
check "exactly 21 volumes" eq "$volumes" 21
check "all 21 running" eq "$(count_running)" 21
footprint_matches_sessions

log "deleting the 21 sandboxes through the API"
for chat in storm-one-0 $(seq -f 'storm-many-%g' 0 19); do
    call DELETE "/v1/chats/$chat/sandbox"
    [[ $STATUS == 204 ]] || { log "DELETE $chat: $STATUS $BODY"; FAILED=1; }
done
check "nothing left after DELETE (containers)" eq "$(count_containers)" 0
check "nothing left after DELETE (volumes)" eq "$(count_volumes)" 0
stop_service
finish duplicate-storm
