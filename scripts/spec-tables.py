#!/usr/bin/env python3
"""Renders SPEC.md from docs/SPEC.template.md, filling in the generated parts: hex examples
from tests/vectors and the error-code tables from the sources (§9 from the protocol and the
transports, §15.4 from the issuer's `api_errors!`).

    python3 scripts/spec-tables.py render     # rewrite SPEC.md (after editing the template)

The test suite checks the result against the code (tests/tests/spec.rs)."""
import json, re, pathlib, textwrap, sys
root = pathlib.Path(__file__).resolve().parent.parent

def example(name):
    d = json.load(open(root / "tests/vectors/messages.json"))
    v = next(v for v in d["vectors"] if v["name"] == name)
    h = v["hex"]
    lines = textwrap.wrap(h, 64)
    return f"Example (vector `{name}`, {v['size']} bytes):\n\n```text\n" + "\n".join(lines) + "\n```\n"

def errors():
    rows = []
    for path in ["protocol/src/error.rs", "transport-qr/src/lib.rs", "transport-ble/src/lib.rs"]:
        src = open(root / path).read()
        for enum in re.finditer(r"pub enum (\w+) \{(.*?)\n\}", src, re.S):
            name, body = enum.group(1), enum.group(2)
            docs = {}
            for m in re.finditer(r"((?:\s*///[^\n]*\n)+)\s*(\w+)", body):
                docs[m.group(2)] = " ".join(l.strip()[3:].strip() for l in m.group(1).strip().splitlines())
            start = src.find(f"impl {name} {{")
            end = src.find("\nimpl ", start + 1)
            block = src[start:end if end > 0 else len(src)]
            codes = dict(re.findall(r"Self::(\w+) => (\d{3}),", block))
            names = dict(re.findall(r'Self::(\w+) => "([a-z0-9-]+)",', block))
            for variant, doc in docs.items():
                if variant in codes and variant in names:
                    rows.append((int(codes[variant]), names[variant], f"{name}::{variant}", doc))
    rows = sorted(set(rows))
    out = "| code | name | Rust | meaning |\n|---|---|---|---|\n"
    for c, n, r, d in rows:
        out += f"| {c} | `{n}` | `{r}` | {d} |\n"
    return out

def api_errors():
    src = open(root / "issuer/src/api.rs").read()
    body = re.search(r"\napi_errors! \{(.*?)\n\}", src, re.S).group(1)
    out = "| code | name | HTTP status | meaning |\n|---|---|---|---|\n"
    for m in re.finditer(r"((?:\s*///[^\n]*\n)+)\s*(\w+) = \((\d{3}), \"([a-z0-9-]+)\", (\d{3})\),", body):
        doc = " ".join(l.strip()[3:].strip() for l in m.group(1).strip().splitlines())
        out += f"| {m.group(3)} | `{m.group(4)}` | {m.group(5)} | {doc} |\n"
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
