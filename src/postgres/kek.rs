//! Key-encryption keys: what encrypts client secrets at rest.

use std::fmt;
use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::secret::Secret;

/// Target of the `postgres` module's tracing events.
pub(crate) const LOG_TARGET: &str = "jg_hmac::postgres";

/// Length of an AES-GCM nonce in bytes.
const NONCE_LEN: usize = 12;

/// A secret as stored: the ciphertext (with its authentication tag) and the nonce it was
/// sealed with. Neither reveals the secret.
///
/// ```
/// use jg_hmac::postgres::Sealed;
/// let sealed = Sealed { nonce: vec![0; 12], ciphertext: vec![1, 2, 3] };
/// assert_eq!(sealed.nonce.len(), 12);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// The nonce (12 random bytes for [`LocalKek`]; a backend may leave it empty if its
    /// ciphertext carries its own).
    pub nonce: Vec<u8>,
    /// The ciphertext, authentication tag included.
    pub ciphertext: Vec<u8>,
}

/// A key-encryption key could not seal or open a secret.
///
/// Its messages never contain key material or secrets.
///
/// ```
/// use jg_hmac::postgres::KekError;
/// let err = KekError::new("vault transit: 403");
/// assert_eq!(err.to_string(), "key-encryption key: vault transit: 403");
/// ```
#[derive(Debug)]
pub struct KekError(String);

impl KekError {
    /// An error with this message (keep secrets out of it).
    ///
    /// ```
    /// let err = jg_hmac::postgres::KekError::new("KMS unreachable");
    /// assert_eq!(err.to_string(), "key-encryption key: KMS unreachable");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for KekError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key-encryption key: {}", self.0)
    }
}

impl std::error::Error for KekError {}

/// A key-encryption key (KEK): seals client secrets before they reach the database and
/// opens them when a verifier loads a credential.
///
/// `aad` (associated data) binds a ciphertext to its row: the store passes the client id
/// and the key id, so a ciphertext copied into another row does not open. The methods
/// return boxed `Send` futures so that a backend can call a KMS or Vault's transit
/// engine; the local implementation is [`LocalKek`]. An `Arc` of a KEK is a KEK too, so
/// one key can be shared between stores.
///
/// [`id`](Self::id) names the key (not secretly): it is stored beside every ciphertext,
/// so a store holding several KEKs (during a [re-key](super::PgCredentialStore::rekey))
/// knows which one opens a row.
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use jg_hmac::Secret;
/// use jg_hmac::postgres::{Kek, KekError, Sealed};
///
/// /// Stands for a client of a KMS: here it only delegates to a local key.
/// #[derive(Debug)]
/// struct Kms(jg_hmac::postgres::LocalKek);
///
/// impl Kek for Kms {
///     fn id(&self) -> &str { "kms:alias/jg-hmac" }
///     fn seal<'a>(
///         &'a self,
///         plaintext: &'a [u8],
///         aad: &'a [u8],
///     ) -> Pin<Box<dyn Future<Output = Result<Sealed, KekError>> + Send + 'a>> {
///         self.0.seal(plaintext, aad) // a real one: an Encrypt call with aad as context
///     }
///     fn open<'a>(
///         &'a self,
///         sealed: &'a Sealed,
///         aad: &'a [u8],
///     ) -> Pin<Box<dyn Future<Output = Result<Secret, KekError>> + Send + 'a>> {
///         Box::pin(async move { self.0.open(sealed, aad).await })
///     }
/// }
/// # let _ = Kms(jg_hmac::postgres::LocalKek::generate().unwrap());
/// ```
pub trait Kek: fmt::Debug + Send + Sync + 'static {
    /// A stable, non-secret name of this key, stored beside each ciphertext it seals.
    fn id(&self) -> &str;

    /// Encrypts `plaintext`, authenticating `aad` with it.
    ///
    /// # Errors
    /// [`KekError`] when the backend cannot encrypt.
    fn seal<'a>(
        &'a self,
        plaintext: &'a [u8],
        aad: &'a [u8],
    ) -> Pin<Box<dyn Future<Output = Result<Sealed, KekError>> + Send + 'a>>;

    /// Decrypts what [`seal`](Self::seal) produced with the same `aad`.
    ///
    /// # Errors
    /// [`KekError`] when the ciphertext, nonce or `aad` do not match (a copied or altered
    /// row, another KEK) or the backend cannot decrypt.
    fn open<'a>(
        &'a self,
        sealed: &'a Sealed,
        aad: &'a [u8],
    ) -> Pin<Box<dyn Future<Output = Result<Secret, KekError>> + Send + 'a>>;
}

