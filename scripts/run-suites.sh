#!/usr/bin/env bash
# Run make test's suites in two lanes at once and report every failure (make test calls this).
#
#   scripts/run-suites.sh "SUITE..." "SUITE..."    each argument is one lane: its make targets, in order
#
# Each suite is a make target (lint, test-main-library, ...). The two lanes run side by side: most
# suites keep one core busy (one pytest process, its subprocesses one at a time), and the machine
# has two. A suite's output goes to .cache/test-logs/SUITE.log and is printed whole when it ends,
# so the lanes' lines never mix; every suite runs whatever failed before it. The summary lists each
# suite's status and time; the exit status is 1 if any failed.
#
# The CellProfiler suites each measure a 20000 x 20000 image (about 10 GB); that test holds a lock
# (tests/cellprofiler/test_pipelines.py), so two of them never run at once on this machine.
set -uo pipefail
cd "$(dirname "$0")/.."

logs=.cache/test-logs
mkdir -p "$logs"
rm -f "$logs"/*.log "$logs"/*.status

run_lane() {
    local suite start status seconds
    for suite in "$@"; do
        start=$(date +%s)
        echo "=== $suite: started"
        make --no-print-directory "$suite" >"$logs/$suite.log" 2>&1
        status=$?
        seconds=$(($(date +%s) - start))
        echo "$status $seconds" >"$logs/$suite.status"
        {
            flock 9
            echo "=== $suite: output"
            cat "$logs/$suite.log"
            if ((status)); then echo "=== $suite: FAILED in $seconds s"; else echo "=== $suite: passed in $seconds s"; fi
        } 9>"$logs/.print-lock"
    done
}

start=$(date +%s)
pids=()
for lane in "$@"; do
    # shellcheck disable=SC2086  # a lane is a list of target names
    run_lane $lane &
    pids+=($!)
done
wait "${pids[@]}"

echo
echo "=== make test: suites (log in $logs/SUITE.log)"
failed=()
for lane in "$@"; do
    for suite in $lane; do
        if [[ -f $logs/$suite.status ]]; then
            read -r status seconds <"$logs/$suite.status"
        else
            status=1 seconds=0
        fi
        if ((status)); then
            failed+=("$suite")
            printf '    %-20s FAILED  %5d s\n' "$suite" "$seconds"
        else
            printf '    %-20s passed  %5d s\n' "$suite" "$seconds"
        fi
    done
done
echo "=== make test: suites took $(($(date +%s) - start)) s"
if ((${#failed[@]})); then
    echo "make test: FAILED: ${failed[*]}"
    exit 1
fi
echo "make test: every suite passed"
