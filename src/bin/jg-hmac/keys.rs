//! `jg-hmac db …` and `jg-hmac keys …`: partner keys in PostgreSQL (feature `postgres`).
//!
//! The database comes from `JG_DATABASE_URL`, the key-encryption key from the file
//! `JG_KEK_FILE` names (64 hex digits). Exit codes: 0 success; 1 the database or the KEK
//! failed (down, timed out), or a new secret could not be written out (then nothing was
//! committed); 2 usage or input error (unknown client, duplicate id, bad environment or
//! scope, an overlap out of range, a KEK other than the database's current one, missing
//! variable, unreadable KEK file).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use jg_hmac::postgres::{ClientInfo, Issued, Kek, LocalKek, NewClient, PgCredentialStore, PgError};
use jg_hmac::{Clock, SystemClock};
use zeroize::Zeroizing;

/// JSON string literals, escaped as the library escapes them (one escaper: src/json.rs).
mod json {
    include!("../../json.rs");
}
use json::push_json_string;

const DATABASE_VAR: &str = "JG_DATABASE_URL";
const KEK_VAR: &str = "JG_KEK_FILE";
/// The longest `--overlap`: 3650 days, as `PgCredentialStore::rotate` allows.
const MAX_OVERLAP_SECS: u64 = 3650 * 86_400;

/// The database schema.
#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Apply the schema migrations the database ($JG_DATABASE_URL) lacks; running it
    /// again is harmless.
    Migrate,
}

/// Partner keys: issue, rotate, revoke, list, re-encrypt.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Who makes the change, recorded in jg_hmac.key_events (default: $USER).
    #[arg(long, global = true, value_name = "NAME")]
    actor: Option<String>,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a client with one key; print its id, key id and secret (shown this once).
    Create(CreateArgs),
    /// Issue a new key for a client; its older active keys end after --overlap seconds.
    Rotate(RotateArgs),
    /// Revoke one key (--key-id) or the whole client, at once on every verifier.
    Revoke(RevokeArgs),
    /// List clients and keys: ids, environment, scopes, validity, revocation; no secret.
    List(ListArgs),
    /// Re-encrypt every stored secret under the KEK in --new-kek-file (the current one
    /// is $JG_KEK_FILE).
    Rekey(RekeyArgs),
    /// Write a new random key-encryption key (64 hex digits) to a new file, mode 0600.
    GenKek(GenKekArgs),
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The environment: live (client id jk_live_…) or test (jk_test_…).
    #[arg(long, value_name = "live|test")]
    env: String,
    /// Use this client id instead of a generated one (it must carry the environment's
    /// prefix).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// Grant a scope (repeatable), e.g. transactions:write: 1 to 128 characters among
    /// ASCII letters, digits and : . _ / -
    #[arg(long, value_name = "SCOPE")]
    scope: Vec<String>,
    /// Print one JSON object {"client_id","key_id","secret"}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RotateArgs {
    /// The client.
    #[arg(long, value_name = "ID")]
    client_id: String,
    /// Seconds during which the older keys keep verifying (at most 315360000, 3650 days;
    /// the library's limit too).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 86_400,
        value_parser = clap::value_parser!(u64).range(0..=MAX_OVERLAP_SECS)
    )]
    overlap: u64,
    /// Print one JSON object {"client_id","key_id","secret"}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RevokeArgs {
    /// The client.
    #[arg(long, value_name = "ID")]
    client_id: String,
    /// Revoke only this key; without it the whole client is revoked.
    #[arg(long, value_name = "KEY")]
    key_id: Option<String>,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only this client.
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// Print a JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RekeyArgs {
    /// The file holding the new KEK (64 hex digits).
    #[arg(long, value_name = "PATH")]
    new_kek_file: PathBuf,
}

#[derive(Debug, Args)]
struct GenKekArgs {
    /// The file to create (refused if it exists).
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
}

/// Why a command failed: the message and the exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn input(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<PgError> for Failure {
    fn from(e: PgError) -> Self {
        Self {
            code: if e.is_input_error() { 2 } else { 1 },
            message: e.to_string(),
        }
    }
}

/// Runs `jg-hmac db …`.
pub fn db(args: DbArgs) -> ExitCode {
    finish(runtime().and_then(|rt| {
        rt.block_on(async {
            match args.command {
                DbCommand::Migrate => db_migrate().await,
            }
        })
    }))
}

