//! The CLI clients of a running service: what they share (where the
//! service is, its answers and refusals), `ls`, `hibernate`, `rm`,
//! `cleanup`, and `mcp`, the stdio MCP server that forwards to it. `exec`,
//! the live-process commands and `shell` are in the submodules.

mod exec;
mod output;
mod processes;
mod shell;
mod terminal;

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::Value;

pub use exec::{ExecArgs, exec};
pub use processes::{KillArgs, LogsArgs, kill, logs, ps};
pub use shell::{ShellArgs, shell};

/// Where the service is and how to talk to it.
#[derive(Debug, Clone, Args)]
pub struct Endpoint {
    /// Base URL of the service.
    #[arg(long, env = "SANDBOXER_URL", default_value = crate::defaults::URL)]
    pub url: String,
    /// Bearer token, when the service wants one.
    #[arg(long, env = "SANDBOXER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl Endpoint {
    fn client(&self) -> anyhow::Result<Client> {
        Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("building the HTTP client")
    }

    /// The URL of the path made of `segments`, each percent-encoded.
    fn url(&self, segments: &[&str]) -> anyhow::Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&self.url)
            .with_context(|| format!("service URL {:?}", self.url))?;
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("service URL {:?} cannot take a path", self.url))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// A request to the path made of `segments`, each percent-encoded.
    fn request(
        &self,
        client: &Client,
        method: reqwest::Method,
        segments: &[&str],
    ) -> anyhow::Result<RequestBuilder> {
        self.request_with_query(client, method, segments, &[])
    }

    /// A request to the path made of `segments`, with the `query` pairs.
    fn request_with_query(
        &self,
        client: &Client,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<RequestBuilder> {
        let mut url = self.url(segments)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let builder = client.request(method, url);
        Ok(match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        })
    }
}

async fn answer(
    response: reqwest::Result<Response>,
    url: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let response = response.with_context(|| format!("cannot reach the service at {url}"))?;
    let status = response.status();
    let text = response.text().await.context("reading the answer")?;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, body))
}

fn refuse(status: StatusCode, body: &Value) -> anyhow::Error {
    let code = body["error"]["code"].as_str().unwrap_or("unknown");
    let message = body["error"]["message"].as_str().unwrap_or("");
    anyhow::anyhow!("{status}: {code}: {message}")
}

/// Lists the active sandboxes, then the hibernated chats, one per line:
/// an active one expires (hibernates) when idle past `EXPIRES_AT`, a
/// hibernated one keeps its files until `RETAINED_UNTIL`.
pub async fn ls(endpoint: Endpoint) -> anyhow::Result<()> {
    let client = endpoint.client()?;
    let sent = endpoint
        .request(&client, reqwest::Method::GET, &["v1", "sandboxes"])?
        .send()
        .await;
    let (status, answer) = answer(sent, &endpoint.url).await?;
    if !status.is_success() {
        return Err(refuse(status, &answer));
    }
    let sandboxes = answer["sandboxes"].as_array().cloned().unwrap_or_default();
    println!(
        "{:<32} {:<38} {:<11} {:<26} {:<25} RETAINED_UNTIL",
        "CHAT", "SESSION", "STATUS", "IMAGE", "EXPIRES_AT"
    );
    for s in sandboxes {
        let field = |k: &str| s[k].as_str().unwrap_or("-").to_owned();
        println!(
            "{:<32} {:<38} {:<11} {:<26} {:<25} {}",
            field("chat_id"),
            field("session_id"),
            field("status"),
            field("image"),
            field("expires_at"),
            field("retained_until")
        );
    }
    Ok(())
}

/// Hibernates a chat's sandbox.
pub async fn hibernate(endpoint: Endpoint, chat: &str) -> anyhow::Result<()> {
    let client = endpoint.client()?;
    let sent = endpoint
        .request(
            &client,
            reqwest::Method::POST,
            &["v1", "chats", chat, "sandbox", "hibernate"],
        )?
        .send()
        .await;
    let (status, answer) = answer(sent, &endpoint.url).await?;
    if status != StatusCode::NO_CONTENT {
        return Err(refuse(status, &answer));
    }
    println!("hibernated the sandbox of chat {chat}: its files are kept, the next use resumes it");
    Ok(())
}

/// Stops and removes a chat's sandbox.
pub async fn rm(endpoint: Endpoint, chat: &str) -> anyhow::Result<()> {
    let client = endpoint.client()?;
    let sent = endpoint
        .request(
            &client,
            reqwest::Method::DELETE,
            &["v1", "chats", chat, "sandbox"],
        )?
        .send()
        .await;
    let (status, answer) = answer(sent, &endpoint.url).await?;
    if status != StatusCode::NO_CONTENT {
        return Err(refuse(status, &answer));
    }
    println!("removed the sandbox of chat {chat} and its files (if it had any)");
    Ok(())
}

/// Runs cleanup now and prints the counts.
pub async fn cleanup(endpoint: Endpoint) -> anyhow::Result<()> {
    let client = endpoint.client()?;
    let sent = endpoint
        .request(&client, reqwest::Method::POST, &["v1", "cleanup"])?
        .send()
        .await;
    let (status, answer) = answer(sent, &endpoint.url).await?;
    if !status.is_success() {
        return Err(refuse(status, &answer));
    }
    let n = |k: &str| answer[k].as_u64().unwrap_or(0);
    println!(
        "expired {} removed {} failed {} orphans_removed {} containers_gone {} skipped {} \
         hibernated {} workspaces_deleted {}",
        n("expired"),
        n("removed"),
        n("failed"),
        n("orphans_removed"),
        n("containers_gone"),
        n("skipped"),
        n("hibernated"),
        n("workspaces_deleted")
    );
    if n("failed") > 0 {
        bail!(
            "{} sandboxes could not be cleaned; see the service log",
            n("failed")
        );
    }
    Ok(())
}

/// `sandboxer mcp`: MCP on stdin/stdout, forwarded to `<url>/mcp`. Stdout
/// carries the protocol, so nothing else is printed there.
pub async fn mcp(endpoint: Endpoint) -> anyhow::Result<()> {
    let url = format!("{}/mcp", endpoint.url.trim_end_matches('/'));
    sandboxer_mcp::serve_stdio(&url, endpoint.token.as_deref())
        .await
        .context("sandboxer mcp")
}