impl<K: Kek + ?Sized> Kek for Arc<K> {
    fn id(&self) -> &str {
        (**self).id()
    }

    fn seal<'a>(
        &'a self,
        plaintext: &'a [u8],
        aad: &'a [u8],
    ) -> Pin<Box<dyn Future<Output = Result<Sealed, KekError>> + Send + 'a>> {
        (**self).seal(plaintext, aad)
    }

    fn open<'a>(
        &'a self,
        sealed: &'a Sealed,
        aad: &'a [u8],
    ) -> Pin<Box<dyn Future<Output = Result<Secret, KekError>> + Send + 'a>> {
        (**self).open(sealed, aad)
    }
}

/// A key-encryption key held in this process: AES-256-GCM with a random 96-bit nonce per
/// secret.
///
/// Load it with [`from_file`](Self::from_file) (the file `JG_KEK_FILE` names: 64 hex
/// digits, surrounding whitespace ignored). The key is wiped on drop and never printed;
/// its [`id`](Kek::id) is `local:` and 16 hex digits of a SHA-256 of the key, which tells
/// keys apart without revealing them.
///
/// Make one with `openssl rand -hex 32 > kek.hex` (or `jg-hmac keys gen-kek`), readable
/// only by the services that need it.
///
/// ```
/// use jg_hmac::postgres::{Kek, LocalKek};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let kek = LocalKek::from_hex(&"ab".repeat(32)).unwrap();
/// let sealed = kek.seal(b"the secret", b"jk_live_a\0k1").await.unwrap();
/// assert_eq!(kek.open(&sealed, b"jk_live_a\0k1").await.unwrap().expose_secret(), b"the secret");
/// assert!(kek.open(&sealed, b"jk_live_b\0k1").await.is_err()); // another row: refused
/// assert!(!format!("{kek:?}").contains("abab"));
/// # });
/// ```
pub struct LocalKek {
    cipher: Aes256Gcm,
    id: String,
}

