//! Signing outgoing [`reqwest`] 0.13 requests (feature `reqwest`).
//!
//! Two ways in, one for each kind of reqwest client:
//!
//! - **[`SigningMiddleware`]**, for a [`reqwest_middleware`] client: every request is
//!   signed just before it is sent, at the time of an injectable [`Clock`]. This is the
//!   recommended way, because it composes with retry middleware: put the signer *after*
//!   (inside) the retry middleware, and every attempt is signed afresh with a new
//!   timestamp (see below).
//! - **[`SignExt::signed`]** on a plain [`reqwest::RequestBuilder`],
//!   for code that uses `reqwest::Client` directly and has no retries, or retries in its
//!   own loop (which must then call `signed` on each attempt).
//!
//! Why both: most reqwest users who need retries already use `reqwest-middleware` (it is
//! where `reqwest-retry`, tracing and caching live), and the middleware is the only place
//! that sees each attempt; users of a plain `Client` should not have to switch clients
//! to sign one request. The middleware crate is small (no TLS, no runtime of its own).
//!
//! # The body that is sent is the body that is hashed
//!
//! The signature covers the SHA-256 of the body bytes that reqwest will send, read from
//! the built [`reqwest::Request`]. A streamed body (`Body::wrap_stream`, a
//! multipart form) has no bytes to read before it is sent: signing it is
//! [`SignError::StreamingBody`], never a signature over the wrong bytes. For a stream
//! whose bytes you can hash while producing them (a file you read first), hash them with
//! [`BodyHasher`](crate::BodyHasher) and use [`SignExt::signed_with_hash`].
//!
//! # Retrying `429` and `503` itself
//!
//! [`SigningMiddleware::with_retries`] makes the signer retry what a rate-limited or
//! overloaded server answers, as the partner API asks ("respect published limits;
//! exponential backoff"): `429` and `503`, after the response's `Retry-After` (seconds or
//! an HTTP-date), else after a capped exponential backoff with full jitter
//! ([`with_backoff`](SigningMiddleware::with_backoff)), within a total deadline and at
//! most 10 attempts. Each attempt is signed afresh, at a timestamp later than the one
//! before. Only the methods the caller marks retryable are retried
//! ([`with_retry_methods`](SigningMiddleware::with_retry_methods); by default the
//! idempotent `GET`, `HEAD`, `OPTIONS`, `PUT` and `DELETE`, never `POST` unless asked);
//! a streamed body is never sent at all. Nothing else (other statuses, connection errors)
//! is retried here: use a retry middleware outside the signer for those, not for `429`/`503`
//! too, or the attempts multiply.
//!
//! ```
//! use std::time::Duration;
//! use jg_hmac::reqwest::SigningMiddleware;
//! # let signer = jg_hmac::Signer::new("jk_live_example", &"secret".into())?;
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(SigningMiddleware::new(signer).with_retries(4, Duration::from_secs(30)))
//!     .build();
//! # let _ = client;
//! # Ok::<(), jg_hmac::Error>(())
//! ```
//!
//! # Retries: where the signer sits
//!
//! ```text
//! ClientBuilder::new(client)
//!     .with(RetryTransientMiddleware::new_with_policy(policy)) // outer: decides to retry
//!     .with(SigningMiddleware::new(signer))                    // inner: signs each attempt
//!     .build()
//! ```
//!
//! Middleware runs in the order it is added, and a retry middleware re-runs the rest of
//! the chain for each attempt. With the signer after the retry middleware, attempt 2 gets
//! a new `X-Timestamp` and signature; with the signer before it, every attempt resends the
//! first attempt's headers, which a server with a replay guard answers
//! `replayed_request`, and which fall out of the ±300 s window after a long backoff.
//!
//! reqwest's own `ClientBuilder::retry` resends the request it was given, headers
//! included: keep it to its default (retrying only requests the server refused at the
//! protocol level, before reading them), and do status-based retries in middleware.
//!
//! # Redirects
//!
//! reqwest follows redirects inside `Client::execute`, after signing, with the same
//! headers: the new path does not match the signature, and the headers go to the new
//! location. Build the client with `redirect(reqwest::redirect::Policy::none())` for
//! signed APIs.
//!
//! # TLS
//!
//! This feature turns on no reqwest TLS backend. Partners calling `https://` URLs enable
//! one in their own `Cargo.toml`, e.g. `reqwest = { version = "0.13", features =
//! ["rustls"] }` (reqwest's default features include it).
//!
//! ```no_run
//! use jg_hmac::reqwest::SigningMiddleware;
//! use jg_hmac::{Secret, Signer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::from(std::env::var("JG_SECRET")?);
//! let signer = Signer::new("jk_live_example", &secret)?;
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(SigningMiddleware::new(signer))
//!     .build();
//! let response = client
//!     .post("https://api.justgold.me/v1/transactions/buy")
//!     .header("Content-Type", "application/json")
//!     .body(r#"{"amount":"5000","transactionId":"12345"}"#)
//!     .send()
//!     .await?;
//! println!("{}", response.status());
//! # Ok(()) }
//! ```

