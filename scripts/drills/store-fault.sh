#!/usr/bin/env bash
# Fault injection in the store path, two ways, each under the same calls:
# 1. lock: another process (the sqlite3 CLI) holds the database's write lock
#    (BEGIN EXCLUSIVE) for LOCK_SECS (25);
# 2. immutable: `chattr +i` on the database file and its WAL for
#    IMMUTABLE_SECS (10) (root ignores file modes; the ext4 immutable
#    attribute refuses writes even to root, through already open files).
# While the fault lasts, calls that write the store (create, reuse, exec,
# delete; one of each, at once, each needing a write: the seeded chats'
# last use is over the 1 s coalescing window old) must answer 503 store_unavailable with
# Retry-After, within the store's own bounds (writes queue for the single
# writer connection up to its acquire timeout, 10 s, then wait out the busy
# timeout, 5 s; +2 s slack), and reads (GET /v1/sandboxes) keep working.
# Once it is lifted: everything works again without a restart, and after
# one cleanup no container lacks its active row and no active row lacks its
# running container.
source "$(dirname "$0")/lib.sh"

LOCK_SECS=${LOCK_SECS:-25}
IMMUTABLE_SECS=${IMMUTABLE_SECS:-10}
# SqliteStoreOptions::default(): acquire_timeout 10 s, busy_timeout 5 s.
MAX_MS=${MAX_MS:-$((10000 + 5000 + 2000))}

command -v sqlite3 >/dev/null || { apt-get install -y -q sqlite3 >/dev/null; }
build
ON_EXIT+=("chattr -i \"$DB\" \"$DB-wal\" 2>/dev/null")
start_service

# seed NAME: three chats with a file each.
seed() {
    for i in 0 1 2; do
        call PUT "/v1/chats/$1-$i/sandbox"
        [[ $STATUS == 201 ]] || { log "seed PUT: $STATUS $BODY"; exit 1; }
        call POST "/v1/chats/$1-$i/exec" "{\"cmd\":[\"sh\",\"-c\",\"echo $1-$i > note\"]}"
        [[ $STATUS == 200 ]] || { log "seed exec: $STATUS $BODY"; exit 1; }
    done
    # Uses within 1 s of the last recorded one write nothing (README): wait
    # that out, so the reuse and exec under the fault must write.
    sleep 1.2
}

# during PHASE SEEDS: the calls made while the fault lasts, one of each, at once.
during() {
    local phase=$1 s=$2 pids=()
    local common=(--url "$URL" --count 1 --concurrency 1 --timeout-secs 60)
    "$BENCH" fire "${common[@]}" --method PUT --path '/v1/chats/{chat}/sandbox' \
        --chat-prefix "$phase-new" --chats 1 >"$WORK/$phase-create.json" &
    pids+=($!)
    "$BENCH" fire "${common[@]}" --method PUT --path '/v1/chats/{chat}/sandbox' \
        --chat-prefix "$s" --chats 1 >"$WORK/$phase-reuse.json" &
    pids+=($!)
    "$BENCH" fire "${common[@]}" --method POST --path '/v1/chats/{chat}/exec' --body '{"cmd":["true"]}' \
        --chat-prefix "$s" --chat-offset 1 --chats 1 >"$WORK/$phase-exec.json" &
    pids+=($!)
    "$BENCH" fire "${common[@]}" --method DELETE --path '/v1/chats/{chat}/sandbox' \
        --chat-prefix "$s" --chat-offset 2 --chats 1 >"$WORK/$phase-delete.json" &
    pids+=($!)
    "$BENCH" fire "${common[@]}" --method GET --path /v1/sandboxes >"$WORK/$phase-list.json" &
    pids+=($!)
    "$BENCH" fire "${common[@]}" --method GET --path /readyz >"$WORK/$phase-ready.json" &
    pids+=($!)
    OUR_PIDS+=("${pids[@]}")
    for pid in "${pids[@]}"; do wait "$pid"; done
    for kind in create reuse exec delete list ready; do
        local f=$WORK/$phase-$kind.json
        figure "$phase $kind: $(jq -c '{status, codes, missing_retry_after, max_ms: (.latency_ms.max | round)}' "$f")"
    done
    for kind in create reuse exec delete; do
        local f=$WORK/$phase-$kind.json
        check "$phase $kind: 503 store_unavailable" eq "$(jq -c '[.status, .codes]' "$f")" '[{"503":1},{"store_unavailable":1}]'
        check "$phase $kind: with Retry-After" eq "$(jq .missing_retry_after "$f")" 0
        check "$phase $kind: answered within $MAX_MS ms" le "$(jq .latency_ms.max "$f")" "$MAX_MS"
    done
    check "$phase GET /v1/sandboxes keeps answering 200" eq "$(jq -c .status "$WORK/$phase-list.json")" '{"200":1}'
    check "$phase /readyz: 503 store_unavailable (writes fail)" eq "$(jq -c '[.status, .codes]' "$WORK/$phase-ready.json")" '[{"503":1},{"store_unavailable":1}]'
}

