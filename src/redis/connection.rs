//! The connection behind a [`RedisReplayGuard`](super::RedisReplayGuard) (and anything
//! else of the crate that talks to the same Redis): one endpoint, plain or TLS; the
//! primary a set of Sentinels names; or a Cluster. Every call is bounded by a deadline,
//! connecting included.
//!
//! One background task per connection (re)connects: callers never connect themselves,
//! so a caller cut off by its deadline cancels nothing, and however many requests find
//! the connection broken, one reconnection runs at a time, with backoff (50 ms doubling
//! to 1 s). The task is told that a connection is broken (an I/O error, a dropped
//! connection, or `READONLY` from a primary that a failover demoted: then, through the
//! Sentinels, it finds the new primary) or suspect (a call timed out: it sends `PING`
//! and reconnects if that fails too). Behind Sentinel it also asks a Sentinel every
//! 250 ms which node is primary, and moves as soon as the answer changes: after a failover
//! the old primary may keep accepting writes (that the new one never sees) until the
//! Sentinels demote it. It ends when the last handle is dropped.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use ::redis::cluster::ClusterClientBuilder;
use ::redis::cluster_async::ClusterConnection;
use ::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use ::redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, Cmd, ConnectionAddr, ErrorKind,
    IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, ScriptInvocation,
    ServerErrorKind, TlsCertificates, TlsMode, Value,
};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout, timeout_at};
use zeroize::Zeroizing;

use super::url::Target;

/// Bound on one connection attempt (TCP, TLS, the Sentinel lookup, `PING` of a suspect).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a suspect connection (a call on it timed out) has to answer `PING` before it
/// is replaced: longer than a connection attempt, so that a loaded host's slow answers do
/// not turn into reconnections.
const SUSPECT_PING_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the task asks a Sentinel which node is primary.
const PRIMARY_CHECK: Duration = Duration::from_millis(250);
/// First and longest pause between failed connection attempts.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// TLS material given to the builder: the CA to verify the server against (else the
/// system's roots) and an optional client certificate with its key (PEM).
#[derive(Clone, Default)]
pub(crate) struct TlsFiles {
    pub(crate) ca: Option<Vec<u8>>,
    pub(crate) client: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

impl TlsFiles {
    fn certificates(&self) -> Option<TlsCertificates> {
        if self.ca.is_none() && self.client.is_none() {
            return None;
        }
        Some(TlsCertificates {
            client_tls: self.client.as_ref().map(|(cert, key)| ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.to_vec(),
            }),
            root_cert: self.ca.clone(),
        })
    }
}

/// The bytes of the PEM file at `path` (`what` names it in errors), checked to be PEM.
pub(crate) fn read_pem(path: &Path, what: &str) -> RedisResult<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| {
        RedisError::from((
            ErrorKind::InvalidClientConfig,
            "cannot read a TLS file",
            format!("{what} {}: {e}", path.display()),
        ))
    })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(RedisError::from((
            ErrorKind::InvalidClientConfig,
            "a TLS file is not PEM",
            format!("{what} {}: no -----BEGIN line", path.display()),
        )));
    }
    Ok(bytes)
}

/// Why a call gave no answer.
pub(crate) enum NoAnswer {
    /// Redis answered with an error, or the connection failed.
    Redis(RedisError),
    /// No answer within the deadline.
    Timeout(Duration),
    /// No connection within the deadline; the last attempt's error, if one failed.
    NotConnected(Duration, Option<RedisError>),
    /// An answer the caller did not expect.
    Unexpected(Value),
}

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redis(e) => write!(f, "{e}"),
            Self::Timeout(t) => write!(f, "no answer within {} ms", t.as_millis()),
            Self::NotConnected(t, None) => {
                write!(f, "not connected to Redis within {} ms", t.as_millis())
            }
            Self::NotConnected(_, Some(e)) => {
                write!(f, "not connected to Redis (last attempt: {e})")
            }
            Self::Unexpected(v) => write!(f, "unexpected reply: {v:?}"),
        }
    }
}

impl From<NoAnswer> for RedisError {
    fn from(failure: NoAnswer) -> Self {
        match failure {
            NoAnswer::Redis(e) => e,
            other => RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                other.to_string(),
            )),
        }
    }
}

