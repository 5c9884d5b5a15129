//! TLS to PostgreSQL on rustls: `sslmode` and `sslrootcert` in the database URL, spelled
//! and meant as libpq spells and means them.
//!
//! | `sslmode`       | TLS                        | the server's certificate                      |
//! |-----------------|----------------------------|-----------------------------------------------|
//! | `disable`       | never                      | -                                             |
//! | `prefer` (none) | if the server offers it    | chain to `sslrootcert` if given, else none    |
//! | `require`       | always                     | chain to `sslrootcert` if given, else none    |
//! | `verify-ca`     | always                     | chain to `sslrootcert` (required)             |
//! | `verify-full`   | always                     | chain to `sslrootcert` (required) + host name |
//!
//! `allow`, `sslrootcert=system` and libpq's default root file (`~/.postgresql/root.crt`)
//! are not supported: each is an input error, as is any other `sslmode`.

use std::fmt;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::PgError;

/// The modes, as libpq spells them, for messages.
const MODES: &str = "disable, prefer, require, verify-ca or verify-full";

/// How connections are made: in the clear, or through rustls with a verifier for the
/// `sslmode`. Cloned into the pool and every listener.
#[derive(Clone)]
pub(super) enum Tls {
    /// `sslmode=disable`.
    Off,
    /// Every other mode; tokio-postgres' `SslMode` says whether TLS is required.
    Rustls(MakeRustlsConnect),
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "Tls::Off",
            Self::Rustls(_) => "Tls::Rustls",
        })
    }
}

/// What [`Tls`] to make, as the URL asks; made when the store is built.
#[derive(Debug, Clone)]
pub(super) enum TlsPlan {
    /// `sslmode=disable`.
    Off,
    /// TLS; the certificate checked against `roots` (and the host name if `check_name`),
    /// or not at all without `roots`.
    Rustls {
        roots: Option<RootCertStore>,
        check_name: bool,
    },
}

impl TlsPlan {
    /// The plan for a configuration built by hand: no TLS for `SslMode::Disable`, else
    /// TLS that encrypts without checking the certificate (libpq's `require`).
    pub(super) fn for_config(config: &tokio_postgres::Config) -> Self {
        match config.get_ssl_mode() {
            SslMode::Disable => Self::Off,
            _ => Self::Rustls {
                roots: None,
                check_name: false,
            },
        }
    }

    /// The connector.
    ///
    /// # Errors
    /// [`PgError::Pool`] when rustls refuses the ring provider's protocol versions.
    pub(super) fn connector(self) -> Result<Tls, PgError> {
        let Self::Rustls { roots, check_name } = self else {
            return Ok(Tls::Off);
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Verifier {
            roots: roots.map(Arc::new),
            check_name,
            algorithms: provider.signature_verification_algorithms,
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PgError::Pool(format!("TLS client setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Tls::Rustls(MakeRustlsConnect::new(config)))
    }
}

/// A connection error's text, with what a refused certificate means in libpq's terms.
pub(super) fn explain(message: String) -> String {
    let hint = if message.contains("UnknownIssuer") {
        "the server's TLS certificate is not signed by a CA in sslrootcert"
    } else if message.contains("not valid for name") {
        "sslmode=verify-full: the host name is not in the server's TLS certificate"
    } else if message.contains("invalid peer certificate") {
        "the server's TLS certificate was refused"
    } else {
        return message;
    };
    format!("{message} ({hint})")
}

/// The database URL (or `key=value` string) parsed: `sslmode` and `sslrootcert` taken out
/// and applied, the rest parsed by tokio-postgres.
pub(super) fn parse(url: &str) -> Result<(tokio_postgres::Config, TlsPlan), PgError> {
    let (rest, mode, root) = split(url)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| PgError::InvalidInput(format!("the database URL does not parse: {e}")))?;
    let mode = mode.as_deref().unwrap_or("prefer");
    let roots = match root.as_deref() {
        Some("system") => {
            return Err(PgError::InvalidInput(
                "sslrootcert=system (the platform's roots) is not supported: give the file of \
                 the CA certificates (PEM)"
                    .to_owned(),
            ));
        }
        Some(path) => Some(read_roots(path)?),
        None => None,
    };
    let needs_roots = |mode: &str| {
        PgError::InvalidInput(format!(
            "sslmode={mode} needs sslrootcert=<file of the CA certificates, PEM> in the \
             database URL"
        ))
    };
    let tls = match mode {
        "disable" => {
            config.ssl_mode(SslMode::Disable);
            return Ok((config, TlsPlan::Off));
        }
        "prefer" => {
            config.ssl_mode(SslMode::Prefer);
            TlsPlan::Rustls {
                roots,
                check_name: false,
            }
        }
        "require" => {
            config.ssl_mode(SslMode::Require);
            TlsPlan::Rustls {
                roots,
                check_name: false,
            }
        }
        "verify-ca" | "verify-full" => {
            config.ssl_mode(SslMode::Require);
            let roots = roots.ok_or_else(|| needs_roots(mode))?;
            TlsPlan::Rustls {
                roots: Some(roots),
                check_name: mode == "verify-full",
            }
        }
        "allow" => {
            return Err(PgError::InvalidInput(format!(
                "sslmode=allow is not supported: use one of {MODES}"
            )));
        }
        other => {
            return Err(PgError::InvalidInput(format!(
                "unknown sslmode {other:?}: expected {MODES}"
            )));
        }
    };
    Ok((config, tls))
}

/// The CA certificates of `sslrootcert`.
fn read_roots(path: &str) -> Result<RootCertStore, PgError> {
    let bad = |why: String| PgError::InvalidInput(format!("sslrootcert {path:?}: {why}"));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no PEM certificate".to_owned()));
    }
    Ok(roots)
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL's query or a `key=value`
/// string (the last of each wins, as in libpq); returns the rest, and their values.
#[allow(clippy::type_complexity)]
fn split(url: &str) -> Result<(String, Option<String>, Option<String>), PgError> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: String| match key {
        "sslmode" => {
            mode = Some(value);
            true
        }
        "sslrootcert" => {
            root = Some(value);
            true
        }
        _ => false,
    };
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let rest = if is_url {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), None, None));
        };
        let mut kept = Vec::new();
        for part in query.split('&') {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let key = percent_decode_str(key).decode_utf8_lossy();
            if key == "sslmode" || key == "sslrootcert" {
                let value = percent_decode_str(value).decode_utf8().map_err(|_| {
                    PgError::InvalidInput(format!("{key} in the database URL is not UTF-8"))
                })?;
                take(&key, value.into_owned());
            } else {
                kept.push(part);
            }
        }
        if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut rest = String::with_capacity(url.len());
        let mut from = 0;
        for (key, value, span) in KeyValues::new(url) {
            if take(key, value) {
                rest.push_str(url.get(from..span.0).unwrap_or_default());
                from = span.1;
            }
        }
        rest.push_str(url.get(from..).unwrap_or_default());
        rest
    };
    Ok((rest, mode, root))
}

