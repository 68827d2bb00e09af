#!/usr/bin/env bash
# Kill -9 chaos, with hibernation, resume and warm pool claims in flight.
# The service runs with a warm pool of WARM_POOL (2). First KEEP (20) chats get
# a sandbox and a file of their own (proof.txt, a distinct content each,
# recorded). Then in each round the service starts, 100 PUTs create new
# chats' sandboxes (10 at a time; new chats, so some claim warm ones), and
# alongside, HR_WORKERS (3) loops hibernate some of the KEEP chats and
# resume others, by turns (PUT .../sandbox or straight through exec `cat
# proof.txt`, which must read the file back; they start HR_LEAD_MS (1000)
# ahead of the storm), until the service is SIGKILLed at a
# random moment: once a random number (1 to 40) of new containers exist,
# plus a random 0-300 ms, so the kill lands mid-flight however fast the
# machine is. Rounds overlap their chats (round r uses chats 50(r-1) ..
# 50(r-1)+99), so later rounds also meet sandboxes and `creating` rows left
# by a kill. Then the service starts once more (startup reconciliation, and
# the pool's startup refill, which drains warm sandboxes the kills left half
# made) and one `POST /v1/cleanup` runs (orphan
# grace 0). After that every KEEP chat must be running or hibernated; once
# the warm pool is whole again, the containers and volumes of the instance
# must match what the store lists (active and hibernated chats, plus the
# POOL unclaimed warm sandboxes), no chat may have two, no sandbox whose
# PUT was answered may be lost; every KEEP chat must read its file back
# with its content, every sandbox must work, and a new chat must get a
# warm sandbox. ROUNDS (5), CREATES (100), CONCURRENCY (10), KEEP,
# HR_WORKERS, HR_LEAD_MS, WARM_POOL and SEED (random; printed, to replay a
# run) tune it.
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
CREATES=${CREATES:-100}
CONCURRENCY=${CONCURRENCY:-10}
KEEP=${KEEP:-20}
HR_WORKERS=${HR_WORKERS:-3}
HR_LEAD_MS=${HR_LEAD_MS:-1000}
POOL=${WARM_POOL:-2}
SEED=${SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$SEED

build
SERVICE_ARGS=(--orphan-grace-seconds 0)
log "seed $SEED"
figure "seed $SEED, $ROUNDS rounds of $CREATES creates at concurrency $CONCURRENCY; warm pool $POOL; $KEEP chats with a file hibernated and resumed by $HR_WORKERS loops"

# pool_rows: the warm pool's rows in the store by status, as "ready 2,
# warming 1" (sqlite3, read only).
pool_rows() {
    command -v sqlite3 >/dev/null || { echo "?"; return 0; }
    local rows
    rows=$(sqlite3 -cmd '.timeout 2000' "$DB" "SELECT status || ' ' || count(*) FROM pool_members GROUP BY status" 2>&1 | paste -sd, - | sed 's/,/, /g')
    echo "${rows:-none}"
}

reconciled() {
    grep -o 'startup reconciliation done.*' "$WORK/service.$STARTS.log" | head -1 |
        sed 's/\x1b\[[0-9;]*m//g; s/startup reconciliation done //' || true
}

PROOFS=$WORK/proofs.txt # "chat content", one per KEEP chat
proof_of() { awk -v c="$1" '$1 == c { print $2 }' "$PROOFS"; }
dash() { echo "${1:--}"; }
# Hibernates and resumes in ops lines: tried, and done (answered 204; a PUT
# answered `resumed` or an exec straight on a hibernated chat answered 200).
HIB_TRIED='$1 == "hibernate"'
HIB_DONE='$1 == "hibernate" && $3 == 204'
RES_TRIED='($1 == "put" && $5 == "hibernated") || ($1 == "read" && $5 == "hibernated" && $6 == "direct")'
RES_DONE='($1 == "put" && $3 == 201 && $4 == "resumed") || ($1 == "read" && $3 == 200 && $5 == "hibernated" && $6 == "direct")'

# keep_chat I: the chat keep-I gets its sandbox and its proof.txt, read back once.
keep_chat() {
    local chat=keep-$1 content
    content=proof-$1-$SEED-$RANDOM$RANDOM
    call PUT "/v1/chats/$chat/sandbox"
    [[ $STATUS == 201 ]] || { log "PUT $chat: $STATUS $BODY"; return 1; }
    echo "$chat $(jq -r .pool <<<"$BODY")" >>"$WORK/keep-pool.txt"
    CALL_CONTENT_TYPE=application/octet-stream call PUT "/v1/chats/$chat/files/proof.txt" "$content"
    [[ $STATUS == 200 || $STATUS == 201 || $STATUS == 204 ]] || { log "PUT $chat proof.txt: $STATUS $BODY"; return 1; }
    call POST "/v1/chats/$chat/exec" '{"cmd":["cat","proof.txt"]}'
    [[ $STATUS == 200 && $(jq -r .stdout <<<"$BODY") == "$content" ]] || { log "read back $chat: $STATUS $BODY"; return 1; }
    echo "$chat $content" >>"$PROOFS"
}

# hr_worker ROUND W: until the round's stop file exists, works on its KEEP
# chats (those with I mod HR_WORKERS = W; no other caller touches them),
# as GET /v1/sandboxes lists them: by turns it hibernates a running one
# and resumes a hibernated one (whichever there is when the turn's kind has
# none). A resume is a PUT (which must answer `resumed`) then an exec of
# `cat proof.txt`, or the exec alone; the exec must print the recorded
# content. One line per call in ops.ROUND.W: "KIND chat status detail
# state-before [via]", via (reads only) `put` when a PUT came first, else
# `direct`.
hr_worker() {
    local round=$1 w=$2 out=$WORK/ops.$1.$2 turn=0 mine chat want state via verdict
    local running hibernated
    RANDOM=$((SEED + round * 101 + w))
    while [[ ! -e $WORK/stop.$round ]]; do
        call GET /v1/sandboxes
        if [[ $STATUS != 200 ]]; then
            echo "list - $STATUS $(dash "$(code_of)") -" >>"$out"
            sleep 0.05
            continue
        fi
        mine=$(jq -r --argjson k "$HR_WORKERS" --argjson w "$w" '.sandboxes[]
            | select(.chat_id | test("^keep-[0-9]+$"))
            | select((.chat_id | ltrimstr("keep-") | tonumber) % $k == $w)
            | "\(.chat_id) \(.status)"' <<<"$BODY")
        mapfile -t running < <(awk '$2 == "running" { print $1 }' <<<"$mine")
        mapfile -t hibernated < <(awk '$2 == "hibernated" { print $1 }' <<<"$mine")
        turn=$((turn + 1))
        if [[ ${#running[@]} -gt 0 && ($((turn % 2)) -eq 1 || ${#hibernated[@]} -eq 0) ]]; then
            chat=${running[RANDOM % ${#running[@]}]}
            call POST "/v1/chats/$chat/sandbox/hibernate"
            echo "hibernate $chat $STATUS $(dash "$(code_of)") running" >>"$out"
            continue
        fi
        if [[ ${#hibernated[@]} -eq 0 ]]; then
            sleep 0.05 # all of them creating: let them settle
            continue
        fi
        chat=${hibernated[RANDOM % ${#hibernated[@]}]}
        state=hibernated
        want=$(proof_of "$chat")
        via=direct
        if [[ $((RANDOM % 2)) -eq 0 ]]; then
            via=put
            call PUT "/v1/chats/$chat/sandbox"
            echo "put $chat $STATUS $(dash "$(jq -r '.result // .error.code // empty' <<<"$BODY" 2>/dev/null)") $state" >>"$out"
            [[ $STATUS == 200 || $STATUS == 201 ]] || continue
        fi
        call POST "/v1/chats/$chat/exec" '{"cmd":["cat","proof.txt"]}'
        verdict=-
        if [[ $STATUS == 200 ]]; then
            if [[ $(jq -r .exit_code <<<"$BODY") == 0 && $(jq -r .stdout <<<"$BODY") == "$want" ]]; then
                verdict=ok
            else
                verdict=bad
                echo "$chat: $BODY" >>"$WORK/bad-reads.txt"
            fi
        fi
        echo "read $chat $STATUS $verdict $state $via" >>"$out"
    done
}

start_service
log "creating $KEEP chats, each with its proof.txt"
: >"$PROOFS"
: >"$WORK/keep-pool.txt"
for ((i = 0; i < KEEP; i += 5)); do
    pids=()
    for ((j = i; j < i + 5 && j < KEEP; j++)); do
        keep_chat "$j" &
        pids+=($!)
    done
    OUR_PIDS+=("${pids[@]}")
    for pid in "${pids[@]}"; do wait "$pid" || { log "setting up the kept chats failed"; exit 1; }; done
done
figure "$KEEP chats with proof.txt; their PUTs' pool: $(awk '{ print $2 }' "$WORK/keep-pool.txt" | sort | uniq -c | awk '{ printf "%s %s ", $2, $1 }')"

for round in $(seq "$ROUNDS"); do
    if [[ $round -gt 1 ]]; then
        start_service
        figure "round $round start: reconciled $(reconciled)"
    fi
    workers=()
    for ((w = 0; w < HR_WORKERS; w++)); do
        hr_worker "$round" "$w" &
        workers+=($!)
    done
    OUR_PIDS+=("${workers[@]}")
    # A head start: resumes queue behind the storm's creates, and a round
    # is a few seconds long.
    sleep "$(awk -v ms="$HR_LEAD_MS" 'BEGIN { printf "%.3f", ms / 1000 }')"
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
    while [[ $(count_containers) -lt $target && $SECONDS -lt $deadline ]] && kill -0 "$fire" 2>/dev/null; do sleep 0.05; done
    sleep "$(awk -v ms="$extra_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
    kill9_service
    delay_ms=$((($(date +%s%N) - fired) / 1000000))
    pool_at_kill=$(pool_rows)
    at_kill=$(count_containers)
    touch "$WORK/stop.$round"
    for pid in "${workers[@]}"; do wait "$pid" || true; done
    wait "$fire" || true
    answered=$(jq '[.status[]] | add // 0' "$WORK/round$round.json")
    cut=$(jq .transport_errors "$WORK/round$round.json")
    pool=$(jq -c '.pool' "$WORK/round$round.json")
    ops=$(cat "$WORK/ops.$round".* 2>/dev/null || true)
    n() { awk "$1" <<<"$ops" | grep -c . || true; }
    figure "round $round: SIGKILL ${delay_ms} ms in (aimed at +$((target - before)) containers, +${extra_ms} ms); $answered PUTs answered (pool $pool), $cut cut by the kill; $at_kill containers and warm pool rows $pool_at_kill at the kill; hibernates $(n "$HIB_DONE")/$(n "$HIB_TRIED") done, resumes $(n "$RES_DONE")/$(n "$RES_TRIED") done, $(n '$3 == "000"') of the loops' calls cut"
done

log "restarting once more (startup reconciliation), then one cleanup"
# Warm sandboxes whose making a kill cut are drained by the startup refill,
# so the pool is whole again within seconds (checked below).
start_service
final_start=$SECONDS
figure "final start: reconciled $(reconciled); warm pool rows in the store: $(pool_rows)"
call POST /v1/cleanup
check "cleanup answers 200" eq "$STATUS" 200
check "cleanup failed nothing" eq "$(jq .failed <<<"$BODY")" 0
figure "cleanup: $BODY"

log "every kept chat is running or hibernated (GET, which does not resume)"
states=()
while read -r chat _; do
    call GET "/v1/chats/$chat/sandbox"
    state=$(jq -r '.status // empty' <<<"$BODY" 2>/dev/null)
    states+=("${state:-$STATUS}")
    [[ $STATUS == 200 && ($state == running || $state == hibernated) ]] || log "GET $chat/sandbox: $STATUS $BODY"
done <"$PROOFS"
state_counts=$(printf '%s\n' "${states[@]}" | sort | uniq -c | awk '{ printf "%s %s, ", $1, $2 }')
figure "kept chats after recovery: ${state_counts%, }"
check "every kept chat is running or hibernated" eq "$(printf '%s\n' "${states[@]}" | grep -cvE '^(running|hibernated)$' || true)" 0

check "the warm pool is whole again: $POOL ready, running, no helper" wait_pool_full 60
figure "warm pool whole $((SECONDS - final_start)) s after the final start; rows in the store: $(pool_rows)"
figure "after: $(count_containers) containers, $(count_volumes) volumes, $(active_sessions | grep -c . || true) active sessions, $(hibernated_chats | grep -c . || true) hibernated chats"
footprint_matches_sessions
lost=$(cat "$WORK"/answered*.txt | awk 'NF { print $1, $2 }' | sort -u | comm -23 - <(active_sessions))
check "no sandbox a PUT answered for before a kill was lost ($(cat "$WORK"/answered*.txt | awk 'NF' | wc -l) answers)" eq "$lost" ""

# What the hibernate/resume loops saw, all rounds together.
ops=$(cat "$WORK"/ops.* 2>/dev/null || true)
count_ops() { awk "$1" <<<"$ops" | grep -c . || true; }
hibernates=$(count_ops "$HIB_DONE")
resumes_put=$(count_ops '$1 == "put" && $3 == 201 && $4 == "resumed"')
resumes_exec=$(count_ops '$1 == "read" && $3 == 200 && $5 == "hibernated" && $6 == "direct"')
reads_ok=$(count_ops '$1 == "read" && $4 == "ok"')
figure "hibernate/resume loops, all rounds: hibernates $hibernates done of $(count_ops "$HIB_TRIED") tried; resumes $((resumes_put + resumes_exec)) done of $(count_ops "$RES_TRIED") tried ($resumes_put by PUT, $resumes_exec by exec), the rest cut by the kills; $reads_ok reads of proof.txt ok; calls by kind and status: $(awk '{ print $1 ":" $3 }' <<<"$ops" | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')"
check "hibernations ran during the rounds" le 1 "$hibernates"
check "resumes ran during the rounds" le 1 "$((resumes_put + resumes_exec))"
check "every read during the rounds printed the recorded content" eq "$(cat "$WORK/bad-reads.txt" 2>/dev/null)" ""
check "a PUT of a chat listed hibernated answered resumed" eq "$(count_ops '$1 == "put" && $5 == "hibernated" && ($3 == 200 || $3 == 201) && $4 != "resumed"')" 0

log "every kept chat reads its file back (a hibernated one resumes)"
unread=()
while read -r chat want; do
    n=${chat#keep-}
    if ((n % 2)); then
        call GET "/v1/chats/$chat/files/proof.txt"
        got="$STATUS $BODY"
    else
        call POST "/v1/chats/$chat/exec" '{"cmd":["cat","proof.txt"]}'
        got="$STATUS $(jq -r .stdout <<<"$BODY" 2>/dev/null)"
    fi
    [[ $got == "200 $want" ]] || { log "$chat: wanted [$want], got [$got]"; unread+=("$chat"); }
done <"$PROOFS"
check "every kept chat reads its proof.txt back ($(wc -l <"$PROOFS") chats, by GET file or exec)" eq "${unread[*]}" ""

log "every active sandbox runs a command"
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
log "and a new chat still gets one, from the warm pool"
call PUT /v1/chats/chaos-after/sandbox
figure "a new chat's PUT: $STATUS $(jq -c '{result, pool}' <<<"$BODY" 2>/dev/null)"
check "a new chat's PUT is 201, a pool hit" eq "$STATUS $(jq -r .pool <<<"$BODY" 2>/dev/null)" "201 hit"
check "the warm pool is whole again: $POOL ready, running, no helper" wait_pool_full 60
footprint_matches_sessions
stop_service
finish kill9-chaos
