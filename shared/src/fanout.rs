//! Fan-out: one payload to every connection of some users or a room. One entry point, `Fanout::to`
//! (the audience and the payload in; the connection lookup, the posts, the pruning of connections that
//! are gone and the recipients' delivery positions happen inside), and `post` for one connection.
//!
//! Posts go through `Connections`, PostToConnection's contract: the real `aws-sdk-apigatewaymanagement`
//! client (`ManagementApi`: on AWS, and against the local gateway's `@connections` endpoint), or
//! the local gateway's own connection queues when the handlers run inside it.
//!
//! More connections than `FANOUT_CHUNK` are split into chunks. With `FANOUT_FUNCTION` set (on
//! AWS), each chunk goes to that function by asynchronous invocation, in parallel, so one
//! invocation never posts to a whole big room itself; otherwise the chunks run here, side by side.

use std::collections::{HashMap, HashSet};
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
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Config;
use crate::metrics::{self, Counter};
use crate::presence::{Owned, Presence, Registered};
use crate::receipts::Receipts;
use crate::store::{Members, Store, StoreError};

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

    /// Whether the connection is open (GetConnection's contract: `Gone` is `false`).
    fn exists<'a>(&'a self, endpoint: &'a str, connection_id: &'a str) -> BoxFuture<'a, Result<bool, PostError>>;
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

    fn exists<'a>(&'a self, endpoint: &'a str, connection_id: &'a str) -> BoxFuture<'a, Result<bool, PostError>> {
        Box::pin(async move {
            match self.client(endpoint).get_connection().connection_id(connection_id).send().await.map_err(post_error) {
                Ok(_) => Ok(true),
                Err(PostError::Gone) => Ok(false),
                Err(err) => Err(err),
            }
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

/// Whom a fan-out reaches.
#[derive(Clone, Copy)]
pub enum Audience<'a> {
    Users(&'a [String]),
    /// The room's members.
    Room(Uuid),
    /// Everyone connected in the tenant.
    Tenant,
}

/// What a fan-out posts: one payload to everyone, or another one to some users instead (those
/// who blocked a message's sender get their copy flagged).
#[derive(Clone, Copy)]
pub struct Payloads<'a> {
    pub all: &'a Payload,
    pub instead: Option<(&'a [String], &'a Payload)>,
}

impl<'a> From<&'a Payload> for Payloads<'a> {
    fn from(all: &'a Payload) -> Self {
        Self { all, instead: None }
    }
}

