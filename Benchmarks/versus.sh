#!/usr/bin/env bash
# sip-registrar next to Kamailio, measured one after the other in one session with the
# shared harness (../shared/bench): what the README's side-by-side table shows.
#
#   Benchmarks/versus.sh            the table: UDP rate search and CPU at a fixed 8,000/s,
#                                   RUNS times each (default 3), for
#                                     ours     the default configuration (log level info),
#                                              in-memory store, admin API off
#                                     quiet    the same with --log-level error
#                                     kamailio Kamailio 5.6 as an in-memory registrar (usrloc
#                                              db_mode 0), its shipped logging
#   MATRIX=1 Benchmarks/versus.sh   the whole matrix (UDP, TCP, TLS, new TLS connections) for
#                                   ours, Kamailio and Net::SIP, then idle TLS connections
#
# Prints one line per run and then, per column, the median and the spread (min-max).
# BUDGET_S bounds each rate search (default 100 s); TARGETS narrows the columns. Writes
# the harness's results/ in BENCH (default /tmp/sip-bench, copied from ../shared/bench
# on first use). Needs sip-tester, kamailio, kamailio-tls-modules, haproxy, time, bc
# (and libnet-sip-perl for MATRIX=1). Release build in SCRATCH (default .build-release).
# Not part of CI; the table takes about 25 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench=${BENCH:-/tmp/sip-bench}
scratch=${SCRATCH:-.build-release}
[[ -d "$bench" ]] || cp -r "$root/../shared/bench" "$bench"
swift build -c release --product sip-registrar --scratch-path "$scratch" >/dev/null 2>&1
bin=$root/$scratch/release/sip-registrar
ours="cmd:$bin serve --store memory --udp 127.0.0.1:PORT --tcp 127.0.0.1:PORT --tls 127.0.0.1:PORT --cert F --key F --admin off"
quiet="$ours --log-level error"
cd "$bench"
mkdir -p results

echo "# machine: $(nproc) cores; $(openssl speed -seconds 1 ecdsap256 2>/dev/null | awk '/^ *256 bits ecdsa/ {print $7 " ECDSA P-256 signs/s"}')"
if [[ -n "${MATRIX:-}" ]]; then
  BUDGET_S=${BUDGET_S:-100} ./run-matrix.sh "$ours" kamailio netsip
  ls -t results/matrix-*.txt | head -1
  for n in ${CONNS:-1000 10000}; do ./conns.sh "$ours" "$n"; done
  CONCURRENCY=4 ./conns.sh kamailio 1000 || true
  exit 0
fi

read -r -a columns <<<"${TARGETS:-ours quiet kamailio}"
runs=${RUNS:-3}
out=results/versus-$(date +%Y%m%d-%H%M%S).tsv
printf 'column\trun\tudp_rate\tudp_p99_ms\tcpu_pct_at_8000\tus_per_register_at_8000\n' >"$out"
target() { case $1 in ours) echo "$ours" ;; quiet) echo "$quiet" ;; *) echo "$1" ;; esac; }
for r in $(seq "$runs"); do
  for c in "${columns[@]}"; do
    t=$(target "$c")
    # MAX_RATE: the harness's next step after 32,000/s is 64,000/s, which sipp cannot
    # generate on this kind of machine; it then hung past its time-out in one run.
    rate_line=$(START_RATE=4000 MAX_RATE=${MAX_RATE:-32000} BUDGET_S=${BUDGET_S:-100} ./run.sh "$t" udp 2>/dev/null | tail -1)
    fixed_line=$(START_RATE=8000 MAX_RATE=8000 BUDGET_S=40 ./run.sh "$t" udp 2>/dev/null | tail -1)
    read -r _ _ rate _ _ _ p99 <<<"$rate_line"
    read -r _ _ frate cpu _ _ _ <<<"$fixed_line"
    # CPU per REGISTER: % of one core at the achieved fixed rate (only if 8,000/s passed).
    us=$(awk -v c="$cpu" -v f="$frate" 'BEGIN { if (f >= 8000) printf "%.0f", c / 100 / 8000 * 1e6; else print "-" }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$r" "$rate" "$p99" "$cpu" "$us" | tee -a "$out"
  done
done
echo "# median (min-max) of $runs runs, from $out"
for c in "${columns[@]}"; do
  awk -F'\t' -v c="$c" '
    function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    function span(a, n) { return a[1] "-" a[n] }
    $1 == c { n++; rate[n] = $3 + 0; cpu[n] = $5 + 0; us[n] = ($6 == "-" ? 1e9 : $6 + 0) }
    END { if (!n) exit
          mr = med(rate, n); sr = span(rate, n); mc = med(cpu, n); sc = span(cpu, n); mu = med(us, n); su = span(us, n)
          printf "%s\tUDP %s/s (%s)\tCPU at 8,000/s %s%% (%s)\t%s us per REGISTER (%s)\n", c, mr, sr, mc, sc, mu, su }' "$out"
done
