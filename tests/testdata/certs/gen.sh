#!/usr/bin/env bash
# Regenerates the test-only certificates (never used outside tests). Run from this folder.
set -euo pipefail
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500 \
  -subj "/CN=sluice test CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
for name in server client upstream; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name.example.com" \
    -keyout "$name-key.pem" -out "$name.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s.example.com,DNS:*.example.com,DNS:localhost,IP:127.0.0.1\n' "$name" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 36500 \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm "$name.csr" "$name.ext"
done
rm -f ca.srl
