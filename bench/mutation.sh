#!/usr/bin/env bash
# Mutation testing of the pure core with mutmut: how many deliberate bugs the unit tests catch.
#
#   bench/mutation.sh                 # relay/sync.py, relay/store/snapshot.py, relay/slack/blocks.py,
#                                     # relay/outbox.py, relay/config/
#   bench/mutation.sh outbox config   # some of them
#   MUTATION_JOBS=1 bench/mutation.sh # fewer parallel workers on a shared machine (default 2)
#
# Which tests may run against the mutants is set in pyproject.toml ([tool.mutmut]): only the
# fast unit tests, never the whole suite. Each module is then held to its own tests: the others
# are deselected (PYTEST_ADDOPTS) and mutmut's test map is rebuilt for it. Mutants proven equivalent (no test can tell them
# apart from the original) are listed, with the reason, in bench/mutation-equivalents.txt and
# left out of the score; bench/mutation_score.py checks each listed name still mutates the
# line recorded there, so a stale entry is reported, not silently excluded.
set -euo pipefail
cd "$(dirname "$0")/.."
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(sync snapshot blocks outbox config)
core_tests=(tests/test_sync.py tests/test_sync_transitions.py tests/test_sync_properties.py tests/test_blocks.py
            tests/test_block_text.py tests/test_block_payloads.py tests/test_snapshot.py)
all_tests=("${core_tests[@]}" tests/test_outbox.py tests/test_config.py tests/test_config_values.py)
rm -rf mutants
for m in "${modules[@]}"; do
    case "$m" in
        sync) pattern="relay.sync.*"; tests=("${core_tests[@]}") ;;
        snapshot) pattern="relay.store.snapshot.*"; tests=("${core_tests[@]}") ;;
        blocks) pattern="relay.slack.blocks.*"; tests=("${core_tests[@]}") ;;
        outbox) pattern="relay.outbox.*"; tests=(tests/test_outbox.py) ;;
        config) pattern="relay.config.*"; tests=(tests/test_config.py tests/test_config_values.py) ;;
        *) echo "unknown module: $m (sync, snapshot, blocks, outbox, config)" >&2; exit 2 ;;
    esac
    deselect=""
    for t in "${all_tests[@]}"; do
        [[ " ${tests[*]} " == *" $t "* ]] || deselect+=" --deselect=$t"
    done
    echo "mutating $pattern (log: mutants/run-$m.log)"
    mkdir -p mutants
    rm -f mutants/mutmut-stats.json      # which test reaches which function: per module's tests
    PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-}$deselect" mutmut run --max-children "${MUTATION_JOBS:-2}" "$pattern" > "mutants/run-$m.log.tmp" 2>&1 || {
        tail -20 "mutants/run-$m.log.tmp" >&2; exit 1; }
    mv "mutants/run-$m.log.tmp" "mutants/run-$m.log"
done
python bench/mutation_score.py "${modules[@]}"
