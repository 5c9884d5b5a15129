//! The replica's tasks: one loads and follows the event log by position (polling, or
//! woken by `NOTIFY`); one, given a direct connection, `LISTEN`s.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use super::error::{PgError, describe};
use super::events::NOTIFY_CHANNEL;
use super::load;
use super::replica::{Replica, Shared};
use super::store::{LOG_TARGET, PgCredentialStore};
use super::tls::{self, Tls};

/// First wait before trying again; doubled after each failure.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between attempts: a database back is used within about a second.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between the listener's attempts: shorter, so that a change made just
/// after the database is back arrives by `NOTIFY`, not at the next poll.
const LISTEN_MAX_BACKOFF: Duration = Duration::from_millis(500);
/// How often an idle listening connection is checked with a query.
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// While failing, how often the failure is logged again.
const LOG_AGAIN: Duration = Duration::from_secs(30);
/// How often whether lookups are answered is judged again (and the gauge set).
const JUDGE_EVERY: Duration = Duration::from_secs(1);
/// More events than this since the position: load everything again instead.
const MAX_EVENTS: i64 = 1_000;

impl PgCredentialStore {
    /// Starts this verifier's [`Replica`]: a task that loads every credential and keeps
    /// it current, plus, with a [`listen_url`](super::PgStoreBuilder::listen_url), a task
    /// `LISTEN`ing on `jg_hmac_credentials`. Connection failures are logged (target
    /// `jg_hmac::postgres`, `warn`) with the database's reason, never a password; the
    /// replica retries every second at most.
    ///
    /// Must be called within a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) {
    /// let replica = store.replica();
    /// let layer = jg_hmac::tower::VerifyLayer::new(replica);
    /// # let _ = layer;
    /// # }
    /// ```
    pub fn replica(&self) -> Replica {
        let shared = Arc::new(Shared::new(self.replica_settings()));
        let tasks = start(self, &shared);
        Replica::new(shared, tasks)
    }
}

