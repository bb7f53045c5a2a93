#!/usr/bin/env bash
# Call rate through a SIP proxy: sip-registrar's proxy next to Kamailio 5.6 (registrar +
# stateful proxy, Benchmarks/calls/kamailio-proxy.cfg), one after the other, UDP on 127.0.0.1.
#
#   Benchmarks/calls.sh [TARGET ...]      TARGET: ours | kamailio (default: ours kamailio)
#
# Per target and run: start it, register bob (sip:bob@example.com, Contact
# sip:bob@127.0.0.1:UAS_PORT, from that port), start a sipp UAS on that port (calls/uas-call.xml),
# then drive calls with a sipp UAC (calls/uac-call.xml: INVITE -> 100/180/200 -> ACK -> BYE
# -> 200, ACK and BYE along the Record-Route set) at fixed rates: double from START_RATE
# until a step fails, then bisect. A step passes when all its calls were created and ended,
# < 0.1 % failed (at the caller or at the callee), < 0.1 % of the ACKs did not reach the
# callee, and the completion rate (calls/stepstats.py) is >= 95 % of the target rate.
#
# Prints one line per target (median over RUNS; the rate's min-max in brackets):
#   TARGET  max calls/s | CPU % at that rate | ms CPU per call | set-up p50/p99 ms
#   max calls/s       the highest passing step's completion rate (calls/s)
#   CPU %             the server's utime+stime over that step, % of one core (Kamailio: all
#                     its processes summed)
#   ms CPU per call   CPU % * 10 / calls per s
#   set-up p50/p99    INVITE sent -> 200 received at the UAC (sipp's clock, ~1 ms steps)
# Per-step details (sipp's own CPU too: on a small machine sipp can be the limit, see
# uac_cpu/uas_cpu; what the callee saw; kernel UDP drops; the target's memory at the step's
# end) in OUT/<target>-<run>/steps.tsv, stderr has one line per step.
# Steps follow each other without a restart, so state left by earlier steps (ended
# transactions wait out their timers: Kamailio's tm ~5 s, RFC 3261's Timer J/K... up to
# 32 s) weighs on later ones; for steady-state CPU figures give WARMUP_S=40 or more.
#
# Environment:
#   BIN        our binary (default .build-release/release/sip-registrar; not built here)
#   LOGLEVEL   --log-level for ours (default: none given, the built-in default)
#   RUNS (1)  BUDGET_S (90, per target and run)  STEP_S (8)  WARMUP_S (3)
#   START_RATE (250)  MAX_RATE (32000)  HOLD_MS (0: sipp -d, time between ACK and BYE)
#   FAIL_PPM (1000)  MIN_ACHIEVED (0.95)  TRACE_MSG (1: sipp -trace_msg on UAC and UAS;
#   short runs only)  OUT (default /tmp/sip-calls/<time>)
# Ports (all 127.0.0.1): ours 17060 (UDP+TCP) and 17061 (TLS), Kamailio 17070,
# UAS 17160, UAC 17260. Needs kamailio, sip-tester (sipp), python3, bc.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$PWD
here=$root/Benchmarks/calls
. "$here/lib.sh"   # BIN, LOGLEVEL, HOST, the ports, the helpers

UAS_PORT=17160; UAC_PORT=17260
RUNS=${RUNS:-1}
BUDGET_S=${BUDGET_S:-90}
STEP_S=${STEP_S:-8}
WARMUP_S=${WARMUP_S:-3}
START_RATE=${START_RATE:-250}
MAX_RATE=${MAX_RATE:-32000}
HOLD_MS=${HOLD_MS:-0}
FAIL_PPM=${FAIL_PPM:-1000}
MIN_ACHIEVED=${MIN_ACHIEVED:-0.95}
TRACE_MSG=${TRACE_MSG:-}
OUT=${OUT:-/tmp/sip-calls/$(date +%Y%m%d-%H%M%S)}

prepare_run sipp python3 bc -- "$@"

# ---------------------------------------------------------------- processes
TARGET_PID=; UAS_PID=; UAC_PID=
cleanup() {
  stop_pid "$UAC_PID"; UAC_PID=
  stop_pid "$UAS_PID"; UAS_PID=
  stop_pid "$TARGET_PID"; TARGET_PID=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { ss -H -lun "sport = :$1" 2>/dev/null | grep -q .; }
wait_udp() {  # port timeout_s
  local i
  for ((i = 0; i < $2 * 10; i++)); do port_busy "$1" && return 0; sleep 0.1; done
  return 1
}
# kernel UDP drop counters (machine-wide: other load shows up here too)
udp_drops() { nstat -asz 2>/dev/null | awk '$1 ~ /^Udp(RcvbufErrors|SndbufErrors|InErrors)$/ {s += $2} END {print s + 0}'; }

start_target() {  # target rundir -> TARGET_PID, TPORT
  local t=$1 dir=$2
  case $t in
    ours)
      TPORT=$OURS_PORT
      start_ours "$dir"
      ;;
    kamailio)
      TPORT=$KAM_PORT
      start_kamailio "$dir"
      ;;
  esac
  wait_udp "$TPORT" 15 || { log "$t did not open udp/$TPORT; see $dir/target.log"; return 1; }
  sleep 1
}