/// A connection to the guard's Redis. Clones share it.
#[derive(Clone)]
pub(crate) enum Connection {
    /// A redis-rs `ConnectionManager` the caller built (it reconnects by itself).
    Manager(ConnectionManager),
    /// A connection of ours, kept up by its background task.
    Kept(Kept),
}

impl Connection {
    /// A connection to `target`; it connects on first use. Must run within a Tokio runtime.
    pub(crate) fn open(target: &Target, tls: &TlsFiles) -> RedisResult<Self> {
        let connector = Connector::new(target, tls)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RedisError::from((
                ErrorKind::Client,
                "a Redis connection must be opened within a Tokio runtime",
            )));
        }
        Ok(Self::Kept(Kept::spawn(connector)))
    }

    /// Sends `cmd`; its reply within `limit`.
    pub(crate) async fn query(&self, cmd: &Cmd, limit: Duration) -> Result<Value, NoAnswer> {
        self.call(limit, |mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// Runs a Lua script (`EVALSHA`, loading it on `NOSCRIPT`); its reply within `limit`.
    pub(crate) async fn invoke(
        &self,
        script: &ScriptInvocation<'_>,
        limit: Duration,
    ) -> Result<Value, NoAnswer> {
        self.call(
            limit,
            |mut c| async move { script.invoke_async(&mut c).await },
        )
        .await
    }

    async fn call<F, Fut>(&self, limit: Duration, op: F) -> Result<Value, NoAnswer>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<Value>>,
    {
        let deadline = Instant::now() + limit;
        match self {
            Self::Manager(manager) => {
                match timeout_at(deadline, op(Conn::Manager(manager.clone()))).await {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(e)) => Err(NoAnswer::Redis(e)),
                    Err(_) => Err(NoAnswer::Timeout(limit)),
                }
            }
            Self::Kept(kept) => {
                let (generation, conn) = kept.current(deadline, limit).await?;
                match timeout_at(deadline, op(conn)).await {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(e)) => {
                        if is_broken(&e) {
                            kept.tell(Request::Broken(generation));
                        }
                        Err(NoAnswer::Redis(e))
                    }
                    Err(_) => {
                        kept.tell(Request::Suspect(generation));
                        Err(NoAnswer::Timeout(limit))
                    }
                }
            }
        }
    }
}

/// Errors after which the connection is replaced: it is gone, or it reaches a replica.
fn is_broken(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
}

/// What the task is told.
#[derive(Clone, Copy)]
enum Request {
    /// A caller found no connection.
    Connect,
    /// The connection of this generation failed.
    Broken(u64),
    /// A call on the connection of this generation timed out.
    Suspect(u64),
}

/// The connection as the task publishes it.
#[derive(Clone)]
enum State {
    Up(u64, Conn),
    /// Not connected; `attempts` counts failed attempts so far, `last` is the latest error.
    Down {
        attempts: u64,
        last: Option<RedisError>,
    },
}

/// A handle on a connection that a background task keeps up.
#[derive(Clone)]
pub(crate) struct Kept {
    state: watch::Receiver<State>,
    requests: mpsc::Sender<Request>,
}

impl Kept {
    fn spawn(connector: Connector) -> Self {
        let (state_tx, state) = watch::channel(State::Down {
            attempts: 0,
            last: None,
        });
        // One pending request is enough: the task reads the state when it gets it.
        let (requests, requests_rx) = mpsc::channel(1);
        tokio::spawn(keep(connector, state_tx, requests_rx));
        Self { state, requests }
    }

    fn tell(&self, request: Request) {
        // Full: a request is pending already, and the task will look at the state anyway.
        let _ = self.requests.try_send(request);
    }

