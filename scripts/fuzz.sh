#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, through the crate libfuzzer-sys) of sluice's readers of
# untrusted input: the config loader, the PPL parser, and the token and session-cookie readers
# (fuzz/fuzz_targets/). Usage: bash scripts/fuzz.sh [seconds per target, default 60]
#
# The stable toolchain cannot take cargo-fuzz's -Zsanitizer flags, so the fuzz crate is built
# with plain cargo and LLVM's SanitizerCoverage passes (what cargo-fuzz uses underneath), with
# debug assertions and overflow checks on (fuzz/Cargo.toml). No address sanitizer: safe Rust
# needs none, and a panic is what the targets look for.
#
# Prints one line per target: inputs run, seconds, coverage (cov: edges, ft: features), the
# corpus libFuzzer kept (inputs/bytes), crashes. Exits 1 naming the input when a target
# crashes (or times out, or runs out of memory); 2 when the build fails. Always bounded: each
# target gets -max_total_time, and a hard `timeout` above that.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECS="${1:-60}"
[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [seconds per target]" >&2; exit 64; }
TARGETS=(config_loader ppl_parser token_verifier)

export CARGO_TARGET_DIR="$PWD/target"
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing"
# An explicit --target keeps RUSTFLAGS (the instrumentation) off build scripts and proc macros.
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
# The fuzz crate has its own lock file; it goes stale when sluice gains a dependency.
if ! cargo metadata --locked --format-version 1 >/dev/null 2>&1; then
  echo "fuzz: fuzz/Cargo.lock is out of date with sluice's Cargo.toml;" \
    "run 'cargo update -p sluice' in fuzz/ and commit it" >&2
  exit 2
fi
build_start=$(date +%s)
if ! timeout 3600 cargo build --locked --release --bins --target "$TRIPLE" >&2; then
  echo "fuzz: the fuzz crate did not build" >&2
  exit 2
fi
echo "fuzz: built in $(( $(date +%s) - build_start )) s" >&2
BIN="target/$TRIPLE/release"

# Inline certificates in fuzzed configs are written out as Envoy would read them: not to /tmp.
export SLUICE_RUNTIME_DIR="$PWD/target/runtime"
export RUST_BACKTRACE=1

# Dictionaries: config keys from the raw structs, PPL words from the parser, credential words.
mkdir -p target/dict
{
  sed -n 's/^        \([a-z_0-9]*\): .*/"\1:"/p' ../src/config/raw.rs
  printf '"%s"\n' '- ' '  ' ': ' '- from: ' '  to: ' 'http://' 'https://' '*.' '{' '}' '[' ']' \
    '"' "'" '|' '&a' '*a' '<<: ' '---' 'true' '0s' '1m30s' '127.0.0.1:' '[::1]:' '/' '$' '${pomerium.'
} | sort -u > target/dict/config_loader.dict
{
  grep -o '"[a-z_0-9]\+"' ../src/policy/parse.rs | sort -u
  printf '"%s"\n' 'claim/' ': ' '- ' '{' '}' '[' ']' ', ' '/8' '::/64' 'true'
} > target/dict/ppl_parser.dict
printf '"%s"\n' eyJ . alg kid typ JWT ES256 ES384 RS256 EdDSA HS256 none iss sub aud azp exp nbf \
  iat email groups ISSUER sid id_token extra_claims access_token refresh_token tokens_expire \
  issued expires rsa-1 ec384-1 ed-1 fH1xY4YxoQQi4AOAIjfWRk5y_kPEeSt_R0KkkDv8kKE sluice-fuzz \
  _pomerium= _pomerium_1= '; ' pomerium_issued= pomerium_expiry= '&pomerium_signature=' \
  4102444800 1800000000 > target/dict/token_verifier.dict

# Seeds. libFuzzer writes what it finds into the first directory (under target/, so not
# committed) and only reads the others: the committed seeds and the repository's configs.
seeds() {
  case "$1" in
    config_loader)
      echo corpus/config_loader ../examples ../tests/testdata/configs ../tests/testdata/invalid \
        ../tests/testdata/pomerium-examples ;;
    *) echo "corpus/$1" ;;
  esac
}

failed=0
printf '%-15s %11s %7s %7s %7s %14s  %s\n' target inputs seconds cov ft corpus crashes
for t in "${TARGETS[@]}"; do
  mkdir -p "target/corpus/$t" "artifacts/$t" target/logs
  log="target/logs/$t.log"
  before=$(find "artifacts/$t" -type f | wc -l)
  start=$(date +%s)
  set +e
  # shellcheck disable=SC2046 # seeds are directory names without spaces
  timeout -k 10 $(( SECS + 120 )) "$BIN/$t" "target/corpus/$t" $(seeds "$t") \
    -max_total_time="$SECS" -rss_limit_mb=1024 -timeout=5 -print_final_stats=1 \
    -dict="target/dict/$t.dict" -artifact_prefix="artifacts/$t/" > "$log" 2>&1
  rc=$?
  set -e
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
  found=$(( $(find "artifacts/$t" -type f | wc -l) - before ))
  printf '%-15s %11s %7s %7s %7s %14s  %s\n' "$t" "${execs:-?}" "$took" "${cov:-?}" \
    "${ft:-?}" "${corp:-?}" "$found"
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    failed=1
    newest=$(ls -t "artifacts/$t"/* 2>/dev/null | head -1 || true)
    echo "  $t FAILED (exit $rc): input fuzz/${newest:-?}; log fuzz/$log" >&2
    echo "  reproduce: fuzz/$BIN/$t fuzz/${newest:-<input>}" >&2
    grep -m1 -A3 -E "panicked at|ERROR: libFuzzer" "$log" | sed 's/^/  | /' >&2 || true
  fi
done
exit "$failed"
