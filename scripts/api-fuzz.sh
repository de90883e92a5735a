#!/usr/bin/env bash
# Property-based fuzzing of the issuer's HTTP API from its OpenAPI document (schemathesis):
# a live offpay-issuer on loopback ports gets generated requests, valid and invalid, on both
# listeners. It must never answer 5xx, must answer only what the document says (status, media
# type, body schema), must refuse what the schema refuses; afterwards the ledger's money must
# still balance. Needs the virtualenv .venv with schemathesis (scripts/test-all.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."

examples=${API_FUZZ_EXAMPLES:-60}
venv=.venv
cargo build -q -p offpay-issuer --bin offpay-issuer
source scripts/issuer-up.sh

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
