#!/usr/bin/env bash
# Replicas: two `sandboxer serve` on one PostgreSQL database (a database of
# its own on the throwaway test cluster, dropped at the end) and two Docker
# Engines (this machine's and a second dockerd in a network namespace of
# its own, scripts/extra-dockerd.sh, removed at the end). 400 concurrent
# PUTs over both replicas for 21 chats, and the leading replica SIGKILLed
# in the middle of the storm: the survivor carries on, takes the cleanup
# lead within one cleanup interval, and after its reconciliation every
# chat has exactly one container (21 over the two nodes), nothing leaks. Then PostgreSQL itself is restarted under light
# load: 503 store_unavailable with Retry-After while it is away, recovery
# by itself, the same sessions after, nothing half written.
source "$(dirname "$0")/lib.sh"

PG=$ROOT/scripts/test-postgres.sh
ADMIN=$(bash "$PG" start)
PGDB="drill_$(date +%s)_$$"
psql -q "$ADMIN" -c "CREATE DATABASE $PGDB"
ON_EXIT+=("psql -q '$ADMIN' -c 'DROP DATABASE IF EXISTS $PGDB WITH (FORCE)' >/dev/null 2>&1")
DB="${ADMIN%/*}/$PGDB"
CLEANUP_INTERVAL=2
# Creates cut by the kill are settled after 4 x this (the creating timeout).
SERVICE_ARGS=(--cleanup-interval-seconds "$CLEANUP_INTERVAL" --docker-timeout-seconds 5
    --orphan-grace-seconds 5)

build
ENGINE="drill-$$"
ON_EXIT+=("bash '$ROOT/scripts/extra-dockerd.sh' stop '$ENGINE' >/dev/null 2>&1")
EXTRA=$(bash "$ROOT/scripts/extra-dockerd.sh" start "$ENGINE")
bash "$ROOT/scripts/extra-dockerd.sh" load "$ENGINE" "$IMAGE" >/dev/null
EXTRA_HOSTS=("$EXTRA")
SERVICE_ENV=("SANDBOXER_DOCKER_HOSTS=local=unix:///var/run/docker.sock,extra=$EXTRA")
log "second engine $EXTRA"
start_service
URL_A=$URL PID_A=$SERVICE_PID LOG_A=$WORK/service.$STARTS.log
start_service
URL_B=$URL PID_B=$SERVICE_PID LOG_B=$WORK/service.$STARTS.log
log "replica A $URL_A (pid $PID_A), replica B $URL_B (pid $PID_B), database $PGDB"
for _ in $(seq 100); do grep -q 'this replica leads' "$LOG_A" && break; sleep 0.1; done
check "A (started first) leads" grep -q 'this replica leads' "$LOG_A"
for _ in $(seq 100); do grep -q 'another replica leads' "$LOG_B" && break; sleep 0.1; done
check "B follows" grep -q 'another replica leads' "$LOG_B"

log "firing 200 PUTs at each replica over the same 21 chats; SIGKILL of A after 1 s"
for side in a b; do
    url_var=URL_${side^^}
    "$BENCH" fire --url "${!url_var}" --method PUT --path '/v1/chats/{chat}/sandbox' \
        --chat-prefix storm --chats 21 --count 200 --concurrency 100 \
        --sessions-out "$WORK/$side.sessions" >"$WORK/$side.json" &
    OUR_PIDS+=("$!")
    eval "FIRE_${side^^}=$!"
done
sleep 1
kill -9 "$PID_A"
KILLED_AT=$(date +%s.%N)
log "A killed"
# When B's log first says it leads (polled every 50 ms beside the storm).
(for _ in $(seq 1200); do
    grep -q 'this replica leads' "$LOG_B" && { date +%s.%N >"$WORK/led_at"; break; }
    sleep 0.05
done) &
WATCH=$!
OUR_PIDS+=("$WATCH")
wait "$FIRE_A" || true
wait "$FIRE_B"
cat "$WORK/a.json" "$WORK/b.json"

f=$WORK/b.json
check "B: no transport error" eq "$(jq .transport_errors "$f")" 0
check "B: every answer 200 or 201, or 503 with Retry-After" eq \
    "$(jq '[.status | to_entries[] | select(.key != "200" and .key != "201" and .key != "503") | .value] | add // 0' "$f")" 0
