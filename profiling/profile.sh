#!/usr/bin/env bash
# Profiles one node of a loopback cluster under load.
#
# Builds olympus with `--profile profiling` (release optimisations plus full debug info),
# writes a committee of n nodes on 127.0.0.1, starts the nodes with one of them under
# `samply record --save-only`, drives them with `olympus client`, then stops everything
# with SIGTERM (the profiler writes its file when the profiled node exits).
#
# Usage: profiling/profile.sh [options]
#   -n N              nodes (default 4)
#   --node I          which node to profile (default 0: the leader of view 1 rotates, so
#                     any node proposes its share)
#   --protocol P      hotstuff (default) or twochain
#   --duration SECS   seconds of load (default 10)
#   --window K        closed-loop load, K transactions outstanding (default 10000)
#   --rate R          open-loop load, R transactions per second (instead of --window)
#   --block-size TXS  transactions per block (default 400)
#   --base-port PORT  first port; the cluster takes 2n ports from it (default: the first
#                     free block from 27300)
#   --profiler P      auto (default: samply, installed with `cargo install --locked samply`
#                     when missing; perf when samply cannot be installed or cannot record
#                     here), samply, or perf (`perf record -g`)
#
# Output: runs/profile-<UTC yyyymmdd-hhmmss>.json.gz (samply; open it with
# `samply load runs/profile-....json.gz`) or runs/profile-<ts>.perf.data (perf; read it with
# `perf report -i ...`; also converted to runs/profile-<ts>.json.gz with `samply import` when
# samply is installed), and runs/profile-<ts>/ with the configuration, the node logs
# (each ending with the node's metrics dump) and the client's report.
set -euo pipefail
cd "$(dirname "$0")/.."

n=4
node=0
protocol=hotstuff
duration=10
load=(--window 10000)
block_size=400
base_port=
profiler=auto
while [[ $# -gt 0 ]]; do
    case $1 in
    -n) n=$2; shift 2 ;;
    --node) node=$2; shift 2 ;;
    --protocol) protocol=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --window) load=(--window "$2"); shift 2 ;;
    --rate) load=(--rate "$2"); shift 2 ;;
    --block-size) block_size=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --profiler) profiler=$2; shift 2 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "profile.sh: unknown argument $1 (try --help)" >&2
        exit 2
        ;;
    esac
done
if ((node < 0 || node >= n)); then
    echo "profile.sh: --node $node is not one of the $n nodes" >&2
    exit 2
fi

# Whether samply can record on this machine (perf events allowed, a profile written).
samply_records() {
    local t ok=1
    t=$(mktemp -d)
    if samply record --save-only -o "$t/probe.json.gz" -- sleep 0.2 >"$t/log" 2>&1 &&
        [[ -s $t/probe.json.gz ]]; then
        ok=0
    else
        echo "samply cannot record here:" >&2
        tail -n 5 "$t/log" >&2
    fi
    rm -rf "$t"
    return $ok
}

case $profiler in
auto | samply)
    if ! command -v samply >/dev/null; then
        echo "== samply is missing: cargo install --locked samply"
        if ! cargo install --locked samply && [[ $profiler == auto ]]; then
            echo "== cannot install samply; falling back to perf record -g"
            profiler=perf
        fi
    fi
    if [[ $profiler == auto ]]; then
        if samply_records; then
            profiler=samply
        else
            echo "== falling back to perf record -g"
            profiler=perf
        fi
    fi
    ;;
perf) ;;
*)
    echo "profile.sh: --profiler must be auto, samply or perf, not $profiler" >&2
    exit 2
    ;;
esac
if [[ $profiler == perf ]] && ! command -v perf >/dev/null; then
    echo "profile.sh: perf is not installed" >&2
    exit 2
fi

# Frame pointers make `perf record -g` stacks whole and cost little; samply unwinds either
# way. (Set RUSTFLAGS to build otherwise; target/profiling is this script's alone.)
export RUSTFLAGS=${RUSTFLAGS--C force-frame-pointers=yes}
echo "== RUSTFLAGS=\"$RUSTFLAGS\" cargo build --profile profiling"
cargo build --profile profiling --bin olympus
bin=target/profiling/olympus

