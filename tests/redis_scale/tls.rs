//! TLS: `rediss://` to a TLS-only `redis-server`, verified against a CA the test makes.

use std::path::Path;
use std::time::Duration;

use crate::support::pki::ca;
use jg_hmac::redis::RedisReplayGuard;
use jg_hmac::tower::AsyncReplayGuard;
use jg_hmac::{Error, Signature};
use rcgen::{CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, KeyPair};

use crate::redis_support::{
    RedisServer, accepted, buy, installed, instance, listens, plain_args, replayed, scratch_dir,
    send, store, unavailable,
};
use crate::support::{CLIENT, T0};

/// Writes into `dir`: `ca.pem` (the CA), `other-ca.pem` (a CA that signed nothing here),
/// `server.pem`/`server.key` (for the host `names`, by the CA), `client.pem`/`client.key`
/// (a client certificate by the CA) and `stranger.pem`/`stranger.key` (a client
/// certificate by the other CA).
pub fn write_pki(dir: &Path, names: &[&str]) {
    let other = ca("another CA");
    let ca = ca("jg-hmac redis test CA");
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("other-ca.pem"), other.pem()).unwrap();
    let leaf = |file: &str, names: &[&str], purposes, issuer: &CertifiedIssuer<'_, KeyPair>| {
        let key = KeyPair::generate().unwrap();
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, file);
        params.extended_key_usages = purposes;
        let cert = params.signed_by(&key, issuer).unwrap();
        std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
    };
    // A cluster node also presents it as a client, to the other nodes' bus ports.
    let both = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    leaf("server", names, both, &ca);
    let client = || vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf("client", &["client"], client(), &ca);
    leaf("stranger", &["stranger"], client(), &other);
}

/// The arguments that make a server on `port` TLS-only (no plain port), with the
/// certificates `write_pki` put in `pki`; asking for client certificates when
/// `client_certs`. They come after the others: the last `--port` wins.
pub fn tls_args(port: u16, pki: &Path, client_certs: bool) -> Vec<String> {
    let file = |name: &str| pki.join(name).display().to_string();
    let auth = if client_certs { "yes" } else { "no" };
    [
        ("--port", "0".to_owned()),
        ("--tls-port", port.to_string()),
        ("--tls-cert-file", file("server.pem")),
        ("--tls-key-file", file("server.key")),
        ("--tls-ca-cert-file", file("ca.pem")),
        ("--tls-auth-clients", auth.to_owned()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_owned(), value])
    .collect()
}

/// The options of `redis-cli` for a server with the certificates in `pki`.
pub fn tls_cli_options(pki: &Path) -> Vec<String> {
    let ca = pki.join("ca.pem").display().to_string();
    vec!["--tls".to_owned(), "--cacert".to_owned(), ca]
}

/// A TLS-only server (no plain port) whose certificate is for `localhost`; it asks for
/// client certificates when `client_certs`. `None` when redis-server is not installed.
fn tls_server(client_certs: bool) -> Option<RedisServer> {
    if !installed(&["redis-server"]) {
        return None;
    }
    Some(RedisServer::retry(|port| {
        let dir = scratch_dir();
        write_pki(&dir, &["localhost"]);
        let mut args = plain_args(port);
        args.extend(tls_args(port, &dir, client_certs));
        RedisServer::spawn("redis-server", &args, port, dir, listens)
    }))
}

/// A guard on `host`:`port` over TLS with a 1 s timeout (a loaded machine), no CA yet.
fn tls_guard(host: &str, port: u16) -> RedisReplayGuard {
    RedisReplayGuard::new(&format!("rediss://{host}:{port}/"))
        .unwrap()
        .with_timeout(Duration::from_secs(1))
}

