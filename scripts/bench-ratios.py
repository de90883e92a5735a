#!/usr/bin/env python3
"""Reads criterion's results (target/criterion/**/new/) and prints every benchmark's mean time
and the ratios BENCHMARKS.md reports, all from the same run.

Each ratio divides an operation by the cryptography it cannot avoid, measured in the same run:
`verify_strict` (one signature check), `sign` (one signature with the secret already expanded)
and one signature of a 256-signature batch."""
import json, pathlib
root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
est = {}
for b in root.glob("**/new/benchmark.json"):
    meta = json.load(open(b))
    e = json.load(open(b.parent / "estimates.json"))
    per = e["mean"]["point_estimate"]
    tp = meta.get("throughput") or {}
    n = tp.get("Elements") if isinstance(tp, dict) else None
    est[meta["full_id"]] = (per, n)

def t(key):
    per, n = est[key]
    return per / n if n else per

def fmt(ns):
    return f"{ns/1e6:.2f} ms" if ns >= 1e6 else f"{ns/1e3:.2f} µs" if ns >= 1e3 else f"{ns:.0f} ns"

print("| benchmark | mean | per element |")
print("|---|---|---|")
for k in sorted(est):
    per, n = est[k]
    print(f"| {k} | {fmt(per)} | {fmt(per/n) if n else ''} |")

V = "floor/ed25519 verify_strict"
S = "floor/ed25519 sign"
BATCH = "floor/ed25519 batch of 256/verify_batch"
ACCEPT = "accept/accept (decide + sign receipt + store)"
SETTLE = "settlement/ingest 10,000 payments + receipts/"
# (label, operation, floor as [(benchmark, count)], target)
rows = [
    ("accept decision / verify_strict", "accept/decide", [(V, 1)], 2.1),
    ("accept decision, voucher cached / verify_strict", "accept/decide, voucher cached", [(V, 1)], 1.15),
    ("accept decision, issuer tables / verify_strict", "accept/decide, issuer tables", [(V, 1)], None),
    ("whole accept / verify_strict", ACCEPT, [(V, 1)], None),
    ("whole accept, issuer tables / verify_strict", "accept/accept, issuer tables", [(V, 1)], None),
    ("whole accept, voucher cached / verify_strict", "accept/accept, voucher cached", [(V, 1)], None),
    ("whole accept / (2 verify_strict + sign)", ACCEPT, [(V, 2), (S, 1)], None),
    ("whole accept, voucher cached / (verify_strict + sign)", "accept/accept, voucher cached", [(V, 1), (S, 1)], None),
    ("wallet pay / (2 verify_strict + sign)", "wallet/pay (verify certificate and request, sign, store)", [(V, 2), (S, 1)], None),
    ("settlement per payment (batch) / two batch-verified signatures", SETTLE + "batch verification", [(BATCH, 2)], 1.3),
    ("settlement per payment (one by one) / two batch-verified signatures", SETTLE + "one by one", [(BATCH, 2)], None),
]
print()
print("| ratio | value | target |")
print("|---|---|---|")
for name, a, floor, target in rows:
    if a in est and all(f in est for f, _ in floor):
        r = t(a) / sum(t(f) * n for f, n in floor)
        verdict = "" if target is None else f"≤ {target} ({'met' if r <= target else 'NOT met'})"
        print(f"| {name} | {r:.2f} | {verdict} |")