use core::fmt;
use std::time::Duration;

use ::reqwest::{Request, RequestBuilder, Response};
use http::Method;
use reqwest_middleware::{Middleware, Next};

use crate::canonical::CanonicalRequest;
use crate::clock::{Clock, SystemClock};
use crate::signature::ContentHash;
use crate::signer::Signer;
use crate::target::Target;

mod retry;

use retry::{MAX_ATTEMPTS, RetryPolicy, jitter};

/// Why a reqwest request could not be signed.
///
/// ```
/// use jg_hmac::reqwest::SignError;
/// assert!(SignError::StreamingBody.to_string().contains("stream"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The body is a stream, whose bytes cannot be hashed before they are sent.
    #[error(
        "the request body is a stream, which cannot be hashed before it is sent: send it as \
         bytes, or hash it with jg_hmac::BodyHasher and sign with `signed_with_hash`"
    )]
    StreamingBody,
    /// The request builder held an error (an invalid URL or header, for instance).
    #[error("building the request failed: {0}")]
    Build(#[source] ::reqwest::Error),
}

/// Signs a built request at `timestamp` (UNIX seconds): hashes its body bytes and sets
/// `X-Client-Id`, `X-Timestamp` and `X-Signature`, replacing any present.
///
/// The path and query signed are those of the request's URL as reqwest will send them
/// (after `url` normalised them: percent-encoding, dot segments).
///
/// # Errors
/// [`SignError::StreamingBody`] when the body is a stream.
pub(crate) fn sign_request(
    signer: &Signer,
    request: &mut Request,
    timestamp: u64,
) -> Result<(), SignError> {
    let content = match request.body() {
        None => ContentHash::EMPTY,
        Some(body) => ContentHash::of(body.as_bytes().ok_or(SignError::StreamingBody)?),
    };
    sign_request_hashed(signer, request, &content, timestamp);
    Ok(())
}

/// Signs a built request whose body hash the caller computed (a streamed body hashed
/// with [`BodyHasher`](crate::BodyHasher) as it was produced).
pub(crate) fn sign_request_hashed(
    signer: &Signer,
    request: &mut Request,
    content: &ContentHash,
    timestamp: u64,
) {
    let url = request.url();
    let target = Target::new(
        url.path().as_bytes(),
        url.query().unwrap_or_default().as_bytes(),
    );
    let canonical = CanonicalRequest::new(request.method().as_str(), target);
    let signed = signer.sign_canonical(&canonical, content, timestamp);
    signed.apply_to(request.headers_mut());
}

/// Signing on a plain [`reqwest::RequestBuilder`].
///
/// The request is built, signed at `clock.now()` and handed back as a builder, so
/// `.send()` follows. Call it last, after the body and every header are set. It signs
/// once: for retries, build and sign each attempt again, or use [`SigningMiddleware`].
///
/// ```
/// use jg_hmac::reqwest::SignExt;
/// use jg_hmac::{Signer};
/// let signer = Signer::new("jk_live_example", &"s3cr3t_test_key_justgold".into())?;
/// let builder = reqwest::Client::new()
///     .post("http://127.0.0.1:8080/v1/transactions/buy")
///     .body(r#"{"amount":"5000","transactionId":"12345"}"#)
///     .signed(&signer, &|| 1735550100u64)?;
/// let request = builder.build()?;
/// assert_eq!(
///     request.headers()["x-signature"],
///     "97b5a41c23cc09f798599e9475eb091c408e2fed941c54aef544c2a364ee76e7"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SignExt: Sized {
    /// Signs the request at `clock.now()`.
    ///
    /// # Errors
    /// [`SignError::Build`] when the builder holds an error; [`SignError::StreamingBody`]
    /// when the body is a stream.
    fn signed<C: Clock + ?Sized>(self, signer: &Signer, clock: &C) -> Result<Self, SignError>;

    /// Signs the request at `clock.now()` with a body hash computed by the caller.
    ///
    /// # Errors
    /// [`SignError::Build`] when the builder holds an error.
    ///
    /// ```
    /// use jg_hmac::reqwest::SignExt;
    /// use jg_hmac::{ContentHash, Signer};
    /// let signer = Signer::new("jk_live_example", &"secret".into())?;
    /// let request = reqwest::Client::new()
    ///     .put("http://127.0.0.1:8080/v1/upload")
    ///     .signed_with_hash(&signer, &ContentHash::of(b"streamed"), &|| 1u64)?
    ///     .build()?;
    /// assert_eq!(request.headers()["x-timestamp"], "1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn signed_with_hash<C: Clock + ?Sized>(
        self,
        signer: &Signer,
        content: &ContentHash,
        clock: &C,
    ) -> Result<Self, SignError>;
}

