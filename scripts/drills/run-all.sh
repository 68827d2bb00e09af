#!/usr/bin/env bash
# Runs every drill in sequence (each builds what it needs, cleans up after
# itself, and prints PASS/FAIL with its figures), then a summary with each
# drill's run time. Exits non-zero when any drill failed. DRILL_PROFILE=dev
# uses debug builds (what `cargo test` already built) instead of release.
set -uo pipefail
cd "$(dirname "$0")"

DRILLS=(duplicate-storm kill9-chaos docker-away store-fault replicas node-away)
results=()
failed=0
PROFILE=${DRILL_PROFILE:-release}
(cd ../.. && cargo build --profile "$PROFILE" -q -p sandboxer &&
    cargo build --profile "$PROFILE" -q -p sandboxer-bench) || exit 1
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
