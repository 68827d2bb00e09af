#!/usr/bin/env bash
# Issue 13's figures on this machine (release builds): reuse latency at
# concurrency 1 on PostgreSQL next to SQLite, and the reuse path's requests
# per second of one replica against two replicas on one database, with the
# CPU each side used (replicas, load generators, PostgreSQL: all on the same
# cores). Uses the throwaway test cluster (scripts/test-postgres.sh) and a
# database of its own, dropped at the end; the services' sandboxes are
# removed by lib.sh's exit.
#
#   cargo build --release -p sandboxer && cargo build --release -p sandboxer-bench
#   bash scripts/bench-replicas.sh            # SECONDS_PER_RUN=10 CONCURRENCY=8 REUSES=2000
source "$(dirname "$0")/drills/lib.sh"

RUN_SECONDS=${SECONDS_PER_RUN:-10}
CONCURRENCY=${CONCURRENCY:-8}
REUSES=${REUSES:-2000}
PG=$ROOT/scripts/test-postgres.sh
ADMIN=$(bash "$PG" start)
PGDB="bench_$(date +%s)_$$"
psql -q "$ADMIN" -c "CREATE DATABASE $PGDB"
ON_EXIT+=("psql -q '$ADMIN' -c 'DROP DATABASE IF EXISTS $PGDB WITH (FORCE)' >/dev/null 2>&1")

build

# CPU seconds (user + system) a set of pids has used so far.
cpu_of() {
    local ticks=0 pid
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
    done
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
postgres_pids() { pgrep -u postgres postgres | tr '\n' ' '; }

reuse_latency() {
    local label=$1
    call PUT /v1/chats/bench-reuse/sandbox '{}'
    "$BENCH" fire --url "$URL" --method PUT --path '/v1/chats/{chat}/sandbox' \
        --chat-prefix bench-reuse --chats 1 --count 200 --concurrency 1 >/dev/null
    "$BENCH" fire --url "$URL" --method PUT --path '/v1/chats/{chat}/sandbox' \
        --chat-prefix bench-reuse --chats 1 --count "$REUSES" --concurrency 1 >"$WORK/$label.json"
    figure "reuse at c=1 on $label: $(jq -r '"p50 \(.latency_ms.p50 * 1000 | round / 1000) ms, p95 \(.latency_ms.p95 * 1000 | round / 1000) ms, p99 \(.latency_ms.p99 * 1000 | round / 1000) ms over \(.sent)"' "$WORK/$label.json")"
}

log "SQLite: one service"
start_service
reuse_latency sqlite
stop_service

log "PostgreSQL: replica A"
DB="${ADMIN%/*}/$PGDB"
start_service
URL_A=$URL PID_A=$SERVICE_PID
reuse_latency postgresql
for i in $(seq 0 7); do call PUT "/v1/chats/bench-rps-$i/sandbox" '{}'; done

# fire against the given URLs at once for RUN_SECONDS; prints "rps" and
# CPU seconds of the replicas, the load generators and PostgreSQL.
throughput() {
    local label=$1 replicas=$2
    shift 2
    local pids=() n=0 url
    local pg_before rep_before
    pg_before=$(cpu_of $(postgres_pids))
    rep_before=$(cpu_of $replicas)
    for url in "$@"; do
        "$BENCH" fire --url "$url" --method PUT --path '/v1/chats/{chat}/sandbox' \
            --chat-prefix bench-rps --chats 8 --duration-secs "$RUN_SECONDS" \
            --concurrency "$CONCURRENCY" >"$WORK/$label.$n.json" &
        pids+=("$!")
        n=$((n + 1))
    done
    local gen_cpu=0 pid
    # The generators' CPU, read just before they exit.
    sleep "$(awk -v s="$RUN_SECONDS" 'BEGIN { print s - 0.3 }')"
    gen_cpu=$(cpu_of "${pids[@]}")
    for pid in "${pids[@]}"; do wait "$pid"; done
    local sent=0 elapsed=0 f bad=0
    for f in "$WORK/$label".*.json; do
        sent=$((sent + $(jq .sent "$f")))
        bad=$((bad + $(jq '.sent - ((.status["200"] // 0) + (.status["201"] // 0))' "$f")))
        elapsed=$(jq .elapsed_s "$f")
    done
    local rps
    rps=$(awk -v s="$sent" -v e="$elapsed" 'BEGIN { printf "%.0f", s / e }')
    echo "$label: $rps reuses/s ($sent PUTs, $bad not 200, c=$CONCURRENCY per replica); CPU s: replicas $(awk -v a="$(cpu_of $replicas)" -v b="$rep_before" 'BEGIN { printf "%.1f", a - b }'), load generators $gen_cpu, PostgreSQL $(awk -v a="$(cpu_of $(postgres_pids))" -v b="$pg_before" 'BEGIN { printf "%.1f", a - b }') (of $((RUN_SECONDS * $(nproc))) s on $(nproc) cores)" >"$WORK/$label.figure"
    echo "$rps"
}

ONE=$(throughput one-replica "$PID_A" "$URL_A" | tail -1)
figure "$(cat "$WORK/one-replica.figure")"
log "PostgreSQL: replica B beside A"
start_service
URL_B=$URL PID_B=$SERVICE_PID
TWO=$(throughput two-replicas "$PID_A $PID_B" "$URL_A" "$URL_B" | tail -1)
figure "$(cat "$WORK/two-replicas.figure")"
figure "two replicas / one: $(awk -v a="$TWO" -v b="$ONE" 'BEGIN { printf "%.2f", a / b }')x"
SERVICE_PID=$PID_B
stop_service
SERVICE_PID=$PID_A
stop_service
finish bench-replicas
