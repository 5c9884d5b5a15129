//! What every command reads: the request (stdin or `--in FILE`) and the client secret
//! (`--secret-env VAR` or `--secret-file FILE`, never the command line).

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use jg_hmac::Secret;

use crate::EarlyExit;
use crate::raw::{self, RawLimits, RawRequest};

#[derive(Debug, Args)]
pub struct Input {
    /// Read the request from FILE instead of stdin.
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,
}

impl Input {
    /// Reads the whole input, refusing more than the parser could accept without
    /// buffering it.
    pub fn read(&self) -> Result<Vec<u8>, EarlyExit> {
        let limits = RawLimits::default();
        let cap = limits.max_input();
        let mut bytes = Vec::new();
        let reader: Box<dyn Read> = match &self.input {
            Some(path) => Box::new(
                std::fs::File::open(path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
            ),
            None => Box::new(std::io::stdin().lock()),
        };
        reader
            .take(u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading the request: {e}"))?;
        if bytes.len() > cap {
            return Err(EarlyExit::Input(format!(
                "input too large: more than {cap} bytes (limits: header section {} bytes, body {} bytes)",
                limits.max_head, limits.max_body
            )));
        }
        Ok(bytes)
    }
}

/// The request in `bytes` (from [`Input::read`]).
pub fn parse_request(bytes: &[u8]) -> Result<RawRequest<'_>, EarlyExit> {
    raw::parse(bytes, &RawLimits::default())
        .map_err(|e| EarlyExit::Input(format!("malformed request: {e}")))
}

#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct SecretSource {
    /// Read the client secret from the environment variable VAR.
    #[arg(long, value_name = "VAR")]
    secret_env: Option<OsString>,
    /// Read the client secret from FILE (one trailing newline, LF or CRLF, is removed).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
}

impl SecretSource {
    /// The secret, if one was given.
    pub fn load(&self) -> Result<Option<Secret>, EarlyExit> {
        let bytes = if let Some(var) = &self.secret_env {
            let value = std::env::var_os(var).ok_or_else(|| {
                format!("environment variable {} is not set", var.to_string_lossy())
            })?;
            os_bytes(value)?
        } else if let Some(path) = &self.secret_file {
            read_secret_file(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        } else {
            return Ok(None);
        };
        let secret = Secret::from(bytes);
        if secret.is_empty() {
            return Err(EarlyExit::Input("the secret is empty".into()));
        }
        Ok(Some(secret))
    }

    /// The secret; an error if none was given.
    pub fn require(&self) -> Result<Secret, EarlyExit> {
        self.load()?.ok_or_else(|| {
            EarlyExit::Input("a secret is required: --secret-env VAR or --secret-file FILE".into())
        })
    }
}

/// The mode of a file that group or others may read or write (`mode & 0o077` set), which
/// a file holding a secret should not be; `None` for a private file, one that cannot be
/// read, or on a system without Unix modes.
#[cfg(any(feature = "postgres", feature = "gateway"))]
pub fn shared_mode(path: &std::path::Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// A secret file's bytes, one trailing newline (LF or CRLF) removed.
pub fn read_secret_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = std::fs::read(path)?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    Ok(bytes)
}

#[cfg(unix)]
fn os_bytes(value: OsString) -> Result<Vec<u8>, EarlyExit> {
    use std::os::unix::ffi::OsStringExt;
    Ok(value.into_vec())
}

#[cfg(not(unix))]
fn os_bytes(value: OsString) -> Result<Vec<u8>, EarlyExit> {
    value
        .into_string()
        .map(String::into_bytes)
        .map_err(|_| EarlyExit::Input("the secret variable is not valid Unicode".into()))
}
