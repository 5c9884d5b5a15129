//! Verification: header checks, the timestamp window, and the constant-time signature check.

use std::sync::Arc;

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::canonical::{CanonicalRequest, StringToSign};
use crate::credential::{Credential, CredentialLookup};
use crate::error::{Error, HeaderKind};
use crate::headers::{AuthHeaders, Slot, parse_timestamp};
use crate::query::CanonicalQuery;
use crate::request::SignedRequest;
use crate::secret::{KeyedMac, Secret};
use crate::signature::{ContentHash, Signature};
use crate::verified::{Prepared, Verified};

/// Default tolerance, each way, between `X-Timestamp` and the verifier's clock: 300 s.
pub(crate) const DEFAULT_WINDOW: u64 = 300;

/// Size limits on what a client sends, checked before any work proportional to it.
///
/// `#[non_exhaustive]`: start from `Limits::default()` and set fields.
///
/// ```
/// let mut limits = jg_hmac::Limits::default();
/// limits.max_query_pairs = 64;
/// let verifier = jg_hmac::Verifier::new().with_limits(limits);
/// assert!(format!("{verifier:?}").contains("max_query_pairs: 64"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest accepted client id, in bytes; longer is `malformed_header`.
    /// Defaults to `128`.
    pub max_client_id_len: usize,
    /// Longest accepted raw query, in bytes; longer is `request_too_large` (414).
    /// Defaults to `8192`.
    pub max_query_len: usize,
    /// Most accepted `&`-separated query pairs; more is `request_too_large` (414).
    /// Defaults to `256`.
    pub max_query_pairs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_client_id_len: crate::client_id::MAX_LEN,
            max_query_len: 8192,
            max_query_pairs: 256,
        }
    }
}

