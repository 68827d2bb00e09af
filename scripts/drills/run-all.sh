#!/usr/bin/env bash
# Runs every drill in sequence (each builds what it needs, cleans up after
# itself, and prints PASS/FAIL with its figures), then a summary with each
# drill's run time. Exits non-zero when any drill failed.
set -uo pipefail
cd "$(dirname "$0")"

DRILLS=(duplicate-storm kill9-chaos docker-away store-fault)
results=()
failed=0
(cd ../.. && cargo build --release -q -p sandboxer && cargo build --release -q -p sandboxer-bench) || exit 1
for drill in "${DRILLS[@]}"; do
    echo "=== $drill"
    started=$SECONDS
    if bash "./$drill.sh"; then
        verdict=PASS
    else
        verdict=FAIL
        failed=1
    fi
    results+=("$(printf '%-16s %s %4ds' "$drill" "$verdict" $((SECONDS - started)))")
done
echo
echo "=== drills"
printf '%s\n' "${results[@]}"
exit "$failed"
