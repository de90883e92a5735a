#!/usr/bin/env python3
"""The P-256 holder-key ratios BENCHMARKS.md reports, from one run of
`cargo bench -p offpay-protocol --bench holder_p256` (criterion's target/criterion/):
each operation over the floor it cannot avoid, both measured in that run."""
import json
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def mean(*parts):
    p = root.joinpath(*parts, "new", "estimates.json")
    if not p.exists():
        sys.exit(f"p256-ratios: no results at {p}; run the holder_p256 benchmark first")
    return json.loads(p.read_text())["mean"]["point_estimate"]


def name(s):
    # criterion's directory names replace these characters.
    return "".join("_" if c in "/\\:*?\"<>|" else c for c in s)


p256 = mean(name("p256/floor: p256 verify_prehash of a payment"))
ed = mean(name("p256/floor: ed25519 verify_strict of a payment"))
acc_p = mean(name("p256/accept decision, P-256 holder"))
acc_e = mean(name("p256/accept decision, Ed25519 holder"))
group = name("p256/settlement of 512 payments + receipts")
set_p = mean(group, "P-256 holder") / 512
set_e = mean(group, "Ed25519 holder") / 512

rows = [
    ("p256 verify_prehash (floor)", p256, None),
    ("ed25519 verify_strict (floor)", ed, None),
    ("accept decision, P-256 holder", acc_p, ("p256 verify + ed25519 verify", acc_p / (p256 + ed))),
    ("accept decision, Ed25519 holder", acc_e, ("2 ed25519 verify", acc_e / (2 * ed))),
    ("settlement per payment + receipt, P-256 holder", set_p, ("Ed25519 holder's", set_p / set_e)),
    ("settlement per payment + receipt, Ed25519 holder (batched)", set_e, None),
]
print("| operation | mean | ratio |")
print("|---|---|---|")
for label, t, r in rows:
    ratio = f"{r[1]:.2f} (over {r[0]})" if r else ""
    print(f"| {label} | {t / 1000:.1f} µs | {ratio} |")
print(f"\nP-256 verify / Ed25519 verify: {p256 / ed:.2f}")