/// The error of `guard.ping()`, which must fail; and a request through the guard is
/// refused with 503 (fail closed).
async fn refused(guard: RedisReplayGuard) -> String {
    let error = guard.ping().await.expect_err("ping succeeded").to_string();
    let sig = Signature::from_bytes([3; 32]);
    assert_eq!(
        guard.check_and_record(CLIENT, &sig, T0, T0).await,
        Err(Error::ReplayGuardUnavailable)
    );
    assert_eq!(
        send(&instance(store(), guard, T0), buy(T0)).await,
        unavailable()
    );
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_verified_against_the_given_ca_guards_across_instances() {
    let Some(server) = tls_server(false) else {
        return;
    };
    let ca = server.dir.join("ca.pem");
    let a = tls_guard("localhost", server.port)
        .with_ca_file(&ca)
        .unwrap();
    a.ping().await.unwrap();
    let b = tls_guard("localhost", server.port)
        .with_ca_file(&ca)
        .unwrap();
    let (a, b) = (instance(store(), a, T0), instance(store(), b, T0));
    assert_eq!(send(&a, buy(T0)).await, accepted());
    assert_eq!(send(&b, buy(T0)).await, replayed());
    assert_eq!(send(&b, buy(T0 + 1)).await, accepted());
    assert_eq!(send(&a, buy(T0 + 1)).await, replayed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_another_ca_no_ca_or_another_host_name_is_refused_clearly() {
    let Some(server) = tls_server(false) else {
        return;
    };
    let (ca, other) = (server.dir.join("ca.pem"), server.dir.join("other-ca.pem"));
    let port = server.port;

    let wrong_ca = tls_guard("localhost", port).with_ca_file(&other).unwrap();
    let error = refused(wrong_ca).await;
    eprintln!("another CA: {error}");
    assert!(error.contains("certificate"), "{error}");
    assert!(error.contains("UnknownIssuer"), "{error}");

    // No CA given: the system's roots, which do not hold the test's CA.
    let error = refused(tls_guard("localhost", port)).await;
    eprintln!("system roots: {error}");
    assert!(error.contains("UnknownIssuer"), "{error}");

    // The right CA, but the certificate is for localhost, not 127.0.0.1.
    let wrong_name = tls_guard("127.0.0.1", port).with_ca_file(&ca).unwrap();
    let error = refused(wrong_name).await;
    eprintln!("another host name: {error}");
    assert!(error.contains("certificate"), "{error}");

    // Plain text to the TLS port: no answer the guard could take for one.
    let plain = RedisReplayGuard::new(&format!("redis://localhost:{port}/"))
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let error = refused(plain).await;
    eprintln!("plain text: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_when_the_server_asks_for_them() {
    let Some(server) = tls_server(true) else {
        return;
    };
    let dir = &server.dir;
    let guard = || {
        tls_guard("localhost", server.port)
            .with_ca_file(dir.join("ca.pem"))
            .unwrap()
    };
    let error = refused(guard()).await;
    eprintln!("no client certificate: {error}");
    let stranger = guard()
        .with_client_cert(dir.join("stranger.pem"), dir.join("stranger.key"))
        .unwrap();
    let error = refused(stranger).await;
    eprintln!("client certificate of another CA: {error}");

    let known = guard()
        .with_client_cert(dir.join("client.pem"), dir.join("client.key"))
        .unwrap();
    known.ping().await.unwrap();
    let service = instance(store(), known, T0);
    assert_eq!(send(&service, buy(T0)).await, accepted());
    assert_eq!(send(&service, buy(T0)).await, replayed());
}

#[tokio::test]
async fn tls_settings_are_checked_when_given() {
    let dir = scratch_dir();
    write_pki(&dir, &["localhost"]);
    let ca = dir.join("ca.pem");
    // Not a TLS URL: a CA would be silently ignored.
    let error = RedisReplayGuard::new("redis://localhost:6379/")
        .unwrap()
        .with_ca_file(&ca)
        .unwrap_err();
    assert!(error.to_string().contains("rediss://"), "{error}");
    // A file that is not there, or not PEM: named in the error.
    let missing = dir.join("missing.pem");
    let error = RedisReplayGuard::new("rediss://localhost:6379/")
        .unwrap()
        .with_ca_file(&missing)
        .unwrap_err();
    assert!(error.to_string().contains("missing.pem"), "{error}");
    std::fs::write(dir.join("junk.pem"), "not a certificate").unwrap();
    let error = RedisReplayGuard::new("rediss://localhost:6379/")
        .unwrap()
        .with_ca_file(dir.join("junk.pem"))
        .unwrap_err();
    assert!(error.to_string().contains("not PEM"), "{error}");
    // `#insecure` (no verification) is refused, and the password is not repeated.
    let error = RedisReplayGuard::new("rediss://:hunter2@localhost:6379/#insecure").unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
    // A client key that is not a key: refused when the connection is made up.
    let error = RedisReplayGuard::new("rediss://localhost:6379/")
        .unwrap()
        .with_client_cert(dir.join("client.pem"), dir.join("client.pem"))
        .unwrap_err();
    eprintln!("certificate as key: {error}");
    let _ = std::fs::remove_dir_all(&dir);
}
