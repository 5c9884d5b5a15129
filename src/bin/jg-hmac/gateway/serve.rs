//! Serving: the listener (HTTP/1.1 and h2c), `/healthz` and `/readyz`, the metrics
//! endpoint, SIGHUP (reload the credentials file) and SIGTERM (graceful shutdown: the
//! listener closes, requests in flight finish).

use std::convert::Infallible;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use http::StatusCode;
use jg_hmac::tower::VerifyLayer;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tower_layer::Layer;
use tower_service::Service;

use super::LOG_TARGET;
use super::config::{Config, Credentials};
use super::forward::Upstream;
use super::routes;
use super::store::{Store, open_guard, open_store};

pub async fn run(config: Config) -> Result<(), String> {
    let ready = Arc::new(AtomicBool::new(false));
    let store = open_store(&config)?;
    // Ready once the credentials are loaded: the file now; PostgreSQL once the replica
    // has caught up with the database.
    #[cfg(feature = "postgres")]
    if let Store::Postgres(replica) = &store {
        let (replica, ready) = (replica.clone(), Arc::clone(&ready));
        tokio::spawn(async move {
            while !replica
                .wait_current(std::time::Duration::from_secs(5))
                .await
            {
                tracing::warn!(target: LOG_TARGET, "credentials not loaded from PostgreSQL yet; /readyz answers 503");
            }
            ready.store(true, Ordering::SeqCst);
        });
    }
    let file_store = matches!(store, Store::File(_));
    let guard = open_guard(&config)?;
    let upstream = Upstream::new(&config)?;
    let metrics = match config.metrics_listen {
        Some(addr) => Some(metrics_endpoint(addr, Arc::clone(&ready)).await?),
        None => None,
    };

    let layer = VerifyLayer::builder(store)
        .body_limit(config.body_limit)
        .request_timeout(config.request_timeout)
        .replay_guard(guard)
        .build();
    let reload = match (&config.credentials, layer.store()) {
        (Credentials::File(path), Store::File(store)) => Some((path.clone(), store.clone())),
        _ => None,
    };
    reload_on_sighup(reload)?;
    // SIGTERM stops every listener: the proxy's and, with it, ext_authz's.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown().await;
        let _ = stop.send(true);
    });
    let stopping = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    if let Some(addr) = config.ext_authz_grpc {
        super::authz::spawn(addr, layer.clone(), Arc::clone(&config.scopes), stopping()).await?;
    }
    let verified = layer.layer(upstream.clone());
    let public = Arc::new(config.public);
    let front = tower_service_fn(move |request: Request| {
        let mut verified = verified.clone();
        let upstream = upstream.clone();
        let public = Arc::clone(&public);
        async move {
            if routes::is_public(&public, request.method(), request.uri().path()) {
                return Ok::<_, Infallible>(upstream.forward_public(request).await);
            }
            poll_fn(|cx| Service::<Request>::poll_ready(&mut verified, cx)).await?;
            Ok(verified.call(request).await?.map(Body::new))
        }
    });
    let app = probes(Arc::clone(&ready)).fallback_service(front);

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", config.listen))?;
    if file_store {
        ready.store(true, Ordering::SeqCst);
    }
    tracing::info!(
        target: LOG_TARGET,
        listen = %config.listen,
        upstream = %config.upstream,
        metrics = ?metrics,
        "gateway ready"
    );
    // Responses go out as soon as they are written (no Nagle delay on small heads).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopping())
    .await
    .map_err(|e| format!("serving: {e}"))?;
    tracing::info!(target: LOG_TARGET, "gateway stopped");
    Ok(())
}

/// `/healthz` (the process answers) and `/readyz` (credentials loaded, listening).
fn probes(ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.load(Ordering::SeqCst);
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        )
}

/// Installs the Prometheus recorder and serves `GET /metrics` (with the probes) on `addr`.
async fn metrics_endpoint(addr: SocketAddr, ready: Arc<AtomicBool>) -> Result<SocketAddr, String> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("--metrics-listen: {e}"))?;
    jg_hmac::metrics::describe();
    let app = probes(ready).route("/metrics", get(move || std::future::ready(handle.render())));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(target: LOG_TARGET, error = %e, "metrics endpoint stopped");
        }
    });
    Ok(bound)
}

/// On SIGHUP, reads the credentials file again and swaps it in whole; an invalid file
/// is refused and the credentials in use stay. With PostgreSQL there is nothing to reload
/// (changes arrive by NOTIFY): the signal is logged, and does not stop the process.
fn reload_on_sighup(
    file: Option<(std::path::PathBuf, jg_hmac::tower::InMemoryCredentialStore)>,
) -> Result<(), String> {
    let mut hangups = signal(SignalKind::hangup()).map_err(|e| format!("SIGHUP: {e}"))?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some((path, store)) = &file else {
                tracing::info!(target: LOG_TARGET, "SIGHUP: credentials come from PostgreSQL; nothing to reload");
                continue;
            };
            match super::credentials::load(path) {
                Ok(credentials) => {
                    let clients = credentials.len();
                    store.replace_all(credentials);
                    tracing::info!(target: LOG_TARGET, file = %path.display(), clients, "credentials reloaded");
                }
                Err(error) => tracing::error!(
                    target: LOG_TARGET,
                    %error,
                    "credentials file refused; the credentials in use stay"
                ),
            }
        }
    });
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!(target: LOG_TARGET, "shutting down: no new connections, finishing requests in flight");
}

/// A `Service` from an async closure (what `tower::service_fn` does, without the crate).
fn tower_service_fn<F, Fut>(f: F) -> ServiceFn<F>
where
    F: Fn(Request) -> Fut,
    Fut: std::future::Future<Output = Result<Response, Infallible>>,
{
    ServiceFn(f)
}

#[derive(Clone)]
struct ServiceFn<F>(F);

impl<F, Fut> Service<Request> for ServiceFn<F>
where
    F: Fn(Request) -> Fut,
    Fut: std::future::Future<Output = Result<Response, Infallible>>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Fut;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Fut {
        (self.0)(request)
    }
}
