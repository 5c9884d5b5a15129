#!/usr/bin/env python3
"""Checks the shape of src/ that the crate promises (docs/api.md, "Structure"):

- no file in src/ over MAX_LINES lines;
- no module cycle: no module of the library imports (through `crate::` or `super::`) a
  module that imports it back;
- every wire code of `Error` is spelled once in src/ (in src/error.rs).

Exits 1 on any finding, printing it.
"""
import re
import sys
from pathlib import Path

MAX_LINES = 600
ROOT = Path(__file__).resolve().parent.parent / "src"


def modules():
    """Library module path (`tower::layer`) to file, unit-test files left out."""
    found = {}
    for path in ROOT.rglob("*.rs"):
        rel = path.relative_to(ROOT).with_suffix("").parts
        if rel[0] == "bin":
            continue
        if rel[-1] in ("mod", "lib"):
            rel = rel[:-1]
        if rel and rel[-1] == "tests":
            continue
        found["::".join(rel)] = path
    return found


def resolve(mods, current, path):
    parts = path.split("::")
    if parts[0] == "crate":
        base, parts = [], parts[1:]
    elif parts[0] == "super":
        base = current.split("::")[:-1] if current else []
        parts = parts[1:]
        while parts and parts[0] == "super":
            base, parts = base[:-1], parts[1:]
    else:
        return None
    for k in range(len(parts), -1, -1):
        candidate = "::".join(base + parts[:k])
        if candidate in mods:
            return candidate
    return None


def cycles(mods):
    edges = {m: set() for m in mods}
    for module, path in mods.items():
        text = path.read_text().split("#[cfg(test)]\nmod tests")[0]
        for used in re.findall(r"\b((?:crate|super)(?:::\w+)+)", text):
            target = resolve(mods, module, used)
            if target is None or target == module:
                continue
            # A module and its own submodules may refer to each other.
            if module.startswith(target + "::") or target.startswith(module + "::") or not target:
                continue
            edges[module].add(target)
    return sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges.get(b, ())})


def codes():
    text = (ROOT / "error.rs").read_text()
    body = text.split("pub const fn code(&self)")[1].split("\n    }\n")[0]
    return sorted(set(re.findall(r'=> "([a-z_]+)"', body)))


def main():
    problems = []
    for path in sorted(ROOT.rglob("*.rs")):
        n = len(path.read_text().splitlines())
        if n > MAX_LINES:
            problems.append(f"{path.relative_to(ROOT.parent)}: {n} lines (at most {MAX_LINES})")
    mods = modules()
    for a, b in cycles(mods):
        problems.append(f"module cycle: {a} <-> {b}")
    for code in codes():
        for path in sorted(ROOT.rglob("*.rs")):
            if path.name == "error.rs" and path.parent == ROOT:
                continue
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if f'"{code}"' in line and not line.strip().startswith("//") and ".field(" not in line and f'"{code}" =>' not in line:
                    problems.append(f"{path.relative_to(ROOT.parent)}:{i}: wire code {code!r} spelled outside src/error.rs")
    for p in problems:
        print(p)
    print(f"structure: {len(mods)} modules, {len(codes())} wire codes, {len(problems)} findings")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
