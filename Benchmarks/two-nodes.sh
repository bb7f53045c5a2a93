#!/usr/bin/env bash
# REGISTERs per second of two sip-registrar nodes sharing one PostgreSQL database, each
# node driven by its own sipp at the same fixed rate at the same time, next to one node
# alone at the total rate. PostgreSQL 15 is started here (initdb into a temporary folder,
# pg_ctl, fsync on: a 200 means committed), on loopback; no system service.
#
#   Benchmarks/two-nodes.sh
#
# One line per step: nodes, offered rate per node, REGISTERs answered 200 per second in
# all (sum over the sipps / step time), failed, CPU of each node and of PostgreSQL (% of
# one core), then whether both nodes hold every binding of the step (the admin API's
# total after the step, a few seconds for replication).
# Environment: RATES (per node, default "1000 2000 3000"), STEP_S (10), BIN (default
# .build-release/release/sip-registrar, not built here). Needs sip-tester, postgresql,
# curl, bc. Not part of `swift test` or CI.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$PWD
bin=${BIN:-$root/.build-release/release/sip-registrar}
[[ -x $bin ]] || { echo "no release build at $bin (swift build -c release --scratch-path .build-release)" >&2; exit 2; }
scenario=$root/../shared/bench/sipp/register.xml
[[ -f $scenario ]] || scenario=/tmp/sip-bench/sipp/register.xml
[[ -f $scenario ]] || { echo "no sipp register scenario (../shared/bench/sipp/register.xml)" >&2; exit 2; }
RATES=${RATES:-"1000 2000 3000"}
STEP_S=${STEP_S:-10}

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -n $pgbin ]] || { echo "postgresql is not installed" >&2; exit 2; }
work=$(mktemp -d /tmp/sipreg-two-nodes-XXXXXX)
chmod 755 "$work"
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgport=15432
export SIP_REGISTRAR_STORE_PASSWORD=bench-$$
printf '%s' "$SIP_REGISTRAR_STORE_PASSWORD" > "$work/pw"
[[ $(id -u) == 0 ]] && chown postgres "$work" "$work/pw"
as_pg "$pgbin/initdb" -D "$work/pg" -U registrar --auth=scram-sha-256 --pwfile="$work/pw" -E UTF8 >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o "-p $pgport -k $work -c listen_addresses=127.0.0.1" start >/dev/null
pids=()
cleanup() {
  for n in node-a node-b; do
    grep -qiE "error|cannot|refused" "$work/$n.log" 2>/dev/null && { echo "# $n:"; tail -5 "$work/$n.log"; }
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  as_pg "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
PGPASSWORD=$SIP_REGISTRAR_STORE_PASSWORD "$pgbin/createdb" -h 127.0.0.1 -p $pgport -U registrar sipreg
url="postgres://registrar@127.0.0.1:$pgport/sipreg?sslmode=disable"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() { local s=0; for p in $(pgrep -u postgres); do s=$((s + $(cpu_ticks "$p"))); done; echo $s; }
hz=$(getconf CLK_TCK)

start_node() {  # name port admin -> pid
  (cd "$work" && exec "$bin" serve --udp "127.0.0.1:$2" --tcp "127.0.0.1:$2" --tls "127.0.0.1:$(($2 + 2))" \
     --store "$url" --admin "127.0.0.1:$3" --log-level error \
     >"$work/$1.log" 2>&1 3>&-) &
  echo $!
}
total_of() {  # admin port -> bindings the node holds
  local token; token=$(head -1 "$work/data/admin.token" 2>/dev/null)
  curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$1/v1/bindings?limit=1" | sed -n 's/.*"total"[: ]*\([0-9]*\).*/\1/p'
}

run_step() {  # nodes rate-per-node run
  local n=$1 rate=$2 run=$3 calls=$(($2 * STEP_S)) i
  local t0 p0 a0 b0 sp=()
  t0=$(date +%s.%N); p0=$(pg_ticks); a0=$(cpu_ticks "${node_pids[0]}"); b0=$(cpu_ticks "${node_pids[1]}")
  for ((i = 0; i < n; i++)); do
    sipp "127.0.0.1:${ports[$i]}" -sf "$scenario" -key run "${run}n$i" -key tp UDP -i 127.0.0.1 -p $((16100 + i)) \
      -r "$rate" -m "$calls" -l $((rate * 4)) -max_socket 1 -bg -trace_stat -stf "$work/stat-$run-$i.csv" \
      -timeout $((STEP_S * 3))s -nostdin >/dev/null 2>&1
  done
  sleep 1
  while pgrep -f "sipp 127.0.0.1:.*-key run ${run}n" >/dev/null; do sleep 0.5; done
  local t1 p1 a1 b1 ok=0 failed=0
  t1=$(date +%s.%N); p1=$(pg_ticks); a1=$(cpu_ticks "${node_pids[0]}"); b1=$(cpu_ticks "${node_pids[1]}")
  for ((i = 0; i < n; i++)); do
    local last; last=$(tail -1 "$work/stat-$run-$i.csv")
    local hdr; hdr=$(head -1 "$work/stat-$run-$i.csv")
    local col_ok col_failed
    col_ok=$(echo "$hdr" | tr ';' '\n' | grep -n '^SuccessfulCall(C)$' | cut -d: -f1)
    col_failed=$(echo "$hdr" | tr ';' '\n' | grep -n '^FailedCall(C)$' | cut -d: -f1)
    ok=$((ok + $(echo "$last" | cut -d';' -f"$col_ok")))
    failed=$((failed + $(echo "$last" | cut -d';' -f"$col_failed")))
  done
  local secs; secs=$(echo "$t1 - $t0" | bc)
  sleep 3
  local ta tb; ta=$(total_of 18061); tb=$(total_of 18071)
  printf '%s nodes  %5d/s per node  %6.0f REGISTERs/s ok  %4d failed  cpu node-a %3.0f%% node-b %3.0f%% postgres %3.0f%%  bindings a=%s b=%s\n' \
    "$n" "$rate" "$(echo "$ok / $secs" | bc -l)" "$failed" \
    "$(echo "($a1 - $a0) * 100 / $hz / $secs" | bc -l)" "$(echo "($b1 - $b0) * 100 / $hz / $secs" | bc -l)" \
    "$(echo "($p1 - $p0) * 100 / $hz / $secs" | bc -l)" "${ta:-?}" "${tb:-?}"
}

ports=(18060 18070)
export SIP_REGISTRAR_ADMIN_TOKEN_FILE=$work/data/admin.token
mkdir -p "$work/data"
node_pids=("$(SIP_REGISTRAR_NODE=node-a start_node node-a 18060 18061)")
sleep 2
node_pids+=("$(SIP_REGISTRAR_NODE=node-b start_node node-b 18070 18071)")
pids=("${node_pids[@]}")
sleep 3
echo "# $(nproc) cores; $(openssl speed -seconds 1 ecdsap256 2>/dev/null | awk '/^ *256 bits ecdsa/ {print $(NF-1) " ECDSA P-256 signs/s"}'); PostgreSQL $(basename "$(dirname "$pgbin")"), fsync on"
step=0
for rate in $RATES; do
  step=$((step + 1))
  run_step 1 $((rate * 2)) "s${step}a"
  run_step 2 "$rate" "s${step}b"
done
