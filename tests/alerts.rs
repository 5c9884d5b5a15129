//! The alert rules shipped in `docs/alerts/`: `promtool` checks them and runs their unit
//! tests (one case where each rule fires, one where it does not), and every metric they
//! use is one the crate exports.
//!
//! Without `promtool` on the `PATH`, the promtool test prints `SKIPPED` and passes;
//! with `CI` set it fails instead (`.ci/run` installs Debian's `prometheus` package).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn alerts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/alerts")
}

fn promtool() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("promtool"))
        .find(|candidate| candidate.is_file())
}

#[test]
fn promtool_checks_the_rules_and_runs_their_tests() {
    let Some(promtool) = promtool() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is required in CI (Debian package `prometheus`)"
        );
        eprintln!("SKIPPED: promtool not installed");
        return;
    };
    for args in [
        ["check", "rules", "jg-hmac.rules.yml"],
        ["test", "rules", "jg-hmac.rules.test.yml"],
    ] {
        let output = Command::new(&promtool)
            .args(args)
            .current_dir(alerts_dir())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_rules_use_only_metrics_the_crate_exports() {
    use jg_hmac::metrics::*;
    let exported = [
        REQUESTS_TOTAL,
        CLIENT_REQUESTS_TOTAL,
        CLOCK_SKEW_SECONDS,
        KEY_USED_TOTAL,
        VERIFY_SECONDS,
        REPLAY_GUARD_ENTRIES,
        REPLAY_GUARD_CAPACITY,
        REPLAY_GUARD_ERRORS_TOTAL,
        STORE_LOOKUP_SECONDS,
        STORE_ERRORS_TOTAL,
        CREDENTIALS_STALENESS_SECONDS,
    ];
    let rules = std::fs::read_to_string(alerts_dir().join("jg-hmac.rules.yml")).unwrap();
    let mut used = 0;
    for (at, _) in rules.match_indices("jg_hmac_") {
        let name: String = rules[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| exported.contains(base))
            .unwrap_or(&name);
        assert!(
            exported.contains(&base),
            "{name} is not exported by the crate"
        );
        used += 1;
    }
    assert!(used >= 8, "the rules name {used} metrics");
    // The skew rule reads the ±120 s buckets.
    assert!(CLOCK_SKEW_BUCKETS.contains(&-120.0) && CLOCK_SKEW_BUCKETS.contains(&120.0));
}