impl SignExt for RequestBuilder {
    fn signed<C: Clock + ?Sized>(self, signer: &Signer, clock: &C) -> Result<Self, SignError> {
        let (client, request) = self.build_split();
        let mut request = request.map_err(SignError::Build)?;
        sign_request(signer, &mut request, clock.now())?;
        Ok(RequestBuilder::from_parts(client, request))
    }

    fn signed_with_hash<C: Clock + ?Sized>(
        self,
        signer: &Signer,
        content: &ContentHash,
        clock: &C,
    ) -> Result<Self, SignError> {
        let (client, request) = self.build_split();
        let mut request = request.map_err(SignError::Build)?;
        sign_request_hashed(signer, &mut request, content, clock.now());
        Ok(RequestBuilder::from_parts(client, request))
    }
}

/// [`reqwest_middleware`] middleware that signs every request that passes through it,
/// at the time of its clock (the system clock unless [`SigningMiddleware::with_clock`]).
///
/// Add it after any retry middleware, so that each attempt is signed afresh (see the
/// [module docs](self)). A streamed body fails the request with
/// `reqwest_middleware::Error::Middleware` wrapping [`SignError::StreamingBody`].
///
/// `Debug` shows the client id only.
///
/// ```
/// use jg_hmac::reqwest::SigningMiddleware;
/// use jg_hmac::Signer;
/// let signer = Signer::new("jk_live_example", &"secret".into())?;
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(SigningMiddleware::new(signer).with_clock(|| 1735550160))
///     .build();
/// # let _ = client;
/// # Ok::<(), jg_hmac::Error>(())
/// ```
#[derive(Clone)]
pub struct SigningMiddleware<C = SystemClock> {
    signer: Signer,
    clock: C,
    retry: RetryPolicy,
}

impl SigningMiddleware {
    /// Signs with `signer` at the system clock's time.
    ///
    /// ```
    /// let signer = jg_hmac::Signer::new("jk_live_example", &"secret".into())?;
    /// let middleware = jg_hmac::reqwest::SigningMiddleware::new(signer);
    /// assert_eq!(middleware.signer().client_id(), "jk_live_example");
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn new(signer: Signer) -> Self {
        Self {
            signer,
            clock: SystemClock,
            retry: RetryPolicy::default(),
        }
    }
}

impl<C> SigningMiddleware<C> {
    /// The same middleware reading time from `clock` (a closure returning
    /// UNIX seconds, your own [`Clock`]).
    ///
    /// ```
    /// let signer = jg_hmac::Signer::new("jk_live_example", &"secret".into())?;
    /// let middleware = jg_hmac::reqwest::SigningMiddleware::new(signer)
    ///     .with_clock(|| 1735550160u64);
    /// assert!(format!("{middleware:?}").contains("jk_live_example"));
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    #[must_use]
    pub fn with_clock<C2: Clock>(self, clock: C2) -> SigningMiddleware<C2> {
        SigningMiddleware {
            signer: self.signer,
            clock,
            retry: self.retry,
        }
    }

