//! LISTEN/NOTIFY: revocations reach every verifier's cache at once.

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::tower::CachedStore;

use super::error::describe;
use super::events::NOTIFY_CHANNEL;
use super::store::{LOG_TARGET, PgCredentialStore};
use super::tls::{self, Tls};

/// First wait before reconnecting; doubled after each failure.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often an idle listening connection is checked with a query.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// What a [listener](PgCredentialStore::listen) tells when the credentials of a client
/// change: a cache that forgets. Implemented by [`CachedStore`].
///
/// ```
/// use jg_hmac::postgres::Invalidate;
///
/// #[derive(Debug)]
/// struct Log;
/// impl Invalidate for Log {
///     fn invalidate(&self, client_id: &str) { println!("changed: {client_id}"); }
///     fn clear(&self) { println!("changed: everything"); }
/// }
/// # let _ = Log;
/// ```
pub trait Invalidate: Send + Sync + 'static {
    /// The credentials of `client_id` changed (a key issued, rotated or revoked).
    fn invalidate(&self, client_id: &str);
    /// Anything may have changed (the listener was disconnected and missed events).
    fn clear(&self);
}

impl<S, C> Invalidate for CachedStore<S, C>
where
    S: Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    fn invalidate(&self, client_id: &str) {
        CachedStore::invalidate(self, client_id);
    }

    fn clear(&self) {
        CachedStore::clear(self);
    }
}

impl<T: Invalidate + ?Sized> Invalidate for Arc<T> {
    fn invalidate(&self, client_id: &str) {
        (**self).invalidate(client_id);
    }

    fn clear(&self) {
        (**self).clear();
    }
}

/// A running listener: a task on its own database connection that `LISTEN`s on the
/// channel `jg_hmac_credentials`. Dropping it leaves the task running; [`abort`](Self::abort) stops
/// it.
///
/// ```no_run
/// # async fn run(store: jg_hmac::postgres::PgCredentialStore) {
/// let cache = jg_hmac::tower::CachedStore::new(store.clone());
/// let mut listener = store.listen(cache.clone());
/// let up = listener.wait_listening(std::time::Duration::from_secs(5)).await;
/// assert!(up && listener.is_listening());
/// # }
/// ```
pub struct Listener {
    handle: JoinHandle<()>,
    state: watch::Receiver<bool>,
}

impl Listener {
    /// Whether the listener is connected and listening now.
    ///
    /// ```no_run
    /// # fn f(l: &jg_hmac::postgres::Listener) -> bool {
    /// l.is_listening()
    /// # }
    /// ```
    pub fn is_listening(&self) -> bool {
        *self.state.borrow()
    }

    /// Waits until the listener is listening, at most `timeout`; says whether it is.
    ///
    /// ```no_run
    /// # async fn f(l: &mut jg_hmac::postgres::Listener) -> bool {
    /// l.wait_listening(std::time::Duration::from_secs(5)).await
    /// # }
    /// ```
    pub async fn wait_listening(&mut self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.state.wait_for(|up| *up)).await,
            Ok(Ok(_))
        )
    }

    /// Stops the listener (the cache keeps its TTL bound).
    ///
    /// ```no_run
    /// # fn f(l: jg_hmac::postgres::Listener) {
    /// l.abort();
    /// # }
    /// ```
    pub fn abort(&self) {
        self.handle.abort();
    }

    /// The task's handle.
    ///
    /// ```no_run
    /// # fn f(l: jg_hmac::postgres::Listener) {
    /// let handle: tokio::task::JoinHandle<()> = l.into_join_handle();
    /// # let _ = handle;
    /// # }
    /// ```
    pub fn into_join_handle(self) -> JoinHandle<()> {
        self.handle
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("listening", &self.is_listening())
            .field("finished", &self.handle.is_finished())
            .finish()
    }
}

