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
            dst.copy_from_slice(bytes);
            self.len = end;
        } else {
            self.spill(bytes);
        }
    }
}
