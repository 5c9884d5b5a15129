//! Checks of the ids and scopes the operator's calls take, the issuance policy for new
//! client ids, and new key ids and secrets.
//!
//! Two rules, on purpose:
//! - A client id that names an *existing* client (a lookup, a revocation, a rotation, a
//!   listing) is checked with the crate's one syntax rule,
//!   [`is_well_formed`](crate::client_id::is_well_formed): 1 to 128 bytes of visible ASCII
//!   (SPEC.md §1).
//! - The *issuance policy* is stricter: a client id this store hands out or accepts for
//!   a new client is 1 to 128 characters among ASCII letters, digits, `_`, `-` and `.`,
//!   and starts with its environment's prefix (`jk_live_`, `jk_test_`), so that every id
//!   issued here is safe in URLs, shells and logs as it is. Key ids follow the same
//!   character rule.

use zeroize::Zeroizing;

use crate::Environment;
use crate::client_id::{self, is_well_formed};

use super::error::PgError;

/// Longest key id or scope accepted.
const MAX_TOKEN_LEN: usize = 128;

/// Random characters after the `jk_live_`/`jk_test_` prefix of a generated client id:
/// 26 characters of a 32-letter alphabet, 130 random bits.
const CLIENT_ID_RANDOM_CHARS: usize = 26;

/// Lowercase letters and digits 2–7: URL-safe, case-insensitive, unambiguous (RFC 4648
/// base32 alphabet, lowercased).
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The issuance policy's characters: 1 to `max_len` of `[A-Za-z0-9_.-]`.
fn is_token(s: &str, max_len: usize) -> bool {
    !s.is_empty()
        && s.len() <= max_len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Checks a client id given for a new client of `environment` (the issuance policy).
pub(crate) fn check_new_client_id(id: &str, environment: Environment) -> Result<(), PgError> {
    if !is_token(id, client_id::MAX_LEN) {
        return Err(PgError::InvalidInput(format!(
            "client id {:?} is not valid for a new client: 1 to {} characters among ASCII \
             letters, digits, '_', '-' and '.'",
            truncate(id),
            client_id::MAX_LEN
        )));
    }
    if Environment::of(id) != Some(environment) {
        return Err(PgError::InvalidInput(format!(
            "client id {:?} does not start with {:?}, the prefix of environment {}",
            truncate(id),
            environment.prefix(),
            environment
        )));
    }
    if id.len() == environment.prefix().len() {
        return Err(PgError::InvalidInput(
            "client id has nothing after its environment prefix".to_owned(),
        ));
    }
    Ok(())
}

/// Checks a client id named by an operator (revoke, rotate, list): the crate's one
/// client-id rule.
pub(crate) fn check_client_id(id: &str) -> Result<(), PgError> {
    if is_well_formed(id.as_bytes(), client_id::MAX_LEN) {
        Ok(())
    } else {
        Err(PgError::InvalidInput(format!(
            "client id {:?} is not valid: 1 to {} bytes of visible ASCII",
            truncate(id),
            client_id::MAX_LEN
        )))
    }
}

/// Checks a key id named by an operator: the issuance policy's characters, as every key
/// id was issued by this store.
pub(crate) fn check_key_id(id: &str) -> Result<(), PgError> {
    if is_token(id, MAX_TOKEN_LEN) {
        Ok(())
    } else {
        Err(PgError::InvalidInput(format!(
            "key id {:?} is not valid: 1 to {MAX_TOKEN_LEN} characters among ASCII letters, \
             digits, '_', '-' and '.'",
            truncate(id)
        )))
    }
}

/// Checks a scope: 1 to 128 characters among ASCII letters, digits and `:`, `.`, `_`,
/// `/`, `-` (docs/postgres.md). No `,` (listings join scopes with it) and no whitespace.
pub(crate) fn check_scope(scope: &str) -> Result<(), PgError> {
    if !scope.is_empty()
        && scope.len() <= MAX_TOKEN_LEN
        && scope
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'/' | b'-'))
    {
        Ok(())
    } else {
        Err(PgError::InvalidInput(format!(
            "scope {:?} is not valid: 1 to {MAX_TOKEN_LEN} characters among ASCII letters, \
             digits and ':', '.', '_', '/', '-'",
            truncate(scope)
        )))
    }
}

