#!/usr/bin/env bash
# Mutation testing of the pure core with mutmut: how many deliberate bugs the unit tests catch.
#
#   bench/mutation.sh                 # relay/sync.py, relay/store/snapshot.py, relay/slack/blocks.py
#   bench/mutation.sh sync blocks     # some of them
#   MUTATION_JOBS=1 bench/mutation.sh # fewer parallel workers on a shared machine (default 2)
#
# Which tests run against the mutants is set in pyproject.toml ([tool.mutmut]): only the core's
# fast unit tests, never the whole suite. Mutants proven equivalent (no test can tell them
# apart from the original) are listed, with the reason, in bench/mutation-equivalents.txt and
# left out of the score; bench/mutation_score.py checks each listed name still mutates the
# line recorded there, so a stale entry is reported, not silently excluded.
set -euo pipefail
cd "$(dirname "$0")/.."
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(sync snapshot blocks)
rm -rf mutants
for m in "${modules[@]}"; do
    case "$m" in
        sync) pattern="relay.sync.*" ;;
        snapshot) pattern="relay.store.snapshot.*" ;;
        blocks) pattern="relay.slack.blocks.*" ;;
        *) echo "unknown module: $m (sync, snapshot, blocks)" >&2; exit 2 ;;
    esac
    echo "mutating $pattern (log: mutants/run-$m.log)"
    mkdir -p mutants
    mutmut run --max-children "${MUTATION_JOBS:-2}" "$pattern" > "mutants/run-$m.log.tmp" 2>&1 || {
        tail -20 "mutants/run-$m.log.tmp" >&2; exit 1; }
    mv "mutants/run-$m.log.tmp" "mutants/run-$m.log"
done
python bench/mutation_score.py "${modules[@]}"
