//! Byte classes eight at a time, in one `u64` ("SIMD within a register").
//!
//! Each function answers a question about every byte of a word at once, as the high bit
//! of that byte in the result. The arithmetic is arranged so that no carry or borrow ever
//! crosses from one byte into the next: the answers are exact, for every byte value, with
//! no branch per byte.

/// `0x01` in every byte.
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte.
pub(crate) const HIGH: u64 = ONES * 0x80;

/// High bit set in each byte of the result where that byte of `x` is in `lo..=hi`, for
/// bytes below `0x80` (callers mask the others out with [`ascii`]). `hi` must be below
/// `0x80`.
#[inline(always)]
pub(crate) fn bytes_in(x: u64, lo: u8, hi: u8) -> u64 {
    // Each byte of `y` is at least 0x80, and `lo`, `hi + 1` are at most 0x80: no byte
    // borrows from its neighbour, and the high bit of `y - n` says `byte >= n`.
    let y = x | HIGH;
    let at_least_lo = y.wrapping_sub(ONES * u64::from(lo));
    let above_hi = y.wrapping_sub(ONES * (u64::from(hi) + 1));
    at_least_lo & !above_hi & HIGH
}

/// High bit set in each byte of the result where that byte of `x` is ASCII (below 0x80).
#[inline(always)]
pub(crate) fn ascii(x: u64) -> u64 {
    !x & HIGH
}

/// The eight bytes of `bytes` from `at`, as a little-endian word, zero-padded past the
/// end of `bytes`.
#[inline(always)]
pub(crate) fn word_le(bytes: &[u8], at: usize) -> u64 {
    if let Some(word) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        return u64::from_le_bytes(*word);
    }
    let missing = (at + 8).saturating_sub(bytes.len());
    if let Some(last) = bytes.last_chunk::<8>() {
        // The last eight bytes, shifted so that the one at `at` comes first.
        return u64::from_le_bytes(*last)
            .checked_shr(8 * missing as u32)
            .unwrap_or(0);
    }
    // Fewer than eight bytes in all: gathered in a register. Copied into an array instead,
    // they would be stored one by one and loaded as a word, which stalls.
    bytes
        .get(at..)
        .unwrap_or_default()
        .iter()
        .rev()
        .fold(0, |word, &b| word << 8 | u64::from(b))
}

/// Whether every byte is visible ASCII (0x21–0x7E): no spaces, controls or non-ASCII.
/// Eight bytes per step, with no branch per byte.
#[inline]
pub(crate) fn is_visible_ascii(bytes: &[u8]) -> bool {
    let mut bad = 0;
    let mut at = 0;
    while at < bytes.len() {
        let mut x = word_le(bytes, at);
        // Past the end, `!` (visible) instead of the zero padding.
        let missing = (at + 8).saturating_sub(bytes.len());
        x |= (ONES * 0x21)
            .checked_shl(8 * (8 - missing) as u32)
            .unwrap_or(0);
        bad |= !(bytes_in(x, 0x21, 0x7e) & ascii(x)) & HIGH;
        at += 8;
    }
    bad == 0
}

/// The value of 1 to 8 ASCII digits, or `None` if any byte is not a digit: the digits
/// are checked and combined eight at a time (pairs, then fours, then eight), so the
/// cost does not grow with a chain of multiplications per digit.
#[inline]
pub(crate) fn parse_digits(digits: &[u8]) -> Option<u64> {
    const ZEROS: u64 = ONES * 0x30;
    let len = digits.len();
    if !(1..=8).contains(&len) {
        return None;
    }
    // The digits at the high end of the word (the last digit in the top byte, as a
    // little-endian load puts it), led by `0`s: the same number in eight digits.
    let shift = 8 * (8 - len) as u32;
    let x = word_le(digits, 0).checked_shl(shift).unwrap_or(0)
        | ZEROS.checked_shr(64 - shift).unwrap_or(0);
    if bytes_in(x, b'0', b'9') & ascii(x) != HIGH {
        return None;
    }
    // Each byte a digit 0–9; the earlier digit is in the lower byte of each lane.
    let x = x - ZEROS;
    let x = (x.wrapping_mul(10) + (x >> 8)) & 0x00ff_00ff_00ff_00ff;
    let x = (x.wrapping_mul(100) + (x >> 16)) & 0x0000_ffff_0000_ffff;
    Some((x.wrapping_mul(10_000) + (x >> 32)) & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every position, next to neighbours that could carry or borrow
    /// into it (0x00, 0x7f, 0x80, 0xff).
    #[test]
    fn every_byte_at_every_place() {
        for filler in [0x00u8, 0x26, 0x3d, 0x7f, 0x80, 0xff] {
            for place in 0..8 {
                for v in 0..=255u8 {
                    let mut bytes = [filler; 8];
                    bytes[place] = v;
                    let x = u64::from_le_bytes(bytes);
                    for (i, &byte) in bytes.iter().enumerate() {
                        let bit = |m: u64| m >> (8 * i + 7) & 1 == 1;
                        assert_eq!(bit(ascii(x)), byte < 0x80, "{bytes:?}");
                        if byte < 0x80 {
                            let expected = byte.is_ascii_digit();
                            assert_eq!(bit(bytes_in(x, b'0', b'9')), expected, "{bytes:?}");
                            let expected = (0x01..=0x7f).contains(&byte);
                            assert_eq!(bit(bytes_in(x, 0x01, 0x7f)), expected, "{bytes:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn words_at_every_offset_and_length() {
        let all: Vec<u8> = (1..=40).collect();
        for len in 0..=all.len() {
            let bytes = &all[..len];
            for at in 0..=len + 9 {
                let mut expected = [0u8; 8];
                for (i, b) in expected.iter_mut().enumerate() {
                    *b = bytes.get(at + i).copied().unwrap_or(0);
                }
                assert_eq!(
                    word_le(bytes, at),
                    u64::from_le_bytes(expected),
                    "{len} {at}"
                );
            }
        }
    }

    #[test]
    fn visible_at_every_place_and_length() {
        for len in 0..20 {
            assert!(is_visible_ascii(&vec![b'~'; len]));
            for place in 0..len {
                for bad in [0x00u8, 0x20, 0x7f, 0x80, 0xff] {
                    let mut value = vec![b'!'; len];
                    value[place] = bad;
                    assert!(!is_visible_ascii(&value), "{value:?}");
                }
            }
        }
    }

    #[test]
    fn digits_agree_with_str_parse() {
        for n in [
            0u64, 1, 9, 10, 42, 99_999, 1_234_567, 9_999_999, 12_345_678, 99_999_999,
        ] {
            for width in 1..=8 {
                let text = format!("{n:0width$}");
                let expected = (text.len() <= 8).then(|| text.parse::<u64>().unwrap());
                assert_eq!(parse_digits(text.as_bytes()), expected, "{text}");
            }
        }
        for bad in [&b""[..], b"123456789", b"12a4", b"/", b":", b"1 2", b"\xb1"] {
            assert_eq!(parse_digits(bad), None, "{bad:?}");
        }
    }
}