/// Starts the replica's tasks.
pub(super) fn start(store: &PgCredentialStore, shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    let settings = store.replica_settings();
    let judge = Arc::clone(shared);
    let mut tasks = vec![
        tokio::spawn(follow(store.clone(), Arc::clone(shared))),
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(JUDGE_EVERY).await;
                judge.judge();
            }
        }),
    ];
    match &settings.listen {
        Some((config, tls)) => tasks.push(tokio::spawn(listen(
            config.clone(),
            tls.clone(),
            Arc::clone(shared),
            store.timeout(),
        ))),
        None => tracing::info!(
            target: LOG_TARGET,
            poll_interval_ms = millis(settings.poll_interval),
            "credential replica without a LISTEN connection (no JG_DATABASE_LISTEN_URL / \
             listen_url): changes are picked up by polling, within the poll interval"
        ),
    }
    tasks
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Loads, then follows the event log from the loaded position, for ever.
async fn follow(store: PgCredentialStore, shared: Arc<Shared>) {
    let poll = store.replica_settings().poll_interval;
    let mut position = None;
    let mut backoff = MIN_BACKOFF;
    let mut failing_since: Option<(Instant, Instant)> = None; // (since, last logged)
    loop {
        let started = Instant::now();
        match refresh(&store, &shared, position).await {
            Ok(next) => {
                if position.is_none() {
                    tracing::info!(
                        target: LOG_TARGET,
                        clients = shared.len(),
                        position = next,
                        load_ms = millis(started.elapsed()),
                        "credential replica loaded"
                    );
                }
                if let Some((since, _)) = failing_since.take() {
                    tracing::info!(
                        target: LOG_TARGET,
                        failing_for_ms = millis(since.elapsed()),
                        "credential replica current again"
                    );
                }
                position = Some(next);
                shared.confirm();
                backoff = MIN_BACKOFF;
                let _ = tokio::time::timeout(poll, shared.wake.notified()).await;
            }
            Err(error) => {
                shared.failed(&error);
                let now = Instant::now();
                let log = match failing_since {
                    None => {
                        failing_since = Some((now, now));
                        true
                    }
                    Some((since, logged)) if now.duration_since(logged) >= LOG_AGAIN => {
                        failing_since = Some((since, now));
                        true
                    }
                    Some(_) => false,
                };
                if log {
                    tracing::warn!(
                        target: LOG_TARGET,
                        error = %error,
                        loaded = shared.is_loaded(),
                        staleness_s = shared.staleness(),
                        "credential replica cannot reach the database: serving its last state \
                         up to max_staleness; retrying"
                    );
                }
                let _ = tokio::time::timeout(backoff, shared.wake.notified()).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One refresh within its bound: a full load without a position (or after too many
/// events), else the clients named by the events after it. Returns the new position.
async fn refresh(
    store: &PgCredentialStore,
    shared: &Shared,
    position: Option<i64>,
) -> Result<i64, PgError> {
    let bound = if position.is_some() && shared.is_loaded() {
        store.timeout()
    } else {
        store.admin_timeout()
    };
    tokio::time::timeout(bound, async {
        let conn = store.connection().await?;
        if let Some(after) = position {
            let events = load::events_since(&conn, after, MAX_EVENTS + 1).await?;
            let Some(&(last, _)) = events.last() else {
                return Ok(after);
            };
            let many = i64::try_from(events.len()).unwrap_or(i64::MAX) > MAX_EVENTS;
            let mut ids: Vec<String> = events.into_iter().map(|(_, id)| id).collect();
            ids.sort_unstable();
            ids.dedup();
            if !many && !ids.iter().any(|id| id == "*") {
                let fresh = load::credentials(&conn, store.keks(), Some(&ids)).await?;
                shared.apply(&ids, fresh);
                return Ok(last);
            }
        }
        // Rows read after the position, so at least as new: events re-read are harmless.
        let at = load::position(&conn).await?;
        shared.replace(load::credentials(&conn, store.keks(), None).await?);
        // Its buffers grew to the whole table: close it rather than pool it.
        drop(deadpool_postgres::Object::take(conn));
        Ok(at)
    })
    .await
    .map_err(|_| PgError::Timeout(bound))?
}

/// `LISTEN`s on its own connection and wakes the follower on every change, and once
/// listening (to read what was missed); reconnects when the connection drops.
async fn listen(config: tokio_postgres::Config, tls: Tls, shared: Arc<Shared>, timeout: Duration) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let started = Instant::now();
        let (why, was_listening) = session(&config, &tls, &shared, timeout).await;
        if was_listening && started.elapsed() > LISTEN_MAX_BACKOFF {
            backoff = MIN_BACKOFF;
        }
        tracing::warn!(
            target: LOG_TARGET,
            cause = %why,
            retry_in_ms = millis(backoff),
            "credential replica not listening: changes are picked up by polling until it \
             reconnects"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(LISTEN_MAX_BACKOFF);
    }
}

/// One connection's life: returns why it ended, and whether it got to listen.
async fn session(
    config: &tokio_postgres::Config,
    tls: &Tls,
    shared: &Arc<Shared>,
    timeout: Duration,
) -> (String, bool) {
    let refused =
        |e: tokio_postgres::Error| (format!("connect: {}", tls::explain(describe(&e))), false);
    match tls {
        Tls::Off => match config.connect(NoTls).await {
            Ok((client, connection)) => listening(client, connection, shared, timeout).await,
            Err(e) => refused(e),
        },
        Tls::Rustls(connector) => match config.connect(connector.clone()).await {
            Ok((client, connection)) => listening(client, connection, shared, timeout).await,
            Err(e) => refused(e),
        },
    }
}

/// A connection's life once connected.
async fn listening<S, T>(
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<S, T>,
    shared: &Arc<Shared>,
    timeout: Duration,
) -> (String, bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let woken = Arc::clone(shared);
    let mut driver = tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    if note.channel() == NOTIFY_CHANNEL {
                        woken.wake.notify_one();
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return format!("connection: {}", describe(&e)),
                None => return "connection closed".to_owned(),
            }
        }
    });
    let listen = format!("LISTEN {NOTIFY_CHANNEL}");
    match tokio::time::timeout(timeout, client.batch_execute(&listen)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            driver.abort();
            return (format!("LISTEN: {}", describe(&e)), false);
        }
        Err(_) => {
            driver.abort();
            return (format!("LISTEN: no answer within {timeout:?}"), false);
        }
    }
    // What changed while no one listened is read from the event log by position.
    shared.wake.notify_one();
    tracing::info!(
        target: LOG_TARGET,
        channel = NOTIFY_CHANNEL,
        "credential replica listening"
    );
    loop {
        match tokio::time::timeout(PING_INTERVAL, &mut driver).await {
            Ok(Ok(why)) => return (why, true),
            Ok(Err(e)) => return (format!("listener task: {e}"), true),
            Err(_) => {
                let ping = tokio::time::timeout(timeout, client.simple_query("SELECT 1")).await;
                if !matches!(ping, Ok(Ok(_))) {
                    driver.abort();
                    return ("the connection stopped answering".to_owned(), true);
                }
            }
        }
    }
}