/// Runs `jg-hmac keys …`.
pub fn keys(args: KeysArgs) -> ExitCode {
    let actor = args.actor.clone().unwrap_or_else(default_actor);
    finish(runtime().and_then(|rt| {
        rt.block_on(async {
            match args.command {
                KeysCommand::Create(a) => create(a, &actor).await,
                KeysCommand::Rotate(a) => rotate(a, &actor).await,
                KeysCommand::Revoke(a) => revoke(a, &actor).await,
                KeysCommand::List(a) => list(a).await,
                KeysCommand::Rekey(a) => rekey(a, &actor).await,
                KeysCommand::GenKek(a) => gen_kek(&a),
            }
        })
    }))
}

fn finish(result: Result<Zeroizing<String>, Failure>) -> ExitCode {
    match result {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("jg-hmac: writing the output: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Err(failure) => {
            eprintln!("jg-hmac: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            code: 1,
            message: format!("cannot start the async runtime: {e}"),
        })
}

fn default_actor() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn env_var(name: &str) -> Result<OsString, Failure> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Failure::input(format!("{name} is not set")))
}

fn database_url() -> Result<String, Failure> {
    env_var(DATABASE_VAR)?
        .into_string()
        .map_err(|_| Failure::input(format!("{DATABASE_VAR} is not valid UTF-8")))
}

/// Loads a KEK file, warning on stderr when group or others may read or write it (the
/// library's `warn` event goes to a subscriber, which this tool has not).
fn load_kek(path: &Path) -> Result<LocalKek, Failure> {
    let kek = LocalKek::from_file(path).map_err(|e| Failure::input(e.to_string()))?;
    if let Some(mode) = crate::input::shared_mode(path) {
        eprintln!(
            "jg-hmac: warning: KEK file {path:?} is readable or writable by group or \
             others (mode {mode:04o}); chmod 600 it"
        );
    }
    Ok(kek)
}

/// The store, with the KEK of $JG_KEK_FILE when `need_kek` (else only if set).
fn store(need_kek: bool) -> Result<PgCredentialStore, Failure> {
    let mut builder = PgCredentialStore::builder(&database_url()?)?.max_connections(2);
    match std::env::var_os(KEK_VAR).filter(|v| !v.is_empty()) {
        Some(path) => builder = builder.kek(load_kek(Path::new(&path))?),
        None if need_kek => return Err(Failure::input(format!("{KEK_VAR} is not set"))),
        None => {}
    }
    Ok(builder.build()?)
}

async fn db_migrate() -> Result<Zeroizing<String>, Failure> {
    let store = store(false)?;
    let applied = store.migrate().await?;
    Ok(Zeroizing::new(if applied.is_empty() {
        "schema up to date\n".to_owned()
    } else {
        let versions: Vec<String> = applied.iter().map(i32::to_string).collect();
        format!("applied migration(s) {}\n", versions.join(", "))
    }))
}

/// `{"client_id":…,"key_id":…,"secret":…}`, in a string wiped on drop.
fn issued_json(issued: &Issued) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(160));
    out.push_str("{\"client_id\":");
    push_json_string(&mut out, &issued.client_id);
    out.push_str(",\"key_id\":");
    push_json_string(&mut out, &issued.key_id);
    out.push_str(",\"secret\":");
    push_json_string(&mut out, issued.secret_hex());
    out.push('}');
    out
}

