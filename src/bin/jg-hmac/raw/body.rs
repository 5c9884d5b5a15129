//! The body: its framing (Content-Length or chunked) and chunked decoding.

use super::head::trim_ows;
use super::{Framing, RawError, RawHeader, RawLimits};

pub(super) fn framing(headers: &[RawHeader<'_>], limits: &RawLimits) -> Result<Framing, RawError> {
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut has_te = false;
    for header in headers {
        if header.is("content-length") {
            let n = parse_length(header.value)?;
            if length.is_some_and(|m| m != n) {
                return Err(RawError::ContentLength("copies with different values"));
            }
            length = Some(n);
        } else if header.is("transfer-encoding") {
            has_te = true;
            for coding in header.value.split(|&b| b == b',') {
                let coding = trim_ows(coding);
                if coding.is_empty() {
                    continue;
                }
                if chunked || !coding.eq_ignore_ascii_case(b"chunked") {
                    return Err(RawError::TransferEncoding);
                }
                chunked = true;
            }
        }
    }
    match (length, has_te) {
        (Some(_), true) => Err(RawError::LengthAndTransferEncoding),
        (None, true) if chunked => Ok(Framing::Chunked),
        (None, true) => Err(RawError::TransferEncoding),
        (Some(n), false) if n > limits.max_body => Err(RawError::BodyTooLarge {
            limit: limits.max_body,
        }),
        (Some(n), false) => Ok(Framing::ContentLength(n)),
        (None, false) => Ok(Framing::None),
    }
}

fn parse_length(value: &[u8]) -> Result<usize, RawError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(RawError::ContentLength("expected decimal digits"));
    }
    value.iter().try_fold(0usize, |acc, d| {
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(usize::from(d - b'0')))
            .ok_or(RawError::ContentLength("too large"))
    })
}

/// Decodes a chunked body; returns the body and how many input bytes it took.
pub(super) fn decode_chunked(input: &[u8], max_body: usize) -> Result<(Vec<u8>, usize), RawError> {
    let too_large = RawError::BodyTooLarge { limit: max_body };
    let mut body = Vec::new();
    let mut pos = 0usize;
    loop {
        if pos > max_body {
            return Err(too_large);
        }
        let line = chunk_line(input, &mut pos)?;
        let size_field = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = parse_chunk_size(trim_ows(size_field))?;
        if size == 0 {
            break;
        }
        if pos.saturating_add(size) > max_body {
            return Err(too_large);
        }
        let end = pos
            .checked_add(size)
            .ok_or(RawError::Chunked("chunk size too large"))?;
        let data = input
            .get(pos..end)
            .ok_or(RawError::Chunked("truncated chunk data"))?;
        body.extend_from_slice(data);
        pos = end;
        if !chunk_line(input, &mut pos)?.is_empty() {
            return Err(RawError::Chunked(
                "chunk data longer than its size (no line end after it)",
            ));
        }
    }
    // Trailer section: only the empty line that ends it is accepted.
    if !chunk_line(input, &mut pos)?.is_empty() {
        return Err(RawError::Chunked("trailer fields are not supported"));
    }
    if pos > max_body {
        return Err(too_large);
    }
    Ok((body, pos))
}

fn chunk_line<'a>(input: &'a [u8], pos: &mut usize) -> Result<&'a [u8], RawError> {
    let rest = input.get(*pos..).unwrap_or_default();
    let newline = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(RawError::Chunked("truncated: a chunk line has no line end"))?;
    let raw = rest.get(..newline).unwrap_or_default();
    *pos += newline + 1;
    let line = raw.strip_suffix(b"\r").unwrap_or(raw);
    if line.contains(&b'\r') {
        return Err(RawError::Chunked("carriage return (CR) not followed by LF"));
    }
    Ok(line)
}