/// Registered connections one sweep step looks at.
const SWEEP_BATCH: usize = 500;
/// Where the sweep's walk over the registry goes on from.
const SWEEP_CURSOR: &str = "chat:sweep:cursor";

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
    member_list_max: i64,
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
            member_list_max: config.fanout_member_list_max,
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

    /// Posts the payloads to every connection of the audience but the skipped one(s); for a
    /// message (`position`: its room and `seq`), moves the delivery positions of those who got it.
    /// Returns the users whose last connection answered Gone (pruned, now offline): the caller
    /// tells their contacts, as `$disconnect` does.
    #[tracing::instrument(target = "xray", level = "trace", name = "fanout", skip_all)]
    pub async fn to(
        &self,
        endpoint: Option<&str>,
        tenant_id: &str,
        audience: Audience<'_>,
        payloads: Payloads<'_>,
        skip: Skip<'_>,
        position: Option<(Uuid, i64)>,
    ) -> Result<Vec<String>, FanoutError> {
        let mut posts: Vec<(String, String)> = self
            .connections_of(tenant_id, audience)
            .await?
            .into_iter()
            .filter(|(user, id)| match skip {
                Skip::Nobody => true,
                Skip::Connection(own) => own != id,
                Skip::User(own) => own != user,
            })
            .collect();
        if posts.is_empty() {
            return Ok(Vec::new());
        }
        let endpoint = self.endpoint(endpoint)?;
        let total = posts.len();
        let mut groups = Vec::with_capacity(2);
        if let Some((users, payload)) = payloads.instead {
            let (theirs, rest) = posts.into_iter().partition(|(user, _)| users.contains(user));
            groups.push((payload, theirs));
            posts = rest;
        }
        groups.push((payloads.all, posts));
        let chunks = groups.iter().flat_map(|(payload, posts)| {
            posts.chunks(self.chunk).map(|posts| Chunk {
                endpoint: endpoint.clone(),
                tenant_id: tenant_id.to_string(),
                payload: Payload::clone(payload),
                posts: posts.to_vec(),
                position,
            })
        });
        let outcomes = match &self.workers {
            // Each worker tells of those its chunk takes offline.
            Some(workers) if total > self.chunk => {
                join_all(chunks.map(|c| async move { workers.hand_over(&c).await.map(|()| Vec::new()) })).await
            }
            _ => join_all(chunks.map(|c| self.run(c))).await,
        };
        let offline: Vec<Vec<String>> = outcomes.into_iter().collect::<Result<_, _>>()?;
        Ok(offline.concat())
    }

    /// The live connections of the audience, as (user, connection id). A room's: from its member
    /// list when it is small, else from whichever is smaller, its members or the tenant's live
    /// connections, so the cost follows the members online, not the room's size.
    async fn connections_of(
        &self,
        tenant_id: &str,
        audience: Audience<'_>,
    ) -> Result<Vec<(String, String)>, FanoutError> {
        let users = match audience {
            Audience::Users(users) => users.to_vec(),
            Audience::Tenant => return Ok(self.presence.tenant_connections(tenant_id).await?),
            Audience::Room(room_id) => match self.store.members(tenant_id, room_id, self.member_list_max).await? {
                Members::Listed(users) => users,
                Members::Counted(members) if self.presence.tenant_connection_count(tenant_id).await? < members => {
                    let live = self.presence.tenant_connections(tenant_id).await?;
                    let mut users: Vec<String> = live.iter().map(|(user, _)| user.clone()).collect();
                    users.sort_unstable();
                    users.dedup();
                    let members: HashSet<String> =
                        self.store.members_among(tenant_id, room_id, &users).await?.into_iter().collect();
                    return Ok(live.into_iter().filter(|(user, _)| members.contains(user)).collect());
                }
                Members::Counted(_) => self.store.member_ids(tenant_id, room_id).await?,
            },
        };
        let connections = self.presence.connections_by_user(tenant_id, &users).await?;
        Ok(users
            .into_iter()
            .zip(connections)
            .flat_map(|(user, ids)| ids.into_iter().map(move |id| (user.clone(), id)))
            .collect())
    }

    /// One chunk's posts, pruning and delivery positions (in the fan-out function, or here);
    /// returns the users it took offline.
    pub async fn run(&self, chunk: Chunk) -> Result<Vec<String>, FanoutError> {
        let posts = chunk.posts.iter().map(|(user, id)| (user.as_str(), id.as_str())).collect();
        let (delivered, offline) = self.post_all(&chunk.endpoint, &chunk.tenant_id, posts, &chunk.payload).await?;
        if let Some((room_id, seq)) = chunk.position {
            let mut users: Vec<String> = delivered.into_iter().map(str::to_string).collect();
            users.sort_unstable();
            users.dedup();
            self.receipts.delivered(&chunk.tenant_id, room_id, seq, &users).await?;
        }
        Ok(offline)
    }

    /// Posts to each `(owner, connection)` a bounded number at a time, and prunes those that
    /// answered Gone; returns the owners of the connections that took it, and the owners the
    /// pruning took offline. Failures other than Gone are logged: the message is in the history
    /// for the client's catch-up.
    async fn post_all<'a>(
        &self,
        endpoint: &str,
        tenant_id: &str,
        posts: Vec<(&'a str, &'a str)>,
        payload: &Payload,
    ) -> Result<(Vec<&'a str>, Vec<String>), FanoutError> {
        let mut delivered = Vec::new();
        let mut gone = Vec::new();
        let mut pending = FuturesUnordered::new();
        let mut queue = posts.into_iter();
        loop {
            while pending.len() < self.concurrency {
                let Some((owner, id)) = queue.next() else { break };
                pending.push(async move { (owner, id, self.post(endpoint, id, payload.clone()).await) });
            }
            let Some((owner, id, result)) = pending.next().await else { break };
            match result {
                Ok(()) => delivered.push(owner),
                Err(PostError::Gone) => gone.push((owner, id)),
                Err(err) => {
                    metrics::count(Counter::PostsFailed, 1);
                    tracing::warn!(connection_id = %id, error = %err, "post to connection failed")
                }
            }
        }
        metrics::count(Counter::PostsDelivered, delivered.len() as u64);
        metrics::count(Counter::PostsGone, gone.len() as u64);
        let mut offline = Vec::new();
        for (owner, id) in gone {
            if self.prune(tenant_id, owner, id).await? {
                offline.push(owner.to_string());
            }
        }
        Ok((delivered, offline))
    }

    /// One step of the sweep over every registered connection (on the typing-cleanup schedule):
    /// a connection that no longer exists (its `$disconnect` was lost) and an id left without its
    /// registration are pruned. Returns the (tenant, user) it took offline.
    pub async fn sweep(&self, endpoint: Option<&str>) -> Result<Vec<(String, String)>, FanoutError> {
        let endpoint = self.endpoint(endpoint)?;
        let mut redis = self.presence.redis().clone();
        let cursor: Option<u64> = redis.get(SWEEP_CURSOR).await?;
        let (next, owned) = self.presence.registry_step(cursor.unwrap_or(0), SWEEP_BATCH).await?;
        redis.set::<_, _, ()>(SWEEP_CURSOR, next).await?;
        let mut offline = Vec::new();
        // Another API's connections are its own sweep's (several may share one Redis, as the tests do).
        for Owned { connection_id, tenant_id, user_id, .. } in owned.into_iter().filter(|o| o.endpoint == endpoint) {
            let registered = self.presence.lookup(&connection_id).await?;
            let gone = match &registered {
                None => true,
                Some(registered) if self.accepting(registered) => false,
                Some(_) => match self.connections.exists(&endpoint, &connection_id).await {
                    Ok(open) => !open,
                    Err(err) => {
                        tracing::warn!(%connection_id, error = %err, "sweep could not check a connection");
                        false
                    }
                },
            };
            if gone && self.forget_gone(&tenant_id, &user_id, &connection_id, registered).await? {
                offline.push((tenant_id, user_id));
            }
        }
        Ok(offline)
    }

    /// Forgets a connection of `user_id` that answered Gone (see `forget_gone`).
    async fn prune(&self, tenant_id: &str, user_id: &str, connection_id: &str) -> Result<bool, FanoutError> {
        let registered = self.presence.lookup(connection_id).await?;
        self.forget_gone(tenant_id, user_id, connection_id, registered).await
    }

    /// Whether a registered connection is young enough to be still being accepted (API Gateway
    /// answers Gone for a connection in `$connect`).
    fn accepting(&self, registered: &Registered) -> bool {
        Utc::now() - registered.connected_at < chrono::Duration::from_std(self.prune_grace).unwrap_or_default()
    }

    /// Forgets a connection found gone, `registered` as just looked up, unless it is still being
    /// accepted; an id whose registration is already gone (a disconnect cut short) still leaves
    /// the user's sets. True when the user is left without connections.
    async fn forget_gone(
        &self,
        tenant_id: &str,
        user_id: &str,
        connection_id: &str,
        registered: Option<Registered>,
    ) -> Result<bool, FanoutError> {
        match registered {
            Some(registered) if self.accepting(&registered) => Ok(false),
            Some(_) => {
                tracing::info!(connection_id, "pruning gone connection");
                Ok(matches!(self.presence.unregister(connection_id).await?, Some((_, true))))
            }
            None => {
                tracing::info!(connection_id, "pruning a connection id left without its registration");
                Ok(self.presence.forget(tenant_id, user_id, connection_id).await?)
            }
        }
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
