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

/// Gathers small writes into 64-byte blocks before they reach the MAC, so that
/// percent-encoded bytes do not each cost a call into the hash's block buffer.
pub(crate) struct MacSink {
    mac: HmacSha256,
    buf: [u8; 64],
    len: usize,
}

impl MacSink {
    #[inline]
    pub(crate) fn new(mac: HmacSha256) -> Self {
        Self {
            mac,
            buf: [0; 64],
            len: 0,
        }
    }

    #[inline]
    pub(crate) fn finish(mut self) -> [u8; 32] {
        if let Some(rest) = self.buf.get(..self.len) {
            self.mac.update(rest);
        }
        self.mac.finalize().into_bytes().into()
    }
}

impl Sink for MacSink {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
            self.len = end;
            return;
        }
        if let Some(pending) = self.buf.get(..self.len) {
            self.mac.update(pending);
        }
        self.len = 0;
        if bytes.len() >= self.buf.len() {
            self.mac.update(bytes);
        } else if let Some(dst) = self.buf.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len = bytes.len();
        }
    }
}
