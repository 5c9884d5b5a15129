//! The PostgreSQL credential replica against a real local cluster: start-up with 100,000
//! clients, the memory it holds per 1,000 clients, and one lookup from memory.
//!
//! ```text
//! cargo bench --bench replica --features postgres
//! ```
//!
//! The bench starts a throwaway cluster (PostgreSQL's server binaries must be installed;
//! without them it says so and measures nothing), fills it with 100,000 clients, each with
//! one key sealed under a local KEK (sealed here, written with one `INSERT ... SELECT FROM
//! unnest(...)`), then:
//!
//! 1. **start-up**: `PgCredentialStore::replica()` until `wait_current` returns (every row
//!    read, every secret opened and HMAC-keyed), three times, median;
//! 2. **memory**: heap bytes held once the replica has loaded (allocated and not freed,
//!    counted by `allocation-counter` on the one thread of a current-thread runtime that
//!    runs the replica's tasks), per 1,000 clients;
//! 3. **lookup**: `CredentialStore::get` of the replica, a known id and an unknown one,
//!    polled once (it never waits), ns per lookup (median of rounds), beside the same
//!    lookup of an `InMemoryCredentialStore` holding the same credentials.
//!
//! Not part of CI.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "common/pg.rs"]
mod pg;

use std::future::Future as _;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use jg_hmac::postgres::{Kek, LocalKek, PgCredentialStore, Replica};
use jg_hmac::tower::{CredentialStore, InMemoryCredentialStore};
use jg_hmac::{Credential, Environment, Secret, SigningKey};
use pg::BenchCluster;

const CLIENTS: usize = 100_000;
const KEK_HEX: &str = "5f0e1d2c3b4a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const LOOKUPS: usize = 1_000_000;
const ROUNDS: usize = 7;

/// The associated data the store seals a secret with (its client id and key id).
fn aad(client_id: &str, key_id: &str) -> Vec<u8> {
    [
        b"jg-hmac/v1\0",
        client_id.as_bytes(),
        b"\0",
        key_id.as_bytes(),
    ]
    .concat()
}

fn client_id(i: usize) -> String {
    format!("jk_live_bench{i:07}")
}

fn secret_hex(i: usize) -> String {
    format!("{i:064x}")
}

/// Fills the migrated database with `CLIENTS` clients, one sealed key each.
async fn fill(url: &str) {
    let kek = LocalKek::from_hex(KEK_HEX).unwrap();
    let (mut ids, mut key_ids, mut nonces, mut ciphertexts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..CLIENTS {
        let (id, key) = (client_id(i), format!("k{i}"));
        let sealed = kek
            .seal(secret_hex(i).as_bytes(), &aad(&id, &key))
            .await
            .unwrap();
        ids.push(id);
        key_ids.push(key);
        nonces.push(sealed.nonce);
        ciphertexts.push(sealed.ciphertext);
    }
    let kek_ids = vec![kek.id().to_owned(); CLIENTS];
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute(
            "INSERT INTO jg_hmac.clients (client_id, environment, scopes) \
             SELECT id, 'live', ARRAY['transactions:write'] FROM unnest($1::text[]) id",
            &[&ids],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO jg_hmac.keys (client_id, key_id, kek_id, nonce, ciphertext) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[])",
            &[&ids, &key_ids, &kek_ids, &nonces, &ciphertexts],
        )
        .await
        .unwrap();
}

/// Median ns of one `get` of `store` for `id`, polled once with a no-op waker.
fn lookup_ns<S: CredentialStore>(store: &S, id: &str) -> f64 {
    let mut cx = Context::from_waker(Waker::noop());
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..LOOKUPS {
            let future = pin!(store.get(black_box(id)));
            let Poll::Ready(found) = future.poll(&mut cx) else {
                panic!("the lookup waited");
            };
            black_box(found.unwrap());
        }
        rounds.push(started.elapsed().as_nanos() as f64 / LOOKUPS as f64);
    }
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

/// Starts a replica of `store` on a current-thread runtime until it has loaded; returns
/// it (its tasks parked on `runtime`), the time it took and the heap bytes it holds.
fn start(runtime: &tokio::runtime::Runtime, store: &PgCredentialStore) -> (Replica, Duration, u64) {
    let mut started = None;
    let info = allocation_counter::measure(|| {
        runtime.block_on(async {
            let at = Instant::now();
            let replica = store.replica();
            assert!(replica.wait_current(Duration::from_secs(60)).await);
            started = Some((replica, at.elapsed()));
        });
    });
    let (replica, took) = started.unwrap();
    assert_eq!(replica.len(), CLIENTS);
    (
        replica,
        took,
        u64::try_from(info.bytes_current).unwrap_or(0),
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("replica: run with `cargo bench --bench replica --features postgres`");
        return;
    }
    let Some(cluster) = BenchCluster::start() else {
        println!("replica: PostgreSQL's server binaries not found; nothing measured");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = runtime.block_on(async {
        let store = PgCredentialStore::builder(&cluster.url())
            .unwrap()
            .kek(LocalKek::from_hex(KEK_HEX).unwrap())
            .build()
            .unwrap();
        store.migrate().await.unwrap();
        let filled = Instant::now();
        fill(&cluster.url()).await;
        println!(
            "filled {CLIENTS} clients (sealed here, one INSERT each table) in {:?}",
            filled.elapsed()
        );
        store
    });
    let mut runs: Vec<(Replica, Duration, u64)> = Vec::new();
    for _ in 0..3 {
        // The previous replica's tasks stop, and their memory is freed, before measuring.
        runs.clear();
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(200)).await });
        runs.push(start(&runtime, &store));
        let (_, took, bytes) = &runs[0];
        println!(
            "start-up with {CLIENTS} clients (load, open every secret, key every HMAC): \
             {took:?}; memory held: {} bytes per 1,000 clients ({} MiB in all; one key and \
             one scope each)",
            bytes / (CLIENTS as u64 / 1_000),
            bytes >> 20
        );
    }
    let (replica, _, _) = runs.pop().unwrap();
    println!(
        "of which inline sizes: Credential {} bytes, SigningKey {} bytes (its keyed HMAC-SHA256 \
         state)",
        std::mem::size_of::<Credential>(),
        std::mem::size_of::<SigningKey>()
    );
    runtime.block_on(async {
        let known = client_id(CLIENTS / 2);
        let credential = replica.get(&known).await.unwrap().unwrap();
        assert_eq!(credential.keys().len(), 1);
        let mut memory = None;
        let info = allocation_counter::measure(|| {
            memory = Some(InMemoryCredentialStore::from_credentials((0..CLIENTS).map(
                |i| {
                    Credential::new(client_id(i))
                        .with_scope("transactions:write")
                        .with_extension(Environment::Live)
                        .with_key(SigningKey::new(
                            format!("k{i}"),
                            &Secret::from(secret_hex(i)),
                        ))
                },
            )));
        });
        let memory = memory.unwrap();
        println!(
            "the same credentials in an InMemoryCredentialStore: {} bytes per 1,000 clients",
            info.bytes_current / (CLIENTS as i64 / 1_000)
        );
        let unknown = "jk_live_madeup0000001";
        println!(
            "lookup, known id: replica {:.1} ns, InMemoryCredentialStore {:.1} ns",
            lookup_ns(&replica, &known),
            lookup_ns(&memory, &known)
        );
        println!(
            "lookup, unknown id: replica {:.1} ns, InMemoryCredentialStore {:.1} ns",
            lookup_ns(&replica, unknown),
            lookup_ns(&memory, unknown)
        );
    });
}
