//! The credentials file (TOML), read at start and on SIGHUP: every client, its scopes, its
//! optional rate limit and its keys, each key's secret inline (`secret`), from the
//! environment (`secret_env`) or from a file (`secret_file`), with an optional validity
//! period. A file with any error is refused as a whole; errors name the file and the line,
//! never a secret.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use jg_hmac::{Credential, RateLimit, Secret, SigningKey};
use serde::Deserialize;
use toml::Spanned;
use zeroize::{Zeroize, Zeroizing};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    clients: Vec<Spanned<Client>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Client {
    id: String,
    #[serde(default)]
    scopes: Vec<String>,
    rate_limit: Option<String>,
    #[serde(default)]
    keys: Vec<Spanned<Key>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    id: String,
    secret: Option<SecretText>,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    not_before: Option<u64>,
    not_after: Option<u64>,
}

/// An inline secret while the file is parsed: wiped on drop, never printed.
#[derive(Deserialize)]
#[serde(transparent)]
struct SecretText(String);

impl Drop for SecretText {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Reads and checks the whole file: every credential, or the first error.
pub fn load(path: &Path) -> Result<Vec<Credential>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read credentials file {}: {e}", path.display()))?,
    );
    warn_if_shared(path, "credentials file");
    // toml's messages quote the offending line: never let one reach a log, it may hold a
    // secret. Keep the line number and the reason.
    let file: File = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(&text, s.start));
        format!(
            "credentials file {}, line {line}: {}",
            path.display(),
            e.message()
        )
    })?;
    let mut seen = HashSet::new();
    let mut credentials = Vec::with_capacity(file.clients.len());
    for client in &file.clients {
        let at = |offset: usize, message: String| {
            format!(
                "credentials file {}, line {}: {message}",
                path.display(),
                line_of(&text, offset)
            )
        };
        let start = client.span().start;
        let client = client.get_ref();
        if client.id.is_empty() {
            return Err(at(start, "client id is empty".into()));
        }
        if !seen.insert(client.id.clone()) {
            return Err(at(start, format!("client {} appears twice", client.id)));
        }
        let mut credential = Credential::new(client.id.clone());
        for scope in &client.scopes {
            credential = credential.with_scope(scope.clone());
        }
        if let Some(limit) = &client.rate_limit {
            let limit: RateLimit = limit
                .parse()
                .map_err(|e| at(start, format!("client {}: rate_limit: {e}", client.id)))?;
            credential = credential.with_rate_limit(limit);
        }
        let mut key_ids = HashSet::new();
        for key in &client.keys {
            let key_start = key.span().start;
            let key = key.get_ref();
            let here = |m: String| {
                at(
                    key_start,
                    format!("client {}, key {}: {m}", client.id, key.id),
                )
            };
            if !key_ids.insert(key.id.as_str()) {
                return Err(here("key id appears twice".into()));
            }
            let secret = secret_of(key).map_err(here)?;
            if let (Some(from), Some(to)) = (key.not_before, key.not_after)
                && from > to
            {
                return Err(here("not_before is after not_after".into()));
            }
            credential = credential.with_key(
                SigningKey::new(key.id.clone(), &secret)
                    .with_validity(key.not_before, key.not_after),
            );
        }
        credentials.push(credential);
    }
    Ok(credentials)
}

fn secret_of(key: &Key) -> Result<Secret, String> {
    let secret = match (&key.secret, &key.secret_env, &key.secret_file) {
        (Some(text), None, None) => Secret::from(text.0.as_str()),
        (None, Some(var), None) => {
            let value = std::env::var(var)
                .map_err(|_| format!("secret_env: environment variable {var} is not set"))?;
            let value = Zeroizing::new(value);
            Secret::from(value.as_str())
        }
        (None, None, Some(file)) => {
            warn_if_shared(file, "secret file");
            let bytes = crate::input::read_secret_file(file)
                .map_err(|e| format!("secret_file: cannot read {}: {e}", file.display()))?;
            Secret::from(bytes)
        }
        _ => return Err("exactly one of secret, secret_env, secret_file is required".into()),
    };
    if secret.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(secret)
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |head| head.iter().filter(|&&b| b == b'\n').count())
        + 1
}

/// Reports (a `warn` event, target `jg_hmac::gateway`) a file that group or others may
/// read or write: it holds secrets and should be `chmod 600`. The file is still used, as
/// container secret mounts often are 0644.
pub fn warn_if_shared(path: &Path, what: &str) {
    if let Some(mode) = crate::input::shared_mode(path) {
        tracing::warn!(
            target: super::LOG_TARGET,
            file = %path.display(),
            mode = %format_args!("{mode:04o}"),
            "{what} is readable or writable by group or others; chmod 600 it"
        );
    }
}
