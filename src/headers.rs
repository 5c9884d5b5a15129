//! The authentication headers, gathered from any header collection (SPEC-NOTES §1).

use core::fmt;

/// `X-Client-Id`: the partner's public client id.
pub const CLIENT_ID: &str = "X-Client-Id";
/// `X-Access-Key`: the seed's examples' name for the client id, accepted as an alias.
pub const ACCESS_KEY: &str = "X-Access-Key";
/// `X-Timestamp`: UNIX time in seconds, as signed.
pub const TIMESTAMP: &str = "X-Timestamp";
/// `X-Signature`: 64 hex digits of HMAC-SHA256.
pub const SIGNATURE: &str = "X-Signature";

/// What was seen of one header name.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Slot<'a> {
    #[default]
    Absent,
    One(&'a [u8]),
    /// Seen more than once: malformed, whatever the copies say.
    Repeated,
}

impl<'a> Slot<'a> {
    fn push(&mut self, value: &'a [u8]) {
        *self = match self {
            Self::Absent => Self::One(value),
            Self::One(_) | Self::Repeated => Self::Repeated,
        };
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::One(_) => "present",
            Self::Repeated => "repeated",
        }
    }
}

/// The headers that JG-HMAC-SHA256 reads, collected from a request without copying.
///
/// Names match case-insensitively; every occurrence is counted, so a repeated header is
/// detected rather than one copy silently picked. Other headers are ignored. Fill it from
/// an [`http::HeaderMap`] with [`AuthHeaders::from_header_map`], or from any list of
/// `(name, value)` byte pairs.
///
/// `Debug` says which headers are present, never their values.
///
/// ```
/// use jg_hmac::AuthHeaders;
/// let headers = AuthHeaders::from_pairs([
///     (&b"x-access-key"[..], &b"jk_live_example"[..]),
///     (b"X-Timestamp", b"1735550160"),
///     (b"Accept", b"*/*"),
/// ]);
/// assert!(format!("{headers:?}").contains("timestamp: \"present\""));
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthHeaders<'a> {
    pub(crate) client_id: Slot<'a>,
    pub(crate) access_key: Slot<'a>,
    pub(crate) timestamp: Slot<'a>,
    pub(crate) signature: Slot<'a>,
    pub(crate) content_type: Slot<'a>,
}

impl<'a> AuthHeaders<'a> {
    /// No headers seen yet.
    ///
    /// ```
    /// let mut headers = jg_hmac::AuthHeaders::new();
    /// headers.push(b"X-Signature", b"00");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one header line. Unrelated names are ignored.
    ///
    /// ```
    /// let mut headers = jg_hmac::AuthHeaders::new();
    /// headers.push(b"x-timestamp", b"1");
    /// headers.push(b"X-TIMESTAMP", b"2"); // now repeated: rejected as malformed
    /// ```
    pub fn push(&mut self, name: &[u8], value: &'a [u8]) {
        let slot = if name.eq_ignore_ascii_case(CLIENT_ID.as_bytes()) {
            &mut self.client_id
        } else if name.eq_ignore_ascii_case(ACCESS_KEY.as_bytes()) {
            &mut self.access_key
        } else if name.eq_ignore_ascii_case(TIMESTAMP.as_bytes()) {
            &mut self.timestamp
        } else if name.eq_ignore_ascii_case(SIGNATURE.as_bytes()) {
            &mut self.signature
        } else if name.eq_ignore_ascii_case(b"content-type") {
            &mut self.content_type
        } else {
            return;
        };
        slot.push(value);
    }

    /// Collects from `(name, value)` pairs, in order, repeats included.
    ///
    /// ```
    /// let headers = jg_hmac::AuthHeaders::from_pairs([(&b"X-Client-Id"[..], &b"jk_live_example"[..])]);
    /// assert_ne!(headers, jg_hmac::AuthHeaders::new());
    /// ```
    pub fn from_pairs<I, N>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (N, &'a [u8])>,
        N: AsRef<[u8]>,
    {
        let mut headers = Self::new();
        for (name, value) in pairs {
            headers.push(name.as_ref(), value);
        }
        headers
    }

    /// Collects from an [`http::HeaderMap`], looking each name up rather than scanning.
    ///
    /// ```
    /// let mut map = http::HeaderMap::new();
    /// map.insert("x-client-id", http::HeaderValue::from_static("jk_live_example"));
    /// let headers = jg_hmac::AuthHeaders::from_header_map(&map);
    /// assert!(format!("{headers:?}").contains("client_id: \"present\""));
    /// ```
    pub fn from_header_map(map: &'a http::HeaderMap) -> Self {
        let mut headers = Self::new();
        for (name, slot) in [
            ("x-client-id", &mut headers.client_id),
            ("x-access-key", &mut headers.access_key),
            ("x-timestamp", &mut headers.timestamp),
            ("x-signature", &mut headers.signature),
            ("content-type", &mut headers.content_type),
        ] {
            for value in map.get_all(name) {
                slot.push(value.as_bytes());
            }
        }
        headers
    }
}

impl fmt::Debug for AuthHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthHeaders")
            .field("client_id", &self.client_id.describe())
            .field("access_key", &self.access_key.describe())
            .field("timestamp", &self.timestamp.describe())
            .field("signature", &self.signature.describe())
            .field("content_type", &self.content_type.describe())
            .finish()
    }
}

/// Whether every byte is visible ASCII (0x21–0x7E): no spaces, controls or non-ASCII.
pub(crate) fn is_visible_ascii(value: &[u8]) -> bool {
    value.iter().all(|b| (0x21..=0x7e).contains(b))
}
