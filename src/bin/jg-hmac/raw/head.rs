//! The header section: lines, the request line, header fields.

use super::{LineEnding, RawError, RawHeader, RawLimits, is_blank};

pub(super) struct Lines<'a> {
    pub(super) input: &'a [u8],
    pub(super) pos: usize,
    /// End of the header section's allowed bytes.
    pub(super) limit: usize,
    pub(super) number: usize,
}

impl<'a> Lines<'a> {
    /// The next line without its end, and how it ended.
    pub(super) fn next_line(&mut self) -> Result<(&'a [u8], LineEnding), RawError> {
        let window = self.input.get(self.pos..self.limit).unwrap_or_default();
        let newline = window
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(RawError::IncompleteHead)?;
        self.number += 1;
        let raw = window.get(..newline).unwrap_or_default();
        self.pos += newline + 1;
        let (line, ending) = match raw.strip_suffix(b"\r") {
            Some(line) => (line, LineEnding::Crlf),
            None => (raw, LineEnding::Lf),
        };
        if line.contains(&b'\r') {
            return Err(RawError::BareCr { line: self.number });
        }
        Ok((line, ending))
    }

    pub(super) fn rest_is_blank(&self) -> bool {
        is_blank(self.input.get(self.pos..).unwrap_or_default())
    }

    /// An incomplete head that stopped at the size limit is a head too large.
    pub(super) fn or_too_large(&self, e: RawError, limits: &RawLimits) -> RawError {
        if e == RawError::IncompleteHead && self.input.len() > limits.max_head {
            RawError::HeadTooLarge {
                limit: limits.max_head,
            }
        } else {
            e
        }
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

fn token(bytes: &[u8]) -> Option<&str> {
    if bytes.is_empty() || !bytes.iter().all(|&b| is_tchar(b)) {
        return None;
    }
    core::str::from_utf8(bytes).ok()
}

pub(super) fn parse_request_line(line: &[u8]) -> Result<(&str, &[u8], &str), RawError> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RawError::RequestLine(
            "expected `METHOD SP request-target SP HTTP/1.1`, separated by single spaces",
        ));
    };
    let method = token(method).ok_or(RawError::RequestLine(
        "the method is not a token (letters, digits, !#$%&'*+-.^_`|~)",
    ))?;
    if target.is_empty() {
        return Err(RawError::RequestLine("empty request-target"));
    }
    if target.iter().any(|&b| b < 0x21 || b == 0x7f) {
        return Err(RawError::RequestLine(
            "the request-target contains a control byte or a tab",
        ));
    }
    let version = match version {
        b"HTTP/1.1" => "HTTP/1.1",
        b"HTTP/1.0" => "HTTP/1.0",
        _ => {
            return Err(RawError::RequestLine(
                "the version is not HTTP/1.1 or HTTP/1.0 (convert HTTP/2 captures to HTTP/1.1 form)",
            ));
        }
    };
    Ok((method, target, version))
}

pub(super) fn parse_header(
    line: &[u8],
    ending: LineEnding,
    number: usize,
) -> Result<RawHeader<'_>, RawError> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(RawError::Header {
            line: number,
            reason: "starts with whitespace (folded header lines are not supported)",
        });
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(RawError::Header {
            line: number,
            reason: "no colon",
        });
    };
    let (name, value) = line.split_at_checked(colon).unwrap_or((line, b""));
    let name = token(name).ok_or(RawError::Header {
        line: number,
        reason: "the name is empty, has a space before the colon, or is not a token",
    })?;
    let value = value.get(1..).unwrap_or_default();
    let value = trim_ows(value);
    Ok(RawHeader {
        line,
        name,
        value,
        ending,
    })
}

pub(super) fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::super::tests::p;
    use super::super::{Framing, RawError};

    #[test]
    fn request_line_and_header_errors() {
        for raw in [
            &b"GET /  HTTP/1.1\n\n"[..],
            b"GET  HTTP/1.1\n\n",
            b"GET /x\n\n",
            b"GET /x HTTP/2\n\n",
            b"G(T /x HTTP/1.1\n\n",
            b"GET /a\x01b HTTP/1.1\n\n",
            b"GET /x HTTP/1.1 extra\n\n",
        ] {
            assert!(
                matches!(p(raw).unwrap_err(), RawError::RequestLine(_)),
                "{raw:?}"
            );
        }
        for (raw, line) in [
            (&b"GET / HTTP/1.1\nNoColon\n\n"[..], 2),
            (b"GET / HTTP/1.1\nA: 1\nName : v\n\n", 3),
            (b"GET / HTTP/1.1\nA: 1\n folded\n\n", 3),
            (b"GET / HTTP/1.1\n: v\n\n", 2),
        ] {
            assert!(
                matches!(p(raw).unwrap_err(), RawError::Header { line: l, .. } if l == line),
                "{raw:?}"
            );
        }
        assert_eq!(
            p(b"GET / HTTP/1.1\nA: x\ry\n\n").unwrap_err(),
            RawError::BareCr { line: 2 }
        );
        assert_eq!(p(b"").unwrap_err(), RawError::Empty);
        assert_eq!(p(b"\r\n\n").unwrap_err(), RawError::Empty);
        assert_eq!(p(b"GET / HTTP/1.1").unwrap_err(), RawError::IncompleteHead);
        assert_eq!(
            p(b"GET / HTTP/1.1\nA: 1\n").unwrap_err(),
            RawError::IncompleteHead
        );
    }

    #[test]
    fn raw_non_ascii_target_and_values_are_bytes() {
        let req =
            p("GET /v1/café?name=José HTTP/1.1\nX-Client-Id: jk\u{ff}\n\n".as_bytes()).unwrap();
        assert_eq!(req.target(), "/v1/café?name=José".as_bytes());
        assert_eq!(req.headers()[0].value(), "jk\u{ff}".as_bytes());
        let req = p(b"GET /\xff HTTP/1.1\nX: \x00\x7f\n\n").unwrap();
        assert_eq!(req.target(), b"/\xff");
        assert_eq!(req.headers()[0].value(), b"\x00\x7f");
    }

    #[test]
    fn crlf_and_lf_requests() {
        for raw in [
            &b"GET /v1/ping?a=1 HTTP/1.1\r\nHost: x\r\nX-Timestamp:1\r\n\r\n"[..],
            b"GET /v1/ping?a=1 HTTP/1.1\nHost: x\nX-Timestamp:1\n\n",
            b"\r\n\nGET /v1/ping?a=1 HTTP/1.1\nHost: x\nX-Timestamp:1\n\n\r\n\n",
        ] {
            let req = p(raw).unwrap();
            assert_eq!(req.method(), "GET");
            assert_eq!(req.target(), b"/v1/ping?a=1");
            assert_eq!(req.version(), "HTTP/1.1");
            assert_eq!(req.headers().len(), 2);
            assert_eq!(req.header_values("X-TIMESTAMP").next(), Some(&b"1"[..]));
            assert_eq!(req.body(), b"");
            assert_eq!(req.framing(), Framing::None);
        }
    }
}
