//! The verifiers' read path: every credential in memory, kept current from the event log.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::Clock;
use crate::credential::Credential;
use crate::tower::{CredentialStore, StoreError};

use super::error::PgError;
use super::load::Credentials;
use super::store::ReplicaSettings;

/// The credentials of every enabled client of a
/// [`PgCredentialStore`](super::PgCredentialStore), held in memory by
/// this verifier and kept current from the database: the
/// [`CredentialStore`] to give the [`VerifyLayer`](crate::tower::VerifyLayer).
///
/// [`PgCredentialStore::replica`](super::PgCredentialStore::replica) starts it: it loads every client and its keys that are
/// not revoked (secrets opened at load), then follows `jg_hmac.key_events` from the
/// position it loaded at, re-reading the clients each new event names. A change is
/// picked up at once when the store has a [`listen_url`](super::PgStoreBuilder::listen_url)
/// (`NOTIFY` wakes the replica), else within the
/// [`poll_interval`](super::PgStoreBuilder::poll_interval) (default 1 s); a lost
/// connection loses nothing, since the replica reads the events it missed by position.
///
/// A lookup is a read of memory: no database query, whether the client id is known or
/// made up. It answers with a [`StoreError`] (the layer's `503
/// credential_store_unavailable`) while the replica has never loaded (it keeps trying),
/// and when it has not confirmed it is current for longer than
/// [`max_staleness`](super::PgStoreBuilder::max_staleness) (default 5 min) by the store's
/// [`clock`](super::PgStoreBuilder::clock) (judged when it refreshes and every second, so
/// a lookup reads no clock): until then, a database outage does not stop verification. With feature `metrics` the gauge
/// [`CREDENTIALS_STALENESS_SECONDS`](crate::metrics::CREDENTIALS_STALENESS_SECONDS)
/// shows the time since the replica was last current.
///
/// Clones share the state; when the last is dropped the replica's tasks stop.
///
/// ```no_run
/// use jg_hmac::postgres::{LocalKek, PgCredentialStore};
/// use jg_hmac::tower::VerifyLayer;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgCredentialStore::builder(&std::env::var("JG_DATABASE_URL")?)?
///     .kek(LocalKek::from_file(std::env::var("JG_KEK_FILE")?)?)
///     .build()?;
/// let replica = store.replica();
/// replica.wait_current(std::time::Duration::from_secs(10)).await; // else 503 until loaded
/// let layer = VerifyLayer::new(replica);
/// # let _ = layer;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Replica {
    shared: Arc<Shared>,
    tasks: Arc<Tasks>,
}

/// What the replica's tasks and its lookups share.
pub(super) struct Shared {
    credentials: ArcSwap<Credentials>,
    loaded: AtomicBool,
    /// Whether lookups are answered: loaded, and current within `max_staleness`. Judged
    /// when the replica confirms it is current and every second (so a lookup reads no
    /// clock): past `max_staleness`, lookups fail within a second.
    serving: AtomicBool,
    /// The clock's second at which the replica was last confirmed current (at start, the
    /// second it started: the staleness of a replica that never loaded grows from there).
    current_at: AtomicU64,
    max_staleness: u64,
    clock: Arc<dyn Clock>,
    /// Refreshes completed, for [`Replica::wait_current`].
    refreshes: watch::Sender<u64>,
    /// Wakes the follower (a `NOTIFY`, a caller of `wait_current`).
    pub(super) wake: Notify,
    /// Why the last refresh failed, while refreshes fail (no secret, no password).
    last_error: Mutex<Option<String>>,
}

