#!/usr/bin/env bash
# The read path under an independent load tool: wrk drives GET /api/v1/referrals/{id} and the
# incoming list (first page) at 16 and 64 connections against `nrm serve` (release build),
# on a database seeded by `nrm demo seed` when it has no cases yet. docs/performance.md has
# the figures of one run.
#
#   tests/load/read-path.sh postgres://postgres@127.0.0.1:5432/nrm_read [15s]
#
# Needs wrk (Debian: apt-get install wrk), curl and python3. Rate limits are off in the
# started service, and so is the per-address connection cap: wrk is one client with one
# token from one address.
set -euo pipefail
cd "$(dirname "$0")/../.."

database_url=${1:?usage: $0 DATABASE_URL [DURATION]}
duration=${2:-15s}
nrm=${NRM:-./target/release/nrm}
port=${PORT:-18391}
base="http://127.0.0.1:$port"

export RUST_LOG=warn
export NRM__JWT__HS256_SECRET=${NRM__JWT__HS256_SECRET:-read-path-load-test-secret-0123456789abcdef}
export NRM__RATE_LIMIT__PER_TOKEN_PER_MINUTE=0
export NRM__RATE_LIMIT__PER_ADDRESS_PER_MINUTE=0
# wrk's connections all come from one address; the per-address cap (64) would answer 429.
export NRM__SERVER__MAX_CONNECTIONS_PER_ADDRESS=0

"$nrm" migrate --database-url "$database_url" >/dev/null
# Refuses a database that has cases already: then the existing data is used.
"$nrm" demo seed --cases "${CASES:-10000}" --days 365 --database-url "$database_url" >/dev/null 2>&1 || true

"$nrm" serve --bind "127.0.0.1:$port" --database-url "$database_url" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "$base/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done

token=$("$nrm" token --sub intake-load --org csg --role intake --ttl 2h)
auth="Authorization: Bearer $token"
referral=$(curl -fs -H "$auth" "$base/api/v1/referrals?direction=incoming&limit=1" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["items"][0]["id"])')

for connections in 16 64; do
  for path in "/api/v1/referrals/$referral" "/api/v1/referrals?direction=incoming"; do
    echo "== wrk -t2 -c$connections -d$duration --latency GET $path"
    wrk -t2 -c"$connections" -d"$duration" --latency -H "$auth" "$base$path"
  done
done