# Whether something accepts connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -z $base_port ]]; then
    base_port=27300
    while :; do
        busy=0
        for ((p = base_port; p < base_port + 2 * n; p++)); do
            if listening "$p"; then busy=1; break; fi
        done
        ((busy)) || break
        base_port=$((base_port + 2 * n))
        if ((base_port > 60000)); then
            echo "profile.sh: no free block of $((2 * n)) ports" >&2
            exit 1
        fi
    done
fi

ts=$(date -u +%Y%m%d-%H%M%S)
mkdir -p runs
dir=runs/profile-$ts
mkdir "$dir"
case $profiler in
samply) out=runs/profile-$ts.json.gz ;;
perf) out=runs/profile-$ts.perf.data ;;
esac

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 1
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

echo "== $n $protocol nodes on ports $base_port-$((base_port + 2 * n - 1)); node $node under $profiler"
"$bin" genconfig -n "$n" --out "$dir/config" --seed profile --protocol "$protocol" \
    --base-port "$base_port" --block-size "$block_size" --data-dir "$dir/data" \
    >"$dir/genconfig.log" 2>&1

profiled_wrapper=
for ((i = 0; i < n; i++)); do
    cmd=("$bin" node --config "$dir/config/node-$i.toml")
    if ((i == node)); then
        case $profiler in
        samply) cmd=(samply record --save-only -o "$out" -- "${cmd[@]}") ;;
        perf) cmd=(perf record -g -o "$out" -- "${cmd[@]}") ;;
        esac
    fi
    "${cmd[@]}" >"$dir/node-$i.log" 2>&1 &
    pids+=($!)
    if ((i == node)); then profiled_wrapper=$!; fi
done

# Ready when every client port accepts a connection.
for ((i = 0; i < n; i++)); do
    port=$((base_port + 2 * i + 1))
    for ((t = 0; t < 200; t++)); do
        listening "$port" && break
        if ! kill -0 "${pids[$i]}" 2>/dev/null; then
            echo "profile.sh: node $i exited; last lines of $dir/node-$i.log:" >&2
            tail -n 20 "$dir/node-$i.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    listening "$port" || { echo "profile.sh: node $i is not ready after 20 s" >&2; exit 1; }
done

echo "== olympus client ${load[*]} --duration $duration"
"$bin" client --config "$dir/config/clients.toml" "${load[@]}" --duration "$duration" \
    --json "$dir/client.json" 2>&1 | tee "$dir/client.log" | tail -n 5

# Stop the nodes. The profiled node is the profiler's child: SIGTERM it, not the
# profiler, which then writes its file and exits.
profiled_node=$(pgrep -P "$profiled_wrapper" -f "node --config" | head -n 1 || true)
for ((i = 0; i < n; i++)); do
    if ((i == node)); then
        [[ -n $profiled_node ]] && kill -TERM "$profiled_node" 2>/dev/null || true
    else
        kill -TERM "${pids[$i]}" 2>/dev/null || true
    fi
done
echo "== waiting for $profiler to write $out"
for ((t = 0; t < 600; t++)); do
    kill -0 "$profiled_wrapper" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$profiled_wrapper" 2>/dev/null; then
    echo "profile.sh: $profiler did not finish within 60 s; see $dir/node-$node.log" >&2
    exit 1
fi
wait "$profiled_wrapper" || true
if [[ ! -s $out ]]; then
    echo "profile.sh: $profiler wrote no profile; last lines of $dir/node-$node.log:" >&2
    tail -n 20 "$dir/node-$node.log" >&2
    exit 1
fi
echo
echo "profile: $out ($(du -h "$out" | cut -f1)); cluster files: $dir"
if [[ $profiler == perf ]]; then
    echo "read it with: perf report -i $out"
    # The Firefox Profiler view of the same samples, when samply is at hand.
    if command -v samply >/dev/null &&
        samply import --save-only -o "${out%.perf.data}.json.gz" "$out" \
            >"$dir/samply-import.log" 2>&1; then
        out=${out%.perf.data}.json.gz
        echo "converted to $out"
    fi
fi
if [[ $out == *.json.gz ]]; then
    echo "open it with: samply load $out"
fi
