#!/usr/bin/env bash
# Runs `sluice validate` on Pomerium's own example configs.
#
#   scripts/pomerium-examples.sh [POMERIUM_CHECKOUT]
#
# Without an argument the examples come from the bare mirror of pomerium/pomerium
# (`git archive`, $POMERIUM_MIRROR, default /work/.mirror/pomerium+pomerium/repo). Each config
# is copied into a temporary folder, its placeholder secrets (REPLACE_ME, XXXXXX...) are
# replaced by generated ones and its certificate paths by test certificates made here, then
# checked. Prints "N of M Pomerium example configs load" and the errors of those that do not.
# Exit 0 when every one loads, 1 otherwise. A dev tool: nothing in CI depends on it.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

checkout="${1:-}"
if [ -z "$checkout" ]; then
  mirror="${POMERIUM_MIRROR:-/work/.mirror/pomerium+pomerium/repo}"
  [ -d "$mirror" ] || { echo "no Pomerium checkout given and no mirror at $mirror" >&2; exit 2; }
  checkout="$work/pomerium"
  mkdir -p "$checkout"
  git -C "$mirror" archive HEAD examples internal/acceptance/pomerium | tar -x -C "$checkout"
fi

examples=(
  examples/config/config.example.yaml
  examples/config/config.minimal.yaml
  examples/config/config.docker.yaml
  examples/config/policy.example.yaml
  examples/config/route.example.yaml
  examples/mutual-tls/example.config.yaml
  examples/tiddlywiki/config.yaml
  examples/cloudrun/config.yaml
  internal/acceptance/pomerium/config.yaml
)

# Test certificates: a CA, a server certificate and a client certificate it signed.
certs="$work/certs"
mkdir -p "$certs"
(
  cd "$certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=examples CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
  for name in server client; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
      -keyout "$name-key.pem" -out "$name.csr" 2>/dev/null
    printf 'subjectAltName=DNS:*.localhost.pomerium.io,DNS:localhost\n' > "$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
      -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  done
)

if [ -n "${SLUICE_BIN:-}" ]; then
  sluice="$SLUICE_BIN"
else
  (cd "$root" && cargo build --quiet --locked --bin sluice)
  sluice="${CARGO_TARGET_DIR:-$root/target}/debug/sluice"
fi

fill() { # fill SRC DEST: placeholders → generated secrets, certificate paths → test files
  python3 - "$1" "$2" "$certs" <<'PY'
import base64, os, re, sys
src, dest, certs = sys.argv[1:4]
secret = lambda: base64.b64encode(os.urandom(32)).decode()
paths = {
    "certificate_file": "server.pem", "certificate_key_file": "server-key.pem",
    "certificate_authority_file": "ca.pem", "tls_custom_ca_file": "ca.pem",
    "tls_client_cert_file": "client.pem", "tls_client_key_file": "client-key.pem",
    "tls_downstream_client_ca_file": "ca.pem", "ca_file": "ca.pem",
    "signing_key_file": None,
}
out = []
for line in open(src):
    m = re.match(r'^(\s*-?\s*)([a-z_]+):\s*(.*?)\s*$', line)
    if m:
        indent, key, value = m.groups()
        if key in ("cookie_secret", "shared_secret"):
            line = f"{indent}{key}: {secret()}\n"
        elif key in paths and paths[key]:
            line = f"{indent}{key}: {os.path.join(certs, paths[key])}\n"
        elif re.fullmatch(r'"?(REPLACE_?ME|X{4,})"?', value):
            line = f"{indent}{key}: example-{key.replace('_', '-')}\n"
    out.append(line)
open(dest, "w").write("".join(out))
PY
}

total=0
loaded=0
failures=""
for example in "${examples[@]}"; do
  src="$checkout/$example"
  [ -f "$src" ] || { echo "missing: $example" >&2; continue; }
  total=$((total + 1))
  dest="$work/$(echo "$example" | tr / _)"
  fill "$src" "$dest"
  if out="$("$sluice" validate -c "$dest" 2>&1)"; then
    loaded=$((loaded + 1))
    echo "ok    $example"
  else
    echo "FAIL  $example"
    failures+=$'\n'"== $example"$'\n'"$(printf '%s\n' "$out" | grep -E 'error' | sed "s|$work/||")"
  fi
done
echo
echo "$loaded of $total Pomerium example configs load"
if [ -n "$failures" ]; then
  printf '%s\n' "$failures"
  exit 1
fi
