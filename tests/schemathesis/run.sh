#!/usr/bin/env bash
# Fuzzes the service against its own OpenAPI document with schemathesis: as a caseworker,
# an intake worker and a coordinator, once with the rate limits on and once off, on a
# database seeded with synthetic cases. Any failed check fails the run. Bounded: about
# three minutes in all (NRM_SCHEMATHESIS_SECONDS per run, six runs).
#
# Installs schemathesis (pinned) into target/schemathesis-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION="4.32.5"
VENV="${NRM_SCHEMATHESIS_VENV:-target/schemathesis-venv}"
SECONDS_PER_RUN="${NRM_SCHEMATHESIS_SECONDS:-22}"
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection"

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION"; then
  echo "installing schemathesis $VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

cargo build --locked --quiet
# The binary `cargo build` just made (CARGO_TARGET_DIR moves it).
BIN="${CARGO_TARGET_DIR:-target}/debug/nrm"
WORK="$(mktemp -d)"
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_server() { # limits db
  port="$(free_port)"
  if [ "$1" = on ]; then per_token=600; per_address=1200; else per_token=0; per_address=0; fi
  NRM__RATE_LIMIT__PER_TOKEN_PER_MINUTE=$per_token NRM__RATE_LIMIT__PER_ADDRESS_PER_MINUTE=$per_address \
    RUST_LOG=warn "$BIN" serve --bind "127.0.0.1:$port" --database-url "$2" > "$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/health/ready" > /dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the service did not start"; cat "$WORK/server.log"; return 1
}

failed=0
for limits in on off; do
  db="$WORK/$limits.sqlite"
  RUST_LOG=warn "$BIN" demo seed --cases 60 --database-url "$db" > /dev/null
  for who in "fuzz-caseworker fier caseworker" "fuzz-intake csg intake" "fuzz-coordinator comensha coordinator"; do
    set -- $who
    # A fresh instance per role: the limits count per instance, and each run starts at zero.
    start_server "$limits" "$db"
    token="$("$BIN" token --sub "$1" --org "$2" --role "$3")"
    echo "== schemathesis: $3 at $2, rate limits $limits"
    # One worker: schemathesis 4.32's coverage phase has raced on shared caches with more.
    # No stateful phase: the document declares no links, and the links schemathesis 4.32.5
    # infers from Location headers seen during the run sometimes point at an operation
    # without that parameter, which it then rejects as an invalid definition, failing the run
    # with every check passed (seen in CI, 3 December 2026).
    if ! (cd "$WORK" && "$OLDPWD/$VENV/bin/schemathesis" run "http://127.0.0.1:$port/api/v1/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks "$CHECKS" \
        --max-time "$SECONDS_PER_RUN" \
        --workers 1 \
        --phases examples,coverage,fuzzing \
        --warnings off \
        --seed 42 > "$WORK/run.txt" 2>&1); then
      failed=1
      cat "$WORK/run.txt"
      echo "-- server log"; tail -n 50 "$WORK/server.log"
    else
      grep -E "generated|passed|No test" "$WORK/run.txt" | tail -n 1 || tail -n 5 "$WORK/run.txt"
    fi
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
  done
done
exit "$failed"