check "B: no 503 without Retry-After" eq "$(jq .missing_retry_after "$f")" 0
check "B: every caller of a chat got the same session" eq "$(jq .max_sessions_per_chat "$f")" 1
figure "B during the storm: $(jq -r '"\(.sent) PUTs in \(.elapsed_s * 100 | round / 100) s, status \(.status | tostring), p50 \(.latency_ms.p50 | round) ms, p99 \(.latency_ms.p99 | round) ms"' "$f")"
figure "A before its kill: $(jq -r '"\(.sent) PUTs sent, status \(.status | tostring), \(.transport_errors) cut by the kill"' "$WORK/a.json")"
# Sessions both replicas handed out for a chat must agree.
both=$(cat "$WORK/a.sessions" "$WORK/b.sessions" 2>/dev/null | awk 'NF >= 2 { print $1, $2 }' | sort -u)
check "A and B handed out one session per chat" eq "$(awk '{ print $1 }' <<<"$both" | uniq -d)" ""

wait "$WATCH" || true
check "B took the lead" test -s "$WORK/led_at"
LED_AFTER=$(awk -v a="$KILLED_AT" -v b="$(cat "$WORK/led_at" 2>/dev/null || echo 0)" 'BEGIN { printf "%.1f", b - a }')
figure "B led $LED_AFTER s after A's kill (cleanup interval ${CLEANUP_INTERVAL} s)"
check "the lead moved within one cleanup interval (+1 s)" le "$LED_AFTER" $((CLEANUP_INTERVAL + 1))

log "every chat once more through B, after the creates A left are settled (4 x 5 s)"
sleep 22
URL=$URL_B SERVICE_PID=$PID_B
bad=0
for i in $(seq 0 20); do
    call PUT "/v1/chats/storm-$i/sandbox" '{}'
    [[ $STATUS == 200 || $STATUS == 201 ]] || { log "PUT storm-$i: $STATUS $BODY"; bad=$((bad + 1)); }
done
check "all 21 chats answer through B" eq "$bad" 0
sleep $((CLEANUP_INTERVAL * 2))
per_node=$(docker_all ps -a $(label_filter) --format '{{.Label "sandboxer.node"}}' | sort | uniq -c | awk '{ printf "%s %s, ", $2, $1 }')
figure "containers $(count_containers) (by node: ${per_node%, }), volumes $(count_volumes), running $(count_running)"
check "exactly 21 containers" eq "$(count_containers)" 21
check "both nodes hold sandboxes" eq "$(docker_all ps -a $(label_filter) --format '{{.Label "sandboxer.node"}}' | sort -u | wc -l)" 2
check "all 21 running" eq "$(count_running)" 21
footprint_matches_sessions

log "PostgreSQL restarted under light load (5 s away)"
before=$(active_sessions)
load() {
    local end=$((SECONDS + 14)) n=0
    while ((SECONDS < end)); do
        call PUT "/v1/chats/storm-$((n % 21))/sandbox" '{}'
        echo "$STATUS ${RETRY_AFTER:--} $(code_of)"
        n=$((n + 1))
        sleep 0.05
    done >"$WORK/load.txt"
}
load &
LOAD=$!
OUR_PIDS+=("$LOAD")
sleep 2
bash "$PG" restart 5
wait "$LOAD"
answers=$(wc -l <"$WORK/load.txt")
ok=$(awk '$1 == 200' "$WORK/load.txt" | wc -l)
unavailable=$(awk '$1 == 503 && $3 == "store_unavailable"' "$WORK/load.txt" | wc -l)
without_retry=$(awk '$1 == 503 && $2 == "-"' "$WORK/load.txt" | wc -l)
other=$(awk '$1 != 200 && !($1 == 503 && $3 == "store_unavailable")' "$WORK/load.txt" | sort | uniq -c | tr '\n' ';')
figure "PUTs during the restart: $answers, 200: $ok, 503 store_unavailable: $unavailable, other: ${other:-none}"
check "503 store_unavailable while PostgreSQL was away" le 1 "$unavailable"
check "every 503 had Retry-After" eq "$without_retry" 0
check "nothing but 200 and 503 store_unavailable" eq "$other" ""
check "the last answers are 200 again" eq "$(tail -3 "$WORK/load.txt" | awk '{ print $1 }' | sort -u)" 200
check "the same 21 sessions after the restart" eq "$(active_sessions)" "$before"
check "still exactly 21 containers" eq "$(count_containers)" 21
footprint_matches_sessions

log "deleting the 21 sandboxes through B"
for i in $(seq 0 20); do
    call DELETE "/v1/chats/storm-$i/sandbox"
    [[ $STATUS == 204 ]] || { log "DELETE storm-$i: $STATUS $BODY"; FAILED=1; }
done
check "nothing left (containers)" eq "$(count_containers)" 0
check "nothing left (volumes)" eq "$(count_volumes)" 0
stop_service
finish replicas