impl LocalKek {
    /// A KEK from its 32 bytes.
    ///
    /// ```
    /// let kek = jg_hmac::postgres::LocalKek::from_bytes(&[7; 32]);
    /// assert!(format!("{kek:?}").contains("key: \"[redacted]\""));
    /// ```
    pub fn from_bytes(key: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"jg-hmac local kek id v1\0")
            .chain_update(key)
            .finalize();
        let id = format!("local:{}", hex::encode(digest.get(..8).unwrap_or_default()));
        Self {
            cipher: Aes256Gcm::new(key.into()),
            id,
        }
    }

    /// A KEK from 64 hex digits (either case), surrounding whitespace ignored.
    ///
    /// # Errors
    /// [`KekError`] for anything else; the message says what was wrong, never the input.
    ///
    /// ```
    /// use jg_hmac::postgres::LocalKek;
    /// assert!(LocalKek::from_hex(&format!(" {}\n", "0f".repeat(32))).is_ok());
    /// assert!(LocalKek::from_hex("0f0f").is_err());
    /// ```
    pub fn from_hex(text: &str) -> Result<Self, KekError> {
        let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
        if let Some(pos) = trimmed.chars().position(|c| !c.is_ascii_hexdigit()) {
            return Err(KekError::new(format!(
                "expected 64 hex digits (32 bytes), found a character that is not a hex \
                 digit at position {} (only surrounding whitespace is ignored)",
                pos + 1
            )));
        }
        if trimmed.len() != 64 {
            return Err(KekError::new(format!(
                "expected 64 hex digits (32 bytes), found {} hex digits",
                trimmed.len()
            )));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(trimmed, &mut key[..])
            .map_err(|_| KekError::new("expected 64 hex digits (32 bytes)"))?;
        Ok(Self::from_bytes(&key))
    }

    /// Reads a KEK from a file holding 64 hex digits (surrounding whitespace, such as a
    /// trailing newline, ignored).
    ///
    /// A file that group or others may read or write (mode `& 0o077`, e.g. the 0644 of
    /// `openssl rand -hex 32 > kek`) is used, since container secret mounts often are
    /// 0644, but reported: a `warn` event (target `jg_hmac::postgres`) names the file and
    /// its mode, never the key.
    ///
    /// # Errors
    /// [`KekError`] when the file cannot be read or holds anything else; the message
    /// names the file, never its contents.
    ///
    /// ```no_run
    /// let kek = jg_hmac::postgres::LocalKek::from_file("/run/secrets/jg-kek")?;
    /// # Ok::<(), jg_hmac::postgres::KekError>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KekError> {
        let path = path.as_ref();
        let cannot_read = |e: std::io::Error| {
            KekError::new(format!("cannot read KEK file {}: {e}", path.display()))
        };
        let mut file = std::fs::File::open(path).map_err(cannot_read)?;
        let metadata = file.metadata().map_err(cannot_read)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    target: LOG_TARGET,
                    file = ?path,
                    mode = %format_args!("{mode:04o}"),
                    "KEK file is readable or writable by group or others; chmod 600 it"
                );
            }
        }
        // Room for the whole file at once, so that no copy is left behind unwiped.
        let capacity = usize::try_from(metadata.len())
            .unwrap_or(0)
            .saturating_add(1);
        let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
        file.read_to_end(&mut bytes).map_err(cannot_read)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            KekError::new(format!(
                "KEK file {}: expected 64 hex digits (32 bytes), found bytes that are not text",
                path.display()
            ))
        })?;
        Self::from_hex(text)
            .map_err(|e| KekError::new(format!("KEK file {}: {}", path.display(), e.0)))
    }

    /// A new random KEK from the operating system's generator.
    ///
    /// # Errors
    /// [`KekError`] when the generator fails.
    ///
    /// ```
    /// let kek = jg_hmac::postgres::LocalKek::generate().unwrap();
    /// let other = jg_hmac::postgres::LocalKek::generate().unwrap();
    /// assert_ne!(format!("{kek:?}"), format!("{other:?}")); // ids differ
    /// ```
    pub fn generate() -> Result<Self, KekError> {
        let key = Self::generate_hex()?;
        Self::from_hex(&key)
    }

    /// A new random key from the operating system's generator, as the 64 lowercase hex
    /// digits of a KEK file (what `jg-hmac keys gen-kek` writes), in a string wiped on
    /// drop. [`from_hex`](Self::from_hex) reads it back.
    ///
    /// # Errors
    /// [`KekError`] when the generator fails.
    ///
    /// ```
    /// use jg_hmac::postgres::LocalKek;
    /// let hex = LocalKek::generate_hex().unwrap();
    /// assert_eq!(hex.len(), 64);
    /// assert!(LocalKek::from_hex(&hex).is_ok());
    /// ```
    pub fn generate_hex() -> Result<Zeroizing<String>, KekError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut key[..])
            .map_err(|e| KekError::new(format!("random generator unavailable: {e}")))?;
        Ok(Zeroizing::new(hex::encode(&key[..])))
    }

    fn seal_now(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, KekError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| KekError::new(format!("random nonce unavailable: {e}")))?;
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| KekError::new("AES-256-GCM encryption failed"))?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    fn open_now(&self, sealed: &Sealed, aad: &[u8]) -> Result<Secret, KekError> {
        if sealed.nonce.len() != NONCE_LEN {
            return Err(KekError::new(format!(
                "nonce of {} bytes (AES-256-GCM uses {NONCE_LEN})",
                sealed.nonce.len()
            )));
        }
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map_err(|_| {
                KekError::new(
                    "ciphertext does not decrypt (altered, copied from another row, or \
                     sealed under another KEK)",
                )
            })?;
        // `From<Vec<u8>>` copies and wipes the vector.
        Ok(Secret::from(plaintext))
    }
}

