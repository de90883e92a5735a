#!/usr/bin/env python3
"""Where a firmware binary's instructions go, function by function.

Runs the ELF under qemu-system-arm (mps2-an386, -icount shift=0) with QEMU's `-d
in_asm,exec,nochain` log, counts the instructions of every translated block each time it runs,
and prints the functions that executed the most instructions, with their call counts (entries
at the function's first address) and sizes.

    python3 scripts/firmware-profile.py firmware/target/thumbv7em-none-eabihf/size/payment [N]

Build the firmware first (`bash scripts/firmware.sh`). The log is large (about 10 bytes per
executed instruction) and goes to a temporary directory that is removed afterwards.
"""

import collections
import os
import re
import subprocess
import sys
import tempfile

BLOCK_INSN = re.compile(r"0x([0-9a-f]+):")
TRACE = re.compile(r"\[[0-9a-f]+/([0-9a-f]+)/[0-9a-f]+/[0-9a-f]+\] (\S+)")


LEGACY_ESCAPES = {"$LT$": "<", "$GT$": ">", "$RF$": "&", "$BP$": "*", "$u20$": " ",
                  "$u27$": "'", "$u5b$": "[", "$u5d$": "]", "$u7b$": "{", "$u7d$": "}",
                  "$C$": ",", "..": "::"}


def demangle(name):
    """Readable form of a legacy-mangled Rust symbol (`_ZN...E`), without the hash."""
    if not (name.startswith("_ZN") and name.endswith("E")):
        return name
    body, parts, i = name[3:-1], [], 0
    while i < len(body) and body[i].isdigit():
        j = i
        while body[j].isdigit():
            j += 1
        n = int(body[i:j])
        parts.append(body[j:j + n])
        i = j + n
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    text = "::".join(p[1:] if p.startswith("_$") else p for p in parts)
    for k, v in LEGACY_ESCAPES.items():
        text = text.replace(k, v)
    return text


def symbols(elf):
    """Function start address (Thumb bit cleared) -> (name, size)."""
    out = subprocess.run(["nm", "-S", elf], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            syms[int(parts[0], 16) & ~1] = (parts[3], int(parts[1], 16))
    return syms


def profile(log):
    """Instructions executed per function, and entries per function start address."""
    length = {}  # block start address -> instructions in the block
    start = None
    executed = collections.Counter()
    entries = collections.Counter()
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("IN:"):
                start = None
                continue
            m = BLOCK_INSN.match(line)
            if m:
                if start is None:
                    start = int(m.group(1), 16)
                    length[start] = 0
                length[start] += 1
                continue
            if line.startswith("Trace"):
                m = TRACE.search(line)
                if m:
                    pc = int(m.group(1), 16)
                    executed[m.group(2)] += length.get(pc, 0)
                    entries[pc] += 1
    return executed, entries


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    elf = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "qemu.log")
        run = subprocess.run(
            ["qemu-system-arm", "-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic",
             "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
             "-kernel", elf, "-d", "in_asm,exec,nochain", "-D", log],
            stdout=subprocess.DEVNULL, timeout=600)
        if run.returncode != 0:
            sys.exit(f"{elf} exited {run.returncode}")
        executed, entries = profile(log)
    syms = symbols(elf)
    calls = {name: entries.get(addr, 0) for addr, (name, _) in syms.items()}
    sizes = {name: size for name, size in syms.values()}
    total = sum(executed.values())
    print(f"{total} instructions executed by {elf}")
    print(f"{'instructions':>12} {'share':>6} {'calls':>7} {'per call':>9} {'bytes':>6}  function")
    for name, n in executed.most_common(top):
        c = calls.get(name, 0)
        per = f"{n / c:9.1f}" if c else f"{'-':>9}"
        print(f"{n:12d} {100 * n / total:5.1f}% {c:7d} {per} {sizes.get(name, 0):6d}  {demangle(name)[:100]}")


if __name__ == "__main__":
    main()
