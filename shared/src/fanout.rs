//! Delivery to connections through the API Gateway Management API (PostToConnection), with the
//! real SDK client: against AWS, or against the local gateway's `@connections` endpoint.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::Client;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The connection no longer exists (HTTP 410).
    #[error("connection is gone")]
    Gone,
    #[error("post to connection failed: {0}")]
    Failed(String),
}

/// Fan-outs that may run at full concurrency at once in one process.
const PROCESS_FAN_OUTS: usize = 8;

pub struct Fanout {
    sdk: SdkConfig,
    endpoint_override: Option<String>,
    concurrency: usize,
    /// Bounds posts in flight across the process: under a burst (thousands of connects at once
    /// on the local gateway) each post in flight holds an HTTP connection, two sockets there.
    in_flight: tokio::sync::Semaphore,
    /// One client per management endpoint; on AWS there is one, derived from the first event.
    clients: RwLock<HashMap<String, Client>>,
}

impl Fanout {
    pub async fn new(config: &Config) -> Self {
        let sdk = crate::aws::sdk_config(config).await;
        Self {
            sdk,
            endpoint_override: config.management_endpoint.clone(),
            concurrency: config.fanout_concurrency.max(1),
            in_flight: tokio::sync::Semaphore::new(config.fanout_concurrency.max(1) * PROCESS_FAN_OUTS),
            clients: RwLock::default(),
        }
    }

    /// The management endpoint for an event: the configured override, else `https://{domain}/{stage}`.
    pub fn endpoint_for(&self, domain: Option<&str>, stage: Option<&str>) -> Option<String> {
        if let Some(endpoint) = &self.endpoint_override {
            return Some(endpoint.clone());
        }
        Some(format!("https://{}/{}", domain?, stage?))
    }

    /// The configured endpoint, for work that is not triggered by a WebSocket event.
    pub fn default_endpoint(&self) -> Option<String> {
        self.endpoint_override.clone()
    }

    fn client(&self, endpoint: &str) -> Client {
        if let Some(client) = self.clients.read().expect("lock poisoned").get(endpoint) {
            return client.clone();
        }
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&self.sdk)
            .endpoint_url(endpoint)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(3))
                    .connect_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build();
        let client = Client::from_conf(conf);
        self.clients.write().expect("lock poisoned").insert(endpoint.to_string(), client.clone());
        client
    }

    pub async fn post(&self, endpoint: &str, connection_id: &str, data: &[u8]) -> Result<(), PostError> {
        let _permit = self.in_flight.acquire().await.expect("the semaphore is never closed");
        let result =
            self.client(endpoint).post_to_connection().connection_id(connection_id).data(Blob::new(data)).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                let gone = err.as_service_error().is_some_and(|e| e.is_gone_exception())
                    || err.raw_response().is_some_and(|r| r.status().as_u16() == 410);
                if gone {
                    Err(PostError::Gone)
                } else {
                    Err(PostError::Failed(aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&err).to_string()))
                }
            }
        }
    }

    /// Posts each payload to its connection, a bounded number at a time. Returns the outcome of
    /// each post, in order; failures other than Gone are logged.
    pub async fn post_many(&self, endpoint: &str, posts: &[(String, Arc<str>)]) -> Vec<Outcome> {
        let mut outcomes = vec![Outcome::Failed; posts.len()];
        let mut pending = FuturesUnordered::new();
        let mut queue = posts.iter().enumerate();
        loop {
            while pending.len() < self.concurrency {
                let Some((i, (cid, data))) = queue.next() else { break };
                pending.push(async move { (i, self.post(endpoint, cid, data.as_bytes()).await) });
            }
            let Some((i, result)) = pending.next().await else { return outcomes };
            outcomes[i] = match result {
                Ok(()) => Outcome::Delivered,
                Err(PostError::Gone) => Outcome::Gone,
                Err(err) => {
                    tracing::warn!(connection_id = %posts[i].0, error = %err, "post to connection failed");
                    Outcome::Failed
                }
            };
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The connection no longer exists.
    Gone,
    Failed,
}
