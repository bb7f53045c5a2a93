#!/usr/bin/env bash
# Start-up with 1,000,000 bindings in SQLite, and the server's memory per binding.
#
#   Benchmarks/million.sh [N]        (default 1000000)
#
# Makes the schema by starting the release server once on an empty file, fills the
# bindings table with N rows with sqlite3 (distinct AORs, realistic lengths, expiring
# in an hour), then starts the server again and measures the time from exec to the
# "admin" line (every binding loaded and every listener up) and the resident memory
# then, against an empty server. Needs sqlite3 and a release build. Not part of CI.
# Release build in SCRATCH (default .build-release, as the other scripts).
# KEEP=DIR keeps the database in DIR (to profile a start-up: perf record ... serve --store sqlite:DIR/registrar.sqlite).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
scratch=${SCRATCH:-.build-release}
swift build -c release --product sip-registrar --scratch-path "$scratch" >/dev/null
bin=$PWD/$scratch/release/sip-registrar
work=${KEEP:-$(mktemp -d)}
mkdir -p "$work"
rm -f "$work"/registrar.sqlite*
server=""
trap '[[ -n $server ]] && kill $server 2>/dev/null; wait 2>/dev/null; [[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT

start() {  # store -> sets server and elapsed (seconds until the admin line)
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" serve --store "$1" --udp 127.0.0.1:0 --tcp 127.0.0.1:0 --tls 127.0.0.1:0 --admin 127.0.0.1:0 --log-level error \
    >"$work/out" 2>"$work/err" &
  server=$!
  until grep -q "^admin " "$work/out"; do
    kill -0 $server 2>/dev/null || { echo "server exited: $(cat "$work/err")" >&2; exit 1; }
    sleep 0.02
  done
  t1=$(date +%s.%N)
  elapsed=$(echo "$t1 - $t0" | bc -l)
}
stop() { kill $server; wait $server 2>/dev/null || true; server=""; }
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/$server/status; }

db=$work/registrar.sqlite
start "sqlite:$db"; empty_s=$elapsed; sleep 1; empty_kb=$(rss_kb); stop
now_ms=$(($(date +%s) * 1000))
sqlite3 "$db" <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < $n)
INSERT INTO bindings (aor, uri, scheme, q, expires_at, updated_at, call_id, cseq, instance, reg_id, other_params, path,
                      user_agent, transport, source_host, source_port, flow_id, tls_identity)
SELECT 'user' || x || '@example.com', 'sip:user' || x || '@192.0.2.' || (x % 250) || ':' || (5060 + x % 1000) || ';transport=udp', 0, NULL,
       $now_ms + 3600000 + (x % 600) * 1000, $now_ms, lower(hex(randomblob(12))) || '@192.0.2.1', 1, NULL, NULL, '', '',
       'Linphone/5.1.65 (belle-sip/5.1.55)', 'UDP', '192.0.2.' || (x % 250), 5060 + x % 1000, NULL, NULL
FROM i;
SQL
rows=$(sqlite3 "$db" "SELECT count(*) FROM bindings")
start "sqlite:$db"; full_s=$elapsed; sleep 2; full_kb=$(rss_kb)
loaded=$(curl -s "$(sed -n 's/^admin //p' "$work/out")/health")
stop
printf 'rows=%s start_empty_s=%.2f start_full_s=%.2f rss_empty_mb=%.1f rss_full_mb=%.1f bytes_per_binding=%.0f health=%s\n' \
  "$rows" "$empty_s" "$full_s" "$(echo "$empty_kb / 1024" | bc -l)" "$(echo "$full_kb / 1024" | bc -l)" \
  "$(echo "($full_kb - $empty_kb) * 1024 / $rows" | bc -l)" "$loaded"
