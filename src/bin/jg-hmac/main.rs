//! `jg-hmac`: sign, verify and explain raw HTTP/1.1 requests signed with JG-HMAC-SHA256.
//!
//! Exit codes: 0 success; 1 the request does not verify (`verify`); 2 usage error or
//! input that is not a request this tool can read (never a panic).
//!
//! Secrets are never taken on the command line, where `ps` and shell history would show
//! them: `--secret-env VAR` reads an environment variable, `--secret-file PATH` a file
//! (one trailing newline, LF or CRLF, is removed).

mod diagnosis;
mod explain;
mod input;
mod raw;
mod shell;
mod sign;
mod terminal;
mod verify;

// Envoy's ext_authz gRPC service (feature `ext-authz`); `jg-hmac gateway
// --ext-authz-grpc ADDR` (feature `gateway`) starts it.
#[cfg(feature = "ext-authz")]
#[cfg_attr(not(test), allow(dead_code))]
mod ext_authz;

// `db` and `keys` (feature `postgres`): partner keys in PostgreSQL.
#[cfg(feature = "postgres")]
mod keys;

// `gateway` (feature `gateway`): the verifying reverse proxy.
#[cfg(feature = "gateway")]
mod gateway;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sign, verify and explain raw HTTP/1.1 requests signed with JG-HMAC-SHA256.
///
/// Each command reads one request (request line, headers, empty line, body) from stdin or
/// `--in FILE`. CRLF and LF line ends are accepted; the body is framed by Content-Length
/// or Transfer-Encoding: chunked.
///
/// Exit codes: 0 success, 1 verification failed, 2 usage error or unreadable input.
#[derive(Debug, Parser)]
#[command(name = "jg-hmac", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add X-Client-Id, X-Timestamp and X-Signature to a request (replacing any present)
    /// and print it, or print it as a curl command with --curl.
    Sign(sign::SignArgs),
    /// Verify a signed request: print `ok` (exit 0) or `<error_code>: <reason>` (exit 1).
    ///
    /// The client id comes from the request's X-Client-Id (or X-Access-Key); the secret
    /// given is that client's. One client, one secret per run.
    Verify(verify::VerifyArgs),
    /// Print the canonical query, the body hash, the string-to-sign and, with a secret,
    /// the expected signature, and whether the request's X-Signature matches it.
    Explain(explain::ExplainArgs),
    /// The PostgreSQL schema: `db migrate` (needs $JG_DATABASE_URL).
    #[cfg(feature = "postgres")]
    Db(keys::DbArgs),
    /// Partner keys in PostgreSQL: create, rotate, revoke, list, rekey ($JG_DATABASE_URL,
    /// $JG_KEK_FILE). Exit codes: 0 ok, 1 database or KEK failure, 2 usage or input error.
    #[cfg(feature = "postgres")]
    Keys(keys::KeysArgs),
    /// A reverse proxy that verifies every request, then forwards exactly what it verified,
    /// with the client's identity, to --upstream (docs/gateway.md).
    #[cfg(feature = "gateway")]
    Gateway(Box<gateway::GatewayArgs>),
}

/// Why the tool stops early.
enum EarlyExit {
    /// Usage or input error: exit 2.
    Input(String),
    /// The request does not verify: exit 1, message on stdout.
    Rejected(String),
}

impl<E: std::fmt::Display> From<E> for EarlyExit {
    fn from(e: E) -> Self {
        Self::Input(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sign(args) => sign::sign(&args),
        Command::Verify(args) => verify::verify(&args),
        Command::Explain(args) => explain::explain(&args),
        #[cfg(feature = "postgres")]
        Command::Db(args) => return keys::db(args),
        #[cfg(feature = "postgres")]
        Command::Keys(args) => return keys::keys(args),
        #[cfg(feature = "gateway")]
        Command::Gateway(args) => return gateway::gateway(*args),
    };
    match result {
        Ok(out) => match write_stdout(&out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("jg-hmac: writing the output: {e}");
                ExitCode::from(2)
            }
        },
        Err(EarlyExit::Rejected(line)) => {
            // The verdict is the output; a closed stdout changes nothing about it.
            let _ = write_stdout(line.as_bytes());
            ExitCode::from(1)
        }
        Err(EarlyExit::Input(message)) => {
            eprintln!("jg-hmac: {message}");
            ExitCode::from(2)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}