    /// The connection, waiting for one until `deadline` while an attempt is under way; a
    /// failed attempt made meanwhile ends the wait early with its error. Once an attempt
    /// has failed (the task then retries after a backoff) callers are answered at once
    /// with that error, not held for their whole timeout, until a connection is made.
    async fn current(&self, deadline: Instant, limit: Duration) -> Result<(u64, Conn), NoAnswer> {
        let mut state = self.state.clone();
        let started_at = match &*state.borrow_and_update() {
            State::Up(generation, conn) => return Ok((*generation, conn.clone())),
            State::Down {
                last: Some(error), ..
            } => return Err(NoAnswer::NotConnected(limit, Some(error.clone()))),
            State::Down { attempts, .. } => *attempts,
        };
        self.tell(Request::Connect);
        let outcome = match timeout_at(
            deadline,
            state.wait_for(|s| match s {
                State::Up(..) => true,
                State::Down { attempts, .. } => *attempts > started_at,
            }),
        )
        .await
        {
            Ok(Ok(s)) => Some(s.clone()),
            // The task ended (only when the runtime shuts down), or the deadline passed.
            Ok(Err(_)) | Err(_) => None,
        };
        let outcome = outcome.unwrap_or_else(|| state.borrow().clone());
        match outcome {
            State::Up(generation, conn) => Ok((generation, conn)),
            State::Down { last, .. } => Err(NoAnswer::NotConnected(limit, last)),
        }
    }
}

