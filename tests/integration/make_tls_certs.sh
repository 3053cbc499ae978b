#!/bin/sh
# Generates the TLS material of the options tests into <dir>/tls (the throwaway server's
# directory: lifeline_with_server --prepare runs this before the server starts). Debian's openssl.
#   ca.pem / ca-key.pem                   a CA for this run only
#   server-cert.pem / server-key.pem      signed by it, for IP 127.0.0.1 and DNS localhost
#   wrongname-cert.pem / wrongname-key.pem  signed by it, for db.example.invalid only
#   client-cert.pem / client-key.pem      a client certificate signed by it (REQUIRE X509 accounts)
#   other-ca.pem                          an unrelated CA (a verification that must fail)
set -eu
dir="$1/tls"
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
key ca-key.pem
openssl req -x509 -new -key ca-key.pem -days 2 -subj "/CN=lifeline test CA" -out ca.pem
key other-key.pem
openssl req -x509 -new -key other-key.pem -days 2 -subj "/CN=unrelated CA" -out other-ca.pem
sign() {  # name subject subjectAltName(or empty)
  key "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "$2" -out "$1.csr"
  if [ -n "$3" ]; then printf 'subjectAltName=%s\n' "$3" >"$1.ext"; else : >"$1.ext"; fi
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile "$1.ext" \
    -out "$1-cert.pem" 2>/dev/null
}
sign server "/CN=lifeline test server" "IP:127.0.0.1,DNS:localhost"
sign wrongname "/CN=db.example.invalid" "DNS:db.example.invalid"
sign client "/CN=lifeline-client" ""
chmod 644 ./*.pem
