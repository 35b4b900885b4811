//! A minimal GraphQL-over-HTTP client.
use anyhow::{anyhow, bail};
use serde_json::{json, Value};

#[derive(Clone)]
pub struct Gql {
    http: reqwest::Client,
    url: String,
}

impl Gql {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            http,
            url: format!("{base}/graphql"),
        }
    }

    /// Runs one operation; any GraphQL error is a failed request.
    pub async fn run(&self, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if let Some(errors) = body.get("errors") {
            bail!("{status}: {errors}");
        }
        if !status.is_success() {
            bail!("HTTP {status}");
        }
        body.get("data")
            .cloned()
            .ok_or_else(|| anyhow!("no data in {body}"))
    }

    /// Like [`run`](Self::run), returning the whole body (extensions too).
    pub async fn full(&self, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
        let body: Value = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?
            .json()
            .await?;
        if let Some(errors) = body.get("errors") {
            bail!("{errors}");
        }
        Ok(body)
    }
}