register_bob() {  # proxy_port: one REGISTER from UAS_PORT, waits for the 200
  python3 - "$HOST" "$UAS_PORT" "$1" <<'EOF'
import socket, sys, time
host, port, proxy = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, port))
s.settimeout(0.5)
for attempt in range(10):
    msg = (f"REGISTER sip:example.com SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-bench-reg-{attempt};rport\r\n"
           f"Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=bench-reg\r\n"
           f"To: <sip:bob@example.com>\r\nCall-ID: bench-reg-bob@{host}\r\nCSeq: {attempt + 1} REGISTER\r\n"
           f"Contact: <sip:bob@{host}:{port}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n")
    s.sendto(msg.encode(), (host, proxy))
    deadline = time.time() + 0.5
    while time.time() < deadline:
        try:
            data = s.recv(65535).decode(errors="replace")
        except socket.timeout:
            break
        status = data.split("\r\n", 1)[0]
        if status.startswith("SIP/2.0 1"):
            continue
        if status.startswith("SIP/2.0 200"):
            sys.exit(0)
        print("REGISTER answered:", status, file=sys.stderr)
        sys.exit(1)
print("REGISTER: no answer", file=sys.stderr)
sys.exit(1)
EOF
}

SIPP_COMMON=(-i "$HOST" -t u1 -nostdin -buff_size 4194304 -max_recv_loops 5000 -max_sched_loops 5000
             -timer_resol 1 -max_log_size 20000000)

start_uas() {  # dir
  local tr=()
  [[ -n $TRACE_MSG ]] && tr=(-trace_msg)
  (cd "$1" && exec sipp -sf "$here/uas-call.xml" -p "$UAS_PORT" "${SIPP_COMMON[@]}" \
     -trace_stat -trace_counts -fd 1 -trace_err "${tr[@]}" >uas.out 2>&1) &
  UAS_PID=$!
  wait_udp "$UAS_PORT" 10 || { log "sipp UAS did not open udp/$UAS_PORT; see $1/uas.out"; return 1; }
}

# the UAS's cumulative counts, from its last once-a-second dump:
# "INVITEs-received ACKs-received failed-calls" (columns found by name: N_INVITE_Recv for
# the first INVITE step, N_ACK_Recv)
uas_snapshot() {
  local counts stat
  counts=$(ls "$RUN"/uas-call_*_counts.csv 2>/dev/null | head -1)
  stat=$(ls "$RUN"/uas-call_*_.csv 2>/dev/null | head -1)
  {
    [[ -n $counts ]] && awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) {
          if (!inv && $i ~ /^[0-9]+_INVITE_Recv$/) inv = i; if (!ack && $i ~ /^[0-9]+_ACK_Recv$/) ack = i }
        next } { l = $0 }
      END { split(l, f, ";"); printf "%d %d ", f[inv], f[ack] }' "$counts" || printf '0 0 '
    [[ -n $stat ]] && awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } { l = $0 }
      END { split(l, f, ";"); printf "%d\n", f[c["FailedCall(C)"]] }' "$stat" || echo 0
  }
}