    /// Retries requests answered `429 Too Many Requests` or `503 Service Unavailable`:
    /// at most `attempts` attempts in all (the first included; at most 10), and no wait
    /// that would end more than `deadline` after the first attempt started. Each attempt is
    /// signed afresh. Off by default (one attempt).
    ///
    /// Only the [retry methods](Self::with_retry_methods) are retried (by default the
    /// idempotent `GET`, `HEAD`, `OPTIONS`, `PUT` and `DELETE`). The wait is the
    /// response's `Retry-After` (seconds or an HTTP-date), else a
    /// [backoff](Self::with_backoff) with full jitter. When the wait would end past the
    /// deadline, or the attempts are spent, the `429`/`503` is returned as it came. The
    /// deadline bounds the waits, not an attempt in flight: bound those with reqwest's
    /// `ClientBuilder::timeout`. Waiting uses Tokio's timer (a runtime with timers
    /// enabled, as `#[tokio::main]` makes). See the [module docs](self).
    ///
    /// ```
    /// use std::time::Duration;
    /// let signer = jg_hmac::Signer::new("jk_live_example", &"secret".into())?;
    /// let middleware = jg_hmac::reqwest::SigningMiddleware::new(signer)
    ///     .with_retries(4, Duration::from_secs(30));
    /// assert!(format!("{middleware:?}").contains("attempts: 4"));
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    #[must_use]
    pub fn with_retries(mut self, attempts: u32, deadline: Duration) -> Self {
        self.retry.attempts = attempts.clamp(1, MAX_ATTEMPTS);
        self.retry.deadline = deadline;
        self
    }

    /// The methods [`with_retries`](Self::with_retries) retries, replacing the default
    /// `GET`, `HEAD`, `OPTIONS`, `PUT` and `DELETE`.
    ///
    /// Whether sending a request twice is safe is the caller's call: add `POST` only for
    /// endpoints that deduplicate, e.g. on an `Idempotency-Key` header that every attempt
    /// carries unchanged. A `429` is answered before the request is acted on, but a `503`
    /// may come from anywhere on the way.
    ///
    /// ```
    /// use http::Method;
    /// let signer = jg_hmac::Signer::new("jk_live_example", &"secret".into())?;
    /// let middleware = jg_hmac::reqwest::SigningMiddleware::new(signer)
    ///     .with_retries(3, std::time::Duration::from_secs(20))
    ///     .with_retry_methods([Method::GET, Method::POST]);
    /// assert!(format!("{middleware:?}").contains("POST"));
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    #[must_use]
    pub fn with_retry_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.retry.methods = methods.into_iter().collect();
        self
    }

    /// The backoff when a retried response has no usable `Retry-After`: before retry
    /// number `n`, a wait drawn uniformly from zero to `base × 2ⁿ⁻¹`, at most `cap`
    /// ("full jitter"). Defaults to 500 ms and 30 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// let signer = jg_hmac::Signer::new("jk_live_example", &"secret".into())?;
    /// let middleware = jg_hmac::reqwest::SigningMiddleware::new(signer)
    ///     .with_retries(5, Duration::from_secs(60))
    ///     .with_backoff(Duration::from_secs(1), Duration::from_secs(8));
    /// assert!(format!("{middleware:?}").contains("cap: 8s"));
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    #[must_use]
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.retry.base = base;
        self.retry.cap = cap;
        self
    }

    /// The signer.
    ///
    /// ```
    /// let signer = jg_hmac::Signer::new("jk_live_example", &"secret".into())?;
    /// let middleware = jg_hmac::reqwest::SigningMiddleware::new(signer);
    /// assert_eq!(middleware.signer().client_id(), "jk_live_example");
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}

impl<C> fmt::Debug for SigningMiddleware<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningMiddleware")
            .field("client_id", &self.signer.client_id())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<C: Clock + 'static> Middleware for SigningMiddleware<C> {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let mut timestamp = self.clock.now();
        // A body that cannot be copied (a stream) is never retried; signing refuses it.
        let copy = self
            .retry
            .retries(request.method())
            .then(|| request.try_clone())
            .flatten();
        let Some(copy) = copy else {
            sign_request(&self.signer, &mut request, timestamp)
                .map_err(reqwest_middleware::Error::middleware)?;
            return next.run(request, extensions).await;
        };
        let started = tokio::time::Instant::now();
        let mut attempt = 1;
        loop {
            sign_request(&self.signer, &mut request, timestamp)
                .map_err(reqwest_middleware::Error::middleware)?;
            let response = next.clone().run(request, extensions).await?;
            let wait = self.retry.wait(
                response.status(),
                response.headers(),
                attempt,
                started.elapsed(),
                self.clock.now(),
                jitter,
            );
            let (Some(wait), Some(again)) = (wait, copy.try_clone()) else {
                return Ok(response);
            };
            drop(response);
            tokio::time::sleep(wait).await;
            attempt += 1;
            request = again;
            // Never the previous attempt's timestamp: in the same second it would be the
            // same signature, which a replay guard that saw it refuses.
            timestamp = self.clock.now().max(timestamp.saturating_add(1));
        }
    }
}
