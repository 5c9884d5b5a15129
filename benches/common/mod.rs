//! What the benches share: the floor's computation, and reading the medians that criterion
//! wrote during this run.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Median of one bench ID from criterion's files, if this run wrote them.
pub fn median_ns(dir: &Path, id: &str, since: SystemTime) -> Option<f64> {
    // Criterion names a bench's folder after its ID with `/` replaced by `_`.
    let path = dir
        .join(id.replace('/', "_"))
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("median")?.get("point_estimate")?.as_f64()
}

/// Where criterion writes its files (its own rule: `CRITERION_HOME`, else the cargo
/// target directory's `criterion/`).
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// HMAC-SHA256 of `string_to_sign` from a pre-keyed state, cloned per call.
#[inline(always)]
pub fn keyed_hmac(mac: &Hmac<Sha256>, string_to_sign: &[u8]) -> [u8; 32] {
    mac.clone()
        .chain_update(black_box(string_to_sign))
        .finalize()
        .into_bytes()
        .into()
}

/// The floor: SHA-256 of the body and the keyed HMAC of the string-to-sign, nothing else.
#[inline(always)]
pub fn floor(mac: &Hmac<Sha256>, string_to_sign: &[u8], body: &[u8]) -> ([u8; 32], [u8; 32]) {
    let content: [u8; 32] = Sha256::digest(black_box(body)).into();
    (content, keyed_hmac(mac, string_to_sign))
}
