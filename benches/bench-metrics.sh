#!/usr/bin/env bash
# A short `olympus bench` that keeps its run directory, then prints every node's metrics
# histograms (verify, persist, chain append, loop busy time, commit interval and latency,
# queue depths, ...) from it.
#
# Usage: benches/bench-metrics.sh [olympus bench arguments...]
#   e.g. benches/bench-metrics.sh -n 4,7 --rate 20000
# Environment:
#   DURATION, WARMUP  seconds of measured load and of warm-up (default 3 and 1)
#   OUT               where the run directory goes (default runs/)
#   OLYMPUS           an olympus executable to use (default: cargo build --release, then
#                     target/release/olympus)
#   SHOW              histograms (default) or all (counters and gauges too)
#
# Each node prints its metrics dump to stderr at SIGTERM (it ends up at the end of
# node-<i>.log) and writes the same metrics as JSON to node-<i>.metrics.json in the run
# directory; this script prints the readable dump.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${OLYMPUS:-}
if [[ -z $bin ]]; then
    cargo build --release --bin olympus
    bin=target/release/olympus
fi
show=${SHOW:-histograms}
case $show in histograms | all) ;; *)
    echo "SHOW must be histograms or all, not $show" >&2
    exit 2
    ;;
esac

out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
"$bin" bench --duration "${DURATION:-3}" --warmup "${WARMUP:-1}" --keep \
    --out "${OUT:-runs}" "$@" | tee "$out" || status=$?
root=$(sed -n 's/^results: //p' "$out" | tail -n 1)
if [[ -z $root || ! -d $root ]]; then
    echo "bench-metrics: the bench printed no results directory (exit status $status)" >&2
    exit "${status/#0/1}"
fi

for run in "$root"/*/; do
    run=${run%/}
    [[ -f $run/node-0.log ]] || continue
    for log in "$run"/node-*.log; do
        node=$(basename "$log" .log)
        echo
        echo "=== $(basename "$run") $node ($log)"
        if ! grep -q ': metrics after ' "$log"; then
            echo "(no metrics dump: the node did not stop cleanly; see the log)"
            continue
        fi
        # The dump runs from "metrics after" to "metrics written"; histograms are its
        # last section.
        awk -v show="$show" '
            / metrics after / { on = 1; hist = 0; sub(/^olympus node [0-9]+: /, ""); print; next }
            on && /: metrics written to |: cannot write metrics to / { on = 0; next }
            on && /^histograms/ { hist = 1 }
            on && (show == "all" || hist) { print }
        ' "$log"
        json="$run/$node.metrics.json"
        [[ -f $json ]] && echo "(JSON: $json)"
    done
done
exit "$status"
