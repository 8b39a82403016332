//! Fan-out: one payload to every connection of some users. One entry point, `Fanout::to_users`
//! (users and the payload in; the connection lookup, the posts, the pruning of connections that
//! are gone and the recipients' delivery positions happen inside), and `post` for one connection.
//!
//! Posts go through `Connections`, PostToConnection's contract: the real `aws-sdk-apigatewaymanagement`
//! client (`ManagementApi`: on AWS, and against the local gateway's `@connections` endpoint), or
//! the local gateway's own connection queues when the handlers run inside it.
//!
//! More connections than `FANOUT_CHUNK` are split into chunks. With `FANOUT_FUNCTION` set (on
//! AWS), each chunk goes to that function by asynchronous invocation, in parallel, so one
//! invocation never posts to a whole big room itself; otherwise the chunks run here, side by side.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_lambda::types::InvocationType;
use chrono::Utc;
use futures::future::{join_all, BoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Config;
use crate::presence::Presence;
use crate::receipts::Receipts;
use crate::store::{Store, StoreError};

/// A frame as posted: serialized once, shared by every post of a fan-out.
pub type Payload = bytes::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The connection no longer exists (HTTP 410).
    #[error("connection is gone")]
    Gone,
    #[error("post to connection failed: {0}")]
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("no management API endpoint is configured")]
    NoEndpoint,
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Post(#[from] PostError),
    #[error("handing a chunk to the fan-out function failed: {0}")]
    Worker(String),
}

/// A share of one fan-out: the posts one worker makes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Chunk {
    pub endpoint: String,
    pub tenant_id: String,
    /// The frame, shared by the chunks of one fan-out (text in the invocation's JSON).
    #[serde(with = "payload_text")]
    pub payload: Payload,
    /// (user, connection id)
    pub posts: Vec<(String, String)>,
    /// For a message: its room and `seq`, which the recipients' delivery positions move to.
    pub position: Option<(Uuid, i64)>,
}

/// The function that runs chunks (`FANOUT_FUNCTION`), invoked asynchronously.
pub struct Workers {
    lambda: aws_sdk_lambda::Client,
    function: String,
}

impl Workers {
    pub async fn new(config: &Config) -> Option<Self> {
        let function = config.fanout_function.clone()?;
        let lambda = aws_sdk_lambda::Client::new(&crate::aws::sdk_config(config).await);
        Some(Self { lambda, function })
    }

    async fn hand_over(&self, chunk: &Chunk) -> Result<(), FanoutError> {
        let payload = serde_json::to_vec(&serde_json::json!({ "fanout": chunk })).expect("chunks serialize");
        self.lambda
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .map(drop)
            .map_err(|e| FanoutError::Worker(aws_sdk_lambda::error::DisplayErrorContext(&e).to_string()))
    }
}

/// Where posts go: PostToConnection's contract (a connection that does not exist is `Gone`),
/// and DeleteConnection's.
pub trait Connections: Send + Sync {
    fn post<'a>(
        &'a self,
        endpoint: &'a str,
        connection_id: &'a str,
        payload: Payload,
    ) -> BoxFuture<'a, Result<(), PostError>>;

    /// Closes the connection; frames posted to it before are delivered first.
    fn close<'a>(&'a self, endpoint: &'a str, connection_id: &'a str) -> BoxFuture<'a, Result<(), PostError>>;
}

/// The API Gateway Management API through the real SDK client, one client per endpoint (on AWS
/// there is one, derived from the first event).
pub struct ManagementApi {
    sdk: SdkConfig,
    clients: RwLock<HashMap<String, Client>>,
}

impl ManagementApi {
    pub async fn new(config: &Config) -> Self {
        Self { sdk: crate::aws::sdk_config(config).await, clients: RwLock::default() }
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
}

impl Connections for ManagementApi {
    fn post<'a>(
        &'a self,
        endpoint: &'a str,
        connection_id: &'a str,
        payload: Payload,
    ) -> BoxFuture<'a, Result<(), PostError>> {
        Box::pin(async move {
            let sent = self
                .client(endpoint)
                .post_to_connection()
                .connection_id(connection_id)
                .data(Blob::new(payload.to_vec()))
                .send()
                .await;
            sent.map(drop).map_err(post_error)
        })
    }

    fn close<'a>(&'a self, endpoint: &'a str, connection_id: &'a str) -> BoxFuture<'a, Result<(), PostError>> {
        Box::pin(async move {
            let deleted = self.client(endpoint).delete_connection().connection_id(connection_id).send().await;
            deleted.map(drop).map_err(post_error)
        })
    }
}