fn parse_chunk_size(digits: &[u8]) -> Result<usize, RawError> {
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(RawError::Chunked("invalid chunk size"));
    }
    let mut size = 0usize;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d.wrapping_sub(b'A').wrapping_add(10),
        };
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(usize::from(v)))
            .ok_or(RawError::Chunked("chunk size too large"))?;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::super::tests::p;
    use super::super::{Framing, RawError, RawLimits, parse};

    #[test]
    fn content_length_body() {
        let req =
            p(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        assert_eq!(req.body(), b"hello");
        assert_eq!(req.framing(), Framing::ContentLength(5));
        // A body may hold CR, LF and any byte.
        let req = p(b"POST /x HTTP/1.1\nContent-Length: 4\n\n\r\n\x00\xff").unwrap();
        assert_eq!(req.body(), b"\r\n\x00\xff");
    }

    #[test]
    fn content_length_mismatches_are_reported() {
        assert_eq!(
            p(b"POST /x HTTP/1.1\nContent-Length: 5\n\nabc").unwrap_err(),
            RawError::Truncated {
                expected: 5,
                received: 3
            }
        );
        assert_eq!(
            p(b"POST /x HTTP/1.1\nContent-Length: 2\n\nabc").unwrap_err(),
            RawError::ExtraBytes { count: 1 }
        );
        assert_eq!(
            p(b"POST /x HTTP/1.1\n\nabc").unwrap_err(),
            RawError::BodyWithoutLength { count: 3 }
        );
        assert!(p(b"POST /x HTTP/1.1\nContent-Length: 3\n\nabc\r\n").is_ok());
        for bad in [&b"-1"[..], b"1 2", b"0x10", b"", b"99999999999999999999999"] {
            let mut raw = b"POST /x HTTP/1.1\nContent-Length: ".to_vec();
            raw.extend_from_slice(bad);
            raw.extend_from_slice(b"\n\n");
            assert!(
                matches!(p(&raw).unwrap_err(), RawError::ContentLength(_)),
                "{bad:?}"
            );
        }
        assert_eq!(
            p(b"POST /x HTTP/1.1\nContent-Length: 1\nContent-Length: 2\n\na").unwrap_err(),
            RawError::ContentLength("copies with different values")
        );
    }

    #[test]
    fn chunked_is_decoded() {
        let raw = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\n\r\n";
        let req = p(raw).unwrap();
        assert_eq!(req.body(), b"hello!");
        assert_eq!(req.framing(), Framing::Chunked);
        assert!(req.wire_body().ends_with(b"0\r\n\r\n"));
        assert_eq!(
            req.to_bytes_replacing(&[], &[]),
            raw.to_vec(),
            "re-serializes byte for byte"
        );
        let lf =
            p(b"POST /x HTTP/1.1\nTransfer-Encoding: Chunked\n\nA\n0123456789\n0\n\n").unwrap();
        assert_eq!(lf.body(), b"0123456789");
    }

    #[test]
    fn chunked_errors() {
        let head = b"POST /x HTTP/1.1\nTransfer-Encoding: chunked\n\n";
        for (body, want) in [
            (&b"5\nhel"[..], "truncated chunk data"),
            (
                b"5\nhelloX\n0\n\n",
                "chunk data longer than its size (no line end after it)",
            ),
            (b"z\n", "invalid chunk size"),
            (b"ffffffffffffffff\n", "invalid chunk size"),
            (
                b"0\nX-Signature: 00\n\n",
                "trailer fields are not supported",
            ),
            (b"0\n", "truncated: a chunk line has no line end"),
        ] {
            let raw = [&head[..], body].concat();
            assert_eq!(p(&raw).unwrap_err(), RawError::Chunked(want), "{body:?}");
        }
        assert_eq!(
            p(b"POST /x HTTP/1.1\nTransfer-Encoding: gzip, chunked\n\n").unwrap_err(),
            RawError::TransferEncoding
        );
        assert_eq!(
            p(b"POST /x HTTP/1.1\nTransfer-Encoding: chunked\nContent-Length: 0\n\n0\n\n")
                .unwrap_err(),
            RawError::LengthAndTransferEncoding
        );
        let limits = RawLimits {
            max_body: 8,
            ..RawLimits::default()
        };
        let raw = [&head[..], b"9\n123456789\n0\n\n"].concat();
        assert_eq!(
            parse(&raw, &limits).unwrap_err(),
            RawError::BodyTooLarge { limit: 8 }
        );
    }
}
