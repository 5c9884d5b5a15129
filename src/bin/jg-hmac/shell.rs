//! `sign --curl`: the signed request as a POSIX shell command that runs curl, and the
//! shell quoting it needs.

use crate::EarlyExit;
use crate::raw::RawRequest;
use crate::sign::AUTH_HEADERS;
use crate::terminal::escape_for_terminal;

/// A POSIX shell command: `printf '<body>' | curl ... --data-binary @-`.
///
/// Every field is in single quotes (a `'` becomes `'\''`), so `| sh` runs this one
/// command and nothing else, whatever the request holds; the body, and a header value
/// with bytes that are not printable ASCII, go through `printf` with every such byte
/// written as an octal escape, and never as a format that starts with `-`. The command
/// itself is printable ASCII. What curl cannot send byte for byte is refused instead
/// (exit 2): a NUL in a header value, a fragment or a byte that is not ASCII in the
/// request-target.
pub fn curl_command(
    request: &RawRequest<'_>,
    base: &str,
    added: &[(&str, &[u8])],
) -> Result<Vec<u8>, EarlyExit> {
    let base = base.trim_end_matches('/');
    let Some(rest) = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
    else {
        return Err(EarlyExit::Input(
            "--curl takes a URL base such as http://127.0.0.1:8080".into(),
        ));
    };
    if rest.is_empty()
        || rest
            .bytes()
            .any(|b| !(0x21..=0x7e).contains(&b) || matches!(b, b'?' | b'#' | b'\'' | b'\\'))
    {
        return Err(EarlyExit::Input(
            "--curl takes a URL base such as http://127.0.0.1:8080: scheme, host, port and an optional path, in visible ASCII without ?, #, ' or \\".into(),
        ));
    }
    let target = request.target();
    let mut url = base.as_bytes().to_vec();
    if target.first() == Some(&b'/') {
        url.extend_from_slice(target);
    } else {
        let parts = request.target_parts();
        if parts.path().first() != Some(&b'/') {
            return Err(EarlyExit::Input(
                "--curl needs an origin-form or absolute-form request-target".into(),
            ));
        }
        url.extend_from_slice(parts.path());
        if !parts.query().is_empty() {
            url.push(b'?');
            url.extend_from_slice(parts.query());
        }
    }
    let sent = url.get(base.len()..).unwrap_or_default();
    if sent.contains(&b'#') {
        return Err(EarlyExit::Input(
            "--curl: the request-target has a fragment (#), which curl does not send; remove it, or percent-encode the # as %23 and sign again".into(),
        ));
    }
    if let Some(b) = sent.iter().find(|b| !b.is_ascii()) {
        return Err(EarlyExit::Input(format!(
            "--curl: the request-target has a byte that is not ASCII ({}), which curl would percent-encode, changing the signed path; percent-encode it in the request and sign again",
            escape_for_terminal(&[*b])
        )));
    }
    let body = request.body();
    let method = request.method();
    let mut out = Vec::new();
    if !body.is_empty() {
        out.extend_from_slice(b"printf '");
        printf_escape(&mut out, body);
        out.extend_from_slice(b"' | ");
    }
    // --path-as-is: curl would otherwise remove dot segments, changing the signed path.
    // --globoff: [] and {} in URLs are data, not curl globs.
    out.extend_from_slice(b"curl --silent --show-error --path-as-is --globoff");
    if method == "HEAD" && body.is_empty() {
        out.extend_from_slice(b" --head");
    } else {
        out.extend_from_slice(b" --request ");
        shell_quote(&mut out, method.as_bytes());
    }
    out.push(b' ');
    shell_quote(&mut out, &url);
    let skip = ["host", "content-length", "transfer-encoding"];
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    for header in request.headers() {
        if skip.iter().chain(&AUTH_HEADERS).any(|n| header.is(n)) {
            continue;
        }
        headers.push((header.name(), header.value()));
    }
    // Headers curl adds by itself, unless the request has its own: removed, so that the
    // request sent is the request signed. (`Name:` with nothing after the colon tells
    // curl to leave its own header out.)
    let mut remove: Vec<&str> = ["User-Agent", "Accept"].to_vec();
    if !body.is_empty() {
        // curl would add `Content-Type: application/x-www-form-urlencoded`, and
        // `Expect: 100-continue` for a large body.
        remove.extend(["Content-Type", "Expect"]);
    }
    for name in remove {
        if request.header_values(name).next().is_none() {
            out.extend_from_slice(b" \\\n  --header ");
            shell_quote(&mut out, format!("{name}:").as_bytes());
        }
    }
    headers.extend(added.iter().copied());
    for (name, value) in headers {
        if value.contains(&0) {
            return Err(EarlyExit::Input(format!(
                "--curl: the value of header {} holds a NUL byte, which cannot be passed to curl",
                escape_for_terminal(name.as_bytes())
            )));
        }
        out.extend_from_slice(b" \\\n  --header ");
        let mut line = name.as_bytes().to_vec();
        if value.is_empty() {
            // `Name:` would remove the header; `Name;` sends it with an empty value.
            line.push(b';');
        } else {
            line.extend_from_slice(b": ");
            line.extend_from_slice(value);
        }
        shell_argument(&mut out, &line);
    }
    if !body.is_empty() {
        out.extend_from_slice(b" \\\n  --data-binary @-");
    }
    out.push(b'\n');
    Ok(out)
}

/// `printf` format text that prints `bytes` exactly: `%` doubled, everything but
/// printable ASCII (and `'` and `\`) as a three-digit octal escape. A leading `-` is
/// escaped too, so that no `printf` (dash's builtin included) takes the format for an
/// option.
fn printf_escape(out: &mut Vec<u8>, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'%' => out.extend_from_slice(b"%%"),
            b'-' if i == 0 => push_octal(out, b),
            b'\'' | b'\\' => push_octal(out, b),
            0x20..=0x7e => out.push(b),
            _ => push_octal(out, b),
        }
    }
}

fn push_octal(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[
        b'\\',
        b'0' + (b >> 6),
        b'0' + ((b >> 3) & 7),
        b'0' + (b & 7),
    ]);
}

/// One shell word that is exactly `bytes`, written in printable ASCII only (a command
/// shown on a terminal must not carry escape sequences): single-quoted when `bytes` is
/// printable ASCII, else `"$(printf '<escaped>')"`. `bytes` must not hold NUL, and must
/// not end with LF (command substitution removes trailing newlines).
fn shell_argument(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        shell_quote(out, bytes);
    } else {
        out.extend_from_slice(b"\"$(printf '");
        printf_escape(out, bytes);
        out.extend_from_slice(b"')\"");
    }
}

/// Single-quotes for a POSIX shell (`'` becomes `'\''`).
fn shell_quote(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'\'');
    for &b in bytes {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
}
