//! The gateway as it runs: the `jg-hmac` binary started with `gateway`, an echo upstream
//! on a raw socket that records every request exactly as it arrived, and files for the
//! credentials.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{CLIENT, Reply, SECRET, free_port, raw};

pub const OTHER: &str = "jk_test_other";
pub const OTHER_SECRET: &str = "other_partner_secret";

/// The credentials file of most tests: `CLIENT` (scope transactions:write, key k1) and
/// `OTHER` (no scope, key from the environment).
pub fn credentials() -> String {
    format!(
        "[[clients]]\nid = \"{CLIENT}\"\nscopes = [\"transactions:write\", \"balance:read\"]\n\
         rate_limit = \"100/s:200\"\n[[clients.keys]]\nid = \"k1\"\nsecret = \"{SECRET}\"\n\n\
         [[clients]]\nid = \"{OTHER}\"\n[[clients.keys]]\nid = \"k7\"\nsecret_env = \"JG_TEST_OTHER_SECRET\"\n"
    )
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------- temp files

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("jg-hmac-gw-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes `name` with mode 0600.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The usual set-up: a directory with the credentials file of [`credentials`], an
/// upstream behaving as told, and a gateway in front of it with `extra` flags.
pub async fn setup(
    name: &str,
    behaviour: Behaviour,
    extra: &[&str],
) -> (TempDir, Upstream, Gateway) {
    let dir = TempDir::new(name);
    let creds = dir.file("credentials.toml", credentials().as_bytes());
    let upstream = Upstream::start(behaviour).await;
    let mut args = vec!["--credentials", creds.to_str().unwrap()];
    args.extend_from_slice(extra);
    let gateway = Gateway::start(&upstream.url(), &args, &dir.0).await;
    (dir, upstream, gateway)
}

// ---------------------------------------------------------------- the echo upstream

/// What the upstream received: the head's bytes exactly, then the body (de-chunked).
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// Every value of header `name` (any case).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    pub fn one(&self, name: &str) -> Option<String> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} repeated: {all:?}");
        all.into_iter().next()
    }

    pub fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (n, v) in &self.headers {
            map.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        map
    }
}

/// How the upstream answers.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// `200`, body `echo`.
    Echo,
    /// Waits this long before the response head.
    Slow(Duration),
    /// A chunked body of `total` bytes in chunks of 64 KiB, sleeping `pause` every chunk.
    Stream { total: usize, pause: Duration },
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Bytes of request body the upstream has received in total (counted as they arrive).
    pub body_bytes: Arc<Mutex<usize>>,
}

impl Upstream {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let body_bytes = Arc::new(Mutex::new(0));
        let (s, b) = (Arc::clone(&seen), Arc::clone(&body_bytes));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(connection(
                    socket,
                    behaviour,
                    Arc::clone(&s),
                    Arc::clone(&b),
                ));
            }
        });
        Self {
            addr,
            seen,
            body_bytes,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the upstream saw no request")
    }
}

async fn connection(
    mut socket: TcpStream,
    behaviour: Behaviour,
    seen: Arc<Mutex<Vec<Seen>>>,
    body_bytes: Arc<Mutex<usize>>,
) {
    let mut buffer = Vec::new();
    loop {
        // The head.
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        if request.parse(&buffer[..head_end]).is_err() {
            return;
        }
        let method = request.method.unwrap_or_default().to_owned();
        let target = request.path.unwrap_or_default().to_owned();
        let headers: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect();
        buffer.drain(..head_end);
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let body = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(at) = buffer.windows(2).position(|w| w == b"\r\n") {
                        break at;
                    }
                    if !fill(&mut socket, &mut buffer, &body_bytes).await {
                        return;
                    }
                };
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&buffer[..line_end])
                        .split(';')
                        .next()
                        .unwrap()
                        .trim(),
                    16,
                )
                .unwrap();
                buffer.drain(..line_end + 2);
                while buffer.len() < size + 2 {
                    if !fill(&mut socket, &mut buffer, &body_bytes).await {
                        return;
                    }
                }
                body.extend_from_slice(&buffer[..size]);
                buffer.drain(..size + 2);
                if size == 0 {
                    break;
                }
            }
            body
        } else {
            let length: usize = find("content-length").map_or(0, |v| v.trim().parse().unwrap());
            *body_bytes.lock().unwrap() += buffer.len().min(length);
            while buffer.len() < length {
                if !fill(&mut socket, &mut buffer, &body_bytes).await {
                    return;
                }
            }
            buffer.drain(..length).collect()
        };
        seen.lock().unwrap().push(Seen {
            method,
            target,
            headers,
            body,
        });
        let ok = match behaviour {
            Behaviour::Echo => socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\necho",
                )
                .await
                .is_ok(),
            Behaviour::Slow(pause) => {
                tokio::time::sleep(pause).await;
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
                    .await
                    .is_ok()
            }
            Behaviour::Stream { total, pause } => stream(&mut socket, total, pause).await.is_ok(),
        };
        if !ok {
            return;
        }
    }
}

/// Reads more into `buffer`, counting body bytes; false when the connection ended.
async fn fill(socket: &mut TcpStream, buffer: &mut Vec<u8>, count: &Mutex<usize>) -> bool {
    let mut chunk = [0u8; 8192];
    match socket.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            *count.lock().unwrap() += n;
            true
        }
    }
}

async fn stream(socket: &mut TcpStream, total: usize, pause: Duration) -> std::io::Result<()> {
    socket
        .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await?;
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        socket.write_all(format!("{n:x}\r\n").as_bytes()).await?;
        socket.write_all(&chunk[..n]).await?;
        socket.write_all(b"\r\n").await?;
        sent += n;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    socket.write_all(b"0\r\n\r\n").await
}

// ---------------------------------------------------------------- the gateway process

pub struct Gateway {
    pub addr: SocketAddr,
    pub child: Child,
    pub log: PathBuf,
    pub _dir: Option<TempDir>,
}

impl Gateway {
    /// Starts `jg-hmac gateway --listen <free port> --upstream <url>` with `args`, and
    /// waits until `/readyz` answers 200.
    pub async fn start(upstream: &str, args: &[&str], dir: &Path) -> Self {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = dir.join(format!("gateway-{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_jg-hmac"))
            .arg("gateway")
            .args(["--listen", &addr.to_string(), "--upstream", upstream])
            .args(args)
            .env("JG_TEST_OTHER_SECRET", OTHER_SECRET)
            .env_remove("JG_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut gateway = Self {
            addr,
            child,
            log,
            _dir: None,
        };
        for _ in 0..200 {
            if let Some(status) = gateway.child.try_wait().unwrap() {
                panic!("the gateway exited ({status}): {}", gateway.log());
            }
            if let Ok(mut s) = TcpStream::connect(addr).await {
                let _ = s
                    .write_all(b"GET /readyz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
                    .await;
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out).await;
                if out.starts_with(b"HTTP/1.1 200") {
                    return gateway;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway never became ready: {}", gateway.log());
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        std::fs::File::open(&self.log)
            .and_then(|mut f| f.read_to_string(&mut text))
            .unwrap();
        text
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends a request signed by `CLIENT` now, over `target`, with `extra` header lines.
    pub async fn signed(
        &self,
        method: &'static str,
        target: &str,
        body: &[u8],
        extra: &str,
    ) -> Reply {
        let mut request = raw::signed(method, target, target, body, now(), (CLIENT, SECRET));
        request.headers.push_str(extra);
        request.send(self.addr).await
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