/// Checks JG-HMAC-SHA256 signatures. Holds settings only; cheap to share.
///
/// The checks run in this order, and the first failure is the answer:
/// 1. the client id (`X-Client-Id`, or its alias `X-Access-Key`), then `X-Timestamp`,
///    then `X-Signature`: each absent → `missing_header`; repeated, conflicting, empty,
///    not visible ASCII or not of its syntax → `malformed_header`;
/// 2. `Content-Type`, when an allow-list is set → `unsupported_content_type` (a
///    missing `Content-Type` with a non-empty body is caught once the body hash is known,
///    first thing in [`Verifier::finish`]);
/// 3. the timestamp window → `timestamp_out_of_range`;
/// 4. the query's size limits → `request_too_large`;
/// 5. the credential: unknown, revoked or without an active key → `client_id`;
/// 6. the signature, against every active key in constant time → `invalid_signature`.
///
/// Steps 1–4 need no secret ([`Verifier::prepare`]); 5–6 need the credential
/// ([`Verifier::finish`]). [`Verifier::verify`] does both with a synchronous lookup.
///
/// ```
/// use std::{collections::HashMap, sync::Arc};
/// use jg_hmac::{ContentHash, Credential, Secret, SignedRequest, Target, Verifier};
///
/// let mut store: HashMap<String, Arc<Credential>> = HashMap::new();
/// store.insert(
///     "jk_live_example".into(),
///     Arc::new(Credential::new("jk_live_example").with_key(jg_hmac::SigningKey::new("0", &Secret::from("s3cr3t_test_key_justgold")))),
/// );
/// let request = SignedRequest::new("GET", Target::parse("/v1/ping?z=two&z=three&version=1&a=hello"), [
///     ("X-Client-Id", &b"jk_live_example"[..]),
///     ("X-Timestamp", b"1735550160"),
///     ("X-Signature", b"fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76"),
/// ]);
/// let verifier = Verifier::new();
/// let ok = verifier.verify(&store, &request, &ContentHash::EMPTY, 1735550160)?;
/// assert_eq!(ok.client_id(), "jk_live_example");
///
/// let late = verifier.verify(&store, &request, &ContentHash::EMPTY, 1735550461);
/// assert_eq!(late.unwrap_err().code(), "timestamp_out_of_range");
/// # Ok::<(), jg_hmac::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    past: u64,
    future: u64,
    access_key_alias: bool,
    content_types: Vec<String>,
    hide_unknown_clients: bool,
    limits: Limits,
    decoy: KeyedMac,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// A verifier with the defaults: ±300 s window, `X-Access-Key` alias accepted, no
    /// content-type allow-list, unknown clients answered with `client_id`,
    /// [`Limits::default`].
    ///
    /// ```
    /// let verifier = jg_hmac::Verifier::new();
    /// assert_eq!(verifier.replay_horizon(), 300);
    /// assert!(!verifier.hides_unknown_clients());
    /// ```
    pub fn new() -> Self {
        Self {
            past: DEFAULT_WINDOW,
            future: DEFAULT_WINDOW,
            access_key_alias: true,
            content_types: Vec::new(),
            hide_unknown_clients: false,
            limits: Limits::default(),
            decoy: KeyedMac::new(&Secret::new(b"jg-hmac decoy key: never matches a request")),
        }
    }

    /// Accepts timestamps at most `seconds` before or after `now` (inclusive).
    /// Defaults to `300`.
    ///
    /// ```
    /// let verifier = jg_hmac::Verifier::new().with_window(60);
    /// assert_eq!(verifier.replay_horizon(), 60);
    /// ```
    #[must_use]
    pub fn with_window(self, seconds: u64) -> Self {
        self.with_tolerance(seconds, seconds)
    }

    /// Accepts timestamps at most `past` seconds before `now` and at most `future` seconds
    /// after it, for clocks known to drift one way. Both default to `300`.
    ///
    /// ```
    /// let verifier = jg_hmac::Verifier::new().with_tolerance(300, 30);
    /// assert!(format!("{verifier:?}").contains("past: 300, future: 30"));
    /// ```
    #[must_use]
    pub fn with_tolerance(mut self, past: u64, future: u64) -> Self {
        self.past = past;
        self.future = future;
        self
    }

    /// Whether `X-Access-Key` is read as the client id when `X-Client-Id` is absent.
    /// Defaults to `true` (the seed's examples send it).
    ///
    /// ```
    /// let strict = jg_hmac::Verifier::new().with_access_key_alias(false);
    /// assert!(format!("{strict:?}").contains("access_key_alias: false"));
    /// ```
    #[must_use]
    pub fn with_access_key_alias(mut self, accept: bool) -> Self {
        self.access_key_alias = accept;
        self
    }

    /// Restricts the request's media type (the `Content-Type` before any `;`, compared
    /// ASCII-case-insensitively) to this list; anything else is `unsupported_content_type`.
    /// A request without `Content-Type` passes only with an empty body. Defaults to no
    /// restriction.
    ///
    /// ```
    /// let json_only = jg_hmac::Verifier::new().with_content_types(["application/json"]);
    /// assert!(format!("{json_only:?}").contains("content_types: [\"application/json\"]"));
    /// ```
    #[must_use]
    pub fn with_content_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.content_types = types
            .into_iter()
            .map(|t| t.as_ref().trim().to_ascii_lowercase())
            .collect();
        self
    }

    /// Answers an unknown client id exactly like a bad signature: code
    /// `invalid_signature`, after computing a decoy HMAC so that the time taken is alike.
    /// This stops callers from probing which client ids exist, at the price of vaguer
    /// errors for partners who mistype their id. Defaults to `false` (the seed's
    /// `client_id` code).
    ///
    /// ```
    /// let verifier = jg_hmac::Verifier::new().with_hidden_unknown_clients(true);
    /// assert!(verifier.hides_unknown_clients());
    /// ```
    #[must_use]
    pub fn with_hidden_unknown_clients(mut self, hide: bool) -> Self {
        self.hide_unknown_clients = hide;
        self
    }

    /// Whether unknown client ids are answered like bad signatures (see
    /// [`Verifier::with_hidden_unknown_clients`]). Middleware that rejects unknown clients
    /// before reading the body reads this to keep the answers alike.
    ///
    /// ```
    /// assert!(!jg_hmac::Verifier::new().hides_unknown_clients());
    /// ```
    pub fn hides_unknown_clients(&self) -> bool {
        self.hide_unknown_clients
    }

    /// Sets the size limits.
    ///
    /// ```
    /// let verifier = jg_hmac::Verifier::new().with_limits(jg_hmac::Limits::default());
    /// assert!(format!("{verifier:?}").contains("max_client_id_len: 128"));
    /// ```
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The seconds after its timestamp during which a request can still verify: how
    /// long a replay guard must remember it.
    ///
    /// ```
    /// assert_eq!(jg_hmac::Verifier::new().replay_horizon(), 300);
    /// ```
    pub fn replay_horizon(&self) -> u64 {
        self.past
    }

    /// Step one of two: every check that needs no secret (see [`Verifier`] for the order).
    /// Cheap, allocation-free for up to 32 query pairs, and safe to run before reading the
    /// body.
    ///
    /// # Errors
    /// `missing_header`, `malformed_header`, `unsupported_content_type`,
    /// `timestamp_out_of_range` or `request_too_large`.
    ///
    /// ```
    /// use jg_hmac::{SignedRequest, Target, Verifier};
    /// let request = SignedRequest::new("GET", Target::parse("/"), [("X-Client-Id", &b"jk_live_example"[..])]);
    /// let err = Verifier::new().prepare(&request, 0).unwrap_err();
    /// assert_eq!(err.code(), "missing_header");
    /// ```
    #[inline]
    pub fn prepare<'a>(
        &self,
        request: &SignedRequest<'a>,
        now: u64,
    ) -> Result<Prepared<'a>, Error> {
        match self.prepare_attributable(request, now)? {
            (prepared, None) => Ok(prepared),
            (_, Some(refused)) => Err(refused),
        }
    }

    /// [`Verifier::prepare`], except that a request refused only for its content type or
    /// its window is `Ok` with that refusal beside it, so that its signature can be checked
    /// all the same to learn who sent it (never to accept it).
    #[inline]
    pub(crate) fn prepare_attributable<'a>(
        &self,
        request: &SignedRequest<'a>,
        now: u64,
    ) -> Result<(Prepared<'a>, Option<Error>), Error> {
        let headers = &request.headers;
        let target = request.target();
        let client_id = self.client_id(headers)?;
        let timestamp_raw = single(headers.timestamp, HeaderKind::Timestamp)?;
        let timestamp = parse_timestamp(timestamp_raw)?;
        let signature_raw = single(headers.signature, HeaderKind::Signature)?;
        let signature = Signature::from_hex_bytes(signature_raw)
            .ok_or(Error::MalformedHeader(HeaderKind::Signature))?;
        let content_type = self.check_content_type(headers.content_type);
        let refused = content_type
            .err()
            .or_else(|| self.check_window(timestamp, now).err());
        let prepared = CanonicalQuery::parse_limited(
            target.query(),
            self.limits.max_query_len,
            self.limits.max_query_pairs,
        )
        .map(|query| Prepared {
            client_id,
            // Digits only, checked above.
            timestamp_raw,
            timestamp,
            signature,
            request: CanonicalRequest::from_parts(request.method(), target.path(), query),
            body_must_be_empty: content_type.unwrap_or(false),
        });
        match (prepared, refused) {
            (Ok(prepared), refused) => Ok((prepared, refused)),
            (Err(error), None) => Err(error),
            // The content type or the window, before the query's limits.
            (Err(_), Some(refused)) => Err(refused),
        }
    }

    /// Step two of two, once the body has been read: checks the signature against the
    /// credential the caller looked up for [`Prepared::client_id`] (`None` when there is
    /// none) and `content` — the hash of the body as received — and returns the
    /// authenticated identity.
    ///
    /// `now` is the clock read **when the request is complete** (after its last body
    /// byte), not the reading given to [`Verifier::prepare`]: the window and the keys'
    /// validity are judged again at this time, so a request whose body arrives after its
    /// window closed is `timestamp_out_of_range`, and a key that expired while the body
    /// streamed is not used. Give the same `now` to a replay guard.
    ///
    /// Every key active at `now` is tried, in constant time, with no early exit.
    ///
    /// # Errors
    /// In this order: `unsupported_content_type` (a body without `Content-Type` while an
    /// allow-list is set), `timestamp_out_of_range` (at `now`), `client_id` (see
    /// [`Verifier::check_client`]), `invalid_signature`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use jg_hmac::{ContentHash, Credential, Secret, SignedRequest, Signer, SigningKey, Target, Verifier};
    /// # async fn fetch_from_vault(id: &str) -> Option<Arc<Credential>> {
    /// #     Some(Arc::new(Credential::new(id).with_key(jg_hmac::SigningKey::new("0", &Secret::from("s3cr3t_test_key_justgold")))))
    /// # }
    /// # async fn handler() -> Result<(), jg_hmac::Error> {
    /// let signer = Signer::new("jk_live_example", &Secret::from("s3cr3t_test_key_justgold"))?;
    /// let signed = signer.sign("GET", "/v1/health/secure", b"", 1735550160);
    /// let (id, ts, sig) = (signed.client_id().as_bytes(), signed.timestamp().as_bytes(), signed.signature().to_hex());
    /// let request = SignedRequest::new("GET", Target::parse("/v1/health/secure"), [
    ///     ("X-Client-Id", id), ("X-Timestamp", ts), ("X-Signature", sig.as_bytes()),
    /// ]);
    /// let verifier = Verifier::new();
    /// let prepared = verifier.prepare(&request, 1735550160)?;
    /// let credential = fetch_from_vault(prepared.client_id()).await; // any async store
    /// // ... the body is read; the clock is read again when it is complete:
    /// let verified = verifier.finish(&prepared, credential.clone(), &ContentHash::EMPTY, 1735550161)?;
    /// assert_eq!((verified.client_id(), verified.key_id()), ("jk_live_example", "0"));
    ///
    /// // Complete after the window closed: refused, whatever the headers said on arrival.
    /// let late = verifier.finish(&prepared, credential, &ContentHash::EMPTY, 1735550461);
    /// assert_eq!(late.unwrap_err().code(), "timestamp_out_of_range");
    /// # Ok(()) }
    /// # futures_lite_block_on(handler()).unwrap();
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// ```
    pub fn finish(
        &self,
        prepared: &Prepared<'_>,
        credential: Option<Arc<Credential>>,
        content: &ContentHash,
        now: u64,
    ) -> Result<Verified, Error> {
        self.check_complete(prepared, content, now)?;
        self.check_signature(prepared, credential, content, now)
    }

    /// What [`Verifier::finish`] checks before the credential: a body without
    /// `Content-Type` under an allow-list, and the window at `now`.
    pub(crate) fn check_complete(
        &self,
        prepared: &Prepared<'_>,
        content: &ContentHash,
        now: u64,
    ) -> Result<(), Error> {
        // Before the credential, as in the check order (step 2): answered this late, it
        // told a known client (`unsupported_content_type`) from an unknown one even with
        // hidden unknown clients.
        if prepared.body_must_be_empty && *content != ContentHash::EMPTY {
            return Err(Error::UnsupportedContentType);
        }
        self.check_window(prepared.timestamp, now)
    }

    /// The rest of [`Verifier::finish`]: the credential and the signature, whatever the
    /// window and the content type.
    pub(crate) fn check_signature(
        &self,
        prepared: &Prepared<'_>,
        credential: Option<Arc<Credential>>,
        content: &ContentHash,
        now: u64,
    ) -> Result<Verified, Error> {
        // `check_client`, keeping the credential.
        let credential = credential.filter(|c| usable(c, prepared.client_id, now));
        if credential.is_none() && !self.hide_unknown_clients {
            return Err(Error::UnknownClient);
        }
        // Assembled once for every key (and the decoy).
        let message = StringToSign::new(&prepared.request, prepared.timestamp_raw, content);
        let Some(credential) = credential else {
            // Hidden unknown client: same work as a one-key client, and the same answer
            // as a bad signature.
            let decoy = message.sign(&self.decoy);
            let _ = decoy.ct_eq(&prepared.signature);
            return Err(Error::InvalidSignature);
        };
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, key) in credential.keys().iter().enumerate() {
            if !key.is_active_at(now) {
                continue;
            }
            let expected = message.sign(key.mac());
            let matches = expected.ct_eq(&prepared.signature);
            index.conditional_assign(&(i as u64), matches & !found);
            found |= matches;
        }
        match usize::try_from(index) {
            Ok(key_index) if bool::from(found) => Ok(Verified::new(
                credential,
                key_index,
                prepared.timestamp,
                prepared.signature,
            )),
            _ => Err(Error::InvalidSignature),
        }
    }

    /// Whether the looked-up credential can verify this request at `now`: it exists, is
    /// for [`Prepared::client_id`] and has a key active at `now`. [`Verifier::finish`]
    /// runs it; middleware runs it too right after the lookup, to refuse an unknown or
    /// revoked client before reading its body.
    ///
    /// With [hidden unknown clients](Verifier::with_hidden_unknown_clients) it always
    /// passes, and `finish` answers `invalid_signature` instead.
    ///
    /// # Errors
    /// `client_id`.
    ///
    /// ```
    /// use jg_hmac::{SignedRequest, Target, Verifier};
    /// let zeros = [b'0'; 64];
    /// let request = SignedRequest::new("GET", Target::parse("/"), [
    ///     ("X-Client-Id", &b"jk_live_nobody"[..]),
    ///     ("X-Timestamp", b"100"),
    ///     ("X-Signature", &zeros[..]),
    /// ]);
    /// let prepared = Verifier::new().prepare(&request, 100)?;
    /// let err = Verifier::new().check_client(&prepared, None, 100).unwrap_err();
    /// assert_eq!(err.code(), "client_id");
    /// assert!(Verifier::new().with_hidden_unknown_clients(true).check_client(&prepared, None, 100).is_ok());
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn check_client(
        &self,
        prepared: &Prepared<'_>,
        credential: Option<&Credential>,
        now: u64,
    ) -> Result<(), Error> {
        let known = credential.is_some_and(|c| usable(c, prepared.client_id, now));
        if known || self.hide_unknown_clients {
            Ok(())
        } else {
            Err(Error::UnknownClient)
        }
    }

    /// Both steps with a synchronous lookup: verifies a request whose body hash is known,
    /// at one clock reading `now`. For an [`http::Request`] with its body in memory:
    /// `verify(&lookup, &SignedRequest::from(&request), &ContentHash::of(request.body()), now)`.
    ///
    /// # Errors
    /// Any of [`Verifier::prepare`]'s and [`Verifier::finish`]'s errors.
    ///
    /// ```
    /// use std::{collections::HashMap, sync::Arc};
    /// use jg_hmac::{ContentHash, Credential, SignedRequest, Signer, SigningKey, Verifier};
    /// let secret = "s3cr3t_test_key_justgold".into();
    /// let store = HashMap::from([(
    ///     "jk_live_example".to_string(),
    ///     Arc::new(Credential::new("jk_live_example").with_key(SigningKey::new("k1", &secret))),
    /// )]);
    /// let mut request = http::Request::post("/v1/transactions/buy")
    ///     .body(br#"{"amount":"5000","transactionId":"12345"}"#.to_vec())
    ///     .unwrap();
    /// Signer::new("jk_live_example", &secret)?.sign_request(&mut request, 1735550100);
    ///
    /// let verifier = Verifier::new();
    /// let verify = |request: &http::Request<Vec<u8>>| {
    ///     let content = ContentHash::of(request.body());
    ///     verifier.verify(&store, &SignedRequest::from(request), &content, 1735550100)
    /// };
    /// assert_eq!(verify(&request)?.client_id(), "jk_live_example");
    /// request.body_mut().push(b' ');
    /// assert_eq!(verify(&request).unwrap_err().code(), "invalid_signature");
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn verify<L: CredentialLookup + ?Sized>(
        &self,
        lookup: &L,
        request: &SignedRequest<'_>,
        content: &ContentHash,
        now: u64,
    ) -> Result<Verified, Error> {
        let prepared = self.prepare(request, now)?;
        let credential = lookup.lookup(prepared.client_id);
        self.finish(&prepared, credential, content, now)
    }

    fn client_id<'a>(&self, headers: &AuthHeaders<'a>) -> Result<&'a str, Error> {
        let alias = if self.access_key_alias {
            headers.access_key
        } else {
            Slot::Absent
        };
        let value = match (headers.client_id, alias) {
            (Slot::Absent, Slot::Absent) => {
                return Err(Error::MissingHeader(HeaderKind::ClientId));
            }
            (Slot::One(v), Slot::Absent) | (Slot::Absent, Slot::One(v)) => v,
            (Slot::One(a), Slot::One(b)) if a == b => a,
            _ => return Err(Error::MalformedHeader(HeaderKind::ClientId)),
        };
        if !crate::client_id::is_well_formed(value, self.limits.max_client_id_len) {
            return Err(Error::MalformedHeader(HeaderKind::ClientId));
        }
        core::str::from_utf8(value).map_err(|_| Error::MalformedHeader(HeaderKind::ClientId))
    }

    /// Returns whether the body must be empty (allow-list set, no `Content-Type`).
    fn check_content_type(&self, slot: Slot<'_>) -> Result<bool, Error> {
        if self.content_types.is_empty() {
            return Ok(false);
        }
        let value = match slot {
            Slot::Absent => return Ok(true),
            Slot::Repeated => return Err(Error::MalformedHeader(HeaderKind::ContentType)),
            Slot::One(v) => v,
        };
        let media_type = value.split(|&b| b == b';').next().unwrap_or_default();
        let media_type = media_type.trim_ascii();
        if self
            .content_types
            .iter()
            .any(|allowed| allowed.as_bytes().eq_ignore_ascii_case(media_type))
        {
            Ok(false)
        } else {
            Err(Error::UnsupportedContentType)
        }
    }

    fn check_window(&self, timestamp: u64, now: u64) -> Result<(), Error> {
        let within = if timestamp <= now {
            now - timestamp <= self.past
        } else {
            timestamp - now <= self.future
        };
        if within {
            Ok(())
        } else {
            Err(Error::TimestampOutOfRange)
        }
    }
}

/// Whether `credential` is the one for `client_id` and has a key active at `now`.
fn usable(credential: &Credential, client_id: &str, now: u64) -> bool {
    credential.client_id() == client_id && credential.keys().iter().any(|k| k.is_active_at(now))
}

/// A header that must appear exactly once. Its syntax (digits, hex digits) is checked by
/// the caller, and implies that it is non-empty visible ASCII.
fn single(slot: Slot<'_>, which: HeaderKind) -> Result<&[u8], Error> {
    match slot {
        Slot::Absent => Err(Error::MissingHeader(which)),
        Slot::One(v) => Ok(v),
        Slot::Repeated => Err(Error::MalformedHeader(which)),
    }
}
