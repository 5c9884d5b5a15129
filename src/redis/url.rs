//! The URLs a [`RedisReplayGuard`](super::RedisReplayGuard) is configured with: one
//! endpoint (`redis://`, `rediss://`, as redis-rs parses them), the primary a set of
//! Sentinels names (`redis+sentinel://`, `rediss+sentinel://`) and a Cluster
//! (`redis+cluster://`, `rediss+cluster://`). Error messages never repeat the URL, which
//! may hold a password.

use ::redis::{ErrorKind, RedisError, RedisResult};
use percent_encoding::percent_decode_str;
use zeroize::Zeroizing;

/// The port of a Sentinel when the URL gives none.
const SENTINEL_PORT: u16 = 26379;
/// The port of a Redis node when the URL gives none.
const REDIS_PORT: u16 = 6379;

/// Where the guard's Redis is, parsed from its URL.
#[derive(Clone)]
pub(crate) enum Target {
    /// One endpoint: the URL as given, for redis-rs.
    Single { url: Zeroizing<String>, tls: bool },
    /// The primary that `sentinels` (`redis://` or `rediss://` URLs) name for `service`.
    Sentinel {
        sentinels: Vec<String>,
        service: String,
        tls: bool,
        db: i64,
        username: Option<String>,
        password: Option<Zeroizing<String>>,
    },
    /// A Cluster, found from its seed nodes (`redis://` or `rediss://` URLs for redis-rs).
    Cluster {
        nodes: Vec<Zeroizing<String>>,
        tls: bool,
    },
}

impl Target {
    /// Whether the URL asks for TLS (`rediss…`).
    pub(crate) fn tls(&self) -> bool {
        match self {
            Self::Single { tls, .. } | Self::Sentinel { tls, .. } | Self::Cluster { tls, .. } => {
                *tls
            }
        }
    }
}

fn invalid(what: &'static str, detail: impl Into<String>) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, what, detail.into()))
}

/// Parses a guard URL (see the module docs of `jg_hmac::redis` for the forms).
pub(crate) fn parse(url: &str) -> RedisResult<Target> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("not a Redis URL", "expected scheme://..."))?;
    let scheme = scheme.to_ascii_lowercase();
    if rest.contains('#') {
        // redis-rs reads `#insecure` as "do not verify the certificate": never wanted here.
        return Err(invalid(
            "URL fragments are not accepted",
            "`#insecure` (no certificate verification) is not supported; give the CA instead",
        ));
    }
    let (sentinel, tls) = match scheme.as_str() {
        "redis+sentinel" => (true, false),
        "rediss+sentinel" => (true, true),
        "redis+cluster" => (false, false),
        "rediss+cluster" => (false, true),
        _ => {
            let tls = matches!(scheme.as_str(), "rediss" | "valkeys");
            return Ok(Target::Single {
                url: Zeroizing::new(url.to_owned()),
                tls,
            });
        }
    };
    if rest.contains('?') {
        return Err(invalid(
            "query parameters are not accepted in this URL",
            format!("{scheme}:// URLs take no ?parameters"),
        ));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let default_port = if sentinel { SENTINEL_PORT } else { REDIS_PORT };
    let hosts = hosts
        .split(',')
        .map(|h| host_port(h, default_port))
        .collect::<RedisResult<Vec<_>>>()?;
    let node_scheme = if tls { "rediss" } else { "redis" };
    if sentinel {
        let (username, password) = credentials(userinfo)?;
        let mut parts = path.split('/').filter(|p| !p.is_empty());
        let service = parts.next().ok_or_else(|| {
            invalid(
                "a Sentinel URL names the service",
                format!("{scheme}://host:port[,host:port...]/SERVICE[/DB]"),
            )
        })?;
        let service = decode(service)?.to_string();
        let db = match parts.next() {
            Some(db) => db
                .parse::<i64>()
                .map_err(|_| invalid("the database is not a number", db.to_owned()))?,
            None => 0,
        };
        if parts.next().is_some() {
            return Err(invalid(
                "too many path segments in a Sentinel URL",
                "expected /SERVICE[/DB]",
            ));
        }
        Ok(Target::Sentinel {
            sentinels: hosts
                .iter()
                .map(|(host, port)| node_url(node_scheme, "", host, *port))
                .collect(),
            service,
            tls,
            db,
            username,
            password,
        })
    } else {
        if !matches!(path, "" | "0") {
            return Err(invalid(
                "a Cluster has database 0 only",
                "a redis+cluster:// URL has no path",
            ));
        }
        let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        let nodes = hosts
            .iter()
            .map(|(host, port)| Zeroizing::new(node_url(node_scheme, &userinfo, host, *port)))
            .collect();
        Ok(Target::Cluster { nodes, tls })
    }
}

