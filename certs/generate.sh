#!/usr/bin/env bash
# Development certificates for sip-registrar: a private CA, a server certificate and
# client certificates whose subjectAltName carries a SIP identity.
#
#   certs/generate.sh [--out DIR] [--domain D] [--client USER]... [--days N] [--rsa]
#                     [--crl-url URL]
#
# Writes DIR/ca.pem, DIR/ca.key, DIR/ca.crl (an empty CRL, signed), DIR/server.pem
# (leaf then CA), DIR/server.key (SAN: localhost, 127.0.0.1, ::1 and the domain) and
# DIR/USER.pem, DIR/USER.key for each --client USER (SAN URI:sip:USER@DOMAIN). Leaf
# certificates name URL as their CRL distribution point: publish ca.crl there.
# Keys are ECDSA P-256 unless --rsa (RSA 2048). Defaults: DIR certs/dev, domain
# example.com, 397 days (the CA/Browser Forum maximum for leaf certificates), URL
# http://ca.DOMAIN/sip-registrar-ca.crl.
set -euo pipefail

out="certs/dev"
domain="example.com"
days=397
rsa=0
crl_url=
clients=()
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --domain) domain="${2:?--domain needs a name}"; shift 2 ;;
    --client) clients+=("${2:?--client needs a user name}"); shift 2 ;;
    --days) days="${2:?--days needs a number}"; shift 2 ;;
    --rsa) rsa=1; shift ;;
    --crl-url) crl_url="${2:?--crl-url needs a URL}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "generate.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$domain" =~ ^[A-Za-z0-9.-]+$ ]] || { echo "generate.sh: --domain '$domain' is not a host name" >&2; exit 2; }
[[ "$days" =~ ^[0-9]+$ ]] || { echo "generate.sh: --days '$days' is not a number" >&2; exit 2; }
crl_url="${crl_url:-http://ca.$domain/sip-registrar-ca.crl}"
[[ "$crl_url" =~ ^https?://[^[:space:],]+$ ]] || { echo "generate.sh: --crl-url '$crl_url' is not an http(s) URL" >&2; exit 2; }
for u in "${clients[@]+"${clients[@]}"}"; do
  [[ "$u" =~ ^[A-Za-z0-9._+-]+$ ]] || { echo "generate.sh: --client '$u' is not a plain user name" >&2; exit 2; }
done
command -v openssl >/dev/null || { echo "generate.sh: openssl not found (apt-get install openssl)" >&2; exit 2; }

mkdir -p "$out"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

newkey() {
  if ((rsa)); then openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"
  else openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; fi
}

# The CA (it outlives its leaves: three times their validity).
newkey "$out/ca.key"
openssl req -x509 -new -key "$out/ca.key" -sha256 -days "$((days * 3))" -subj "/O=sip-registrar development/CN=sip-registrar development CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$out/ca.pem"

# Its certificate revocation list, empty for now (revoke with `openssl ca -revoke`, then regenerate).
touch "$tmp/index.txt"
echo 01 > "$tmp/crlnumber"
printf '[ca]\ndefault_ca=dev\n[dev]\ndatabase=%s\ncrlnumber=%s\ncertificate=%s\nprivate_key=%s\ndefault_md=sha256\ndefault_crl_days=30\n' \
  "$tmp/index.txt" "$tmp/crlnumber" "$out/ca.pem" "$out/ca.key" > "$tmp/ca.cnf"
openssl ca -gencrl -config "$tmp/ca.cnf" -out "$out/ca.crl" 2>/dev/null

sign() {  # name subject san eku
  local name=$1 subject=$2 san=$3 eku=$4
  newkey "$out/$name.key"
  openssl req -new -key "$out/$name.key" -subj "$subject" -out "$tmp/$name.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature%s\nextendedKeyUsage=%s\nsubjectAltName=%s\ncrlDistributionPoints=URI:%s\n' \
    "$( ((rsa)) && echo ",keyEncipherment" )" "$eku" "$san" "$crl_url" > "$tmp/$name.ext"
  openssl x509 -req -in "$tmp/$name.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -CAcreateserial -CAserial "$tmp/ca.srl" \
    -days "$days" -sha256 -extfile "$tmp/$name.ext" -out "$tmp/$name.crt" 2>/dev/null
}

sign server "/O=sip-registrar development/CN=$domain" "DNS:localhost,IP:127.0.0.1,IP:::1,DNS:$domain,URI:sip:$domain" serverAuth,clientAuth
cat "$tmp/server.crt" "$out/ca.pem" > "$out/server.pem"
for u in "${clients[@]+"${clients[@]}"}"; do
  sign "$u" "/O=sip-registrar development/CN=$u" "URI:sip:$u@$domain" clientAuth
  cp "$tmp/$u.crt" "$out/$u.pem"
done
chmod 600 "$out"/*.key
chmod 644 "$out"/*.pem "$out/ca.crl"
echo "generate.sh: wrote $out (CA, server for $domain${clients[*]:+, clients: ${clients[*]}})"
