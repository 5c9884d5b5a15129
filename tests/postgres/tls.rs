//! TLS to the database: a cluster with `ssl=on` that accepts TLS connections only
//! (`hostssl` in pg_hba.conf), a CA and a server certificate for `localhost` that the test
//! makes with rcgen, and a second CA that signed nothing the server holds.

use super::*;

use crate::support::pki::ca;
use rcgen::{CertificateParams, CertifiedIssuer, DnType, KeyPair, SanType};

/// In the URLs: the server (trust authentication) never asks for it, and no message may
/// repeat it.
const PASSWORD: &str = "tls-test-pw-do-not-print";

/// A TLS-only cluster; returns it and the files of the right CA and of another CA.
fn tls_cluster() -> Option<(Cluster, PathBuf, PathBuf)> {
    let cluster = Cluster::start()?;
    let ca = ca("jg-hmac test CA");
    let other = ca_other();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    assert!(matches!(
        params.subject_alt_names.as_slice(),
        [SanType::DnsName(_)]
    ));
    let server = params.signed_by(&key, &ca).unwrap();

    let dir = &cluster.dir;
    let (ca_file, other_file) = (dir.join("ca.pem"), dir.join("other-ca.pem"));
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&other_file, other.pem()).unwrap();
    let (cert_file, key_file) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert_file, server.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    set_mode(&key_file, 0o600);
    if cluster.as_postgres_user {
        let ok = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&cert_file)
            .arg(&key_file)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown of the server key to postgres failed");
    }
    let data = dir.join("data");
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .unwrap();
    writeln!(
        conf,
        "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'",
        cert_file.display(),
        key_file.display()
    )
    .unwrap();
    // TLS connections only: a connection in the clear is refused.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
    )
    .unwrap();
    cluster.stop();
    cluster.restart();
    Some((cluster, ca_file, other_file))
}

fn ca_other() -> CertifiedIssuer<'static, KeyPair> {
    ca("another CA")
}

fn tls_url(cluster: &Cluster, host: &str, query: &str) -> String {
    format!(
        "postgres://postgres:{PASSWORD}@{host}:{}/postgres?{query}",
        cluster.port
    )
}

/// The URL with `sslmode=<mode>&sslrootcert=<ca>`.
fn checked_url(cluster: &Cluster, host: &str, mode: &str, ca: &Path) -> String {
    let query = format!("sslmode={mode}&sslrootcert={}", ca.display());
    tls_url(cluster, host, &query)
}