impl PgCredentialStore {
    /// Starts a task that keeps `target` (the [`CachedStore`] in front of this store) in
    /// step with the database: every change made through this store's calls or the CLI
    /// sends `NOTIFY jg_hmac_credentials, '<client id>'` in its transaction, and the
    /// task, `LISTEN`ing on a connection of its own, calls
    /// [`invalidate`](Invalidate::invalidate) as soon as the change commits.
    ///
    /// When the connection drops, the task clears the cache, logs a `warn` event (target
    /// `jg_hmac::postgres`), and reconnects with a backoff (100 ms doubling to 5 s);
    /// meanwhile revocation falls back to the cache's TTL bound. After reconnecting it
    /// clears the cache again (events sent while it was away are lost). An idle
    /// connection is checked every 10 s.
    ///
    /// Must be called within a Tokio runtime.
    ///
    /// ```no_run
    /// use jg_hmac::tower::{CachedStore, VerifyLayer};
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) {
    /// let cache = CachedStore::new(store.clone());
    /// let _listener = store.listen(cache.clone());
    /// let layer = VerifyLayer::new(cache);
    /// # let _ = layer;
    /// # }
    /// ```
    pub fn listen<I: Invalidate>(&self, target: I) -> Listener {
        let (state_tx, state) = watch::channel(false);
        let config = self.config().clone();
        let tls = self.tls().clone();
        let timeout = self.timeout();
        let handle = tokio::spawn(run(config, tls, Arc::new(target), state_tx, timeout));
        Listener { handle, state }
    }
}

async fn run<I: Invalidate>(
    config: tokio_postgres::Config,
    tls: Tls,
    target: Arc<I>,
    state: watch::Sender<bool>,
    timeout: Duration,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let started = Instant::now();
        let (why, was_listening) = session(&config, &tls, &target, &state, timeout).await;
        state.send_replace(false);
        target.clear();
        if was_listening && started.elapsed() > MAX_BACKOFF {
            backoff = MIN_BACKOFF;
        }
        tracing::warn!(
            target: LOG_TARGET,
            cause = %why,
            retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
            "credential listener not listening: cache cleared; revocation falls back to the \
             cache TTL until it reconnects"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: returns why it ended, and whether it got to listen.
async fn session<I: Invalidate>(
    config: &tokio_postgres::Config,
    tls: &Tls,
    target: &Arc<I>,
    state: &watch::Sender<bool>,
    timeout: Duration,
) -> (String, bool) {
    match tls {
        Tls::Off => match config.connect(NoTls).await {
            Ok((client, connection)) => listening(client, connection, target, state, timeout).await,
            Err(e) => (format!("connect: {}", tls::explain(describe(&e))), false),
        },
        Tls::Rustls(connector) => match config.connect(connector.clone()).await {
            Ok((client, connection)) => listening(client, connection, target, state, timeout).await,
            Err(e) => (format!("connect: {}", tls::explain(describe(&e))), false),
        },
    }
}

/// A connection's life once connected.
async fn listening<I: Invalidate, S, T>(
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<S, T>,
    target: &Arc<I>,
    state: &watch::Sender<bool>,
    timeout: Duration,
) -> (String, bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let driver_target = Arc::clone(target);
    let mut driver = tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    if note.channel() == NOTIFY_CHANNEL {
                        match note.payload() {
                            "*" => driver_target.clear(),
                            client_id => driver_target.invalidate(client_id),
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return format!("connection: {e}"),
                None => return "connection closed".to_owned(),
            }
        }
    });
    let listen = format!("LISTEN {NOTIFY_CHANNEL}");
    match tokio::time::timeout(timeout, client.batch_execute(&listen)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            driver.abort();
            return (format!("LISTEN: {e}"), false);
        }
        Err(_) => {
            driver.abort();
            return (format!("LISTEN: no answer within {timeout:?}"), false);
        }
    }
    // Whatever changed while no one listened is unknown: start from an empty cache.
    target.clear();
    state.send_replace(true);
    tracing::info!(
        target: LOG_TARGET,
        channel = NOTIFY_CHANNEL,
        "credential listener listening"
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
