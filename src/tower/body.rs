//! Reading a request body into one buffer, up to a limit.

use std::future::poll_fn;
use std::pin::pin;

use bytes::{Buf, Bytes, BytesMut};
use http_body::Body;

/// Why a body could not be read whole.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum BodyError {
    /// More than the limit arrived (or was about to).
    TooLarge,
    /// The body's stream failed (the connection broke, a framing error).
    Unreadable,
}

/// Reads `body` to its end, refusing more than `limit` bytes. A body that arrives in one
/// data frame (the usual case) is returned as that frame, without a copy; trailers are
/// ignored.
pub(super) async fn read_to_limit<B: Body>(body: B, limit: usize) -> Result<Bytes, BodyError> {
    let mut body = pin!(body);
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut len = 0usize;
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let Ok(frame) = frame else {
            return Err(BodyError::Unreadable);
        };
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers
        };
        let n = data.remaining();
        len = len.checked_add(n).ok_or(BodyError::TooLarge)?;
        if len > limit {
            return Err(BodyError::TooLarge);
        }
        if n == 0 {
            continue;
        }
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data.copy_to_bytes(n)),
            (Some(head), None) => {
                let mut joined = BytesMut::with_capacity(len);
                joined.extend_from_slice(head);
                joined.extend_from_slice(&data.copy_to_bytes(n));
                rest = Some(joined);
            }
            (Some(_), Some(joined)) => joined.extend_from_slice(&data.copy_to_bytes(n)),
        }
    }
    Ok(match (first, rest) {
        (_, Some(joined)) => joined.freeze(),
        (Some(head), None) => head,
        (None, None) => Bytes::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use http_body::Frame;
    use http_body_util::{BodyExt, Full};

    /// A body that yields its frames one poll at a time.
    struct Frames(VecDeque<Result<Frame<Bytes>, &'static str>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = &'static str;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front())
        }
    }

    fn chunks(parts: &[&'static [u8]]) -> Frames {
        Frames(
            parts
                .iter()
                .map(|p| Ok(Frame::data(Bytes::from_static(p))))
                .collect(),
        )
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("test bodies are always ready"),
        }
    }

    #[test]
    fn joins_chunks_like_collect() {
        let cases: [&[&'static [u8]]; 4] = [&[], &[b""], &[b"abc"], &[b"ab", b"", b"c", b"defg"]];
        for parts in cases {
            let read = block_on(read_to_limit(chunks(parts), 16)).unwrap();
            assert_eq!(read, parts.concat());
            let collected = block_on(chunks(parts).collect()).unwrap().to_bytes();
            assert_eq!(read, collected);
        }
    }

    #[test]
    fn limit_is_inclusive_and_errors_are_reported() {
        let exact = Full::new(Bytes::from_static(b"1234"));
        assert_eq!(block_on(read_to_limit(exact, 4)).unwrap(), "1234");
        let over = chunks(&[b"12", b"345"]);
        assert_eq!(block_on(read_to_limit(over, 4)), Err(BodyError::TooLarge));
        let mut failing = chunks(&[b"x"]);
        failing.0.push_back(Err("broken"));
        assert_eq!(
            block_on(read_to_limit(failing, 4)),
            Err(BodyError::Unreadable)
        );
        let mut trailers = chunks(&[b"x"]);
        trailers
            .0
            .push_back(Ok(Frame::trailers(http::HeaderMap::new())));
        assert_eq!(block_on(read_to_limit(trailers, 4)).unwrap(), "x");
    }
}
