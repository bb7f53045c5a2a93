#!/usr/bin/env bash
# Two (or more) server binaries, or one binary with different flags, measured alternately
# at a fixed UDP REGISTER rate: CPU per REGISTER (all threads, user + system) and thread
# context switches per REGISTER. For "what did this change do" on a shared, noisy machine:
# alternating runs see the same neighbours. Not part of CI.
#
#   Benchmarks/ab.sh LABEL=BINARY[:FLAGS] ...       e.g.
#   Benchmarks/ab.sh old=/tmp/old new=.build-release/release/sip-registrar
#   Benchmarks/ab.sh spread=BIN local=BIN:"--config local.yaml"
#
# RUNS (default 3) rounds; RATE (8000) REGISTERs/s; COUNT (96000) REGISTERs per run. Every
# server runs the default configuration with --store memory --admin off plus FLAGS. Needs
# sip-tester (sipp) and the shared harness's register scenario (BENCH, default /tmp/sip-bench,
# copied from ../shared/bench on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench=${BENCH:-/tmp/sip-bench}
[[ -d "$bench" ]] || cp -r "$root/../shared/bench" "$bench"
runs=${RUNS:-3}; rate=${RATE:-8000}; count=${COUNT:-96000}
[[ $# -ge 1 ]] || { echo "usage: $0 LABEL=BINARY[:FLAGS] ..." >&2; exit 2; }
port=17060
echo "# machine: $(nproc) cores; $(openssl speed -seconds 1 ecdsap256 2>/dev/null | awk '/^ *256 bits ecdsa/ {print $7 " ECDSA P-256 signs/s"}'); $rate/s, $count REGISTERs per run"
printf 'label\trun\tus_per_register\tcontext_switches_per_register\tfailed\n'
for r in $(seq "$runs"); do
  for spec in "$@"; do
    label=${spec%%=*}; rest=${spec#*=}; bin=${rest%%:*}; flags=""
    [[ $rest == *:* ]] && flags=${rest#*:}
    port=$((port + 2))
    # shellcheck disable=SC2086
    "$bin" serve --store memory --admin off --udp 127.0.0.1:$port --tcp 127.0.0.1:$port \
      --tls 127.0.0.1:$((port + 1)) $flags >/dev/null 2>&1 &
    pid=$!
    sleep 1.5
    switches() { cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}'; }
    ticks() { awk '{print $14 + $15}' /proc/"$pid"/stat; }
    c0=$(switches); t0=$(ticks)
    out=$(cd "$bench/sipp" && timeout -k 5 $((count / rate * 3 + 30)) sipp -sf register.xml -key run "ab$r$label$port" \
      -key tp udp -t u1 -i 127.0.0.1 -p 16200 127.0.0.1:$port -r "$rate" -m "$count" -timeout 60s -nostdin \
      -buff_size 4194304 -max_recv_loops 5000 -max_sched_loops 5000 2>&1 || true)
    c1=$(switches); t1=$(ticks)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    failed=$(awk -F'|' '/Failed call/ {gsub(/ /, "", $3); print $3}' <<<"$out" | tail -1)
    hz=$(getconf CLK_TCK)
    awk -v l="$label" -v r="$r" -v t=$((t1 - t0)) -v c=$((c1 - c0)) -v n="$count" -v hz="$hz" -v f="${failed:-?}" \
      'BEGIN { printf "%s\t%s\t%.1f\t%.2f\t%s\n", l, r, t / hz * 1e6 / n, c / n, f }'
  done
done
