#!/usr/bin/env bash
# Lists the crate's public items with every feature on: one line per rustdoc item page
# (struct, enum, trait, fn, constant, type alias, macro), redirect pages left out, then
# their count. `scripts/public-items.sh --check N` fails when there are more than N.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTDOCFLAGS="${RUSTDOCFLAGS:-}" cargo doc --no-deps --all-features --quiet
doc="${CARGO_TARGET_DIR:-target}/doc/jg_hmac"
items=$(find "$doc" -name '*.html' | grep -E '/(struct|enum|trait|fn|constant|type|macro|static|union)\.' \
  | while read -r page; do grep -q 'Redirecting to' "$page" || echo "${page#"$doc"/}"; done | sort)
if [ "${1:-}" = "--check" ]; then
  count=$(printf '%s\n' "$items" | grep -c .)
  echo "public items: $count (at most ${2:?})"
  [ "$count" -le "$2" ]
else
  printf '%s\n' "$items"
  printf '%s\n' "$items" | grep -c .
fi
