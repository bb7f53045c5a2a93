#!/usr/bin/env bash
# REGISTERs/s and latency of sip-registrar with each binding store (memory, SQLite,
# PostgreSQL), side by side in one run, with the shared sipp harness (rate search:
# the highest rate with < 0.1 % failed and >= 95 % achieved). PostgreSQL is started
# here (initdb into a temporary folder, pg_ctl; no system service), on loopback.
#
#   Benchmarks/stores.sh [TRANSPORT]         (default udp; tcp works the same)
#
# Environment: BENCH (a writable copy of ../shared/bench; default /tmp/sip-bench, copied
# on first use), BUDGET_S (per store, default 90), STEP_S (default 8), STORES (default
# "memory sqlite sqlite-normal postgres"; sqlite is store_sync: full, the default, and
# sqlite-normal the same with store_sync: normal).
# Needs sip-tester, postgresql, a release build. Not part of `swift test` or CI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
transport=${1:-udp}
bench=${BENCH:-/tmp/sip-bench}
[[ -d "$bench" ]] || cp -r "$root/../shared/bench" "$bench"
scratch=${SCRATCH:-.build-release}  # the release build the other scripts use
swift build -c release --product sip-registrar --scratch-path "$scratch" >/dev/null
bin=$root/$scratch/release/sip-registrar

work=$(mktemp -d)
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[[ $(id -u) == 0 ]] && chown postgres "$work"
pgport=25499
export SIP_REGISTRAR_STORE_PASSWORD=bench-$$
echo "$SIP_REGISTRAR_STORE_PASSWORD" >"$work/pw"
[[ $(id -u) == 0 ]] && chown postgres "$work/pw"
as_pg "$pgbin/initdb" -D "$work/pg" -U registrar --auth=scram-sha-256 --pwfile="$work/pw" -E UTF8 >/dev/null
# Durable settings (fsync on): a 200 means committed, as in production.
as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o "-p $pgport -k $work -c listen_addresses=127.0.0.1" start >/dev/null
trap 'as_pg "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1; rm -rf "$work"' EXIT
PGPASSWORD=$SIP_REGISTRAR_STORE_PASSWORD "$pgbin/createdb" -h 127.0.0.1 -p $pgport -U registrar sipreg

common="--udp 127.0.0.1:PORT --tcp 127.0.0.1:PORT --tls 127.0.0.1:PORT --cert F --key F --admin off --log-level error"
printf '%-9s %-9s %s\n' store transport "max_rate_per_s cpu_percent_of_target peak_rss_mb p50_ms p99_ms"
for store in memory "sqlite:$work/registrar.sqlite" "sqlite-normal:$work/registrar-normal.sqlite" \
             "postgres://registrar@127.0.0.1:$pgport/sipreg?sslmode=disable"; do
  name=${store%%:*}
  [[ " ${STORES:-memory sqlite sqlite-normal postgres} " == *" $name "* ]] || continue
  sync=full
  if [[ $name == sqlite-normal ]]; then store="sqlite:${store#sqlite-normal:}"; sync=normal; fi
  line=$(cd "$bench" && SIP_REGISTRAR_STORE_SYNC=$sync STEP_S=${STEP_S:-8} BUDGET_S=${BUDGET_S:-90} \
         ./run.sh "cmd:$bin serve --store $store $common" "$transport" | tail -1)
  printf '%-9s %s\n' "$name" "$line"
done