# ---------------------------------------------------------------- one step
# run_step RATE SECONDS -> STEP_RESULT (pass|fail), STEP_ACH, STEP_CPU, STEP_P50, STEP_P99
run_step() {
  local rate=$1 secs=$2 n dir tp0 tp1 u0 u1 w0 w1 d0 d1 rc tr=() ui0 ua0 uf0 ui1 ua1 uf1
  STEPNO=$((STEPNO + 1))
  n=$((rate * secs))
  dir=$RUN/step$STEPNO-r$rate
  mkdir -p "$dir"
  [[ -n $TRACE_MSG ]] && tr=(-trace_msg)
  read -r ui0 ua0 uf0 < <(uas_snapshot)
  tp0=$(cpu_ticks $(tree_pids "$TARGET_PID")); u0=$(cpu_ticks "$UAS_PID"); d0=$(udp_drops)
  w0=$(date +%s.%N)
  (cd "$dir" && exec /usr/bin/time -f '%U %S %e' -o uac.time timeout $((secs * 2 + 25)) \
     sipp "$HOST:$TPORT" -sf "$here/uac-call.xml" -p "$UAC_PORT" "${SIPP_COMMON[@]}" \
     -r "$rate" -m "$n" -d "$HOLD_MS" -recv_timeout 10000 -timeout $((secs * 2 + 20))s \
     -trace_stat -fd 1 -trace_rtt -rtt_freq 10 -trace_err "${tr[@]}" >uac.out 2>&1) &
  UAC_PID=$!
  wait "$UAC_PID"; rc=$?; UAC_PID=
  w1=$(date +%s.%N)
  tp1=$(cpu_ticks $(tree_pids "$TARGET_PID")); u1=$(cpu_ticks "$UAS_PID"); d1=$(udp_drops)
  local mem
  mem=$(pss_mb $(tree_pids "$TARGET_PID"))
  sleep 1.2   # the UAS writes its counts once a second; also lets the proxy settle
  read -r ui1 ua1 uf1 < <(uas_snapshot)
  local uinv=$((ui1 - ui0)) uack=$((ua1 - ua0)) ufail=$((uf1 - uf0))
  local wall tcpu ucpu scpu created ok failed retrans ach p50 p99
  wall=$(echo "$w1 - $w0" | bc -l)
  tcpu=$(echo "($tp1 - $tp0) / $CLK_TCK / $wall * 100" | bc -l)
  ucpu=$(echo "($u1 - $u0) / $CLK_TCK / $wall * 100" | bc -l)
  # (the last line: time writes "Command exited with non-zero status N" before it)
  scpu=$(tail -1 "$dir/uac.time" 2>/dev/null | awk -v w="$wall" '{printf "%.0f", ($1 + $2) / w * 100}')
  read -r created ok failed retrans ach p50 p99 < <(python3 "$here/stepstats.py" "$dir")
  STEP_RESULT=pass
  ((created < n)) && STEP_RESULT=fail
  ((failed * 1000000 >= FAIL_PPM * (created > 0 ? created : 1))) && STEP_RESULT=fail
  ((ok + failed < created)) && STEP_RESULT=fail
  awk -v a="$ach" -v r="$rate" -v m="$MIN_ACHIEVED" 'BEGIN { exit !(a < r * m) }' && STEP_RESULT=fail
  # calls the callee saw fail, or whose ACK never reached it
  ((ufail * 1000000 >= FAIL_PPM * (created > 0 ? created : 1))) && STEP_RESULT=fail
  (((ok - uack) * 1000000 >= FAIL_PPM * (ok > 0 ? ok : 1))) && STEP_RESULT=fail
  ! kill -0 "$TARGET_PID" 2>/dev/null && STEP_RESULT=fail && log "the target died; see $RUN/target.log"
  STEP_ACH=$ach; STEP_CPU=$(printf '%.0f' "$tcpu"); STEP_P50=$p50; STEP_P99=$p99
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$STEPNO" "$rate" "$created" "$ok" \
    "$failed" "$retrans" "$ach" "$p50" "$p99" "$tcpu" "${scpu:-?}" "$ucpu" "$uinv" "$uack" "$ufail" "$((d1 - d0))" \
    "$mem" "$(printf '%.1f' "$wall")" "$STEP_RESULT(rc=$rc)" >>"$RUN/steps.tsv"
  log "$TNAME step $STEPNO rate=$rate created=$created ok=$ok failed=$failed retrans=$retrans achieved=$ach" \
      "setup_p50=$p50 p99=$p99 cpu=$(printf %.0f "$tcpu")% uac_cpu=${scpu:-?}% uas_cpu=$(printf %.0f "$ucpu")%" \
      "uas_invites=$uinv uas_acks=$uack uas_failed=$ufail udp_drops=$((d1 - d0)) mem=${mem}MB -> $STEP_RESULT"
}

