//! Webhooks: events POSTed to a tenant's backend, signed with its secret, retried with backoff,
//! never on the sender's path. An event is put on a queue once its change has committed and its
//! fan-out is done: the webhook function's SQS queue on AWS (`WEBHOOK_QUEUE_URL`), else a bounded
//! in-process queue that this process works off itself (the local gateway).
//!
//! A request: `POST` of `{"id","type","tenant_id","created_at","data"}` with
//! `X-Chat-Event: <type>`, `X-Chat-Delivery: <id>` (the same on every attempt: receivers drop
//! repeats) and `X-Chat-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http_body_util::Full;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::{mpsc, Semaphore};
use uuid::Uuid;

use crate::config::Config;
use crate::metrics::{self, Counter};
use crate::presence::Presence;
use crate::store::{Store, StoreError};

/// The events a tenant can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Event {
    /// A message sent (not system messages), with the members who were offline.
    #[serde(rename = "message.new")]
    MessageNew,
    /// A member reported a message.
    #[serde(rename = "message.flagged")]
    MessageFlagged,
    /// A member banned from a room.
    #[serde(rename = "member.banned")]
    MemberBanned,
}

impl Event {
    pub const ALL: [Event; 3] = [Event::MessageNew, Event::MessageFlagged, Event::MemberBanned];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::MessageNew => "message.new",
            Event::MessageFlagged => "message.flagged",
            Event::MemberBanned => "member.banned",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// How long a process trusts what it read of a tenant's endpoint (a change made through another
/// process takes this long to reach it).
const ENDPOINT_TTL: Duration = Duration::from_secs(30);
/// Events waiting in the in-process queue at most; more are dropped (and counted).
const LOCAL_QUEUE: usize = 10_000;
/// One POST's longest wait for an answer.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// SQS delays a message 15 minutes at most.
const MAX_SQS_DELAY_SECONDS: u64 = 900;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(String),
}

/// A tenant's endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub url: String,
    pub secret: String,
    pub events: Vec<Event>,
}

/// `PUT /api/v1/chat/webhook`: all events, and a new random secret, unless given.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    /// `https://` to a public host (`WEBHOOK_ALLOW_HTTP=1`: also `http://` and this machine).
    #[schemars(length(max = 2048))]
    pub url: String,
    pub events: Option<Vec<Event>>,
    /// The HMAC key of the signatures.
    #[schemars(length(min = 16, max = 256))]
    pub secret: Option<String>,
}

/// Checks an endpoint's URL: HTTPS to a public host, unless `allow_http` (development) lets in
/// plain HTTP and this machine. A name that resolves to a private address is not caught here.
pub fn check_url(url: &str, allow_http: bool) -> Result<(), String> {
    if url.len() > 2048 {
        return Err("url is longer than 2048 characters".into());
    }
    let parsed: http::Uri = url.parse().map_err(|e| format!("url is not a URL: {e}"))?;
    match parsed.scheme_str() {
        Some("https") => {}
        Some("http") if allow_http => {}
        _ => return Err("url must be https".into()),
    }
    let host = parsed.host().filter(|h| !h.is_empty()).ok_or("url has no host")?;
    let ip = host.trim_matches(['[', ']']).parse::<IpAddr>().ok();
    let private = host.eq_ignore_ascii_case("localhost")
        || ip.is_some_and(|ip| match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified(),
            IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        });
    if private && !allow_http {
        return Err("url must name a public host".into());
    }
    Ok(())
}

