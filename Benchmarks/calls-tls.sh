#!/usr/bin/env bash
# Calls through the proxy over TLS: sip-registrar next to Kamailio 5.6 (registrar + stateful
# proxy + tls module, Benchmarks/calls/kamailio-proxy.cfg with -A WITH_TLS), one after the
# other, on 127.0.0.1.
#
#   Benchmarks/calls-tls.sh [TARGET ...]      TARGET: ours | kamailio (default: ours kamailio)
#
# Debian's sipp has no TLS transport, so the caller and the callee are
# Benchmarks/calls/tls_calls.py (Python asyncio over ssl): the callee opens one TLS
# connection, registers sip:bob@example.com over it with that connection's address as its
# Contact, and is reached only through it; the caller places INVITE -> 100/180/200 -> ACK ->
# BYE -> 200 calls over 4 TLS connections, ACK and BYE along the Record-Route set. The
# generator is Python and shares the 2 cores: at the higher rates it is the limit, so the
# figure to compare is the server's CPU per call at the same offered rate.
#
# Per target and run: start it, start the callee, a warm-up step, then one step per rate in
# RATES (STEP_S seconds each). Prints, per target and rate, the median over RUNS of:
#   calls/s completed | failed | server CPU % of one core | ms CPU per call | set-up p50/p99 ms
# (set-up: INVITE sent -> 200 received at the caller). Per-step lines (the generator's CPU
# too) in OUT/steps.tsv.
#
# Environment:
#   BIN (default .build-release/release/sip-registrar; not built here)  LOGLEVEL (none: default)
#   RUNS (3)  RATES ("200 400 800")  STEP_S (8)  WARMUP_S (3)  OUT (/tmp/sip-calls-tls/<time>)
# Ports (127.0.0.1): ours 17060 (UDP+TCP) and 17061 (TLS), Kamailio 17070 (UDP) and 17071 (TLS).
# Needs kamailio and kamailio-tls-modules, python3, openssl.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$PWD
here=$root/Benchmarks/calls
. "$here/lib.sh"   # BIN, LOGLEVEL, HOST, the ports, the helpers

RUNS=${RUNS:-3}
RATES=${RATES:-200 400 800}
STEP_S=${STEP_S:-8}
WARMUP_S=${WARMUP_S:-3}
OUT=${OUT:-/tmp/sip-calls-tls/$(date +%Y%m%d-%H%M%S)}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

prepare_run "$PY" openssl bc -- "$@"

TARGET_PID=; UAS_PID=
cleanup() {
  stop_pid "$UAS_PID"; UAS_PID=
  stop_pid "$TARGET_PID"; TARGET_PID=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_tcp() {  # port timeout_s
  local i
  for ((i = 0; i < $2 * 10; i++)); do ss -H -ltn "sport = :$1" 2>/dev/null | grep -q . && return 0; sleep 0.1; done
  return 1
}

start_target() {  # target rundir -> TARGET_PID, TPORT
  local t=$1 dir=$2 p
  for p in $OURS_TLS $KAM_TLS; do
    ss -H -ltn "sport = :$p" 2>/dev/null | grep -q . && { log "tcp/$p is in use; not starting"; return 1; }
  done
  case $t in
    ours)
      TPORT=$OURS_TLS
      start_ours "$dir"
      ;;
    kamailio)
      TPORT=$KAM_TLS
      # the same kind of certificate as ours: ECDSA P-256, self-signed
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
        -keyout "$dir/server.key" -out "$dir/server.crt" 2>/dev/null || { log "openssl req failed"; return 1; }
      printf '[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\nprivate_key = %s\ncertificate = %s\n\n[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n' \
        "$dir/server.key" "$dir/server.crt" >"$dir/tls.cfg"
      start_kamailio "$dir" -A WITH_TLS -A "TLS_CFG=\"$dir/tls.cfg\"" -l "tls:$HOST:$KAM_TLS"
      ;;
  esac
  wait_tcp "$TPORT" 15 && kill -0 "$TARGET_PID" 2>/dev/null || { log "$t did not open tls/$TPORT; see $dir/target.log"; return 1; }
  sleep 1
}