# ---------------------------------------------------------------- one rate search
# search TARGET RUNNO -> RESULT_LINE "target run rate cpu ms_per_call p50 p99" (empty: no result)
search() {
  RESULT_LINE=
  TNAME=$1
  RUN=$OUT/$1-$2
  mkdir -p "$RUN"
  for p in $OURS_PORT $KAM_PORT $UAS_PORT $UAC_PORT; do
    port_busy "$p" && { log "udp/$p is in use; not starting"; return 1; }
  done
  echo "# $(date -u +%FT%TZ) target=$1 run=$2 step=${STEP_S}s hold=${HOLD_MS}ms" >"$RUN/steps.tsv"
  printf 'step\trate\tcreated\tok\tfailed\tretrans\tachieved\tsetup_p50_ms\tsetup_p99_ms\ttarget_cpu%%\tuac_cpu%%\tuas_cpu%%\tuas_invites\tuas_acks\tuas_failed\tudp_drops\ttarget_pss_mb\twall_s\tresult\n' >>"$RUN/steps.tsv"
  start_target "$1" "$RUN" || return 1
  register_bob "$TPORT" 2>>"$RUN/register.err" || { log "$1: registering bob failed: $(cat "$RUN/register.err")"; cleanup; return 1; }
  start_uas "$RUN" || { cleanup; return 1; }
  STEPNO=0
  local start best=0 lo=0 hi=0 rate=$START_RATE gap tol mid
  local b_cpu=0 b_p50=-1 b_p99=-1
  start=$(date +%s)
  left() { echo $((BUDGET_S - ($(date +%s) - start))); }
  run_step $((START_RATE / 2 > 1 ? START_RATE / 2 : 1)) "$WARMUP_S"   # warm-up, not counted
  while ((rate <= MAX_RATE)) && (($(left) > STEP_S + 5)); do
    run_step "$rate" "$STEP_S"
    if [[ $STEP_RESULT == pass ]]; then
      best=$STEP_ACH; b_cpu=$STEP_CPU; b_p50=$STEP_P50; b_p99=$STEP_P99; lo=$rate
      rate=$((rate * 2))
    else
      hi=$rate; break
    fi
  done
  while ((hi > 0)) && (($(left) > STEP_S + 5)); do
    gap=$((hi - lo)); tol=$((lo / 20)); ((tol < 25)) && tol=25
    ((gap <= tol)) && break
    mid=$(((lo + hi) / 2)); ((mid > 200)) && mid=$((mid / 25 * 25))
    ((mid <= lo)) && break
    run_step "$mid" "$STEP_S"
    if [[ $STEP_RESULT == pass ]]; then
      best=$STEP_ACH; b_cpu=$STEP_CPU; b_p50=$STEP_P50; b_p99=$STEP_P99; lo=$mid
    else
      hi=$mid
    fi
  done
  cleanup
  # the UAS's view (its failures are calls the proxy broke on the callee side)
  local uas_stat
  uas_stat=$(ls "$RUN"/uas-call_*_.csv 2>/dev/null | head -1)
  [[ -n $uas_stat ]] && awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i } END {
      printf "# uas at the end: calls %s, ended ok %s (the rest were still in their 4 s timewait), failed %s, retransmissions %s, unexpected %s\n", $c["TotalCallCreated"],
        $c["SuccessfulCall(C)"], $c["FailedCall(C)"], $c["Retransmissions(C)"], $c["FailedUnexpectedMessage(C)"] }' \
      "$uas_stat" >>"$RUN/steps.tsv"
  local msper
  msper=$(awk -v c="$b_cpu" -v r="$best" 'BEGIN { if (r > 0) printf "%.3f", c * 10 / r; else print "-" }')
  echo "# result: $1 $2 $best $b_cpu $msper $b_p50 $b_p99 ($(($(date +%s) - start)) s)" >>"$RUN/steps.tsv"
  RESULT_LINE="$1 $2 $best $b_cpu $msper $b_p50 $b_p99"
}

# ---------------------------------------------------------------- main
log "results in $OUT; $(nproc) cores; targets ${targets[*]}; runs $RUNS; budget ${BUDGET_S}s each"
[[ " ${targets[*]} " == *" ours "* ]] && log "ours: $BIN ($(stat -c '%y' "$BIN" | cut -d. -f1))"
all=$OUT/runs.txt
: >"$all"
for r in $(seq "$RUNS"); do
  for t in "${targets[@]}"; do
    search "$t" "$r"
    if [[ -n $RESULT_LINE ]]; then echo "$RESULT_LINE" >>"$all"; else log "$t run $r: no result"; fi
  done
done
printf '%-9s %12s %8s %14s %17s\n' target "max calls/s" "CPU %" "ms CPU/call" "set-up p50/p99 ms"
for t in "${targets[@]}"; do
  awk -v t="$t" '
    function med(a, n,   i, j, x) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
                                    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    $1 == t { n++; rate[n] = $3 + 0; cpu[n] = $4 + 0; ms[n] = ($5 == "-" ? 0 : $5 + 0); p50[n] = $6 + 0; p99[n] = $7 + 0
              lo = (n == 1 || $3 + 0 < lo) ? $3 + 0 : lo; hi = (n == 1 || $3 + 0 > hi) ? $3 + 0 : hi }
    END { if (!n) { printf "%-9s %12s\n", t, "no result"; exit }
          if (med(rate, n) == 0) { printf "%-9s %12s\n", t, "no passing step"; exit }
          printf "%-9s %12s %8s %14.3f %17s%s\n", t, sprintf("%.0f", med(rate, n)), sprintf("%.0f", med(cpu, n)), med(ms, n),
                 med(p50, n) "/" med(p99, n), (n > 1 ? sprintf("  (%d runs, %d-%d calls/s)", n, lo, hi) : "") }' "$all"
done