/// The endpoint a `PUT` asks for, checked.
pub fn endpoint_from(request: EndpointRequest, allow_http: bool) -> Result<Endpoint, String> {
    check_url(&request.url, allow_http)?;
    let secret = match request.secret {
        Some(secret) if (16..=256).contains(&secret.len()) => secret,
        Some(_) => return Err("secret must have 16 to 256 characters".into()),
        None => format!("whsec_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()),
    };
    Ok(Endpoint { url: request.url, secret, events: request.events.unwrap_or_else(|| Event::ALL.to_vec()) })
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// An event on its way, as queued.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub id: Uuid,
    pub tenant_id: String,
    #[serde(rename = "type")]
    pub event: Event,
    pub created_at: DateTime<Utc>,
    pub data: Value,
    /// Attempts made so far.
    #[serde(default)]
    pub attempts: u32,
}

impl Job {
    fn body(&self) -> String {
        json!({
            "id": self.id, "type": self.event, "tenant_id": self.tenant_id,
            "created_at": self.created_at, "data": self.data,
        })
        .to_string()
    }
}

/// What became of one attempt.
#[derive(Debug, PartialEq)]
pub enum Attempt {
    Delivered,
    /// The tenant has no endpoint for it (any more).
    Dropped,
    /// Worth another try after the delay.
    Retry(Duration),
    /// Out of attempts.
    Failed,
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// Posts events; the same in the gateway and in the webhook function.
pub struct Deliverer {
    store: Store,
    presence: Presence,
    http: HttpClient,
    retry_base: Duration,
    max_attempts: u32,
}

impl Deliverer {
    pub fn new(config: &Config, store: Store, presence: Presence) -> Self {
        // Public roots (and WEBHOOK_CA_FILE's), and the one crypto provider the other clients use (aws-lc-rs).
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        roots.add_parsable_certificates(config.webhook_ca_certs.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs speaks the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        // Redirects are not followed: an answer of 3xx is a failure.
        let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Self { store, presence, http, retry_base: config.webhook_retry_base, max_attempts: config.webhook_max_attempts }
    }

    /// One attempt. A `message.new` gets its offline recipients on its first: the room's members
    /// but the sender with no live connection then.
    pub async fn attempt(&self, job: &mut Job) -> Result<Attempt, WebhookError> {
        let Some(endpoint) = self.store.webhook(&job.tenant_id).await? else { return Ok(Attempt::Dropped) };
        if !endpoint.events.contains(&job.event) {
            return Ok(Attempt::Dropped);
        }
        if job.event == Event::MessageNew && job.data.get("offline_recipients").is_none() {
            job.data["offline_recipients"] = json!(self.offline_recipients(job).await?);
        }
        job.attempts += 1;
        let body = job.body();
        let signature = signature(&endpoint.secret, Utc::now().timestamp(), &body);
        let request = http::Request::post(&endpoint.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-chat-event", job.event.as_str())
            .header("x-chat-delivery", job.id.to_string())
            .header("x-chat-signature", signature)
            .body(Full::new(Bytes::from(body)));
        let failure = match request {
            Err(err) => format!("not a request: {err}"),
            Ok(request) => match tokio::time::timeout(POST_TIMEOUT, self.http.request(request)).await {
                Ok(Ok(response)) if response.status().is_success() => {
                    metrics::count(Counter::WebhooksDelivered, 1);
                    return Ok(Attempt::Delivered);
                }
                Ok(Ok(response)) => format!("answered {}", response.status()),
                Ok(Err(err)) => format!("no answer: {err}"),
                Err(_) => format!("no answer within {POST_TIMEOUT:?}"),
            },
        };
        tracing::warn!(tenant_id = %job.tenant_id, delivery = %job.id, attempts = job.attempts, %failure, "webhook not delivered");
        if job.attempts >= self.max_attempts {
            metrics::count(Counter::WebhooksFailed, 1);
            return Ok(Attempt::Failed);
        }
        Ok(Attempt::Retry(self.retry_base * 2u32.saturating_pow(job.attempts - 1)))
    }

    async fn offline_recipients(&self, job: &Job) -> Result<Vec<String>, WebhookError> {
        let room_id: Uuid = serde_json::from_value(job.data["room_id"].clone()).unwrap_or_default();
        let sender = job.data["message"]["sender_id"].as_str().unwrap_or_default();
        let mut members = self.store.member_ids(&job.tenant_id, room_id).await?;
        members.retain(|member| member != sender);
        let connections = self
            .presence
            .connections_by_user(&job.tenant_id, &members)
            .await
            .map_err(|e| WebhookError::Queue(format!("connections of the room's members: {e}")))?;
        Ok(members.into_iter().zip(connections).filter(|(_, ids)| ids.is_empty()).map(|(user, _)| user).collect())
    }
}

/// Where events go: SQS for the webhook function, or this process's own queue.
enum Queue {
    Sqs { client: aws_sdk_sqs::Client, url: String },
    Local(mpsc::Sender<Job>),
}

/// The producing side, held by the chat service.
pub struct Webhooks {
    store: Store,
    queue: Queue,
    /// What this process last read of each tenant's endpoint, and when.
    endpoints: Mutex<HashMap<String, (Instant, Option<Endpoint>)>>,
}

impl Webhooks {
    pub async fn new(config: &Config, store: Store, presence: Presence) -> Self {
        let queue = match &config.webhook_queue_url {
            Some(url) => {
                let client = sqs_client(&crate::aws::sdk_config(config).await, config.sqs_endpoint.as_deref());
                Queue::Sqs { client, url: url.clone() }
            }
            None => {
                let (sender, receiver) = mpsc::channel(LOCAL_QUEUE);
                let deliverer = Arc::new(Deliverer::new(config, store.clone(), presence));
                tokio::spawn(work_off(receiver, deliverer, config.webhook_max_in_flight));
                Queue::Local(sender)
            }
        };
        Self { store, queue, endpoints: Mutex::default() }
    }

    /// Queues the event when the tenant's endpoint takes it; `id` is its delivery id. Called
    /// once the change has committed: a failure here is logged, never the request's.
    pub async fn emit(&self, tenant_id: &str, event: Event, id: Uuid, data: Value) {
        match self.subscribed(tenant_id, event).await {
            Ok(false) => {}
            Ok(true) => {
                let job = Job { id, tenant_id: tenant_id.into(), event, created_at: Utc::now(), data, attempts: 0 };
                // Boxed: the SDK's future is deep, and callers sit deep in a frame's handling.
                if let Err(err) = Box::pin(self.enqueue(&job, Duration::ZERO)).await {
                    metrics::count(Counter::WebhooksFailed, 1);
                    tracing::warn!(error = %err, event = event.as_str(), "webhook event not queued");
                }
            }
            Err(err) => tracing::warn!(error = %err, event = event.as_str(), "webhook endpoint not read"),
        }
    }

    /// Forgets what this process read of the tenant's endpoint (it just changed it).
    pub fn forget(&self, tenant_id: &str) {
        self.endpoints.lock().expect("lock poisoned").remove(tenant_id);
    }

    async fn subscribed(&self, tenant_id: &str, event: Event) -> Result<bool, StoreError> {
        let cached = self.endpoints.lock().expect("lock poisoned").get(tenant_id).cloned();
        let endpoint = match cached {
            Some((read, endpoint)) if read.elapsed() < ENDPOINT_TTL => endpoint,
            _ => {
                let endpoint = self.store.webhook(tenant_id).await?;
                self.endpoints
                    .lock()
                    .expect("lock poisoned")
                    .insert(tenant_id.into(), (Instant::now(), endpoint.clone()));
                endpoint
            }
        };
        Ok(endpoint.is_some_and(|e| e.events.contains(&event)))
    }

    /// Puts the job on the queue, to be taken after `delay` (a retry's backoff, on SQS).
    pub async fn enqueue(&self, job: &Job, delay: Duration) -> Result<(), WebhookError> {
        match &self.queue {
            Queue::Sqs { client, url } => {
                let delay = delay.as_secs_f64().ceil() as u64;
                client
                    .send_message()
                    .queue_url(url)
                    .message_body(serde_json::to_string(job).expect("jobs serialize"))
                    .delay_seconds(delay.min(MAX_SQS_DELAY_SECONDS) as i32)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| WebhookError::Queue(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))
            }
            Queue::Local(sender) => sender.try_send(job.clone()).map_err(|e| WebhookError::Queue(e.to_string())),
        }
    }
}

/// An SQS client, of AWS's or of a compatible endpoint.
pub fn sqs_client(sdk: &aws_config::SdkConfig, endpoint: Option<&str>) -> aws_sdk_sqs::Client {
    let mut builder = aws_sdk_sqs::config::Builder::from(sdk);
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_sqs::Client::from_conf(builder.build())
}

/// One batch of the webhook function's queue: each event attempted (at once: the batch size
/// bounds what is in flight), a retry put back with its delay, and the failures reported so that
/// SQS receives them again and at last moves them to the dead-letter queue.
pub async fn work_batch(webhooks: &Webhooks, deliverer: &Deliverer, event: SqsEvent) -> SqsBatchResponse {
    let outcomes = futures::future::join_all(event.records.into_iter().map(|record| async move {
        let id = record.message_id.unwrap_or_default();
        let job = serde_json::from_str::<Job>(record.body.as_deref().unwrap_or_default());
        let done = match job {
            Err(err) => Err(format!("not an event: {err}")),
            Ok(mut job) => match deliverer.attempt(&mut job).await {
                Ok(Attempt::Retry(delay)) => webhooks.enqueue(&job, delay).await.map_err(|e| e.to_string()),
                Ok(Attempt::Failed) => Err("out of attempts".into()),
                Ok(Attempt::Delivered | Attempt::Dropped) => Ok(()),
                Err(err) => Err(err.to_string()),
            },
        };
        done.map_err(|reason| {
            tracing::warn!(message_id = %id, %reason, "webhook event failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcomes.into_iter().filter_map(Result::err).collect();
    response
}

/// The in-process queue's worker: each event posted with at most `in_flight` at once, retried
/// after its backoff.
async fn work_off(mut queue: mpsc::Receiver<Job>, deliverer: Arc<Deliverer>, in_flight: usize) {
    let slots = Arc::new(Semaphore::new(in_flight.max(1)));
    while let Some(mut job) = queue.recv().await {
        let deliverer = deliverer.clone();
        let slots = slots.clone();
        tokio::spawn(async move {
            loop {
                let attempt = {
                    let _slot = slots.acquire().await.expect("never closed");
                    deliverer.attempt(&mut job).await
                };
                match attempt {
                    Ok(Attempt::Retry(delay)) => tokio::time::sleep(delay).await,
                    Ok(_) => break,
                    Err(err) => {
                        metrics::count(Counter::WebhooksFailed, 1);
                        tracing::warn!(error = %err, delivery = %job.id, "webhook event dropped");
                        break;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_an_hmac_of_the_timestamp_and_body() {
        // As `printf '1700000000.{}' | openssl dgst -sha256 -hmac secret` computes it.
        assert_eq!(
            signature("secret", 1_700_000_000, "{}"),
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }

    #[test]
    fn endpoints_are_https_to_public_hosts_unless_development_allows_more() {
        assert!(check_url("https://hooks.example.com/chat", false).is_ok());
        for refused in [
            "http://hooks.example.com",
            "https://localhost/x",
            "https://127.0.0.1/x",
            "https://10.0.0.2/",
            "https://169.254.169.254/latest",
            "https://[::1]/",
            "ftp://example.com",
            "not a url",
        ] {
            assert!(check_url(refused, false).is_err(), "{refused}");
        }
        assert!(check_url("http://127.0.0.1:8080/hook", true).is_ok());
    }
}
