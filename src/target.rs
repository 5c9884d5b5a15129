//! Splitting a request-target into the signed path and the raw query (SPEC.md §4).

/// The path and raw query of a request, as they appear in its request-target.
///
/// The path is signed byte for byte as sent: still percent-encoded, no dot-segment
/// removal, no slash merging, case kept; an empty path is `/`. An absolute-form target
/// (`https://host/p?q`) contributes its path only. Normalising here would let a signer and
/// a verifier disagree about what was signed, a classic source of signature bypasses.
///
/// ```
/// use jg_hmac::Target;
/// let t = Target::parse("/v1/ping?z=two&a=hello#frag");
/// assert_eq!(t.path(), b"/v1/ping");
/// assert_eq!(t.query(), b"z=two&a=hello");
///
/// let abs = Target::parse("https://api.justgold.me/v1/./a%2Fb?x=1");
/// assert_eq!(abs.path(), b"/v1/./a%2Fb");
/// assert_eq!(Target::parse("https://api.justgold.me").path(), b"/");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    path: &'a [u8],
    query: &'a [u8],
}

impl<'a> Target<'a> {
    /// Splits a request-target (origin-form, absolute-form or `*`).
    ///
    /// ```
    /// assert_eq!(jg_hmac::Target::parse("").path(), b"/");
    /// ```
    pub fn parse(target: &'a str) -> Self {
        Self::parse_bytes(target.as_bytes())
    }

    /// [`Target::parse`] for raw request-line bytes that may not be UTF-8.
    ///
    /// ```
    /// let t = jg_hmac::Target::parse_bytes(b"/a?k=\xff");
    /// assert_eq!(t.query(), b"k=\xff");
    /// ```
    pub fn parse_bytes(target: &'a [u8]) -> Self {
        // The path ends at the first `?` or `#`; the query, after a `?`, at the next `#`.
        let (mut path, query) = match memchr::memchr2(b'?', b'#', target) {
            None => (target, None),
            Some(i) => {
                let (path, rest) = target.split_at_checked(i).unwrap_or((target, b""));
                match rest.split_first() {
                    Some((b'?', query)) => {
                        let end = memchr::memchr(b'#', query).unwrap_or(query.len());
                        (path, query.get(..end))
                    }
                    _ => (path, None),
                }
            }
        };
        if let Some(authority_and_path) = strip_scheme(path) {
            path = match authority_and_path.iter().position(|&b| b == b'/') {
                Some(slash) => authority_and_path.get(slash..).unwrap_or_default(),
                None => b"",
            };
        }
        Self::new(path, query.unwrap_or_default())
    }

    /// A target from a path and a raw query that are already split. An empty path
    /// becomes `/`.
    ///
    /// ```
    /// let t = jg_hmac::Target::new(b"", b"a=1");
    /// assert_eq!(t.path(), b"/");
    /// ```
    pub fn new(path: &'a [u8], query: &'a [u8]) -> Self {
        let path = if path.is_empty() { b"/" } else { path };
        Self { path, query }
    }

    /// The path that is signed.
    ///
    /// ```
    /// assert_eq!(jg_hmac::Target::parse("/v1/orders").path(), b"/v1/orders");
    /// ```
    pub fn path(&self) -> &'a [u8] {
        self.path
    }

    /// The raw query, without `?` (empty when there is none).
    ///
    /// ```
    /// assert_eq!(jg_hmac::Target::parse("/v1/orders").query(), b"");
    /// ```
    pub fn query(&self) -> &'a [u8] {
        self.query
    }
}

/// For an absolute-form target, what follows `scheme://` (RFC 3986 §3.1: a letter, then
/// letters, digits, `+`, `-` or `.`). A target starting with `/` is never absolute-form.
fn strip_scheme(target: &[u8]) -> Option<&[u8]> {
    // Origin-form (`/…`, nearly every request) is settled by its first byte, before the
    // search for a `:` below scans the whole path.
    if !target.first()?.is_ascii_alphabetic() {
        return None;
    }
    let colon = target.iter().position(|&b| b == b':')?;
    let (scheme, rest) = (target.get(..colon)?, target.get(colon..)?);
    let (first, tail) = scheme.split_first()?;
    let valid = first.is_ascii_alphabetic()
        && tail
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if valid {
        rest.strip_prefix(b"://")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let cases: [(&str, &str, &str); 10] = [
            ("//v1//ping", "//v1//ping", ""),
            ("/go?to=https://x/y", "/go", "to=https://x/y"),
            ("/v1/ping", "/v1/ping", ""),
            ("/v1/ping?", "/v1/ping", ""),
            ("/a//b/../c?x", "/a//b/../c", "x"),
            ("?a=1", "/", "a=1"),
            ("http://h:8080?a=1", "/", "a=1"),
            ("http://h/p?q#f?g", "/p", "q"),
            ("*", "*", ""),
            ("/p#?notquery", "/p", ""),
        ];
        for (target, path, query) in cases {
            let t = Target::parse(target);
            assert_eq!(
                (t.path(), t.query()),
                (path.as_bytes(), query.as_bytes()),
                "{target}"
            );
        }
    }
}
