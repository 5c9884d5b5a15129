//! The replica in the deployed shape: servers over a real cluster, changes made with the
//! CLI, the database stopped under them, requests from raw sockets.

use super::*;

use support::TestClock;
use support::raw::Raw;

/// A store on `cluster` whose replicas `LISTEN` on a direct connection (the cluster
/// itself), with the test KEK, `max_staleness` and `clock`.
fn listening_store(
    cluster: &Cluster,
    max_staleness: Duration,
    clock: impl jg_hmac::Clock + 'static,
) -> PgCredentialStore {
    PgCredentialStore::builder(&cluster.url())
        .unwrap()
        .kek(LocalKek::from_hex(KEK_HEX).unwrap())
        .timeout(Duration::from_millis(800))
        .listen_url(&cluster.url())
        .max_staleness(max_staleness)
        .clock(clock)
        .build()
        .unwrap()
}

/// Creates a live client with the CLI; returns its id, key id and secret.
fn create(cluster: &Cluster) -> (String, String, String) {
    let created = json(&cluster.cli(&["keys", "create", "--env", "live", "--json"]));
    let field = |name: &str| created[name].as_str().unwrap().to_owned();
    (field("client_id"), field("key_id"), field("secret"))
}

/// Waits (at most 5 s) until `addr` answers `want` for a request of `id` signed with
/// `secret`; returns when it did, or panics.
async fn until_status(addr: SocketAddr, id: &str, secret: &str, want: u16) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if signed_get(addr, id, secret).await.0 == want {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "no {want} within 5 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Two servers on one database, each with a replica listening: a key revoked through the
/// CLI is refused by both within a second of the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_two_servers_within_a_second() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    assert!(cluster.cli(&["db", "migrate"]).status.success());
    let mut servers = Vec::new();
    for _ in 0..2 {
        let store = listening_store(&cluster, Duration::from_secs(300), SystemClock);
        let replica = replica(&store).await;
        servers.push((serve(app(replica.clone())).await, replica));
    }
    const ROUNDS: usize = 10;
    let mut after_command = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (id, key, secret) = create(&cluster);
        for (addr, replica) in &servers {
            sync(replica).await;
            assert_eq!(signed_get(*addr, &id, &secret).await.0, 200);
        }
        // Alternate: one key, then a whole client.
        let mut args = vec!["keys", "revoke", "--client-id", id.as_str()];
        if round % 2 == 0 {
            args.extend(["--key-id", key.as_str()]);
        }
        let command_started = Instant::now();
        let out = cluster.cli(&args);
        assert!(out.status.success(), "{}", text(&out));
        let mut last = command_started;
        for (addr, _) in &servers {
            last = last.max(until_status(*addr, &id, &secret, 401).await);
        }
        after_command.push(last - command_started);
    }
    after_command.sort();
    let (p50, max) = (after_command[ROUNDS / 2], after_command[ROUNDS - 1]);
    eprintln!(
        "revocation refused by both servers, {ROUNDS} rounds, from the CLI's start: p50 \
         {p50:?} max {max:?}"
    );
    assert!(max <= Duration::from_secs(1), "max {max:?}");
}