/// Longest rotation overlap: 3650 days.
const MAX_OVERLAP_SECS: u64 = 3650 * 86_400;

/// Checks a rotation overlap (at most 3650 days; PostgreSQL's intervals overflow long
/// before `u64::MAX` seconds) and returns its whole seconds.
pub(crate) fn check_overlap(overlap: std::time::Duration) -> Result<i64, PgError> {
    let secs = overlap.as_secs();
    match i64::try_from(secs) {
        Ok(secs_i64) if secs <= MAX_OVERLAP_SECS => Ok(secs_i64),
        _ => Err(PgError::InvalidInput(format!(
            "rotation overlap of {secs} s is over the maximum, {MAX_OVERLAP_SECS} s (3650 days)"
        ))),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn random_chars(n: usize) -> Result<String, PgError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| PgError::Random(e.to_string()))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET.get(usize::from(b & 31)).copied().unwrap_or(b'a')))
        .collect())
}

/// A new client id of `environment`: its prefix and 26 random characters (130 bits).
pub(crate) fn new_client_id(environment: Environment) -> Result<String, PgError> {
    Ok(format!(
        "{}{}",
        environment.prefix(),
        random_chars(CLIENT_ID_RANDOM_CHARS)?
    ))
}

/// A new key id: `k_` and 16 random characters (not secret; it names the key).
pub(crate) fn new_key_id() -> Result<String, PgError> {
    Ok(format!("k_{}", random_chars(16)?))
}

/// A new secret: 256 bits from the operating system's generator, as 64 lowercase hex
/// digits. The partner signs with the UTF-8 bytes of this text (SPEC.md §8), so these
/// are the bytes stored (encrypted) and keyed.
pub(crate) fn new_secret_hex() -> Result<Zeroizing<String>, PgError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut bytes[..]).map_err(|e| PgError::Random(e.to_string()))?;
    Ok(Zeroizing::new(hex::encode(&bytes[..])))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generated_ids() {
        let a = new_client_id(Environment::Test).unwrap();
        let b = new_client_id(Environment::Test).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("jk_test_") && a.len() == 8 + CLIENT_ID_RANDOM_CHARS);
        assert!(check_new_client_id(&a, Environment::Test).is_ok());
        assert!(check_new_client_id(&a, Environment::Live).is_err());
        assert!(check_new_client_id("jk_test_", Environment::Test).is_err());
        assert!(check_key_id(&new_key_id().unwrap()).is_ok());
        let s = new_secret_hex().unwrap();
        assert_eq!(s.len(), 64);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn issuance_is_stricter_than_naming() {
        // Named (an existing client): the crate's one rule, visible ASCII.
        assert!(check_client_id("jk_live_a:b").is_ok());
        assert!(check_client_id("jk_live_x'; DROP TABLE keys; --").is_err()); // a space
        assert!(check_client_id("").is_err());
        assert!(check_client_id(&"a".repeat(129)).is_err());
        assert!(check_client_id("jk_live_é").is_err());
        // Issued: letters, digits, '_', '-', '.'.
        assert!(check_new_client_id("jk_live_a:b", Environment::Live).is_err());
        assert!(check_new_client_id("jk_live_a.b-c_d", Environment::Live).is_ok());
    }

    #[test]
    fn rejects() {
        assert!(check_scope("a b").is_err());
        assert!(check_scope("transactions:write").is_ok());
        assert!(check_scope("orders/v2:read-all_x.y").is_ok());
        for bad in [
            "a,b",
            "a\tb",
            "",
            "caf\u{e9}",
            "a*",
            "a;b",
            &"a".repeat(129),
        ] {
            let e = check_scope(bad).unwrap_err().to_string();
            assert!(e.contains("':', '.', '_', '/', '-'"), "{e}");
        }
        assert!(check_scope(&"a".repeat(128)).is_ok());
        assert!(
            check_scope("a\nb")
                .unwrap_err()
                .to_string()
                .contains("\"a\\nb\"")
        );
        assert_eq!(
            check_overlap(std::time::Duration::from_secs(315_360_000)).unwrap(),
            315_360_000
        );
        for over in [315_360_001, u64::MAX] {
            let e = check_overlap(std::time::Duration::from_secs(over))
                .unwrap_err()
                .to_string();
            assert!(e.contains("maximum, 315360000 s"), "{e}");
        }
        assert!(check_key_id("k\n").is_err());
    }
}