start_uas() {  # dir
  rm -f "$1/uas.ready"
  "$PY" "$here/tls_calls.py" uas "$TPORT" "$1/uas.ready" "$1/uas.counts" >"$1/uas.out" 2>&1 &
  UAS_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do [[ -f $1/uas.ready ]] && return 0; sleep 0.1; done
  log "the callee did not register; see $1/uas.out"
  return 1
}

# run_step TARGET RUNNO RATE SECONDS: one line to OUT/steps.tsv
run_step() {
  local t=$1 run=$2 rate=$3 secs=$4 tp0 tp1 u0 u1 w0 w1 json wall tcpu ucpu
  tp0=$(cpu_ticks $(tree_pids "$TARGET_PID")); u0=$(cpu_ticks "$UAS_PID")
  w0=$(date +%s.%N)
  json=$(timeout $((secs * 2 + 30)) "$PY" "$here/tls_calls.py" uac "$TPORT" "$rate" "$secs" 2>>"$OUT/uac.err")
  w1=$(date +%s.%N)
  tp1=$(cpu_ticks $(tree_pids "$TARGET_PID")); u1=$(cpu_ticks "$UAS_PID")
  [[ -n $json ]] || json='{"offered": 0, "ok": 0, "failed": 0, "achieved": 0, "setup_p50_ms": -1, "setup_p99_ms": -1, "cpu_s": 0}'
  wall=$(echo "$w1 - $w0" | bc -l)
  tcpu=$(echo "($tp1 - $tp0) / $CLK_TCK / $wall * 100" | bc -l)
  ucpu=$(echo "($u1 - $u0) / $CLK_TCK / $wall * 100" | bc -l)
  "$PY" - "$t" "$run" "$rate" "$tcpu" "$ucpu" "$wall" "$json" >>"$OUT/steps.tsv" <<'EOF'
import json, sys
t, run, rate, tcpu, ucpu, wall, j = sys.argv[1:]
d = json.loads(j)
tcpu, wall = float(tcpu), float(wall)
# CPU per call: the server's CPU over the whole step (placing and the last calls' end) / calls ended
ms = tcpu * wall * 10 / d['ok'] if d['ok'] else -1
print(t, run, rate, d['achieved'], d['failed'], round(tcpu), round(ms, 3), d['setup_p50_ms'], d['setup_p99_ms'],
      round(float(ucpu)), round(d['cpu_s'] / wall * 100), sep='\t')
EOF
  log "$t run $run rate $rate: $(tail -1 "$OUT/steps.tsv" | cut -f4-)"
}

log "results in $OUT; $(nproc) cores; targets ${targets[*]}; runs $RUNS; rates $RATES; ${STEP_S}s steps"
printf 'target\trun\trate\tachieved\tfailed\ttarget_cpu%%\tms_cpu_per_call\tsetup_p50_ms\tsetup_p99_ms\tuas_cpu%%\tuac_cpu%%\n' >"$OUT/steps.tsv"
for r in $(seq "$RUNS"); do
  for t in "${targets[@]}"; do
    dir=$OUT/$t-$r
    mkdir -p "$dir"
    if start_target "$t" "$dir" && start_uas "$dir"; then
      run_step "$t" warmup 100 "$WARMUP_S"
      for rate in $RATES; do run_step "$t" "$r" "$rate" "$STEP_S"; done
    fi
    cleanup
  done
done
printf '%-9s %6s %10s %7s %7s %12s %15s\n' target rate "calls/s" failed "CPU %" "ms CPU/call" "set-up p50/p99"
awk -F'\t' '
  function med(s,   n, a, i, j, x) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { x = a[i]; a[i] = a[j]; a[j] = x }
                                     return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  NR > 1 && $2 != "warmup" { k = $1 " " $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
    ach[k] = ach[k] " " $4; fl[k] = fl[k] " " $5; cpu[k] = cpu[k] " " $6; ms[k] = ms[k] " " $7; p50[k] = p50[k] " " $8; p99[k] = p99[k] " " $9 }
  END { for (i = 1; i <= n; i++) { k = order[i]; split(k, tr, " ")
          printf "%-9s %6s %10.0f %7s %7.0f %12.3f %15s\n", tr[1], tr[2], med(ach[k]), med(fl[k]), med(cpu[k]), med(ms[k]), med(p50[k]) "/" med(p99[k]) } }' "$OUT/steps.tsv"
