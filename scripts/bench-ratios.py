#!/usr/bin/env python3
"""The ratios BENCHMARKS.md reports, from criterion's results of the protocol benchmark.

    python3 scripts/bench-ratios.py            target/criterion/, after one `cargo bench -p
                                               offpay-protocol --bench protocol`: every
                                               benchmark's mean time, the floors, the ratios
    python3 scripts/bench-ratios.py DIR...     several runs (copies of target/criterion/):
                                               each run's ratios and their median

Each ratio divides an operation by the cryptography it cannot avoid, measured in the same run:
`verify_strict` (one signature check), `sign` (one signature with the secret already expanded)
and one signature of a batch the size settlement verifies. Each floor is measured at the start
of the run and again at its end, and the ratios use the mean of the two. A run is refused if a
benchmark a ratio needs is missing, if its results were not written by one run (their files
span more than RUN_SPAN seconds), so that a renamed benchmark or a filtered re-run cannot slip
stale figures into a ratio, or if a floor's two measurements differ by more than FLOOR_SPREAD:
then something else took the processor during the run, and it must be run again."""
import json, pathlib, statistics, sys

RUN_SPAN = 30 * 60
FLOOR_SPREAD = 0.10
GROUPS = ("floor/", "floor-end/", "accept/", "wallet/", "settlement/", "codec/")

V = "floor/ed25519 verify_strict"
S = "floor/ed25519 sign"
BATCH = "floor/ed25519 batch of 512/verify_batch"
FLOORS = (V, S, BATCH)
ACCEPT = "accept/accept (decide + sign receipt + store)"
CACHED = "accept/accept, voucher cached"
SETTLE = "settlement/ingest 10,000 payments + receipts/"
# (label, operation, floor as [(benchmark, count)], target)
ROWS = [
    ("accept decision / verify_strict", "accept/decide", [(V, 1)], 2.1),
    ("accept decision, voucher cached / verify_strict", "accept/decide, voucher cached", [(V, 1)], 1.15),
    ("accept decision, issuer tables / verify_strict", "accept/decide, issuer tables", [(V, 1)], None),
    ("whole accept / verify_strict", ACCEPT, [(V, 1)], 2.1),
    ("whole accept, issuer tables / verify_strict", "accept/accept, issuer tables", [(V, 1)], 2.1),
    ("whole accept, voucher cached / verify_strict", CACHED, [(V, 1)], 1.15),
    ("sign / verify_strict", S, [(V, 1)], None),
    ("whole accept / (2 verify_strict + sign)", ACCEPT, [(V, 2), (S, 1)], None),
    ("whole accept, voucher cached / (verify_strict + sign)", CACHED, [(V, 1), (S, 1)], None),
    ("wallet pay / (2 verify_strict + sign)", "wallet/pay (verify certificate and request, sign, store)", [(V, 2), (S, 1)], None),
    ("settlement per payment (batch) / two batch-verified signatures", SETTLE + "batch verification", [(BATCH, 2)], 1.3),
    ("settlement per payment (one by one) / two batch-verified signatures", SETTLE + "one by one", [(BATCH, 2)], None),
]


def again(key):
    return key.replace("floor/", "floor-end/", 1)


class Run:
    """One run's results, checked."""

    def __init__(self, root):
        self.root = root
        self.est, written = {}, {}
        for b in root.glob("**/new/benchmark.json"):
            meta = json.load(open(b))
            if not meta["full_id"].startswith(GROUPS):
                continue
            estimates = b.parent / "estimates.json"
            e = json.load(open(estimates))
            tp = meta.get("throughput") or {}
            n = tp.get("Elements") if isinstance(tp, dict) else None
            self.est[meta["full_id"]] = (e["mean"]["point_estimate"], n)
            written[meta["full_id"]] = estimates.stat().st_mtime
        needed = {a for _, a, _, _ in ROWS} | {f for _, _, fl, _ in ROWS for f, _ in fl}
        needed |= {again(f) for f in FLOORS}
        missing = sorted(needed - self.est.keys())
        if missing:
            sys.exit(f"bench-ratios: {root}: no results for {missing}; run the protocol benchmark in full")
        span = max(written[k] for k in needed) - min(written[k] for k in needed)
        if span > RUN_SPAN:
            sys.exit(f"bench-ratios: {root}: the results span {span / 60:.0f} minutes, more than "
                     "one run; run the protocol benchmark in full")
        self.spread = {f: abs(self.once(f) - self.once(again(f)))
                       / min(self.once(f), self.once(again(f))) for f in FLOORS}
        unsteady = {f: s for f, s in self.spread.items() if s > FLOOR_SPREAD}
        if unsteady:
            sys.exit(f"bench-ratios: {root}: the floor moved during the run ("
                     + ", ".join(f"{f}: {s:.0%}" for f, s in unsteady.items())
                     + "); run the protocol benchmark again on a quieter machine")

    def once(self, key):
        per, n = self.est[key]
        return per / n if n else per

    def t(self, key):
        return (self.once(key) + self.once(again(key))) / 2 if key in FLOORS else self.once(key)

    def ratio(self, row):
        _, a, floor, _ = row
        return self.t(a) / sum(self.t(f) * n for f, n in floor)


def fmt(ns):
    return f"{ns/1e6:.2f} ms" if ns >= 1e6 else f"{ns/1e3:.2f} µs" if ns >= 1e3 else f"{ns:.0f} ns"


def verdict(r, target):
    return "" if target is None else f"≤ {target} ({'met' if r <= target else 'not met'})"


def one(run):
    print("| benchmark | mean | per element |")
    print("|---|---|---|")
    for k in sorted(run.est):
        per, n = run.est[k]
        print(f"| {k} | {fmt(per)} | {fmt(per/n) if n else ''} |")
    print()
    print("| floor | start of run | end of run | spread |")
    print("|---|---|---|---|")
    for f in FLOORS:
        print(f"| {f.removeprefix('floor/')} | {fmt(run.once(f))} | {fmt(run.once(again(f)))} | {run.spread[f]:.1%} |")
    print()
    print("| ratio | value | target |")
    print("|---|---|---|")
    for row in ROWS:
        r = run.ratio(row)
        print(f"| {row[0]} | {r:.2f} | {verdict(r, row[3])} |")


def several(runs):
    heads = " | ".join(f"run {i + 1}" for i in range(len(runs)))
    print(f"| ratio | {heads} | median | target (median) |")
    print("|---|" + "---|" * (len(runs) + 2))
    for row in ROWS:
        rs = [run.ratio(row) for run in runs]
        m = statistics.median(rs)
        cells = " | ".join(f"{r:.2f}" for r in rs)
        print(f"| {row[0]} | {cells} | {m:.2f} | {verdict(m, row[3])} |")


if len(sys.argv) > 2:
    several([Run(pathlib.Path(d)) for d in sys.argv[1:]])
else:
    one(Run(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1
            else pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"))
