#!/usr/bin/env bash
# Lists the crate's public items with every feature on: one line per rustdoc item page
# (struct, enum, trait, fn, constant, type alias, macro), redirect pages left out, then
# their count. `scripts/public-items.sh --check N` fails when there are more than N, or
# when docs/api.md does not name one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTDOCFLAGS="${RUSTDOCFLAGS:-}" cargo doc --no-deps --all-features --quiet
doc="${CARGO_TARGET_DIR:-target}/doc/jg_hmac"
items=$(find "$doc" -name '*.html' | grep -E '/(struct|enum|trait|fn|constant|type|macro|static|union)\.' \
  | while read -r page; do grep -q 'Redirecting to' "$page" || echo "${page#"$doc"/}"; done | sort)
if [ "${1:-}" = "--check" ]; then
  count=$(printf '%s\n' "$items" | grep -c .)
  echo "public items: $count (at most ${2:?})"
  status=0
  [ "$count" -le "$2" ] || status=1
  # Every item is listed in docs/api.md with its job.
  for name in $(printf '%s\n' "$items" | sed 's|.*\.\([A-Za-z_0-9]*\)\.html|\1|'); do
    if ! grep -qE "\`([a-z_]+::)*$name\`" docs/api.md; then
      echo "docs/api.md does not list $name"
      status=1
    fi
  done
  exit "$status"
else
  printf '%s\n' "$items"
  printf '%s\n' "$items" | grep -c .
fi
