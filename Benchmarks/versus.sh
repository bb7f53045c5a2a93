#!/usr/bin/env bash
# sip-registrar next to Kamailio and Perl Net::SIP, measured one after the other in one
# run with the shared harness (../shared/bench): REGISTER rate search over UDP, TCP,
# TLS (one connection) and TLS with a new connection per REGISTER, then memory per idle
# TLS connection. All three are in-memory registrars without authentication
# (`--store memory`; Kamailio usrloc db_mode 0), on the same certificate and ports.
#
#   Benchmarks/versus.sh                 (BUDGET_S per run, default 100; TARGETS to narrow)
#
# Writes the harness's results/ in BENCH (default /tmp/sip-bench, copied from
# ../shared/bench on first use) and prints the matrix file's path. Needs sip-tester,
# kamailio, kamailio-tls-modules, libnet-sip-perl, haproxy, time, bc. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bench=${BENCH:-/tmp/sip-bench}
[[ -d "$bench" ]] || cp -r "$root/../shared/bench" "$bench"
swift build -c release --product sip-registrar >/dev/null
ours="cmd:$root/.build/release/sip-registrar serve --store memory --udp 127.0.0.1:PORT --tcp 127.0.0.1:PORT --tls 127.0.0.1:PORT --cert F --key F --admin off --log-level error"
read -r -a targets <<<"${TARGETS:-ours kamailio netsip}"
args=()
for t in "${targets[@]}"; do [[ $t == ours ]] && args+=("$ours") || args+=("$t"); done
cd "$bench"
mkdir -p results
BUDGET_S=${BUDGET_S:-100} ./run-matrix.sh "${args[@]}"
ls -t results/matrix-*.txt | head -1
for n in ${CONNS:-1000 10000}; do ./conns.sh "$ours" "$n"; done
CONCURRENCY=4 ./conns.sh kamailio 1000 || true
