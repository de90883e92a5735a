#!/usr/bin/env python3
"""Reads criterion's results (target/criterion/**/new/) and prints every benchmark's mean time
and the ratios BENCHMARKS.md reports, all from the same run."""
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
floor = "floor/ed25519 verify_strict"
batch = "floor/ed25519 batch of 256/verify_batch"
rows = [
    ("accept decision / verify_strict", "accept/decide", floor, 2.1),
    ("accept decision, voucher cached / verify_strict", "accept/decide, voucher cached", floor, 1.15),
    ("accept decision, issuer tables / verify_strict", "accept/decide, issuer tables", floor, None),
    ("whole accept (incl. receipt signature) / verify_strict", "accept/accept (decide + sign receipt + store)", floor, None),
    ("whole accept, voucher cached / verify_strict", "accept/accept, voucher cached", floor, None),
    ("settlement per payment (batch) / two batch-verified signatures", "settlement/ingest 10,000 payments + receipts/batch verification", batch, 1.3),
    ("settlement per payment (one by one) / two batch-verified signatures", "settlement/ingest 10,000 payments + receipts/one by one", batch, None),
]
print()
print("| ratio | value | target |")
print("|---|---|---|")
for name, a, b, target in rows:
    if a in est and b in est:
        r = t(a) / (t(b) * (2 if "two" in name else 1))
        print(f"| {name} | {r:.2f} | {'≤ ' + str(target) if target else ''} |")
