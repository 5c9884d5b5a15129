#!/usr/bin/env bash
# Instructions per `verify/get`, `floor/get`, `verify/post_41b` and `floor/post_41b` (the
# hot-path bench's IDs), counted by callgrind: a figure that, unlike a time, does not move
# with the machine's load.
#
#   scripts/callgrind.sh [iterations]      (default 20000)
#
# Builds the `callgrind` bench target (benches/callgrind.rs, bench profile), runs each
# probe under `valgrind --tool=callgrind`, collecting only inside the measured loop
# (`--toggle-collect`), and prints instructions per operation and their ratio.
# Needs valgrind. Note: valgrind's virtual CPU has no SHA extensions, so sha2 takes its
# portable path here; the instruction counts of SHA-256 are those of that path.
set -euo pipefail
cd "$(dirname "$0")/.."

iterations="${1:-20000}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

probe="$(cargo bench --bench callgrind --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "callgrind" and msg.get("executable"):
        print(msg["executable"])
')"
[ -x "$probe" ] || { echo "could not build the callgrind probe" >&2; exit 1; }

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

count() { # $1: probe name, $2: function whose inclusive cost is counted
    valgrind --tool=callgrind --callgrind-out-file="$out/$1.out" \
        --toggle-collect="$2" "$probe" "$1" "$iterations" >/dev/null 2>"$out/$1.log" ||
        { cat "$out/$1.log" >&2; exit 1; }
    # The "summary:" line holds the total of the collected events (Ir only by default).
    sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out/$1.out"
}

verify_get="$(count verify-get '*run_verify*')"
floor_get="$(count floor-get '*run_floor*')"
verify_post="$(count verify-post_41b '*run_verify*')"
floor_post="$(count floor-post_41b '*run_floor*')"

python3 - "$iterations" "$verify_get" "$floor_get" "$verify_post" "$floor_post" <<'PY'
import sys
n, vg, fg, vp, fp = (int(x) for x in sys.argv[1:6])
print(f"iterations: {n}")
print(f"{'':16} {'verify':>9} {'floor':>9} {'ratio':>7} {'beyond floor':>13}")
for name, v, f in (("get", vg, fg), ("post_41b", vp, fp)):
    print(f"{name:16} {v / n:9.0f} {f / n:9.0f} {v / f:7.3f} {(v - f) / n:13.0f}")
print("(instructions per operation; verify/get hashes no body, its hash being a constant,")
print(" so it skips one SHA-256 compression that floor/get runs: post_41b is the fair figure)")
PY
