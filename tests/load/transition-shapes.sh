#!/usr/bin/env bash
# How far the SQL of a transition could go, whatever the service around it: pgbench runs, on a
# database `nrm bench` has filled, one after another at the same concurrency,
#
#   today  the statements a transition sends now, from BEGIN to COMMIT (the referral with its
#          case and history, the versioned update, the history entry, the webhook look-up,
#          the notice in the outbox, the audit entry);
#   lean   the same reads and writes in the fewest round trips PostgreSQL allows: one read,
#          then one statement that updates the referral and, through data-modifying CTEs,
#          inserts the history entry, the notice, the webhook deliveries and the audit entry
#          (no BEGIN and COMMIT: one statement is its own transaction);
#   -N     pgbench's built-in simple update.
#
# Each transaction takes a random referral and changes its state, so the statistics trigger
# fires as in the service. docs/performance.md has the figures of one run.
#
#   tests/load/transition-shapes.sh postgres://postgres@127.0.0.1:5432/nrm_bench [clients] [seconds]
set -euo pipefail
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

url=${1:?usage: $0 DATABASE_URL [CLIENTS] [SECONDS]}
clients=${2:-16}
seconds=${3:-15}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

psql -q "$url" -c "DROP TABLE IF EXISTS shape_ids" \
  -c "CREATE TABLE shape_ids AS SELECT row_number() OVER (ORDER BY id) AS n, id AS rid, case_id AS cid FROM referrals" \
  -c "ALTER TABLE shape_ids ADD PRIMARY KEY (n)" -c "ANALYZE"
count=$(psql -Atq "$url" -c "SELECT count(*) FROM shape_ids")
test "$count" -gt 0 || { echo "no referrals: run nrm bench on this database first" >&2; exit 1; }
pgbench -i -s 10 -q "$url" >/dev/null 2>&1

next_state="state = CASE WHEN state = 'accepted' THEN 'care_started' ELSE 'accepted' END, version = version + 1, updated_at = now(), decided_at = now()"
history_columns="(id, referral_id, seq, action, from_state, to_state, actor_sub, actor_org, at)"
history_values="gen_random_uuid(), %s, :base + :client_id * 10000000 + :k, 'accept', 'acknowledged', 'accepted', 'bench-intake', 'csg', now()"
notice_columns="(id, kind, recipient, recipient_org, referral_id, subject, body, status, attempts, next_attempt_at, created_at)"
notice_values="gen_random_uuid(), 'referral_accepted', 'intake@fier.example', 'fier', %s, '[nrm] Verwijzing geaccepteerd / Referral accepted - NRM-0000', 'Centrum Seksueel Geweld heeft uw verwijzing geaccepteerd. Deze e-mail bevat bewust geen persoonsgegevens. Log in om de details te zien. -- English -- Centrum Seksueel Geweld accepted your referral. This e-mail deliberately contains no personal data. Sign in to see the details.', 'pending', 0, now(), now()"
audit_columns="(at, actor_sub, actor_org, actor_roles, action, resource_type, resource_id, case_id, outcome, actor_kind)"
audit_values="now(), 'bench-intake', 'csg', 'intake', 'referral.accept', 'referral', 'r', %s, 'accepted', 'person'"
webhooks="FROM webhook_subscriptions s WHERE s.organisation = ANY('{csg,fier}') AND s.status <> ALL('{disabled,deleted}')"
joined="FROM referrals r JOIN cases c ON c.id = r.case_id LEFT JOIN referral_history h ON h.referral_id = r.id"

# shellcheck disable=SC2059
cat > "$work/today.sql" <<EOF
\set n random(1, $count)
\set k :k + 1
SELECT rid, cid FROM shape_ids WHERE n = :n \gset
BEGIN;
SELECT r.*, c.*, h.* $joined WHERE r.id = CAST(:rid AS uuid) ORDER BY h.seq;
UPDATE referrals SET $next_state WHERE id = CAST(:rid AS uuid);
INSERT INTO referral_history $history_columns VALUES ($(printf "$history_values" "CAST(:rid AS uuid)"));
SELECT s.* $webhooks;
INSERT INTO notifications $notice_columns VALUES ($(printf "$notice_values" "CAST(:rid AS uuid)"));
INSERT INTO audit_pending $audit_columns VALUES ($(printf "$audit_values" "CAST(:cid AS uuid)"));
COMMIT;
EOF

# shellcheck disable=SC2059
cat > "$work/lean.sql" <<EOF
\set n random(1, $count)
\set k :k + 1
SELECT r.*, c.*, h.* FROM shape_ids e JOIN referrals r ON r.id = e.rid JOIN cases c ON c.id = r.case_id LEFT JOIN referral_history h ON h.referral_id = r.id WHERE e.n = :n ORDER BY h.seq;
WITH u AS (UPDATE referrals SET $next_state WHERE id = (SELECT rid FROM shape_ids WHERE n = :n) RETURNING id, case_id),
history AS (INSERT INTO referral_history $history_columns SELECT $(printf "$history_values" "u.id") FROM u),
notice AS (INSERT INTO notifications $notice_columns SELECT $(printf "$notice_values" "u.id") FROM u),
deliveries AS (INSERT INTO webhook_deliveries (id, subscription_id, event_type, body, status, attempts, next_attempt_at, created_at) SELECT gen_random_uuid(), s.id, 'referral.accepted', '{}', 'pending', 0, now(), now() FROM u, webhook_subscriptions s WHERE s.organisation = ANY('{csg,fier}') AND s.status <> ALL('{disabled,deleted}'))
INSERT INTO audit_pending $audit_columns SELECT $(printf "$audit_values" "u.case_id") FROM u;
EOF

run() {
  pgbench -n -M prepared -c "$clients" -j 2 -T "$seconds" -D k=0 -D base=$((RANDOM * 1000 + 100000000)) "$@" "$url" 2>&1 \
    | awk '/^tps/ {print $3} /failed transactions/ && $5 != "0" {print "FAILED: " $0 > "/dev/stderr"}'
}
today=$(run -f "$work/today.sql")
lean=$(run -f "$work/lean.sql")
simple=$(run -N)
psql -q "$url" -c "DROP TABLE shape_ids"
python3 - "$clients" "$seconds" "$today" "$lean" "$simple" <<'EOF'
import sys
clients, seconds, today, lean, simple = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])
print(f"{clients} clients, {seconds} s each, transactions/s:")
print(f"  today's statements  {today:9.1f}  ({today / simple:.2f} of -N)")
print(f"  lean (2 statements) {lean:9.1f}  ({lean / simple:.2f} of -N)")
print(f"  pgbench -N          {simple:9.1f}")
EOF
