#!/usr/bin/env bash
# SIP over secure WebSocket next to SIP over TLS, on the same server and with the same
# generator (Python: websockets for WSS, asyncio's TLS streams for TLS): REGISTERs per
# second over one connection (64 in flight), new connections per second (each a full
# handshake, the WebSocket upgrade for WSS, one REGISTER, a close; 8 at a time), and the
# server's memory per idle connection with its binding. The release build, the default
# configuration, --store memory --admin off, on 127.0.0.1.
#
#   Benchmarks/wss.sh            RUNS (3) times each; prints every run
#
# Environment: RUNS (3), BIN (default .build-release/release/sip-registrar, not built here),
# ONE (20000 REGISTERs), NEW (500 connections), IDLE (1000 connections).
# Needs python3-websockets. Not part of `swift test` or CI.
set -u
cd "$(dirname "$0")/.." || exit 1
bin=${BIN:-$PWD/.build-release/release/sip-registrar}
[[ -x $bin ]] || { echo "no release build at $bin" >&2; exit 2; }
bench=$PWD/Benchmarks/wss/wss_bench.py
RUNS=${RUNS:-3}
work=$(mktemp -d /tmp/sipreg-wss-XXXXXX)
pid=
trap '[[ -n $pid ]] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n 65536 2>/dev/null

start() {
  (cd "$work" && exec "$bin" serve --udp 127.0.0.1:17460 --tcp 127.0.0.1:17460 --tls 127.0.0.1:17461 --wss 127.0.0.1:17462 \
     --store memory --admin off >"$work/server.log" 2>&1) &
  pid=$!
  for _ in $(seq 100); do grep -q "listening wss" "$work/server.log" 2>/dev/null && return; sleep 0.1; done
  echo "server did not start: $(cat "$work/server.log")" >&2; exit 2
}
stop() { kill $pid 2>/dev/null; wait $pid 2>/dev/null; pid=; }

echo "# $(nproc) cores; $(openssl speed -seconds 1 ecdsap256 2>/dev/null | awk '/^ *256 bits ecdsa/ {print $(NF-1) " ECDSA P-256 signs/s"}')"
for run in $(seq "$RUNS"); do
  for t in tls wss; do
    port=17461; [[ $t == wss ]] && port=17462
    start; /usr/bin/python3 "$bench" one "$t" $port $pid "${ONE:-20000}"; stop
    start; /usr/bin/python3 "$bench" new "$t" $port $pid "${NEW:-500}"; stop
    start; /usr/bin/python3 "$bench" idle "$t" $port $pid "${IDLE:-1000}"; stop
  done
done
