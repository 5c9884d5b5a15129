//! The typical mistakes other than the query's, each a rewrite of the right lines the way
//! the mistaken signer would have built them; `None` when the rewrite does not reproduce
//! the sent signature.

use crate::DEFAULT_WINDOW;
use crate::secret::{KeyedMac, Secret};
use crate::signature::{BodyHasher, ContentHash};

use super::Diagnosis;
use super::search::{Lines, Search, mac};

/// The most leading path segments dropped one after the other for `path_prefix`.
const MAX_PREFIX_SEGMENTS: usize = 32;

/// Line 3 signed as sent, lowercase.
pub(super) fn method(s: &Search<'_>) -> Option<Diagnosis> {
    let lower = s.method.to_ascii_lowercase();
    let lines = Lines {
        method: lower.as_bytes(),
        ..s.lines
    };
    s.signed_variant(&lines, lower.as_bytes(), s.lines.method)
        .then_some(Diagnosis::MethodLowercase)
}

/// Percent-decoded, with a trailing slash more or less, or without leading segments.
pub(super) fn path(s: &Search<'_>) -> Option<Diagnosis> {
    let path = s.lines.path;
    let with_path = |path| Lines { path, ..s.lines };
    let decoded: Vec<u8> = percent_encoding::percent_decode(path).collect();
    if s.signed_variant(&with_path(&decoded), &decoded, path) {
        return Some(Diagnosis::PathDecoded);
    }
    let with_slash = [path, b"/"].concat();
    if !path.ends_with(b"/") && s.signed(&with_path(&with_slash)) {
        return Some(Diagnosis::PathTrailingSlash { added: true });
    }
    if let Some(without) = path.strip_suffix(b"/")
        && !without.is_empty()
        && s.signed(&with_path(without))
    {
        return Some(Diagnosis::PathTrailingSlash { added: false });
    }
    let slashes = path
        .iter()
        .enumerate()
        .skip(1)
        .filter(|&(_, &b)| b == b'/')
        .map(|(i, _)| i)
        .take(MAX_PREFIX_SEGMENTS);
    for (n, at) in slashes.enumerate() {
        if s.signed(&with_path(path.get(at..).unwrap_or_default())) {
            return Some(Diagnosis::PathPrefix {
                segments: n + 1,
                prefix_len: at,
            });
        }
    }
    None
}

/// The empty body's hash, or the hash of the body with a trailing newline more or less.
pub(super) fn body(s: &Search<'_>) -> Option<Diagnosis> {
    let signed_hash = |hash: &ContentHash| {
        let hex = hash.to_string();
        s.signed(&Lines {
            hash: hex.as_bytes(),
            ..s.lines
        })
    };
    if !s.body.is_empty() && signed_hash(&ContentHash::EMPTY) {
        return Some(Diagnosis::BodyHashEmpty);
    }
    body_newline_variants(s.body)
        .into_iter()
        .find(|(hash, _)| signed_hash(hash))
        .map(|(_, added)| Diagnosis::BodyTrailingNewline { added })
}

/// The body hashes of one trailing newline more or less: `(hash, added)`.
fn body_newline_variants(body: &[u8]) -> Vec<(ContentHash, bool)> {
    let with = |suffix: &[u8]| {
        let mut hasher = BodyHasher::new();
        hasher.update(body);
        hasher.update(suffix);
        hasher.finish()
    };
    let mut out = vec![(with(b"\n"), true), (with(b"\r\n"), true)];
    if let Some(shorter) = body.strip_suffix(b"\n") {
        out.push((ContentHash::of(shorter), false));
        if let Some(shorter) = shorter.strip_suffix(b"\r") {
            out.push((ContentHash::of(shorter), false));
        }
    }
    out
}

/// The string-to-sign's layout: CRLF line ends, the published example's indentation, a
/// final newline.
pub(super) fn layout(s: &Search<'_>) -> Option<Diagnosis> {
    let lines = s.lines;
    if s.signs(&lines.join(b"\r\n")) {
        return Some(Diagnosis::CrlfNewlines);
    }
    let indented_query = [&b" "[..], lines.query].concat();
    let indented_hash = [&b" "[..], lines.hash].concat();
    let published = Lines {
        query: &indented_query,
        hash: &indented_hash,
        ..lines
    };
    if s.signed(&published) || s.signs(&lines.join(b"\n ")) {
        return Some(Diagnosis::IndentedLines);
    }
    let right = lines.join(b"\n");
    if s.signs(&[&right[..], b"\n"].concat()) || s.signs(&[&right[..], b"\r\n"].concat()) {
        return Some(Diagnosis::StringTrailingNewline);
    }
    None
}

/// The right string signed with the secret plus whitespace, or trimmed.
pub(super) fn secret(s: &Search<'_>) -> Option<Diagnosis> {
    let right = s.lines.join(b"\n");
    s.secret
        .into_iter()
        .flat_map(|secret| secret_variants(secret.expose_secret()))
        .any(|variant| mac(&KeyedMac::new(&variant), &right) == s.sent)
        .then_some(Diagnosis::SecretWhitespace)
}

/// The secret with a trailing newline, with surrounding spaces, or trimmed.
fn secret_variants(secret: &[u8]) -> Vec<Secret> {
    let around = |before: &[u8], after: &[u8]| Secret::from([before, secret, after].concat());
    let mut out = vec![
        around(b"", b"\n"),
        around(b"", b"\r\n"),
        around(b"", b" "),
        around(b" ", b""),
        around(b" ", b" "),
    ];
    let trimmed = secret.trim_ascii();
    if trimmed.len() != secret.len() && !trimmed.is_empty() {
        out.push(Secret::new(trimmed));
    }
    out
}

/// Another timestamp: the sent one without its leading zeros, then the nearest first,
/// within the default window (at most 601 HMACs).
pub(super) fn timestamp(s: &Search<'_>) -> Option<Diagnosis> {
    let sent = s.timestamp;
    let signed_at = |text: &str| {
        s.signed(&Lines {
            timestamp: text.as_bytes(),
            ..s.lines
        })
    };
    let reformatted = sent.to_string();
    if reformatted.as_bytes() != s.lines.timestamp && signed_at(&reformatted) {
        return Some(Diagnosis::TimestampDiffers {
            signed: sent,
            offset: 0,
        });
    }
    for distance in 1..=DEFAULT_WINDOW {
        let offset = i64::try_from(distance).unwrap_or(i64::MAX);
        let candidates = [
            sent.checked_sub(distance).map(|t| (t, -offset)),
            sent.checked_add(distance).map(|t| (t, offset)),
        ];
        for (signed, offset) in candidates.into_iter().flatten() {
            if signed_at(&signed.to_string()) {
                return Some(Diagnosis::TimestampDiffers { signed, offset });
            }
        }
    }
    None
}
