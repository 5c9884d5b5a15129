//! Client ids, key ids, scopes and new secrets.

use zeroize::Zeroizing;

use crate::Environment;

use super::PgError;

/// Longest client id, key id or scope accepted.
pub(crate) const MAX_ID_LEN: usize = 128;

/// Random characters after the `jk_live_`/`jk_test_` prefix of a generated client id:
/// 26 characters of a 32-letter alphabet, 130 random bits.
const CLIENT_ID_RANDOM_CHARS: usize = 26;

/// Lowercase letters and digits 2–7: URL-safe, case-insensitive, unambiguous (RFC 4648
/// base32 alphabet, lowercased).
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Whether `id` may be a client id: 1 to 128 characters among ASCII letters, digits,
/// `_`, `-` and `.`. Lookups of anything else are answered "unknown" without a query.
///
/// ```
/// use jg_hmac::postgres::is_valid_client_id;
/// assert!(is_valid_client_id("jk_live_abc123"));
/// assert!(!is_valid_client_id("jk_live_x'; DROP TABLE keys; --"));
/// assert!(!is_valid_client_id(""));
/// ```
pub fn is_valid_client_id(id: &str) -> bool {
    is_token(id)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Checks a client id given for a new client of `environment`.
pub(crate) fn check_new_client_id(id: &str, environment: Environment) -> Result<(), PgError> {
    if !is_valid_client_id(id) {
        return Err(PgError::InvalidInput(format!(
            "client id {:?} is not valid: 1 to {MAX_ID_LEN} characters among ASCII \
             letters, digits, '_', '-' and '.'",
            truncate(id)
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

/// Checks a client id named by an operator (revoke, rotate, list).
pub(crate) fn check_client_id(id: &str) -> Result<(), PgError> {
    check_token("client id", id)
}

/// Checks a key id named by an operator.
pub(crate) fn check_key_id(id: &str) -> Result<(), PgError> {
    check_token("key id", id)
}

/// Client and key ids: 1 to 128 of `[A-Za-z0-9_.-]`, so they are safe in logs and SQL
/// parameters alike.
fn check_token(what: &str, id: &str) -> Result<(), PgError> {
    if is_token(id) {
        Ok(())
    } else {
        Err(PgError::InvalidInput(format!(
            "{what} {:?} is not valid: 1 to {MAX_ID_LEN} characters among ASCII letters, \
             digits, '_', '-' and '.'",
            truncate(id)
        )))
    }
}

/// Checks a scope: 1 to 128 printable ASCII characters, no spaces.
pub(crate) fn check_scope(scope: &str) -> Result<(), PgError> {
    if !scope.is_empty() && scope.len() <= MAX_ID_LEN && scope.bytes().all(|b| b.is_ascii_graphic())
    {
        Ok(())
    } else {
        Err(PgError::InvalidInput(format!(
            "scope {:?} is not valid: 1 to {MAX_ID_LEN} printable ASCII characters without spaces",
            truncate(scope)
        )))
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
///
/// # Errors
/// [`PgError::Random`] when the operating system's generator fails.
///
/// ```
/// use jg_hmac::Environment;
/// let id = jg_hmac::postgres::new_client_id(Environment::Live).unwrap();
/// assert!(id.starts_with("jk_live_") && id.len() == 8 + 26);
/// ```
pub fn new_client_id(environment: Environment) -> Result<String, PgError> {
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
        assert!(check_new_client_id(&a, Environment::Test).is_ok());
        assert!(check_new_client_id(&a, Environment::Live).is_err());
        assert!(check_new_client_id("jk_test_", Environment::Test).is_err());
        assert!(is_valid_client_id(&new_key_id().unwrap()));
        let s = new_secret_hex().unwrap();
        assert_eq!(s.len(), 64);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn rejects() {
        assert!(!is_valid_client_id(&"a".repeat(129)));
        assert!(!is_valid_client_id("jk_live_é"));
        assert!(check_scope("a b").is_err());
        assert!(check_scope("transactions:write").is_ok());
        assert!(check_key_id("k\n").is_err());
    }
}
