//! The service's HTTP API as the tools call it: each call timed from the
//! send to the last byte of the answer.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Api {
    client: Client,
    base: String,
}

/// One answer, read to the end.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub took: Duration,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The `error.code` of an error answer, if any.
    pub fn code(&self) -> Option<String> {
        self.json()["error"]["code"].as_str().map(str::to_owned)
    }

    /// The JSON body when the status is `want`; otherwise an error that
    /// quotes what came back.
    pub fn expect(&self, want: u16, what: &str) -> anyhow::Result<Value> {
        if self.status.as_u16() != want {
            bail!(
                "{what}: expected {want}, got {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            );
        }
        Ok(self.json())
    }
}

/// What a request carries.
pub enum Body {
    None,
    Json(Vec<u8>),
    Bytes(Bytes),
}

impl Api {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(512)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(&self, method: Method, path: &str, body: Body) -> anyhow::Result<Answer> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        request = match body {
            Body::None => request,
            Body::Json(bytes) => request.header(CONTENT_TYPE, "application/json").body(bytes),
            Body::Bytes(bytes) => request
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(bytes),
        };
        let started = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok(Answer {
            status,
            headers,
            body,
            took: started.elapsed(),
        })
    }
}

impl Api {
    /// Sends a GET and returns the response once its head is in, for a
    /// body read as it streams (`Response::chunk`).
    pub async fn open(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        Ok(self.client.get(url).send().await?)
    }
}

pub fn sandbox_path(chat: &str) -> String {
    format!("/v1/chats/{chat}/sandbox")
}

pub fn exec_path(chat: &str) -> String {
    format!("/v1/chats/{chat}/exec")
}

pub fn file_path(chat: &str, file: &str) -> String {
    format!("/v1/chats/{chat}/files/{file}")
}

pub fn processes_path(chat: &str) -> String {
    format!("/v1/chats/{chat}/processes")
}
