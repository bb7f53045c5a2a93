#!/usr/bin/env bash
# TLS hardening, checked from outside: starts the built registrar with a certificate
# chain from certs/generate.sh and scans its TLS listener with sslscan and testssl.sh.
# Fails unless only TLS 1.2 and 1.3 are offered, every cipher is ECDHE (or TLS 1.3)
# and AEAD, renegotiation and compression are off, the chain is complete, and
# testssl.sh rates nothing MEDIUM or worse.
#
#   Tests/tls-audit.sh [PATH-TO-sip-registrar]      (default .build/debug/sip-registrar)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-.build/debug/sip-registrar}"
[[ -x "$bin" ]] || { echo "tls-audit: $bin not found (swift build first)" >&2; exit 2; }
for tool in sslscan testssl python3; do
  command -v "$tool" >/dev/null || { echo "tls-audit: $tool not found (apt-get install sslscan testssl.sh)" >&2; exit 2; }
done

work=$(mktemp -d)
server=""
cleanup() { [[ -n "$server" ]] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

certs/generate.sh --out "$work/pki" >/dev/null
"$bin" serve --udp 127.0.0.1:0 --tcp 127.0.0.1:0 --tls 127.0.0.1:0 --admin off --store memory --log-level error \
  --cert "$work/pki/server.pem" --key "$work/pki/server.key" > "$work/out" 2> "$work/err" &
server=$!
for _ in $(seq 100); do grep -q "listening tls" "$work/out" && break; sleep 0.1; done
port=$(sed -n 's/^listening tls .*:\([0-9]*\)$/\1/p' "$work/out")
[[ -n "$port" ]] || { echo "tls-audit: the registrar did not start: $(cat "$work/err")" >&2; exit 1; }
target="127.0.0.1:$port"
failures=()

# sslscan: protocols, renegotiation, and every accepted cipher.
sslscan --no-colour "$target" > "$work/sslscan" 2>&1
for p in SSLv2 SSLv3 TLSv1.0 TLSv1.1; do grep -Eq "^$p +disabled" "$work/sslscan" || failures+=("sslscan: $p is not disabled"); done
for p in TLSv1.2 TLSv1.3; do grep -Eq "^$p +enabled" "$work/sslscan" || failures+=("sslscan: $p is not enabled"); done
grep -q "Session renegotiation not supported" "$work/sslscan" || failures+=("sslscan: renegotiation is supported")
grep -q "Compression enabled" "$work/sslscan" && failures+=("sslscan: compression is enabled")
while read -r _ proto _ _ cipher _; do
  if [[ "$proto" == "TLSv1.2" && "$cipher" != ECDHE-* ]]; then failures+=("sslscan: $proto $cipher is not ECDHE"); fi
  if [[ ! "$cipher" =~ (GCM|CHACHA20|CCM) ]]; then failures+=("sslscan: $proto $cipher is not AEAD"); fi
done < <(grep -E "^(Accepted|Preferred) " "$work/sslscan")
echo "sslscan: $(grep -Ec "^(Accepted|Preferred) " "$work/sslscan") cipher suites accepted, all checked"

# testssl.sh: everything it checks by default, trusting the private CA the chain ends in.
testssl --quiet --color 0 --warnings off --add-ca "$work/pki/ca.pem" --jsonfile "$work/testssl.json" "$target" > "$work/testssl.out" 2>&1 || true
[[ -s "$work/testssl.json" ]] || failures+=("testssl.sh produced no report: $(tail -5 "$work/testssl.out")")
if [[ -s "$work/testssl.json" ]]; then
  while IFS= read -r line; do failures+=("testssl: $line"); done < <(python3 - "$work/testssl.json" <<'EOF'
import json, sys
findings = json.load(open(sys.argv[1]))
counts = {}
for f in findings:
    sev = f.get("severity", "")
    counts[sev] = counts.get(sev, 0) + 1
    if sev in ("MEDIUM", "HIGH", "CRITICAL"):
        print(f'{sev} {f.get("id")}: {f.get("finding")}')
chain = [f for f in findings if f.get("id", "").startswith("cert_chain_of_trust")]
if not chain or any(f.get("severity") != "OK" for f in chain):
    print("certificate chain not trusted: " + "; ".join(f.get("finding", "") for f in chain))
summary = ", ".join(f"{k or 'none'} {v}" for k, v in sorted(counts.items()))
print(f"summary {summary}", file=sys.stderr)
EOF
)
fi

if ((${#failures[@]})); then
  printf 'tls-audit: FAIL %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "tls-audit: passed (TLS 1.2/1.3 only, ECDHE + AEAD, no renegotiation or compression, chain trusted, nothing MEDIUM or worse)"
