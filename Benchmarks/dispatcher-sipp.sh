#!/usr/bin/env bash
# Load test of the transport alone: sipp sends REGISTERs over UDP and TCP to a
# dispatcher whose only receiver answers 200 OK. Prints, per transport and rate,
# the calls sipp completed per second, failures, latency percentiles (sipp's
# -trace_rtt, 1 ms clock) and the CPU used by the server and by sipp.
#
#   Benchmarks/dispatcher-sipp.sh [RATE ...]      (default rates: 2000 5000 10000 16000)
# Needs sipp (Debian sip-tester) and a release build. Loopback only; bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
rates=("${@:-2000 5000 10000 16000}")
read -r -a rates <<<"${rates[*]}"
secs=${STEP_S:-8}
port=${PORT:-15070}
scratch=${SCRATCH:-.build-release}  # the release build the other scripts use
swift build -c release --product SIPBenchmarks --scratch-path "$scratch" >/dev/null
bin=$scratch/release/SIPBenchmarks
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" dispatcher-server "$port" "$port" >"$work/server.log" 2>&1 &
server=$!
sleep 1
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
printf "%-4s %7s %9s %7s %7s %7s %11s %10s\n" proto rate achieved failed p50_ms p99_ms server_cpu% sipp_cpu%
for proto in u1 t1; do
  tok=UDP; [ "$proto" = t1 ] && tok=TCP
  for rate in "${rates[@]}"; do
    n=$((rate * secs))
    s0=$(ticks $server); t0=$(date +%s.%N)
    ( cd "$work" && sipp 127.0.0.1:$port -sf "$OLDPWD/Tests/SIPTransportTests/sipp/register.xml" -t $proto -key tp $tok \
        -i 127.0.0.1 -p 0 -r "$rate" -m "$n" -l $((rate / 2 + 100)) -max_socket 200 -timeout $((secs * 4))s -nostdin \
        -trace_stat -stf stat.csv -trace_rtt -rtt_freq 100 -bg >/dev/null 2>&1 ) || true
    pid=$(pgrep -n -f "sipp 127.0.0.1:$port" || true)
    sp=0
    while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do sp=$(ticks "$pid" 2>/dev/null || echo $sp); sleep 0.2; done
    t1=$(date +%s.%N); s1=$(ticks $server)
    el=$(echo "$t1 - $t0" | bc -l)
    read -r achieved failed p50 p99 < <(python3 - "$work" <<'PY'
import csv, glob, sys
d = sys.argv[1]
failed = "?"
for f in glob.glob(d + "/stat.csv"):
    rows = list(csv.reader(open(f), delimiter=";"))
    if len(rows) > 1:
        h = dict(zip(rows[0], rows[-1]))
        failed = h.get("FailedCall(C)", "?")
rtts, last = [], 0.0
for f in glob.glob(d + "/*_rtt.csv"):
    for line in list(open(f))[1:]:
        p = line.split(";")
        try:
            t, v = float(p[0]), float(p[1])
        except (ValueError, IndexError):
            continue
        rtts.append(v)
        last = max(last, t)
rtts.sort()
pct = lambda q: rtts[min(len(rtts) - 1, max(0, int(round(q * len(rtts) + 0.5)) - 1))] if rtts else -1
achieved = (len(rtts) - 1) / (last / 1000.0) if last > 0 and len(rtts) > 1 else 0
print(f"{achieved:.0f} {failed} {pct(0.5):g} {pct(0.99):g}")
PY
)
    printf "%-4s %7d %9s %7s %7s %7s %11.0f %10.0f\n" "$tok" "$rate" "$achieved" "$failed" "$p50" "$p99" \
      "$(echo "($s1 - $s0) * 100 / $hz / $el" | bc -l)" "$(echo "$sp * 100 / $hz / $el" | bc -l)"
    rm -f "$work"/*.csv
  done
done