/// The replica's tasks, stopped with its last handle.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Shared {
    /// Replaces every credential (a full load).
    pub(super) fn replace(&self, credentials: Credentials) {
        self.credentials.store(Arc::new(credentials));
        self.loaded.store(true, Ordering::Release);
    }

    /// Re-reads of the clients `ids`: those in `fresh` are replaced, the others removed
    /// (revoked or deleted).
    pub(super) fn apply(&self, ids: &[String], mut fresh: Credentials) {
        let mut next = Credentials::clone(&self.credentials.load());
        for id in ids {
            match fresh.remove(id) {
                Some(credential) => next.insert(id.clone(), credential),
                None => next.remove(id),
            };
        }
        self.credentials.store(Arc::new(next));
    }

    /// A refresh failed: why, for the refusals' messages.
    pub(super) fn failed(&self, error: &PgError) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
    }

    /// The replica is current as of now.
    pub(super) fn confirm(&self) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.current_at.store(self.clock.now(), Ordering::Release);
        self.judge();
        self.refreshes.send_modify(|n| *n += 1);
    }

    /// Decides, by the clock now, whether lookups are answered, and shows the staleness.
    pub(super) fn judge(&self) {
        let staleness = self.staleness();
        self.serving.store(
            self.is_loaded() && staleness <= self.max_staleness,
            Ordering::Release,
        );
        self.show(staleness);
    }

    /// Seconds since the replica was last current.
    pub(super) fn staleness(&self) -> u64 {
        self.clock
            .now()
            .saturating_sub(self.current_at.load(Ordering::Acquire))
    }

    pub(super) fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    pub(super) fn len(&self) -> usize {
        self.credentials.load().len()
    }

    /// Sets the staleness gauge (feature `metrics`; looked up each time, about once a
    /// second, so a recorder installed after the replica started sees it).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn show(&self, staleness: u64) {
        #[cfg(feature = "metrics")]
        {
            #[allow(clippy::cast_precision_loss)]
            crate::metrics::credentials_staleness().set(staleness as f64);
        }
    }

    /// Why lookups are refused now, if they are.
    fn refusal(&self) -> Option<PgError> {
        if self.serving.load(Ordering::Acquire) {
            return None;
        }
        let why = if self.is_loaded() {
            let staleness = self.staleness();
            format!(
                "the credential replica was last current {staleness} s ago (max_staleness {} s)",
                self.max_staleness
            )
        } else {
            "the credential replica has not loaded yet".to_owned()
        };
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Some(PgError::NotCurrent(match last {
            Some(error) => format!("{why}; last attempt: {error}"),
            None => why,
        }))
    }
}

impl Shared {
    /// The state of a replica that has not loaded yet.
    pub(super) fn new(settings: &ReplicaSettings) -> Self {
        let clock = Arc::clone(&settings.clock);
        Self {
            credentials: ArcSwap::default(),
            loaded: AtomicBool::new(false),
            serving: AtomicBool::new(false),
            current_at: AtomicU64::new(clock.now()),
            max_staleness: settings.max_staleness.as_secs(),
            clock,
            refreshes: watch::Sender::new(0),
            wake: Notify::new(),
            last_error: Mutex::new(None),
        }
    }
}

impl Replica {
    /// The handle of a replica whose tasks run.
    pub(super) fn new(shared: Arc<Shared>, tasks: Vec<JoinHandle<()>>) -> Self {
        Self {
            shared,
            tasks: Arc::new(Tasks(tasks)),
        }
    }