/// Writes a new key to stdout and flushes it: the `deliver` step of `create_client` and
/// `rotate`, which commit only when this succeeded.
fn deliver(issued: &Issued, json: bool) -> std::io::Result<()> {
    let text = issued_output(issued, json);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

fn issued_output(issued: &Issued, json: bool) -> Zeroizing<String> {
    if json {
        let mut out = issued_json(issued);
        out.push('\n');
        out
    } else {
        eprintln!("jg-hmac: the secret is shown this once; the database keeps only its ciphertext");
        Zeroizing::new(format!(
            "client_id {}\nkey_id    {}\nsecret    {}\n",
            issued.client_id,
            issued.key_id,
            issued.secret_hex()
        ))
    }
}

async fn create(args: CreateArgs, actor: &str) -> Result<Zeroizing<String>, Failure> {
    let environment: jg_hmac::Environment = args
        .env
        .parse()
        .map_err(|e| PgError::InvalidInput(format!("{e}: {:?}", args.env)))?;
    let store = store(true)?;
    let mut new = NewClient::new(environment);
    if let Some(id) = args.client_id {
        new = new.client_id(id);
    }
    for scope in args.scope {
        new = new.scope(scope);
    }
    store
        .create_client(new, actor, |issued| deliver(issued, args.json))
        .await?;
    Ok(Zeroizing::new(String::new()))
}

async fn rotate(args: RotateArgs, actor: &str) -> Result<Zeroizing<String>, Failure> {
    let store = store(true)?;
    let overlap = Duration::from_secs(args.overlap);
    store
        .rotate(&args.client_id, overlap, actor, |issued| {
            deliver(issued, args.json)
        })
        .await?;
    Ok(Zeroizing::new(String::new()))
}

async fn revoke(args: RevokeArgs, actor: &str) -> Result<Zeroizing<String>, Failure> {
    let store = store(false)?;
    let line = match &args.key_id {
        Some(key_id) => {
            if store.revoke_key(&args.client_id, key_id, actor).await? {
                format!("revoked key {key_id} of {}\n", args.client_id)
            } else {
                format!("key {key_id} of {} was already revoked\n", args.client_id)
            }
        }
        None => {
            if store.revoke_client(&args.client_id, actor).await? {
                format!("revoked client {}\n", args.client_id)
            } else {
                format!("client {} was already revoked\n", args.client_id)
            }
        }
    };
    Ok(Zeroizing::new(line))
}

async fn list(args: ListArgs) -> Result<Zeroizing<String>, Failure> {
    let store = store(false)?;
    let clients = store.list(args.client_id.as_deref()).await?;
    let now = SystemClock.now();
    let mut out = String::new();
    if args.json {
        out.push('[');
        for (i, c) in clients.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_client_json(&mut out, c, now);
        }
        out.push_str("]\n");
    } else {
        for c in &clients {
            out.push_str(&format!(
                "{} env={} scopes={} {}\n",
                c.client_id,
                c.environment,
                if c.scopes.is_empty() {
                    "-".to_owned()
                } else {
                    c.scopes.join(",")
                },
                if c.disabled { "REVOKED" } else { "enabled" }
            ));
            for k in &c.keys {
                out.push_str(&format!(
                    "  {} {} not_before={} not_after={} revoked_at={} kek={}\n",
                    k.key_id,
                    k.status(now),
                    opt(k.not_before),
                    opt(k.not_after),
                    opt(k.revoked_at),
                    k.kek_id
                ));
            }
        }
    }
    Ok(Zeroizing::new(out))
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// One JSON object: `client_id`, `environment`, `scopes`, `disabled`, `created_at` and
/// `keys` (each: `key_id`, `kek_id`, `created_at`, `not_before`, `not_after`,
/// `revoked_at`, `status` at `now`). No secret.
fn push_client_json(out: &mut String, client: &ClientInfo, now: u64) {
    fn time(out: &mut String, v: Option<u64>) {
        match v {
            Some(v) => out.push_str(&v.to_string()),
            None => out.push_str("null"),
        }
    }
    out.push_str("{\"client_id\":");
    push_json_string(out, &client.client_id);
    out.push_str(",\"environment\":");
    push_json_string(out, &client.environment);
    out.push_str(",\"scopes\":[");
    for (i, s) in client.scopes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, s);
    }
    out.push_str("],\"disabled\":");
    out.push_str(if client.disabled { "true" } else { "false" });
    out.push_str(",\"created_at\":");
    time(out, Some(client.created_at));
    out.push_str(",\"keys\":[");
    for (i, k) in client.keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"key_id\":");
        push_json_string(out, &k.key_id);
        out.push_str(",\"kek_id\":");
        push_json_string(out, &k.kek_id);
        out.push_str(",\"created_at\":");
        time(out, Some(k.created_at));
        out.push_str(",\"not_before\":");
        time(out, k.not_before);
        out.push_str(",\"not_after\":");
        time(out, k.not_after);
        out.push_str(",\"revoked_at\":");
        time(out, k.revoked_at);
        out.push_str(",\"status\":");
        push_json_string(out, k.status(now));
        out.push('}');
    }
    out.push_str("]}");
}

async fn rekey(args: RekeyArgs, actor: &str) -> Result<Zeroizing<String>, Failure> {
    let new_kek = load_kek(&args.new_kek_file)?;
    let store = store(true)?;
    let report = store.rekey(&new_kek, actor).await?;
    Ok(Zeroizing::new(format!(
        "re-encrypted {} secret(s) under {}; {} already were\n",
        report.rekeyed,
        new_kek.id(),
        report.already
    )))
}

fn gen_kek(args: &GenKekArgs) -> Result<Zeroizing<String>, Failure> {
    use std::fs::OpenOptions;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;

    let key = LocalKek::generate_hex().map_err(|e| Failure {
        code: 1,
        message: e.to_string(),
    })?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(&args.out)
        .map_err(|e| Failure::input(format!("cannot create {}: {e}", args.out.display())))?;
    file.write_all(key.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure {
            code: 1,
            message: format!("writing {}: {e}", args.out.display()),
        })?;
    let kek = LocalKek::from_hex(&key).map_err(|e| Failure::input(e.to_string()))?;
    Ok(Zeroizing::new(format!(
        "wrote a new key-encryption key to {} (id {})\n",
        args.out.display(),
        kek.id()
    )))
}