/// 2,000 distinct made-up client ids, each refused 401 `client_id`, reach the database
/// (by its own statement log) at most 20 times (1%): only the replica's polls do; a
/// partner is served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_ids_cost_no_query() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let client_id = cluster.migrated_with_client();
    let rotated = json(&cluster.cli(&["keys", "rotate", "--client-id", &client_id, "--json"]));
    let secret = rotated["secret"].as_str().unwrap().to_owned();
    let replica = replica(&cluster.store()).await; // polling every second, no LISTEN
    let addr = serve(app(replica.clone())).await;
    assert_eq!(signed_get(addr, &client_id, &secret).await.0, 200);

    let sql = cluster.sql().await;
    sql.batch_execute("ALTER SYSTEM SET log_statement = 'all'")
        .await
        .unwrap();
    sql.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    drop(sql);
    let log = cluster.dir.join("log");
    let statements = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("LOG:  statement: ") || l.contains("LOG:  execute "))
            .count()
    };
    // The reload has been read once a poll shows in the log.
    let deadline = Instant::now() + Duration::from_secs(10);
    while statements() == 0 {
        assert!(Instant::now() < deadline, "log_statement not in effect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    const IDS: usize = 2_000;
    let before = statements();
    let started = Instant::now();
    let mut refused = 0;
    for chunk in (0..IDS).collect::<Vec<_>>().chunks(50) {
        let mut batch = tokio::task::JoinSet::new();
        for i in chunk {
            let id = format!("jk_live_madeup{i:06}");
            batch.spawn(async move { signed_get(addr, &id, "0000").await });
        }
        for (status, body) in batch.join_all().await {
            assert_eq!(status, 401, "{body}");
            assert!(body.contains("\"client_id\""), "{body}");
            refused += 1;
        }
        assert_eq!(signed_get(addr, &client_id, &secret).await.0, 200);
    }
    let took = started.elapsed();
    let reached = statements() - before;
    eprintln!(
        "{refused} made-up ids (and {} partner requests) in {took:?}: {reached} statements \
         reached the database (the replica's polls)",
        IDS / 50
    );
    assert!(
        reached * 100 <= IDS,
        "{reached} statements for {IDS} made-up ids"
    );
}

/// The database stopped for 10 s: a partner keeps getting 200 from the replica's last
/// state. Back, the replica is current again, and a revocation made then is refused
/// within a second of the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_not_an_outage() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    assert!(cluster.cli(&["db", "migrate"]).status.success());
    let (id, _, secret) = create(&cluster);
    let replica = replica(&listening_store(
        &cluster,
        Duration::from_secs(300),
        SystemClock,
    ))
    .await;
    let addr = serve(app(replica.clone())).await;
    assert_eq!(signed_get(addr, &id, &secret).await.0, 200);

    cluster.stop();
    let down = Instant::now();
    let mut served = 0;
    while down.elapsed() < Duration::from_secs(10) {
        let (status, body) = signed_get(addr, &id, &secret).await;
        assert_eq!(status, 200, "while the database is down: {body}");
        served += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(replica.staleness().unwrap() >= Duration::from_secs(5));
    cluster.restart();
    let back = Instant::now();
    assert!(replica.wait_current(Duration::from_secs(10)).await);
    let current_after = back.elapsed();

    let command_started = Instant::now();
    let out = cluster.cli(&["keys", "revoke", "--client-id", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let refused_after = until_status(addr, &id, &secret, 401).await - command_started;
    eprintln!(
        "database down 10 s: {served} requests, all 200; current again {current_after:?} after \
         the restart; a revocation then refused {refused_after:?} after the command started"
    );
    assert!(refused_after <= Duration::from_secs(1), "{refused_after:?}");
}

/// A replica that has never loaded refuses (503) and keeps trying; one that cannot
/// confirm it is current for longer than `max_staleness` (by its clock) refuses too, and
/// serves again once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_loaded_or_too_stale_is_503() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    assert!(cluster.cli(&["db", "migrate"]).status.success());
    let (id, _, secret) = create(&cluster);
    let t0 = SystemClock.now();
    let clock = TestClock::new(t0);
    let store = listening_store(&cluster, Duration::from_secs(60), clock.as_clock());

    // Never loaded: the database is down when the replica starts.
    cluster.stop();
    let early = store.replica();
    let addr = serve(app(early.clone())).await;
    let message = refusal(&store).await;
    assert!(message.contains("not loaded yet"), "{message}");
    let (status, body) = signed_get(addr, &id, &secret).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("credential_store_unavailable"), "{body}");
    assert!(early.staleness().is_none());
    cluster.restart();
    sync(&early).await;
    assert_eq!(signed_get(addr, &id, &secret).await.0, 200);

    // Stale: down again; served until the clock passes max_staleness, then 503.
    cluster.stop();
    clock.set(t0 + 60);
    assert_eq!(
        signed_get(addr, &id, &secret).await.0,
        200,
        "at max_staleness"
    );
    clock.set(t0 + 61);
    // Judged every second: within a second, 503.
    until_status(addr, &id, &secret, 503).await;
    let (status, body) = signed_get(addr, &id, &secret).await;
    assert_eq!(status, 503, "past max_staleness: {body}");
    assert!(body.contains("credential_store_unavailable"), "{body}");
    let err = early.get(&id).await.unwrap_err().to_string();
    assert!(err.contains("max_staleness 60 s"), "{err}");
    cluster.restart();
    sync(&early).await;
    assert_eq!(signed_get(addr, &id, &secret).await.0, 200);
}

/// A key revoked, a client revoked, or a key ended by `rotate --overlap 0` while a
/// request's body is held is not used when the body completes: 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_during_a_held_body_is_final() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    assert!(cluster.cli(&["db", "migrate"]).status.success());
    let replica = replica(&listening_store(
        &cluster,
        Duration::from_secs(300),
        SystemClock,
    ))
    .await;
    let addr = serve(app(replica.clone())).await;
    let body = br#"{"amount":"5000"}"#;
    for change in ["none", "revoke-key", "revoke", "rotate --overlap 0"] {
        let (id, key, secret) = create(&cluster);
        sync(&replica).await;
        let request = signed(
            "GET",
            "/v1/secure",
            "/v1/secure",
            body,
            SystemClock.now(),
            (&id, &secret),
        );
        let mut raw = Raw::connect(addr).await;
        raw.write(&request.head()).await;
        raw.write(&body[..5]).await;
        let args: Vec<&str> = match change {
            "none" => vec![],
            "revoke-key" => vec!["keys", "revoke", "--client-id", &id, "--key-id", &key],
            "revoke" => vec!["keys", "revoke", "--client-id", &id],
            _ => vec!["keys", "rotate", "--client-id", &id, "--overlap", "0"],
        };
        if !args.is_empty() {
            let out = cluster.cli(&args);
            assert!(out.status.success(), "{change}: {}", text(&out));
            sync(&replica).await;
        }
        if change.starts_with("rotate") {
            // The old key's not_after is the rotation's second: let it pass.
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        raw.write(&body[5..]).await;
        let reply = raw.reply().await;
        match change {
            "none" => assert_eq!(reply.status, 200, "{}", reply.text()),
            // The client's one other key, the new one, did not sign it.
            "rotate --overlap 0" => reply.assert_refused(401, "invalid_signature"),
            _ => reply.assert_refused(401, "client_id"),
        }
    }
}

/// The event log locked (a slow database): refreshes time out, requests are served from
/// memory meanwhile, and the replica is current again once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_database_is_not_on_the_request_path() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    assert!(cluster.cli(&["db", "migrate"]).status.success());
    let (id, _, secret) = create(&cluster);
    let replica = replica(&cluster.store()).await; // refreshes bounded by 800 ms
    let addr = serve(app(replica.clone())).await;
    let locker = cluster.sql().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE jg_hmac.key_events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let locked = Instant::now();
    let mut served = 0;
    while locked.elapsed() < Duration::from_secs(3) {
        let (status, body) = signed_get(addr, &id, &secret).await;
        assert_eq!(status, 200, "with the event log locked: {body}");
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !replica.wait_current(Duration::from_secs(2)).await,
        "refreshes wait for the lock"
    );
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert!(replica.wait_current(Duration::from_secs(10)).await);
    eprintln!("event log locked 3 s: {served} requests, all 200");
}