    /// Wakes the replica and waits, at most `timeout`, until a refresh that began after
    /// this call has completed: everything committed before the call is then served.
    /// Says whether it has.
    ///
    /// ```no_run
    /// # async fn f(replica: &jg_hmac::postgres::Replica) {
    /// if !replica.wait_current(std::time::Duration::from_secs(10)).await {
    ///     eprintln!("credentials not loaded yet: requests get 503 until they are");
    /// }
    /// # }
    /// ```
    pub async fn wait_current(&self, timeout: Duration) -> bool {
        let mut refreshes = self.shared.refreshes.subscribe();
        let target = *refreshes.borrow_and_update() + 2;
        self.shared.wake.notify_one();
        let wait = async {
            loop {
                if *refreshes.borrow_and_update() >= target {
                    return true;
                }
                if refreshes.changed().await.is_err() {
                    return false;
                }
                // A refresh that began before this call: ask for the next one.
                self.shared.wake.notify_one();
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// Time since the replica was last current (by the store's clock, in whole
    /// seconds); `None` while it has never loaded.
    ///
    /// ```no_run
    /// # fn f(replica: &jg_hmac::postgres::Replica) {
    /// let stale = replica.staleness();
    /// # let _ = stale;
    /// # }
    /// ```
    pub fn staleness(&self) -> Option<Duration> {
        self.shared
            .is_loaded()
            .then(|| Duration::from_secs(self.shared.staleness()))
    }

    /// Number of clients held.
    ///
    /// ```no_run
    /// # fn f(replica: &jg_hmac::postgres::Replica) {
    /// println!("{} clients", replica.len());
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether no client is held.
    ///
    /// ```no_run
    /// # fn f(replica: &jg_hmac::postgres::Replica) {
    /// assert!(!replica.is_empty());
    /// # }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("clients", &self.len())
            .field("loaded", &self.shared.is_loaded())
            .field("staleness_s", &self.shared.staleness())
            .field("tasks", &self.tasks.0.len())
            .finish_non_exhaustive()
    }
}

/// A read of memory: the credential, `None` for an unknown or revoked client; a
/// [`StoreError`] (its source a [`PgError::NotCurrent`]) before the first load and past
/// `max_staleness`.
impl CredentialStore for Replica {
    async fn get(&self, client_id: &str) -> Result<Option<Arc<Credential>>, StoreError> {
        if let Some(refusal) = self.shared.refusal() {
            return Err(StoreError::new(refusal));
        }
        Ok(Credentials::get(&self.shared.credentials.load(), client_id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica's state on a clock of the test's own.
    fn shared(now: &'static AtomicU64) -> Shared {
        Shared::new(&ReplicaSettings {
            listen: None,
            poll_interval: Duration::from_secs(1),
            max_staleness: Duration::from_secs(300),
            clock: Arc::new(|| now.load(Ordering::Relaxed)),
        })
    }

    #[test]
    fn refuses_before_loading_and_past_max_staleness() {
        static NOW: AtomicU64 = AtomicU64::new(1_000);
        let shared = shared(&NOW);
        assert!(shared.refusal().is_some(), "never loaded");
        let mut credentials = Credentials::new();
        credentials.insert("jk_live_a".into(), Arc::new(Credential::new("jk_live_a")));
        shared.replace(credentials);
        shared.confirm();
        assert!(shared.refusal().is_none());
        NOW.store(1_300, Ordering::Relaxed);
        shared.judge();
        assert!(shared.refusal().is_none(), "at max_staleness");
        NOW.store(1_301, Ordering::Relaxed);
        assert!(shared.refusal().is_none(), "until judged again");
        shared.judge();
        let refusal = shared.refusal().map(|e| e.to_string()).unwrap_or_default();
        assert!(refusal.contains("301 s ago"), "{refusal}");
        shared.apply(&["jk_live_a".into()], Credentials::new());
        shared.confirm();
        assert!(shared.refusal().is_none() && shared.len() == 0);
    }

    /// The gauge shows the staleness by the replica's clock.
    #[cfg(feature = "metrics")]
    #[test]
    fn the_gauge_shows_the_staleness() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        static NOW: AtomicU64 = AtomicU64::new(1_000);
        let shared = shared(&NOW);
        shared.replace(Credentials::new());
        metrics::with_local_recorder(&recorder, || {
            shared.confirm();
            NOW.fetch_add(42, Ordering::Relaxed);
            shared.judge();
        });
        let scrape = handle.render();
        assert!(
            scrape.contains("jg_hmac_credentials_staleness_seconds 42"),
            "{scrape}"
        );
    }
}
