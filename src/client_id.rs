//! Client ids: the one syntax rule every part of the crate applies to them, and the
//! environment their prefix names.

use core::fmt;
use core::str::FromStr;

use crate::swar::is_visible_ascii;

/// Longest client id (SPEC.md §1): 128 bytes.
pub(crate) const MAX_LEN: usize = 128;

/// Whether `id` has the syntax of a client id: 1 to `max_len` bytes of visible ASCII
/// (`0x21`–`0x7E`). The verifier (with [`Limits::max_client_id_len`](crate::Limits)), the
/// signer, the credential stores' lookups and the audit log all apply this rule.
pub(crate) fn is_well_formed(id: &[u8], max_len: usize) -> bool {
    !id.is_empty() && id.len() <= max_len && is_visible_ascii(id)
}

/// The environment a client id belongs to, read from its prefix: `jk_live_…` or
/// `jk_test_…`. Parsed from and printed as `live` or `test`.
///
/// A verifying layer set to one environment accepts only client ids of it: a sandbox
/// key sent to the live service is refused as `client_id` before any lookup.
///
/// ```
/// use jg_hmac::Environment;
/// assert_eq!(Environment::of("jk_live_example"), Some(Environment::Live));
/// assert_eq!(Environment::of("jk_test_example"), Some(Environment::Test));
/// assert_eq!(Environment::of("partner-7"), None);
/// assert_eq!("test".parse::<Environment>(), Ok(Environment::Test));
/// assert_eq!(Environment::Live.to_string(), "live");
/// assert_eq!(Environment::Test.prefix(), "jk_test_");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Environment {
    /// Production: client ids starting with `jk_live_`.
    Live,
    /// Sandbox: client ids starting with `jk_test_`.
    Test,
}

impl Environment {
    /// The environment of a client id, if its prefix names one.
    ///
    /// ```
    /// assert!(jg_hmac::Environment::of("jk_live_").is_some());
    /// ```
    pub fn of(client_id: &str) -> Option<Self> {
        [Self::Live, Self::Test]
            .into_iter()
            .find(|env| client_id.starts_with(env.prefix()))
    }

    /// The client id prefix of this environment.
    ///
    /// ```
    /// assert_eq!(jg_hmac::Environment::Live.prefix(), "jk_live_");
    /// ```
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::Live => "jk_live_",
            Self::Test => "jk_test_",
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an [`Environment`]: the text was neither `live` nor `test`.
///
/// ```
/// let err = "prod".parse::<jg_hmac::Environment>().unwrap_err();
/// assert_eq!(err.to_string(), "environment is not one of: live, test");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownEnvironment;

impl fmt::Display for UnknownEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("environment is not one of: live, test")
    }
}

impl std::error::Error for UnknownEnvironment {}

impl FromStr for Environment {
    type Err = UnknownEnvironment;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Live, Self::Test]
            .into_iter()
            .find(|env| env.name() == s)
            .ok_or(UnknownEnvironment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule() {
        assert!(is_well_formed(b"jk_live_a", MAX_LEN));
        assert!(is_well_formed(&[b'a'; MAX_LEN], MAX_LEN));
        assert!(!is_well_formed(&[b'a'; MAX_LEN + 1], MAX_LEN));
        assert!(!is_well_formed(b"", MAX_LEN));
        assert!(!is_well_formed(b"a b", MAX_LEN));
        assert!(!is_well_formed("é".as_bytes(), MAX_LEN));
    }

    #[test]
    fn names_round_trip() {
        for env in [Environment::Live, Environment::Test] {
            assert_eq!(env.to_string().parse(), Ok(env));
            assert_eq!(Environment::of(&format!("{}x", env.prefix())), Some(env));
        }
        assert_eq!("prod".parse::<Environment>(), Err(UnknownEnvironment));
    }
}