/// The task behind a [`Kept`]: connects when asked, until every handle is gone.
async fn keep(
    mut connector: Connector,
    state: watch::Sender<State>,
    mut requests: mpsc::Receiver<Request>,
) {
    let mut generation = 0;
    let mut attempts = 0;
    loop {
        let up = match &*state.borrow() {
            State::Up(g, _) => Some(*g),
            State::Down { .. } => None,
        };
        let request = match up {
            Some(g) if connector.follows_a_primary() => {
                match timeout(PRIMARY_CHECK, requests.recv()).await {
                    Ok(request) => request,
                    Err(_) if connector.primary_moved().await => Some(Request::Broken(g)),
                    Err(_) => continue,
                }
            }
            _ => requests.recv().await,
        };
        let Some(request) = request else {
            return;
        };
        let current = match &*state.borrow() {
            State::Up(g, conn) => Some((*g, conn.clone())),
            State::Down { .. } => None,
        };
        match (request, current) {
            // Old news: about a connection already replaced, or asking for one that is up.
            (Request::Connect, Some(_)) => continue,
            (Request::Broken(g) | Request::Suspect(g), Some((up, _))) if g != up => continue,
            (Request::Broken(_) | Request::Suspect(_), None) => continue,
            (Request::Suspect(_), Some((_, mut conn))) => {
                let ping = ::redis::cmd("PING");
                if let Ok(Ok(_)) =
                    timeout(SUSPECT_PING_TIMEOUT, ping.query_async::<Value>(&mut conn)).await
                {
                    continue;
                }
            }
            _ => {}
        }
        state.send_replace(State::Down {
            attempts,
            last: None,
        });
        let mut backoff = MIN_BACKOFF;
        loop {
            let attempt = timeout(CONNECT_TIMEOUT, connector.connect()).await;
            let error = match attempt {
                Ok(Ok(conn)) => {
                    generation += 1;
                    state.send_replace(State::Up(generation, conn));
                    break;
                }
                Ok(Err(e)) => e,
                Err(_) => RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "connecting took longer than {} ms",
                        CONNECT_TIMEOUT.as_millis()
                    ),
                )),
            };
            attempts += 1;
            state.send_replace(State::Down {
                attempts,
                last: Some(error),
            });
            // Wait out the backoff; requests meanwhile change nothing, but a closed
            // channel (every handle dropped) ends the task.
            let until = Instant::now() + backoff;
            while let Ok(request) = timeout_at(until, requests.recv()).await {
                if request.is_none() {
                    return;
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// How the task makes a connection.
enum Connector {
    Single(Client, AsyncConnectionConfig),
    Sentinel(Box<Sentinel>),
    Cluster(::redis::cluster::ClusterClient),
}

/// The primary of a Sentinel-managed set: how to find it, and the one found last.
struct Sentinel {
    client: SentinelClient,
    config: AsyncConnectionConfig,
    service: String,
    /// The host and port of the primary connected to last.
    primary: Option<(String, u16)>,
    /// A connection to a Sentinel, to ask which node is primary.
    watch: Option<MultiplexedConnection>,
}

impl Connector {
    fn new(target: &Target, tls: &TlsFiles) -> RedisResult<Self> {
        let config = AsyncConnectionConfig::new().set_connection_timeout(Some(CONNECT_TIMEOUT));
        let certificates = tls.certificates();
        Ok(match target {
            Target::Single { url, .. } => {
                let client = match certificates {
                    Some(certificates) => Client::build_with_tls(url.as_str(), certificates)?,
                    None => Client::open(url.as_str())?,
                };
                Self::Single(client, config)
            }
            Target::Sentinel {
                sentinels,
                service,
                tls,
                db,
                username,
                password,
            } => {
                let addresses = sentinels
                    .iter()
                    .map(|url| Ok(url.as_str().into_connection_info()?.addr().clone()))
                    .collect::<RedisResult<Vec<_>>>()?;
                let mut builder =
                    SentinelClientBuilder::new(addresses, service, SentinelServerType::Master)?
                        .set_client_to_redis_db(*db);
                if let Some(username) = username {
                    builder = builder.set_client_to_redis_username(username);
                }
                if let Some(password) = password {
                    builder = builder.set_client_to_redis_password(password.as_str());
                }
                if *tls {
                    builder = builder
                        .set_client_to_redis_tls_mode(TlsMode::Secure)
                        .set_client_to_sentinel_tls_mode(TlsMode::Secure);
                    if let Some(certificates) = certificates {
                        builder = builder
                            .set_client_to_redis_certificates(certificates.clone())
                            .set_client_to_sentinel_certificates(certificates);
                    }
                }
                Self::Sentinel(Box::new(Sentinel {
                    client: builder.build()?,
                    config,
                    service: service.clone(),
                    primary: None,
                    watch: None,
                }))
            }
            Target::Cluster { nodes, .. } => {
                let mut builder = ClusterClientBuilder::new(nodes.iter().map(|n| n.as_str()))
                    .connection_timeout(CONNECT_TIMEOUT);
                if let Some(certificates) = certificates {
                    builder = builder.certs(certificates);
                }
                Self::Cluster(builder.build()?)
            }
        })
    }

    async fn connect(&mut self) -> RedisResult<Conn> {
        Ok(match self {
            Self::Single(client, config) => Conn::Node(
                client
                    .get_multiplexed_async_connection_with_config(config)
                    .await?,
            ),
            Self::Sentinel(sentinel) => {
                let client = sentinel.client.async_get_client().await?;
                sentinel.primary = host_port(client.get_connection_info().addr());
                let config = &sentinel.config;
                Conn::Node(
                    client
                        .get_multiplexed_async_connection_with_config(config)
                        .await?,
                )
            }
            Self::Cluster(client) => Conn::Cluster(client.get_async_connection().await?),
        })
    }
}

impl Connector {
    fn follows_a_primary(&self) -> bool {
        matches!(self, Self::Sentinel(_))
    }

    /// Whether the Sentinels now name another node primary than the one connected to.
    /// Errors asking count as "no" (the connection in use decides), and the connection
    /// to the Sentinel is made anew next time.
    async fn primary_moved(&mut self) -> bool {
        let Self::Sentinel(sentinel) = self else {
            return false;
        };
        let asked = timeout(CONNECT_TIMEOUT, async {
            let watch = match &mut sentinel.watch {
                Some(watch) => watch,
                None => {
                    let client = sentinel.client.async_get_sentinel_client().await?;
                    let watch = client.get_multiplexed_async_connection().await?;
                    sentinel.watch.insert(watch)
                }
            };
            ::redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&sentinel.service)
                .query_async::<Option<(String, u16)>>(watch)
                .await
        })
        .await;
        match asked {
            Ok(Ok(named)) => named.is_some() && named != sentinel.primary,
            Ok(Err(_)) | Err(_) => {
                sentinel.watch = None;
                false
            }
        }
    }
}

/// The host and port of a TCP address.
fn host_port(addr: &ConnectionAddr) -> Option<(String, u16)> {
    match addr {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            Some((host.clone(), *port))
        }
        _ => None,
    }
}

/// One connection of any kind, for redis-rs' commands and scripts.
#[derive(Clone)]
enum Conn {
    Manager(ConnectionManager),
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Manager(c) => c.req_packed_command(cmd),
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Manager(c) => c.get_db(),
            Self::Node(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}
