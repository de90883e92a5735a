#!/usr/bin/env bash
# Property-based fuzzing of the issuer's HTTP API from its OpenAPI document (schemathesis):
# a live offpay-issuer on loopback ports gets generated requests, valid and invalid, on both
# listeners. It must never answer 5xx, must answer only what the document says (status, media
# type, body schema), must refuse what the schema refuses; afterwards the ledger's money must
# still balance. Needs the virtualenv .venv with schemathesis (scripts/test-all.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."

examples=${API_FUZZ_EXAMPLES:-60}
bin=target/debug/offpay-issuer
cargo build -q -p offpay-issuer --bin offpay-issuer
dir=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() { .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
public=$(free_port)
admin=$(free_port)
"$bin" serve --data "$dir/issuer" --listen "127.0.0.1:$public" --admin-listen "127.0.0.1:$admin" \
    >"$dir/log" 2>&1 &
pid=$!
up() { .venv/bin/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "http://127.0.0.1:$public/healthz" 2>/dev/null; }
for _ in $(seq 100); do
    up && break
    sleep 0.1
done
up || { cat "$dir/log"; echo "offpay-issuer did not start" >&2; exit 1; }
token=$(cat "$dir/issuer/admin.token")

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection
common=(--checks "$checks" --max-examples "$examples" --seed 7 --no-color
        --suppress-health-check all --warnings off)
echo "public API on 127.0.0.1:$public"
.venv/bin/schemathesis --config-file issuer/schemathesis.toml run issuer/openapi.json --url "http://127.0.0.1:$public" \
    --include-tag public --exclude-tag admin "${common[@]}"
echo "admin API on 127.0.0.1:$admin"
.venv/bin/schemathesis --config-file issuer/schemathesis.toml run issuer/openapi.json --url "http://127.0.0.1:$admin" \
    --include-tag admin -H "Authorization: Bearer $token" "${common[@]}"

# The ledger after all of it: every movement balances, every balance is its entries' sum, and
# no account that must stay positive went negative.
kill "$pid" && wait "$pid" 2>/dev/null || true
pid=""
.venv/bin/python - "$dir/issuer/ledger.sqlite" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
q = lambda sql: c.execute(sql).fetchone()[0] or 0
assert q("SELECT COUNT(*) FROM (SELECT movement FROM entries GROUP BY movement HAVING SUM(amount) != 0)") == 0
assert q("SELECT COUNT(*) FROM accounts a WHERE balance != (SELECT COALESCE(SUM(amount), 0) FROM entries WHERE account = a.id)") == 0
assert q("SELECT COUNT(*) FROM accounts WHERE kind IN ('available', 'reserved', 'merchant') AND balance < 0") == 0
assert q("SELECT SUM(balance) FROM accounts") == 0
print("ledger after fuzzing: %d instruments, %d movements, balanced" % (q("SELECT COUNT(*) FROM instruments"), q("SELECT COUNT(*) FROM movements")))
PY