/// `scheme://[userinfo@]host:port/`, an IPv6 host in brackets.
fn node_url(scheme: &str, userinfo: &str, host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("{scheme}://{userinfo}[{host}]:{port}/")
    } else {
        format!("{scheme}://{userinfo}{host}:{port}/")
    }
}

fn decode(s: &str) -> RedisResult<std::borrow::Cow<'_, str>> {
    percent_decode_str(s)
        .decode_utf8()
        .map_err(|_| invalid("not UTF-8 after percent-decoding", "in the URL"))
}

/// `user:password` (both percent-encoded, either may be empty).
#[allow(clippy::type_complexity)]
fn credentials(userinfo: Option<&str>) -> RedisResult<(Option<String>, Option<Zeroizing<String>>)> {
    let Some(userinfo) = userinfo else {
        return Ok((None, None));
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let user = Some(decode(user)?.into_owned()).filter(|u| !u.is_empty());
    let password = Some(Zeroizing::new(decode(password)?.into_owned())).filter(|p| !p.is_empty());
    Ok((user, password))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(s: &str, default_port: u16) -> RedisResult<(String, u16)> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, rest) = v6
            .split_once(']')
            .ok_or_else(|| invalid("unclosed [ in a host", s.to_owned()))?;
        (host, rest.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(invalid(
            "a host is empty",
            "hosts are separated by single commas",
        ));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| invalid("not a port number", p.to_owned()))?,
        None => default_port,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls() {
        let Target::Sentinel {
            sentinels,
            service,
            tls,
            db,
            username,
            password,
        } = parse("redis+sentinel://:p%40ss@10.0.0.1:26380,[::1],h/mymaster/2").unwrap()
        else {
            panic!("not a sentinel target")
        };
        assert_eq!(
            sentinels,
            [
                "redis://10.0.0.1:26380/",
                "redis://[::1]:26379/",
                "redis://h:26379/"
            ]
        );
        assert_eq!((service.as_str(), tls, db), ("mymaster", false, 2));
        assert_eq!(username, None);
        assert_eq!(password.as_deref().map(String::as_str), Some("p@ss"));
        assert!(parse("rediss+sentinel://h/m").unwrap().tls());
        for bad in [
            "redis+sentinel://h:1",
            "redis+sentinel://h:1/",
            "redis+sentinel://h:x/m",
            "redis+sentinel://h:1,,h:2/m",
            "redis+sentinel://h:1/m/x",
            "redis+sentinel://h:1/m/0/1",
            "redis+sentinel://h:1/m?x=1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cluster_urls() {
        let Target::Cluster { nodes, tls } =
            parse("rediss+cluster://u:pw@a:7000,[::1]:7001,b").unwrap()
        else {
            panic!("not a cluster target")
        };
        let nodes: Vec<&str> = nodes.iter().map(|n| n.as_str()).collect();
        assert_eq!(
            nodes,
            [
                "rediss://u:pw@a:7000/",
                "rediss://u:pw@[::1]:7001/",
                "rediss://u:pw@b:6379/"
            ]
        );
        assert!(tls);
        assert!(parse("redis+cluster://a:1/3").is_err());
        assert!(parse("redis+cluster://a:1/").is_ok());
    }

    #[test]
    fn single_urls_and_refusals() {
        assert!(!parse("redis://h:1/2").unwrap().tls());
        assert!(parse("rediss://h:1/").unwrap().tls());
        assert!(parse("rediss://h:1/#insecure").is_err());
        assert!(parse("h:1").is_err());
        // The password is in no error message.
        for url in [
            "redis+cluster://u:hunter2@a:1/9",
            "rediss://u:hunter2@h/#insecure",
        ] {
            let Err(e) = parse(url) else {
                panic!("{url} accepted")
            };
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }
}
