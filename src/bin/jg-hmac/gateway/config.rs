//! The gateway's flags and `--config FILE` (TOML, the same keys), merged into one
//! [`Config`]: a flag given on the command line wins over the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use http::Method;
use serde::Deserialize;
use zeroize::Zeroizing;

/// Default `--replay-capacity`: 200,000 entries, about 34 MB (about 170 bytes each,
/// allocated up front); enough for a peak of about 300 accepted requests/s.
pub const DEFAULT_REPLAY_CAPACITY: usize = 200_000;
/// Default `--body-limit`: 1 MiB.
const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Default `--upstream-timeout`: 30 s.
const DEFAULT_UPSTREAM_TIMEOUT: f64 = 30.0;
/// Default `--request-timeout`: 30 s.
const DEFAULT_REQUEST_TIMEOUT: f64 = 30.0;

/// `jg-hmac gateway`: verify every request, then forward exactly what was verified.
#[derive(Debug, Args, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct GatewayArgs {
    /// A TOML file with any of these options, under the same names
    /// (`listen = "127.0.0.1:8080"`, `public = ["GET /v1/health"]`); flags win over it.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on (HTTP/1.1 and h2c), e.g. 0.0.0.0:8080.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The upstream, http://HOST:PORT (requests keep their own path and query).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// The credentials file (TOML, reloaded on SIGHUP). Without it, the PostgreSQL store
    /// of $JG_DATABASE_URL and $JG_KEK_FILE.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// A route passed unsigned, "METHOD PATH" (exact path, any query). Repeatable.
    #[arg(long = "public", value_name = "METHOD PATH")]
    pub public: Vec<String>,
    /// A scope required on a route, "METHOD PATH_PREFIX SCOPE" (METHOD may be `*`); a
    /// verified client without it gets 403 insufficient_scope. Repeatable.
    #[arg(long = "scope", value_name = "METHOD PATH_PREFIX SCOPE")]
    pub scope: Vec<String>,
    /// Largest request body in bytes (default 1 MiB); larger is 413 before the upstream
    /// sees a byte.
    #[arg(long, value_name = "BYTES")]
    pub body_limit: Option<usize>,
    /// Longest wait for the upstream's response head, in seconds (default 30); then 504
    /// upstream_timeout.
    #[arg(long, value_name = "SECONDS")]
    pub upstream_timeout: Option<f64>,
    /// Longest time from a request's head to its verification, body included, in seconds
    /// (default 30); then 408 request_timeout.
    #[arg(long, value_name = "SECONDS")]
    pub request_timeout: Option<f64>,
    /// Key of the X-JG-Identity assertion (the file's bytes, one trailing newline removed;
    /// at least 32 bytes).
    #[arg(long, value_name = "FILE")]
    pub identity_key_file: Option<PathBuf>,
    /// A Redis replay guard shared by every gateway instance, e.g. redis://10.0.0.5:6379.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Entries of the in-memory replay guard (default 200000, about 170 bytes each,
    /// allocated at start).
    #[arg(long, value_name = "ENTRIES")]
    pub replay_capacity: Option<usize>,
    /// Address of the Prometheus endpoint (GET /metrics).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Also serve Envoy's ext_authz gRPC service (Authorization/Check) on ADDR, with the
    /// same credentials, replay guard and rules (docs/gateway.md, "Envoy ext_authz").
    #[arg(long, value_name = "ADDR")]
    pub ext_authz_grpc: Option<SocketAddr>,
}

/// A route passed unsigned.
#[derive(Debug, Clone)]
pub struct PublicRoute {
    pub method: Method,
    pub path: String,
}

/// A scope required under a path prefix.
#[derive(Debug, Clone)]
pub struct ScopeRule {
    /// `None`: any method.
    pub method: Option<Method>,
    pub prefix: String,
    pub scope: String,
}

/// Where the credentials come from.
#[derive(Debug)]
pub enum Credentials {
    File(PathBuf),
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres {
        url: String,
        kek_file: PathBuf,
    },
}

/// Everything the gateway runs with.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// `host:port` of the upstream.
    pub upstream: String,
    pub credentials: Credentials,
    pub public: Vec<PublicRoute>,
    pub scopes: Arc<[ScopeRule]>,
    pub body_limit: usize,
    pub upstream_timeout: Duration,
    pub request_timeout: Duration,
    pub identity_key: Option<Zeroizing<Vec<u8>>>,
    pub redis: Option<String>,
    pub replay_capacity: usize,
    pub metrics_listen: Option<SocketAddr>,
    pub ext_authz_grpc: Option<SocketAddr>,
}

