#!/usr/bin/env python3
"""Renders SPEC.md from docs/SPEC.template.md, filling in the generated parts: hex examples
from tests/vectors and the error-code tables from the code tables the enums are defined with
(§9 from `offpay_protocol::codes!` in the protocol and the transports, printed by the
`spec-tables` program; §15.4 from the issuer's `api_errors!`, printed by its `api-errors`
example).

    python3 scripts/spec-tables.py render     # rewrite SPEC.md (after editing the template)

The test suite checks the result against the code (tests/tests/spec.rs)."""
import json, re, pathlib, subprocess, textwrap, sys
root = pathlib.Path(__file__).resolve().parent.parent

def example(name):
    d = json.load(open(root / "tests/vectors/messages.json"))
    v = next(v for v in d["vectors"] if v["name"] == name)
    h = v["hex"]
    lines = textwrap.wrap(h, 64)
    return f"Example (vector `{name}`, {v['size']} bytes):\n\n```text\n" + "\n".join(lines) + "\n```\n"

def generated(*cargo):
    """JSON printed by a program that reads the code tables the code itself defines
    (offpay_protocol::codes! and the issuer's api_errors!)."""
    out = subprocess.run(["cargo", "run", "-q", *cargo], cwd=root, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)

def errors():
    rows = generated("-p", "offpay-conformance", "--bin", "spec-tables")["errors"]
    out = "| code | name | Rust | meaning |\n|---|---|---|---|\n"
    for r in rows:
        out += f"| {r['code']} | `{r['name']}` | `{r['rust']}` | {r['doc']} |\n"
    return out

def api_errors():
    rows = generated("-p", "offpay-issuer", "--example", "api-errors")
    out = "| code | name | HTTP status | meaning |\n|---|---|---|---|\n"
    for r in rows:
        out += f"| {r['code']} | `{r['name']}` | {r['status']} | {r['doc']} |\n"
    return out

TABLES = {"errors": errors, "api-errors": api_errors}

def render():
    t = open(root / "docs/SPEC.template.md").read()
    fill = lambda m: TABLES[m.group(1)]() if m.group(1) in TABLES else example(m.group(1).split(":", 1)[1])
    open(root / "SPEC.md", "w").write(re.sub(r"\{\{(errors|api-errors|example:[a-z0-9-]+)\}\}", fill, t))

if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "render"
    if what == "render":
        render()
    else:
        print(TABLES[what]() if what in TABLES else example(what))
