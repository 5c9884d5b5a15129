//! Where a string-to-sign is written: a MAC (the hot path) or a buffer (diagnostics).

use crate::secret::HmacSha256;
use hmac::Mac;

/// A byte sink. The string-to-sign is streamed into one, never built as a whole.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Gathers the small writes of a string-to-sign before they reach the MAC, so that
/// separators and percent-encoded bytes do not each cost a call into the hash's block
/// buffer. A typical string-to-sign (well under 256 bytes) reaches the MAC in one update,
/// as it would if it had been built whole.
pub(crate) struct MacSink<'m> {
    /// Borrowed, so that the keyed state (a few hundred bytes) is not moved in and out.
    mac: &'m mut HmacSha256,
    buf: [u8; MacSink::CAPACITY],
    len: usize,
}

impl<'m> MacSink<'m> {
    const CAPACITY: usize = 256;

    #[inline]
    pub(crate) fn new(mac: &'m mut HmacSha256) -> Self {
        Self {
            mac,
            buf: [0; Self::CAPACITY],
            len: 0,
        }
    }

    /// Hands what is still buffered to the MAC, which then holds the whole string.
    #[inline]
    pub(crate) fn flush(self) {
        if let Some(rest) = self.buf.get(..self.len) {
            self.mac.update(rest);
        }
    }

    /// The slow path of [`Sink::put`]: the buffer is full.
    #[cold]
    #[inline(never)]
    fn spill(&mut self, bytes: &[u8]) {
        if let Some(pending) = self.buf.get(..self.len) {
            self.mac.update(pending);
        }
        self.len = 0;
        if bytes.len() >= Self::CAPACITY {
            self.mac.update(bytes);
        } else if let Some(dst) = self.buf.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len = bytes.len();
        }
    }
}

impl Sink for MacSink<'_> {
    /// Inlined, so that the constant separators (`\n`, `&`, `=`) become single stores.
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            copy_short(dst, bytes);
            self.len = end;
        } else {
            self.spill(bytes);
        }
    }
}

/// A cursor writing into a buffer on the stack: the hot path assembles the string-to-sign
/// with it, then hands it to the MAC in one update.
///
/// Every method is inlined and the cursor is never passed to a function that is not, so
/// its length stays in a register. Through a [`Sink`] behind a reference, each small write
/// would load and store the length in memory, one after the other.
pub(crate) struct Flat<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Flat<'b> {
    #[inline(always)]
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Appends `bytes`; `None`, leaving the cursor as it was, when they do not fit.
    #[inline(always)]
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len + bytes.len();
        copy_short(self.buf.get_mut(self.len..end)?, bytes);
        self.len = end;
        Some(())
    }

    /// The bytes written so far.
    #[inline(always)]
    pub(crate) fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The room left, for a writer that returns how much of it it used (see
    /// [`Flat::advance`]).
    #[inline(always)]
    pub(crate) fn rest(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.len..).unwrap_or_default()
    }

    /// Counts `n` bytes written into [`Flat::rest`].
    #[inline(always)]
    pub(crate) fn advance(&mut self, n: usize) {
        self.len = (self.len + n).min(self.buf.len());
    }
}

/// `dst.copy_from_slice(src)` (same lengths) for the short pieces of a string-to-sign:
/// up to 64 bytes as two overlapping fixed-size moves, inline, rather than a call into
/// the C library's `memcpy`, which costs more than the copy itself at these sizes.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    #[inline(always)]
    fn ends<const N: usize>(dst: &mut [u8], src: &[u8]) {
        if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
            *d = *s;
        }
        if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
            *d = *s;
        }
    }
    match src.len() {
        0 => {}
        1 => ends::<1>(dst, src),
        2..4 => ends::<2>(dst, src),
        4..8 => ends::<4>(dst, src),
        8..16 => ends::<8>(dst, src),
        16..32 => ends::<16>(dst, src),
        32..=64 => ends::<32>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_length() {
        let src: Vec<u8> = (1..=100).collect();
        for len in 0..=src.len() {
            let mut dst = vec![0u8; len];
            copy_short(&mut dst, &src[..len]);
            assert_eq!(dst, &src[..len]);
        }
    }
}