/// A management API call's failure: `Gone` for a connection that is not open (410, GoneException).
fn post_error<E>(err: aws_sdk_apigatewaymanagement::error::SdkError<E, HttpResponse>) -> PostError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let gone = err.code() == Some("GoneException") || err.raw_response().is_some_and(|r| r.status().as_u16() == 410);
    if gone {
        PostError::Gone
    } else {
        PostError::Failed(aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&err).to_string())
    }
}

/// Who is left out of a fan-out: the connection that made the change gets its own reply instead.
#[derive(Clone, Copy)]
pub enum Skip<'a> {
    Nobody,
    Connection(&'a str),
    User(&'a str),
}

/// Fan-outs that may run at full concurrency at once in one process.
const PROCESS_FAN_OUTS: usize = 8;

pub struct Fanout {
    connections: Arc<dyn Connections>,
    presence: Presence,
    store: Store,
    receipts: Receipts,
    workers: Option<Workers>,
    chunk: usize,
    endpoint_override: Option<String>,
    concurrency: usize,
    /// Bounds posts in flight across the process: through the SDK each one holds an HTTP
    /// connection (two sockets when the endpoint is the local gateway).
    in_flight: tokio::sync::Semaphore,
    prune_grace: Duration,
}

impl Fanout {
    pub fn new(
        config: &Config,
        connections: Arc<dyn Connections>,
        workers: Option<Workers>,
        presence: Presence,
        store: Store,
        receipts: Receipts,
    ) -> Self {
        let concurrency = config.fanout_concurrency.max(1);
        Self {
            connections,
            presence,
            store,
            receipts,
            workers,
            chunk: config.fanout_chunk.max(1),
            endpoint_override: config.management_endpoint.clone(),
            concurrency,
            in_flight: tokio::sync::Semaphore::new(concurrency * PROCESS_FAN_OUTS),
            prune_grace: config.prune_grace,
        }
    }

    /// The management endpoint for an event: the configured override, else `https://{domain}/{stage}`.
    pub fn endpoint_for(&self, domain: Option<&str>, stage: Option<&str>) -> Option<String> {
        if let Some(endpoint) = &self.endpoint_override {
            return Some(endpoint.clone());
        }
        Some(format!("https://{}/{}", domain?, stage?))
    }

    /// Posts to one connection through the event's endpoint, else the configured one.
    pub async fn post_to(
        &self,
        endpoint: Option<&str>,
        connection_id: &str,
        payload: Payload,
    ) -> Result<(), FanoutError> {
        let endpoint = self.endpoint(endpoint)?;
        Ok(self.post(&endpoint, connection_id, payload).await?)
    }

    /// Closes one connection (DeleteConnection) through the event's endpoint, else the configured one.
    pub async fn close(&self, endpoint: Option<&str>, connection_id: &str) -> Result<(), FanoutError> {
        let endpoint = self.endpoint(endpoint)?;
        Ok(self.connections.close(&endpoint, connection_id).await?)
    }

    fn endpoint(&self, endpoint: Option<&str>) -> Result<String, FanoutError> {
        endpoint.map(str::to_string).or_else(|| self.endpoint_override.clone()).ok_or(FanoutError::NoEndpoint)
    }

    /// Posts to one connection.
    pub async fn post(&self, endpoint: &str, connection_id: &str, payload: Payload) -> Result<(), PostError> {
        let _permit = self.in_flight.acquire().await.expect("the semaphore is never closed");
        self.connections.post(endpoint, connection_id, payload).await
    }

    /// Posts the payload to every connection of the users but the skipped one(s); for a message
    /// (`position`: its room and `seq`), moves the delivery positions of those who got it.
    pub async fn to_users(
        &self,
        endpoint: Option<&str>,
        tenant_id: &str,
        users: &[String],
        payload: &Payload,
        skip: Skip<'_>,
        position: Option<(Uuid, i64)>,
    ) -> Result<(), FanoutError> {
        let users: Vec<String> =
            users.iter().filter(|u| !matches!(skip, Skip::User(s) if s == u.as_str())).cloned().collect();
        let connections = self.presence.connections_by_user(tenant_id, &users).await?;
        let posts: Vec<(String, String)> = users
            .into_iter()
            .zip(connections)
            .flat_map(|(user, ids)| ids.into_iter().map(move |id| (user.clone(), id)))
            .filter(|(_, id)| !matches!(skip, Skip::Connection(own) if own == id))
            .collect();
        if posts.is_empty() {
            return Ok(());
        }
        let endpoint = self.endpoint(endpoint)?;
        let chunks = posts.chunks(self.chunk).map(|posts| Chunk {
            endpoint: endpoint.clone(),
            tenant_id: tenant_id.to_string(),
            payload: payload.clone(),
            posts: posts.to_vec(),
            position,
        });
        let outcomes = match &self.workers {
            Some(workers) if posts.len() > self.chunk => {
                join_all(chunks.map(|c| async move { workers.hand_over(&c).await })).await
            }
            _ => join_all(chunks.map(|c| self.run(c))).await,
        };
        outcomes.into_iter().collect()
    }

    /// One chunk's posts, pruning and delivery positions (in the fan-out function, or here).
    pub async fn run(&self, chunk: Chunk) -> Result<(), FanoutError> {
        let posts = chunk.posts.iter().map(|(user, id)| (user.as_str(), id.as_str())).collect();
        let delivered = self.post_all(Some(&chunk.endpoint), &chunk.tenant_id, posts, &chunk.payload).await?;
        if let Some((room_id, seq)) = chunk.position {
            let mut users: Vec<String> = delivered.into_iter().map(str::to_string).collect();
            users.sort_unstable();
            users.dedup();
            self.receipts.delivered(&chunk.tenant_id, room_id, seq, &users).await?;
        }
        Ok(())
    }

    /// Posts the payload to each connection (a tenant's announcement), pruning those gone.
    pub async fn to_connections(
        &self,
        endpoint: Option<&str>,
        tenant_id: &str,
        connection_ids: &[String],
        payload: &Payload,
    ) -> Result<(), FanoutError> {
        let posts = connection_ids.iter().map(|id| ("", id.as_str())).collect();
        self.post_all(endpoint, tenant_id, posts, payload).await.map(drop)
    }

    /// Posts to each `(owner, connection)` a bounded number at a time; returns the owners of the
    /// connections that took it, and prunes those that answered Gone. Failures other than Gone
    /// are logged: the message is in the history for the client's catch-up.
    async fn post_all<'a>(
        &self,
        endpoint: Option<&str>,
        tenant_id: &str,
        posts: Vec<(&'a str, &'a str)>,
        payload: &Payload,
    ) -> Result<Vec<&'a str>, FanoutError> {
        if posts.is_empty() {
            return Ok(Vec::new());
        }
        let endpoint = self.endpoint(endpoint)?;
        let mut delivered = Vec::new();
        let mut gone = Vec::new();
        let mut pending = FuturesUnordered::new();
        let mut queue = posts.into_iter();
        loop {
            while pending.len() < self.concurrency {
                let Some((owner, id)) = queue.next() else { break };
                let endpoint = endpoint.as_str();
                pending.push(async move { (owner, id, self.post(endpoint, id, payload.clone()).await) });
            }
            let Some((owner, id, result)) = pending.next().await else { break };
            match result {
                Ok(()) => delivered.push(owner),
                Err(PostError::Gone) => gone.push((owner, id)),
                Err(err) => tracing::warn!(connection_id = %id, error = %err, "post to connection failed"),
            }
        }
        for (owner, id) in gone {
            self.prune(tenant_id, owner, id).await?;
        }
        Ok(delivered)
    }

    /// Forgets a connection of `user_id` that answered Gone, unless it is young enough to be
    /// still being accepted; an id whose registration is already gone (a disconnect cut short)
    /// still leaves the user's sets. A user left without connections goes offline. Their rooms
    /// hear of it through the registry only: telling them here would fan out again from inside
    /// a fan-out.
    async fn prune(&self, tenant_id: &str, user_id: &str, connection_id: &str) -> Result<(), FanoutError> {
        let offline = match self.presence.lookup(connection_id).await? {
            Some(registered) => {
                let age = Utc::now() - registered.connected_at;
                if age < chrono::Duration::from_std(self.prune_grace).unwrap_or_default() {
                    return Ok(());
                }
                tracing::info!(connection_id, "pruning gone connection");
                matches!(self.presence.unregister(connection_id).await?, Some((_, true)))
            }
            // An announcement's posts have no owner to look in.
            None if user_id.is_empty() => false,
            None => {
                tracing::info!(connection_id, "pruning a connection id left without its registration");
                self.presence.forget(tenant_id, user_id, connection_id).await?
            }
        };
        if offline {
            self.store.clear_typing(tenant_id, user_id).await?;
            let now = Utc::now();
            self.store.last_seen_at(tenant_id, user_id, now).await?;
            self.presence.set_status(tenant_id, user_id, false, now).await?;
        }
        Ok(())
    }
}

/// Frames are JSON text: a chunk carries its payload as a string, not an array of bytes.
mod payload_text {
    use serde::{ser::Error as _, Deserialize, Deserializer, Serializer};

    use super::Payload;

    pub fn serialize<S: Serializer>(payload: &Payload, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(std::str::from_utf8(payload).map_err(S::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Payload, D::Error> {
        String::deserialize(deserializer).map(Payload::from)
    }
}
