//! A raw HTTP/1.1 client on a socket: it writes exactly the bytes a test asks for, can
//! hold the body back and send it late, and signs with the crate.

use std::net::SocketAddr;

use jg_hmac::{Secret, Signer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{HANG_GUARD, Reply};

/// A request signed by `client` over `signed_target`, sent to `sent_target`.
pub struct Signed {
    pub method: &'static str,
    pub sent_target: String,
    pub headers: String,
    pub body: Vec<u8>,
}

pub fn signed(
    method: &'static str,
    signed_target: &str,
    sent_target: &str,
    body: &[u8],
    ts: u64,
    (client, secret): (&str, &str),
) -> Signed {
    let signer = Signer::new(client, &Secret::from(secret)).unwrap();
    let s = signer.sign(method, signed_target, body, ts);
    Signed {
        method,
        sent_target: sent_target.to_owned(),
        headers: format!(
            "X-Client-Id: {}\r\nX-Timestamp: {}\r\nX-Signature: {}\r\n",
            s.client_id(),
            s.timestamp(),
            s.signature().to_hex()
        ),
        body: body.to_vec(),
    }
}

/// The same request without any signature header.
pub fn unsigned(method: &'static str, target: &str, body: &[u8]) -> Signed {
    Signed {
        method,
        sent_target: target.to_owned(),
        headers: String::new(),
        body: body.to_vec(),
    }
}

impl Signed {
    /// The head, with `Content-Length` and `Connection: close`.
    pub fn head(&self) -> Vec<u8> {
        format!(
            "{} {} HTTP/1.1\r\nHost: api.test\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.method,
            self.sent_target,
            self.headers,
            self.body.len()
        )
        .into_bytes()
    }

    pub async fn send(&self, addr: SocketAddr) -> Reply {
        let mut raw = Raw::connect(addr).await;
        raw.write(&self.head()).await;
        raw.write(&self.body).await;
        raw.reply().await
    }
}

pub struct Raw(pub TcpStream);

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self(TcpStream::connect(addr).await.unwrap())
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).await.unwrap();
        self.0.flush().await.unwrap();
    }

    /// Reads until the server closes the connection (every request says `close`).
    pub async fn reply(mut self) -> Reply {
        let mut bytes = Vec::new();
        tokio::time::timeout(HANG_GUARD, self.0.read_to_end(&mut bytes))
            .await
            .expect("no reply")
            .unwrap();
        Reply::parse(&bytes)
    }
}
