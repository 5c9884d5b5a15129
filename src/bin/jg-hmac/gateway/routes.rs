//! `--public` and `--scope` rules: which requests pass unsigned, which scope a route needs.
//!
//! A public route matches only its exact spelling (method and path byte for byte, any
//! query), so no other spelling of a path reaches the upstream unsigned. A scope rule
//! matches the path *normalised the way backends route it* (percent-decoded, lower case,
//! `//` merged, `.` and `..` resolved), so no spelling of a path (`/v1/%74ransactions`,
//! `//v1/Transactions/./buy`) escapes it; it matches at segment boundaries.

use http::Method;

use super::config::{PublicRoute, ScopeRule};

/// Whether `method path` is one of the public routes.
pub fn is_public(routes: &[PublicRoute], method: &Method, path: &str) -> bool {
    routes.iter().any(|r| r.method == method && r.path == path)
}

/// The first scope a rule requires of `method path` that `has` says the client lacks.
pub fn missing_scope<'a>(
    rules: &'a [ScopeRule],
    method: &Method,
    path: &str,
    has: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    if rules.is_empty() {
        return None;
    }
    let path = normalize(path);
    rules
        .iter()
        .filter(|r| r.method.as_ref().is_none_or(|m| m == method))
        .filter(|r| under(&path, &r.prefix))
        .find(|r| !has(&r.scope))
        .map(|r| r.scope.as_str())
}

fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || prefix.ends_with('/') && path.starts_with(prefix)
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The path as a backend routes it: percent-decoded, lower case, empty and `.` segments
/// dropped, `..` resolved; always starts with `/`.
pub fn normalize(path: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(path).collect::<Vec<u8>>();
    let decoded = String::from_utf8_lossy(&decoded).to_lowercase();
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || decoded.ends_with('/') {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_under_its_prefix() {
        let rule = [ScopeRule {
            method: None,
            prefix: normalize("/v1/transactions"),
            scope: "transactions:write".into(),
        }];
        for path in [
            "/v1/transactions",
            "/v1/transactions/buy",
            "//v1/transactions/buy",
            "/v1/%74ransactions/buy",
            "/V1/Transactions/buy",
            "/v1/x/../transactions/buy",
            "/v1/./transactions",
            "/v1\\transactions",
        ] {
            assert_eq!(
                missing_scope(&rule, &Method::POST, path, |_| false),
                Some("transactions:write"),
                "{path}"
            );
        }
        for path in ["/v1/transactionsx", "/v1/health", "/"] {
            assert_eq!(
                missing_scope(&rule, &Method::POST, path, |_| false),
                None,
                "{path}"
            );
        }
    }
}
