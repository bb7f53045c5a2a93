#!/usr/bin/env bash
# TLS benchmark: new-connection handshake rate and bulk throughput of our
# TLSHandler server next to OpenSSL's own s_server, measured with the same
# `openssl s_time` client in the same run; `openssl speed` for the primitives;
# and process memory per idle TLS connection with N open connections.
#
#   Benchmarks/tls-bench.sh [SECONDS] [N ...]     (defaults: 10 s; 1000 10000 connections)
# Loopback only; every step is bounded. Needs openssl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
shift || true
counts=("${@:-1000 10000}")
read -r -a counts <<<"${counts[*]}"
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
certs/generate.sh --out "$work/certs" >/dev/null
scratch=${SCRATCH:-.build-release}  # the release build the other scripts use
swift build -c release --product SIPBenchmarks --scratch-path "$scratch" >/dev/null
bin=$scratch/release/SIPBenchmarks
ours=16443 theirs=16444

"$bin" tls-server $ours "$work/certs/server.pem" "$work/certs/server.key" >/dev/null 2>&1 & pids+=($!); ourpid=$!
openssl s_server -quiet -accept 127.0.0.1:$theirs -cert "$work/certs/server.pem" -key "$work/certs/server.key" -www \
  >/dev/null 2>&1 & pids+=($!); theirpid=$!
sleep 1
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

stime() {  # port pid version mode
  local s0 s1 out rate
  s0=$(ticks "$2")
  out=$(openssl s_time -connect 127.0.0.1:"$1" $4 -time "$secs" "$3" 2>/dev/null | grep -E "connections in .* real seconds|bytes read" | head -1)
  s1=$(ticks "$2")
  rate=$(echo "$out" | sed -E 's/.*; ([0-9.]+) connections\/user sec.*/\1/;t;s/.*connections in ([0-9.]+)s.*//')
  conns=$(echo "$out" | awk '{print $1}')
  cpu_ms=$(echo "($s1 - $s0) * 1000 / $hz" | bc -l)
  printf "%s %s %s\n" "$conns" "$cpu_ms" "$out"
}

echo "== new TLS connections per second (openssl s_time -new, $secs s each; server CPU per handshake) =="
for v in -tls1_3 -tls1_2; do
  for target in ours theirs; do
    port=$ours; pid=$ourpid
    [ $target = theirs ] && port=$theirs && pid=$theirpid
    read -r conns cpu rest < <(stime $port $pid $v -new)
    printf "%-7s %-8s %8.0f handshakes/s  %6.3f ms server CPU per handshake\n" "$v" \
      "$( [ $target = ours ] && echo TLSHandler || echo s_server )" "$(echo "$conns / $secs" | bc -l)" \
      "$(echo "$cpu / ($conns + 0.000001)" | bc -l)"
  done
done

echo "== throughput, one connection, 1 MiB per write (python ssl client) =="
for target in ours theirs; do
  port=$ours; [ $target = theirs ] && port=$theirs
  [ $target = theirs ] && { printf "%-8s (s_server -www does not echo; skipped)\n" s_server; continue; }
  python3 - "$port" "$secs" <<'PY'
import socket, ssl, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
chunk = b"x" * (1 << 20); total = 0; t0 = time.time()
while time.time() - t0 < secs:
    s.sendall(chunk); got = 0
    while got < len(chunk): got += len(s.recv(1 << 20))
    total += len(chunk) * 2
print(f"TLSHandler echo: {total / (time.time() - t0) / 1e6:.0f} MB/s (sent + received)")
PY
done

echo "== OpenSSL primitives on this machine =="
openssl speed -seconds 3 ecdhp256 ecdsap256 2>/dev/null | grep -E "^ *(256 bits ecdsa|256 bits ecdh)" || true

echo "== memory per idle TLS connection (TLSHandler server, TLS 1.3) =="
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
for n in "${counts[@]}"; do
  kill $ourpid; sleep 0.5
  "$bin" tls-server $ours "$work/certs/server.pem" "$work/certs/server.key" >/dev/null 2>&1 & pids+=($!); ourpid=$!
  sleep 1
  before=$(rss $ourpid)
  python3 - "$ours" "$n" "$ourpid" "$before" <<'PY'
import socket, ssl, sys, time, resource
port, n, pid, before = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
conns = []
for i in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(b"\r\n\r\n"); s.recv(16)
    conns.append(s)
time.sleep(2)
after = int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1])
print(f"{n} idle TLS connections: server RSS {before} KiB -> {after} KiB = {(after - before) * 1024 / n:.0f} bytes per connection")
for s in conns: s.close()
PY
done
