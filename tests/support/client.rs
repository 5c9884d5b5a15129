//! hyper's HTTP client against a test server, signing through the crate.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::body::Bytes;
use http::{Method, Request};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{Reply, sign};

pub type TestBody = BoxBody<Bytes, Infallible>;

/// A client of the server at `addr`.
#[derive(Clone)]
pub struct TestClient {
    http: Client<HttpConnector, TestBody>,
    addr: SocketAddr,
}

impl TestClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            http: Client::builder(TokioExecutor::new()).build_http(),
            addr,
        }
    }

    /// The full URI of `target` on the test server.
    pub fn uri(&self, target: &str) -> String {
        format!("http://{}{target}", self.addr)
    }

    /// An unsigned JSON request to `target` on the test server.
    pub fn request(&self, method: Method, target: &str, body: &[u8]) -> Request<Vec<u8>> {
        Request::builder()
            .method(method)
            .uri(self.uri(target))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .unwrap()
    }

    /// The same, signed through the crate by `client` at `ts`.
    pub fn signed(
        &self,
        method: Method,
        target: &str,
        body: &[u8],
        client: (&str, &str),
        ts: u64,
    ) -> Request<Vec<u8>> {
        sign(self.request(method, target, body), client, ts)
    }

    pub async fn send(&self, request: Request<Vec<u8>>) -> Reply {
        self.send_body(request.map(|b| Full::new(Bytes::from(b)).boxed()))
            .await
    }

    pub async fn send_body(&self, request: Request<TestBody>) -> Reply {
        let response = self.http.request(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: body.to_vec(),
        }
    }
}