impl GatewayArgs {
    /// The flags over the `--config` file, checked.
    pub fn resolve(self) -> Result<Config, String> {
        let file = match &self.config {
            Some(path) => read_config(path)?,
            None => GatewayArgs::default(),
        };
        let merged = self.over(file);
        let listen = merged.listen.ok_or("--listen ADDR is required")?;
        let upstream = upstream_authority(
            merged
                .upstream
                .as_deref()
                .ok_or("--upstream URL is required")?,
        )?;
        let credentials = match merged.credentials {
            Some(path) => Credentials::File(path),
            None => match (
                std::env::var("JG_DATABASE_URL"),
                std::env::var_os("JG_KEK_FILE"),
            ) {
                (Ok(url), Some(kek)) => Credentials::Postgres {
                    url,
                    kek_file: kek.into(),
                },
                _ => {
                    return Err("credentials are required: --credentials FILE, or \
                                $JG_DATABASE_URL and $JG_KEK_FILE"
                        .into());
                }
            },
        };
        let public = merged
            .public
            .iter()
            .map(|p| parse_public(p))
            .collect::<Result<_, _>>()?;
        let scopes = merged
            .scope
            .iter()
            .map(|s| parse_scope(s))
            .collect::<Result<Vec<_>, _>>()?
            .into();
        let identity_key = match &merged.identity_key_file {
            Some(path) => {
                let key = Zeroizing::new(crate::input::read_secret_file(path).map_err(|e| {
                    format!("cannot read identity key file {}: {e}", path.display())
                })?);
                if key.len() < 32 {
                    return Err(format!(
                        "identity key file {}: at least 32 bytes are required, found {}",
                        path.display(),
                        key.len()
                    ));
                }
                super::credentials::warn_if_shared(path, "identity key file");
                Some(key)
            }
            None => None,
        };
        Ok(Config {
            listen,
            upstream,
            credentials,
            public,
            scopes,
            body_limit: merged.body_limit.unwrap_or(DEFAULT_BODY_LIMIT),
            upstream_timeout: seconds(
                "--upstream-timeout",
                merged.upstream_timeout,
                DEFAULT_UPSTREAM_TIMEOUT,
            )?,
            request_timeout: seconds(
                "--request-timeout",
                merged.request_timeout,
                DEFAULT_REQUEST_TIMEOUT,
            )?,
            identity_key,
            redis: merged.redis,
            replay_capacity: merged.replay_capacity.unwrap_or(DEFAULT_REPLAY_CAPACITY),
            metrics_listen: merged.metrics_listen,
            ext_authz_grpc: merged.ext_authz_grpc,
        })
    }

    /// `self` (the flags) over `file`: a flag given wins; lists given on the command line
    /// replace the file's.
    fn over(self, file: GatewayArgs) -> GatewayArgs {
        fn list(flags: Vec<String>, file: Vec<String>) -> Vec<String> {
            if flags.is_empty() { file } else { flags }
        }
        GatewayArgs {
            config: None,
            listen: self.listen.or(file.listen),
            upstream: self.upstream.or(file.upstream),
            credentials: self.credentials.or(file.credentials),
            public: list(self.public, file.public),
            scope: list(self.scope, file.scope),
            body_limit: self.body_limit.or(file.body_limit),
            upstream_timeout: self.upstream_timeout.or(file.upstream_timeout),
            request_timeout: self.request_timeout.or(file.request_timeout),
            identity_key_file: self.identity_key_file.or(file.identity_key_file),
            redis: self.redis.or(file.redis),
            replay_capacity: self.replay_capacity.or(file.replay_capacity),
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            ext_authz_grpc: self.ext_authz_grpc.or(file.ext_authz_grpc),
        }
    }
}

fn read_config(path: &Path) -> Result<GatewayArgs, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        format!(
            "config file {}: {}",
            path.display(),
            e.to_string().trim_end()
        )
    })
}

fn seconds(flag: &str, value: Option<f64>, default: f64) -> Result<Duration, String> {
    let value = value.unwrap_or(default);
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{flag}: expected a positive number of seconds, found {value}"))
}

/// `http://host:port` → `host:port`. Only plain HTTP (the upstream is a local backend or
/// a sidecar neighbour), and no path: requests keep the path the client signed.
fn upstream_authority(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("--upstream {url}: not a URL ({e})"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "--upstream {url}: only http://HOST:PORT is supported"
        ));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(format!(
            "--upstream {url}: no path or query: requests are forwarded with the target they were signed with"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("--upstream {url}: no host"))?;
    Ok(match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.as_str()),
    })
}

fn parse_public(text: &str) -> Result<PublicRoute, String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [method, path] = parts[..] else {
        return Err(format!("--public {text:?}: expected \"METHOD PATH\""));
    };
    if !path.starts_with('/') {
        return Err(format!("--public {text:?}: the path starts with /"));
    }
    Ok(PublicRoute {
        method: method
            .parse()
            .map_err(|_| format!("--public {text:?}: {method} is not a method"))?,
        path: path.to_owned(),
    })
}

fn parse_scope(text: &str) -> Result<ScopeRule, String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [method, prefix, scope] = parts[..] else {
        return Err(format!(
            "--scope {text:?}: expected \"METHOD PATH_PREFIX SCOPE\""
        ));
    };
    if !prefix.starts_with('/') {
        return Err(format!("--scope {text:?}: the path prefix starts with /"));
    }
    let method = match method {
        "*" => None,
        m => Some(
            m.parse()
                .map_err(|_| format!("--scope {text:?}: {m} is not a method"))?,
        ),
    };
    Ok(ScopeRule {
        method,
        prefix: super::routes::normalize(prefix),
        scope: scope.to_owned(),
    })
}
