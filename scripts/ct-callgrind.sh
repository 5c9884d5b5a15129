#!/usr/bin/env bash
# Shows that a wrong signature costs the same work whichever byte differs, and that a
# hidden unknown client costs the same work as a known one, by counting the machine
# instructions executed inside `Verifier::finish` under valgrind's callgrind.
#
#   scripts/ct-callgrind.sh            # release build (what production runs)
#   PROFILE=dev scripts/ct-callgrind.sh
#
# Instruction counts are deterministic, unlike wall time: equal counts for a first-byte
# and a last-byte difference mean no early exit in the compare. Exits non-zero if they
# differ, or if the hidden unknown client differs from a known client by more than 2%.
# Needs valgrind; prints a notice and exits 0 without it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "ct-callgrind: valgrind not found; skipped"
    exit 0
fi

profile="${PROFILE:-release}"
flag=(--profile "$profile")
echo "== building the security tests ($profile)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if ! cargo test "${flag[@]}" --test security --no-run --message-format=json \
    >"$out/build.json" 2>"$out/build.log"; then
    cat "$out/build.log" >&2
    echo "ct-callgrind: build failed" >&2
    exit 1
fi
binary=$(python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "security" and m.get("executable"):
        print(m["executable"])' <"$out/build.json")
[ -x "$binary" ] || { echo "ct-callgrind: test binary not found" >&2; exit 1; }

count() {
    JG_CT_PROBE="$1" valgrind --tool=callgrind --callgrind-out-file="$out/$1.out" \
        --toggle-collect='jg_hmac::verifier::Verifier::finish*' \
        "$binary" --ignored --exact ct_probe --test-threads=1 >"$out/$1.log" 2>&1 ||
        { cat "$out/$1.log" >&2; exit 1; }
    grep -E '^(summary|totals):' "$out/$1.out" | head -1 | awk '{print $2}'
}

first=$(count first)
last=$(count last)
known=$(count known)
unknown=$(count unknown)
echo "instructions in Verifier::finish, wrong signature, first byte differs: $first"
echo "instructions in Verifier::finish, wrong signature, last byte differs:  $last"
echo "instructions in Verifier::finish, known client (hidden mode):           $known"
echo "instructions in Verifier::finish, unknown client (hidden mode, decoy):  $unknown"

status=0
if [ "$first" != "$last" ]; then
    echo "FAIL: the compare's work depends on where the signature differs" >&2
    status=1
fi
python3 - "$known" "$unknown" <<'PY' || status=1
import sys
known, unknown = map(int, sys.argv[1:])
ratio = unknown / known
print(f"unknown/known = {ratio:.4f}")
if abs(ratio - 1) > 0.02:
    sys.exit("FAIL: a hidden unknown client costs measurably different work")
PY
[ "$status" = 0 ] && echo "ct-callgrind: ok"
exit "$status"
