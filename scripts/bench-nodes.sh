#!/usr/bin/env bash
# Create latency on each node of a PostgreSQL-backed service over two
# Docker Engines, next to raw create+start on that same engine:
# `sandboxer-bench run --url` against a service on the throwaway test
# cluster (a database of its own) with this machine's engine (`local`) and
# a second dockerd (`extra`, scripts/extra-dockerd.sh); DRAIN names the node
# that takes no chats in this run, ON_EXTRA=1 points the bench's raw and
# adapter rounds at the extra engine. All removed at the end.
#
#   cargo build --release -p sandboxer && cargo build --release -p sandboxer-bench
#   DRAIN=extra bash scripts/bench-nodes.sh               # creates on local
#   DRAIN=local ON_EXTRA=1 bash scripts/bench-nodes.sh    # creates on extra
#   BENCH_ARGS="..." passes options to `sandboxer-bench run`.
source "$(dirname "$0")/drills/lib.sh"
DRAIN=${DRAIN:-extra}
PG=$ROOT/scripts/test-postgres.sh
ADMIN=$(bash "$PG" start)
PGDB="benchn_$(date +%s)_$$"
psql -q "$ADMIN" -c "CREATE DATABASE $PGDB"
ON_EXIT+=("psql -q '$ADMIN' -c 'DROP DATABASE IF EXISTS $PGDB WITH (FORCE)' >/dev/null 2>&1")
DB="${ADMIN%/*}/$PGDB"
build
ENGINE="bench-$$"
ON_EXIT+=("bash '$ROOT/scripts/extra-dockerd.sh' stop '$ENGINE' >/dev/null 2>&1")
EXTRA=$(bash "$ROOT/scripts/extra-dockerd.sh" start "$ENGINE")
bash "$ROOT/scripts/extra-dockerd.sh" load "$ENGINE" "$IMAGE" >/dev/null
EXTRA_HOSTS=("$EXTRA")
SERVICE_ENV=("SANDBOXER_DOCKER_HOSTS=local=unix:///var/run/docker.sock,extra=$EXTRA")
start_service
curl -sS -X PUT "$URL/v1/nodes/$DRAIN/drain"
[[ -n ${ON_EXTRA:-} ]] && export DOCKER_HOST=$EXTRA
"$BENCH" run --url "$URL" --instance "$INSTANCE" --pid "$SERVICE_PID" --image "$IMAGE" $BENCH_ARGS 2>&1 | tee "$WORK/run.txt" | tail -80
stop_service
finish bench-nodes
