#!/usr/bin/env bash
# Fuzz smoke run: every target in fuzz/fuzz_targets/ for a bounded time each, from the
# seed corpus built out of test-vectors/. Fails on any crash, panic, failed invariant,
# timeout (>10 s for one input) or memory blow-up (>2 GiB).
#
#   scripts/fuzz-smoke.sh                          # 30 s per target
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh         # a longer run (10 min per target)
#   FUZZ_TARGETS="verify sign_verify" scripts/fuzz-smoke.sh
#   FUZZ_SECONDS=0 scripts/fuzz-smoke.sh           # skip (prints a notice)
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`); without them it
# prints a notice and exits 0, so CI machines without nightly skip it. A finding is saved
# under fuzz/artifacts/<target>/; replay it with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
# The corpus grows in fuzz/corpus/ (git-ignored) and is reused by the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
if [ "$seconds" = 0 ]; then
    echo "fuzz-smoke: FUZZ_SECONDS=0; skipped"
    exit 0
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz-smoke: no nightly toolchain (rustup toolchain install nightly); skipped"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: cargo-fuzz not installed (cargo install cargo-fuzz); skipped"
    exit 0
fi

# The fuzz crate builds in its own target dir, whatever the main crate uses.
target_dir="${FUZZ_TARGET_DIR:-fuzz/target}"
targets="${FUZZ_TARGETS:-$(basename -s .rs fuzz/fuzz_targets/*.rs | tr '\n' ' ')}"

python3 fuzz/seed-corpus.py fuzz/corpus
echo "== fuzz-smoke: building ($targets)"
cargo +nightly fuzz build --fuzz-dir fuzz --target-dir "$target_dir"

mkdir -p fuzz/artifacts
failed=()
for t in $targets; do
    echo "== fuzz-smoke: $t for ${seconds}s"
    mkdir -p "fuzz/corpus/$t"
    if cargo +nightly fuzz run --fuzz-dir fuzz --target-dir "$target_dir" "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=12000 \
        -print_final_stats=1 2>"fuzz/artifacts/$t.smoke.log"; then
        grep -E '^stat::number_of_executed_units|^Done' "fuzz/artifacts/$t.smoke.log" || true
        rm -f "fuzz/artifacts/$t.smoke.log"
    else
        tail -n 40 "fuzz/artifacts/$t.smoke.log" >&2
        echo "fuzz-smoke: $t FAILED (log: fuzz/artifacts/$t.smoke.log)" >&2
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz-smoke: FAILED: ${failed[*]} (findings, if any, in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "fuzz-smoke: ok"