/// The `key = value` pairs of a libpq connection string with their byte spans, read as
/// tokio-postgres reads them (values bare or `'quoted'`, `\` escaping). Stops at anything
/// malformed: tokio-postgres then reports it.
struct KeyValues<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> KeyValues<'a> {
    fn new(s: &'a str) -> Self {
        Self { s, at: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.at..).and_then(|r| r.chars().next())
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }
}

impl<'a> Iterator for KeyValues<'a> {
    type Item = (&'a str, String, (usize, usize));

    fn next(&mut self) -> Option<Self::Item> {
        self.skip_ws();
        let start = self.at;
        while self.peek().is_some_and(|c| !c.is_whitespace() && c != '=') {
            self.bump();
        }
        let key = self.s.get(start..self.at).filter(|k| !k.is_empty())?;
        self.skip_ws();
        if self.bump()? != '=' {
            return None;
        }
        self.skip_ws();
        let mut value = String::new();
        if self.peek() == Some('\'') {
            self.bump();
            loop {
                match self.bump()? {
                    '\'' => break,
                    '\\' => value.push(self.bump()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = self.peek().filter(|c| !c.is_whitespace()) {
                self.bump();
                if c == '\\' {
                    if let Some(escaped) = self.bump() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return None;
            }
        }
        Some((key, value, (start, self.at)))
    }
}

/// The server's certificate, checked as the mode asks: nothing (`roots` unset: the
/// connection is encrypted, not authenticated), the chain to `sslrootcert`, or the chain
/// and the host name. The handshake's signatures are always checked.
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
            if self.check_name {
                verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ssl_parameters_leave_a_url() {
        let (rest, mode, root) = split(
            "postgres://u:p%40w@db:5432/jg?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p%40w@db:5432/jg?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (rest, mode, _) = split("postgresql://db/jg?sslmode=disable").unwrap();
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            ("postgresql://db/jg", Some("disable"))
        );
    }

    #[test]
    fn ssl_parameters_leave_a_key_value_string() {
        let (rest, mode, root) = split(
            "host=db sslmode = require password='a b\\'c' sslrootcert='/my certs/ca.pem' user=jg",
        )
        .unwrap();
        assert_eq!(rest, "host=db  password='a b\\'c'  user=jg");
        assert_eq!(mode.as_deref(), Some("require"));
        assert_eq!(root.as_deref(), Some("/my certs/ca.pem"));
        assert!(rest.parse::<tokio_postgres::Config>().is_ok());
    }

    #[test]
    fn modes_are_libpq_s() {
        let mode = |url: &str| parse(url).map(|(c, plan)| (c.get_ssl_mode(), plan));
        assert!(matches!(
            mode("host=db sslmode=disable"),
            Ok((SslMode::Disable, TlsPlan::Off))
        ));
        assert!(matches!(
            mode("host=db"),
            Ok((SslMode::Prefer, TlsPlan::Rustls { roots: None, .. }))
        ));
        assert!(matches!(
            mode("host=db sslmode=require"),
            Ok((SslMode::Require, TlsPlan::Rustls { roots: None, .. }))
        ));
        for bad in [
            "verify-ca",
            "verify-full",
            "allow",
            "Require",
            "verify_full",
        ] {
            let err = mode(&format!("host=db sslmode={bad}")).unwrap_err();
            assert!(err.is_input_error(), "{bad}: {err}");
        }
        let err = mode("host=db sslmode=verify-full sslrootcert=/nonexistent/ca.pem").unwrap_err();
        assert!(err.is_input_error() && err.to_string().contains("/nonexistent/ca.pem"));
    }
}