fn store_at(url: &str) -> PgCredentialStore {
    PgCredentialStore::builder(url)
        .unwrap()
        .kek(LocalKek::from_hex(KEK_HEX).unwrap())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// `jg-hmac keys list` against `url`.
fn cli_list(cluster: &Cluster, url: &str) -> Output {
    let kek = cluster.kek_file("kek.hex", KEK_HEX);
    cluster
        .cli_command(&kek, &["keys", "list"])
        .env("JG_DATABASE_URL", url)
        .output()
        .unwrap()
}

/// A store at `url` on a migrated database with one new live client, and that client.
async fn migrated_with_client(url: &str) -> (PgCredentialStore, Issued) {
    let store = store_at(url);
    store.migrate().await.unwrap();
    let issued = store
        .create_client(NewClient::new(Environment::Live), "t", |_| Ok(()))
        .await
        .unwrap();
    (store, issued)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_right_ca_works() {
    let Some((cluster, ca, _)) = tls_cluster() else {
        return;
    };
    let url = checked_url(&cluster, "localhost", "verify-full", &ca);
    let (store, issued) = migrated_with_client(&url).await;
    let found = read(&store, &issued.client_id).await.unwrap();
    assert_eq!(found.keys().len(), 1);

    // The replica's LISTEN connection goes through TLS too: it serves, and a change
    // reaches it.
    let listening = PgCredentialStore::builder(&url)
        .unwrap()
        .kek(LocalKek::from_hex(KEK_HEX).unwrap())
        .listen_url(&url)
        .build()
        .unwrap();
    let follower = replica(&listening).await;
    assert!(follower.get(&issued.client_id).await.unwrap().is_some());
    let second = store
        .create_client(NewClient::new(Environment::Live), "t", |_| Ok(()))
        .await
        .unwrap();
    sync(&follower).await;
    assert!(follower.get(&second.client_id).await.unwrap().is_some());

    // The same from the CLI, with a key=value string too.
    let out = cli_list(&cluster, &url);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&issued.client_id));
    let dsn = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert='{}'",
        cluster.port,
        ca.display()
    );
    let out = cli_list(&cluster, &dsn);
    assert!(out.status.success(), "{}", text(&out));

    // verify-ca checks the chain but not the name: 127.0.0.1 is not in the certificate.
    let by_ip = checked_url(&cluster, "127.0.0.1", "verify-ca", &ca);
    let by_ip = replica(&store_at(&by_ip)).await;
    assert!(by_ip.get(&issued.client_id).await.unwrap().is_some());
    // require encrypts without checking.
    let require = tls_url(&cluster, "127.0.0.1", "sslmode=require");
    let require = replica(&store_at(&require)).await;
    assert!(require.get(&issued.client_id).await.unwrap().is_some());

    // disable sends no TLS: this server (hostssl only) refuses it.
    let clear = tls_url(&cluster, "localhost", "sslmode=disable");
    let err = refusal(&store_at(&clear)).await;
    eprintln!("sslmode=disable against a TLS-only server: {err}");
    let out = cli_list(&cluster, &clear);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stderr(&out).contains("no encryption"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_host_name_is_refused() {
    let Some((cluster, ca, other)) = tls_cluster() else {
        return;
    };
    let good = checked_url(&cluster, "localhost", "verify-full", &ca);
    let (good_store, issued) = migrated_with_client(&good).await;
    let (id, secret) = (issued.client_id.clone(), issued.secret_hex().to_owned());
    let addr = serve(app(replica(&good_store).await)).await;
    assert_eq!(signed_get(addr, &id, &secret).await.0, 200);

    let cases = [
        (
            "another CA",
            checked_url(&cluster, "localhost", "verify-full", &other),
            "not signed by a CA in sslrootcert",
        ),
        (
            "verify-ca, another CA",
            checked_url(&cluster, "127.0.0.1", "verify-ca", &other),
            "not signed by a CA in sslrootcert",
        ),
        (
            "a host name not in the certificate",
            checked_url(&cluster, "127.0.0.1", "verify-full", &ca),
            "the host name is not in the server's TLS certificate",
        ),
    ];
    for (case, url, why) in cases {
        let store = store_at(&url);
        // A loaded machine may time an attempt out before the handshake says why; the
        // replica retries, so wait for an attempt that got as far as the certificate.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut message = refusal(&store).await;
        while !message.contains(why) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            message = refusal(&store).await;
        }
        eprintln!("{case}: StoreError: {message}");
        assert!(
            message.contains("TLS") && message.contains(why),
            "{case}: {message}"
        );
        assert!(!message.contains(PASSWORD), "{case}: {message}");

        // A verifier on it answers 503.
        let addr = serve(app(store.replica())).await;
        let (status, body) = signed_get(addr, &id, &secret).await;
        assert_eq!(status, 503, "{case}: {body}");
        assert!(body.contains("credential_store_unavailable"), "{body}");

        // The CLI exits 1 naming the certificate, not the password.
        let out = cli_list(&cluster, &url);
        eprintln!("{case}: jg-hmac keys list: {}", stderr(&out).trim());
        assert_eq!(out.status.code(), Some(1), "{case}: {}", text(&out));
        assert!(
            stderr(&out).contains("certificate"),
            "{case}: {}",
            text(&out)
        );
        assert!(!text(&out).contains(PASSWORD), "{case}: {}", text(&out));
    }
}

#[test]
fn an_unknown_or_incomplete_sslmode_is_an_input_error() {
    // No database is reached: the URL is refused first (port 9 is discard).
    let kek = std::env::temp_dir().join(format!("jg-hmac-tls-kek-{}", std::process::id()));
    std::fs::write(&kek, format!("{KEK_HEX}\n")).unwrap();
    set_mode(&kek, 0o600);
    let cases = [
        ("sslmode=verify_full", "unknown sslmode"),
        ("sslmode=allow", "sslmode=allow is not supported"),
        ("sslmode=verify-full", "needs sslrootcert"),
        ("sslmode=verify-ca", "needs sslrootcert"),
        (
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            "/nonexistent/ca.pem",
        ),
        ("sslmode=require&sslrootcert=system", "not supported"),
    ];
    for (query, says) in cases {
        let url = format!("postgres://postgres:{PASSWORD}@localhost:9/postgres?{query}");
        let err = PgCredentialStore::builder(&url).unwrap_err();
        assert!(
            err.is_input_error() && err.to_string().contains(says),
            "{query}: {err}"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_jg-hmac"))
            .args(["keys", "list"])
            .env("JG_DATABASE_URL", &url)
            .env("JG_KEK_FILE", &kek)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        eprintln!("{query}: {}", stderr(&out).trim());
        assert_eq!(out.status.code(), Some(2), "{query}: {}", text(&out));
        assert!(stderr(&out).contains(says), "{query}: {}", text(&out));
        assert!(!text(&out).contains(PASSWORD), "{query}: {}", text(&out));
    }
    let _ = std::fs::remove_file(&kek);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_server_still_works_with_disable_and_by_default() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    cluster.store_with_client(Environment::Live).await;
    for query in ["sslmode=disable", "application_name=x"] {
        let url = tls_url(&cluster, "127.0.0.1", query);
        assert_eq!(replica(&store_at(&url)).await.len(), 1, "{query}");
        let out = cli_list(&cluster, &url);
        assert!(out.status.success(), "{query}: {}", text(&out));
    }
    // require needs a server that speaks TLS.
    let url = tls_url(&cluster, "127.0.0.1", "sslmode=require");
    let err = refusal(&store_at(&url)).await;
    eprintln!("sslmode=require against a server without TLS: {err}");
    let out = cli_list(&cluster, &url);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("server does not support TLS"),
        "{}",
        text(&out)
    );
}
