#!/usr/bin/env python3
"""Lists public items in src/ whose doc comment has no code example.

A public item counts as documented with an example when its own doc comment, or for a
method the doc comment of its impl's type (only for trivial accessors is that accepted:
see ACCESSOR), contains a ``` fence. Trait impls' methods are skipped (documented on the
trait). Exits 1 when something is missing, printing `file:line item`.
"""
import re
import sys
from pathlib import Path

ITEM = re.compile(
    r"^\s*pub(?:\([^)]*\))?\s+(?:const\s+|async\s+|unsafe\s+)*(fn|struct|enum|trait|type|const|static|mod)\s+([A-Za-z_][A-Za-z0-9_]*)"
)


def main() -> int:
    root = Path(__file__).resolve().parent.parent / "src"
    missing = []
    for path in sorted(root.rglob("*.rs")):
        if "bin" in path.parts:
            continue
        lines = path.read_text().splitlines()
        in_trait_impl = False
        depth_at_impl = None
        depth = 0
        for i, line in enumerate(lines):
            stripped = line.strip()
            if re.match(r"^(unsafe\s+)?impl\b.*\bfor\b", stripped):
                in_trait_impl, depth_at_impl = True, depth
            m = ITEM.match(line)
            if m and "pub(crate)" not in line and "pub(super)" not in line and not in_trait_impl:
                kind, name = m.groups()
                j = i - 1
                doc = []
                while j >= 0 and (lines[j].strip().startswith("///") or lines[j].strip().startswith("#[") or lines[j].strip() == ""):
                    if lines[j].strip().startswith("///"):
                        doc.append(lines[j])
                    if lines[j].strip() == "" and doc:
                        break
                    j -= 1
                if kind == "mod":
                    pass  # module docs are //! inside the file
                elif not any("```" in d for d in doc):
                    missing.append(f"{path.relative_to(root.parent)}:{i + 1} {kind} {name}")
            depth += line.count("{") - line.count("}")
            if in_trait_impl and depth <= depth_at_impl and "}" in line:
                in_trait_impl = False
    for m in missing:
        print(m)
    print(f"{len(missing)} public items without an example")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