impl Kek for LocalKek {
    fn id(&self) -> &str {
        &self.id
    }

    fn seal<'a>(
        &'a self,
        plaintext: &'a [u8],
        aad: &'a [u8],
    ) -> Pin<Box<dyn Future<Output = Result<Sealed, KekError>> + Send + 'a>> {
        let result = self.seal_now(plaintext, aad);
        Box::pin(std::future::ready(result))
    }

    fn open<'a>(
        &'a self,
        sealed: &'a Sealed,
        aad: &'a [u8],
    ) -> Pin<Box<dyn Future<Output = Result<Secret, KekError>> + Send + 'a>> {
        let result = self.open_now(sealed, aad);
        Box::pin(std::future::ready(result))
    }
}

impl fmt::Debug for LocalKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKek")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_rules() {
        let good = "aB".repeat(32);
        assert!(LocalKek::from_hex(&good).is_ok());
        assert!(LocalKek::from_hex(&format!("\t {good} \r\n")).is_ok());
        let e = LocalKek::from_hex(&format!("{good}x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("position 65"), "{e}");
        assert!(!e.contains(&good));
        let e = LocalKek::from_hex(&good[..62]).unwrap_err().to_string();
        assert!(e.contains("found 62"), "{e}");
        assert!(LocalKek::from_hex(&format!("0x{}", &good[..62])).is_err());
        assert!(LocalKek::from_hex(&format!("{} {}", &good[..32], &good[32..])).is_err());
        assert!(LocalKek::from_hex("").is_err());
    }

    #[test]
    fn ids_differ_and_are_stable() {
        let a = LocalKek::from_bytes(&[1; 32]);
        let b = LocalKek::from_bytes(&[2; 32]);
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id(), LocalKek::from_bytes(&[1; 32]).id());
        assert!(a.id().starts_with("local:") && a.id().len() == 22);
    }

    #[test]
    fn nonces_are_fresh_and_aad_binds() {
        let kek = LocalKek::from_bytes(&[9; 32]);
        let one = kek.seal_now(b"s", b"a").unwrap();
        let two = kek.seal_now(b"s", b"a").unwrap();
        assert_ne!(one.nonce, two.nonce);
        assert!(kek.open_now(&one, b"b").is_err());
        assert!(LocalKek::from_bytes(&[8; 32]).open_now(&one, b"a").is_err());
        let mut bad = one.clone();
        bad.nonce.pop();
        assert!(kek.open_now(&bad, b"a").is_err());
        assert_eq!(kek.open_now(&one, b"a").unwrap().expose_secret(), b"s");
    }

    #[test]
    fn a_shared_kek_is_a_kek() {
        let local = LocalKek::from_bytes(&[5; 32]);
        let id = local.id().to_owned();
        let shared: Arc<dyn Kek> = Arc::new(local);
        assert_eq!(Kek::id(&shared), id);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let sealed = Kek::seal(&shared, b"s", b"a").await.unwrap();
            let opened = Kek::open(&shared, &sealed, b"a").await.unwrap();
            assert_eq!(opened.expose_secret(), b"s");
        });
    }
}