# after PHASE SEEDS: everything works again, and no half state is left.
after() {
    local phase=$1 s=$2
    call PUT "/v1/chats/$phase-after/sandbox"
    check "$phase lifted: a new chat gets a sandbox (201)" eq "$STATUS" 201
    call PUT "/v1/chats/$s-0/sandbox"
    check "$phase lifted: the seeded chat is reused (200)" eq "$STATUS $(jq -r .result <<<"$BODY")" "200 reused"
    call POST "/v1/chats/$s-1/exec" '{"cmd":["cat","note"]}'
    check "$phase lifted: exec works, the file is there" eq "$STATUS $(jq -r .stdout <<<"$BODY")" "200 $s-1"
    call POST /v1/cleanup
    check "$phase lifted: cleanup 200, nothing failed" eq "$STATUS $(jq .failed <<<"$BODY")" "200 0"
    figure "$phase cleanup after the fault: $BODY"
    footprint_matches_sessions
    call DELETE "/v1/chats/$s-2/sandbox"
    check "$phase lifted: DELETE of the chat whose delete failed is 204" eq "$STATUS" 204
}

log "seeding"
seed lock-seed

log "fault 1: sqlite3 holds BEGIN EXCLUSIVE for $LOCK_SECS s"
{
    # The service may hold the lock for a moment (a write, a checkpoint).
    echo '.timeout 5000'
    echo 'BEGIN EXCLUSIVE;'
    sleep "$LOCK_SECS"
    echo 'COMMIT;'
} | sqlite3 "$DB" &
LOCKER=$!
OUR_PIDS+=("$LOCKER")
locked=
for _ in $(seq 50); do
    if ! sqlite3 -cmd '.timeout 0' "$DB" 'BEGIN IMMEDIATE; ROLLBACK;' 2>/dev/null; then locked=1 && break; fi
    sleep 0.1
done
check "the write lock is held by another process" test -n "$locked"
started=$SECONDS
during lock lock-seed
check "the calls were made while the lock was held" le "$((SECONDS - started))" "$((LOCK_SECS - 1))"
wait "$LOCKER"
log "lock released"
after lock lock-seed

log "seeding again"
seed ro-seed
log "fault 2: chattr +i on the database and its WAL for $IMMUTABLE_SECS s"
chattr +i "$DB" "$DB-wal"
check "root cannot write the database" bash -c "! { echo x >>'$DB'; } 2>/dev/null"
started=$SECONDS
during ro ro-seed
left=$((IMMUTABLE_SECS - (SECONDS - started)))
[[ $left -gt 0 ]] && sleep "$left"
chattr -i "$DB" "$DB-wal"
log "immutable attribute cleared"
after ro ro-seed
stop_service
finish store-fault
