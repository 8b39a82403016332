//! All configuration, read from the environment in one place.

use std::env;
use std::time::Duration;

use crate::ratelimit::RateLimits;
use crate::store::StatementMode;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("{name} could not be read from Secrets Manager: {reason}")]
    Secret { name: &'static str, reason: String },
}

/// Values kept in AWS Secrets Manager rather than in the environment, each named by its
/// secret's ARN (or name). Unset, the plain variable is read.
#[derive(Clone, Debug, Default)]
pub struct SecretRefs {
    /// `JWT_SECRET_ARN`: instead of `JWT_SECRET_KEY`.
    pub jwt_secret: Option<String>,
    /// `DATABASE_URL_SECRET_ARN`: instead of `DATABASE_URL`.
    pub database_url: Option<String>,
    /// `REDIS_URL_SECRET_ARN`: instead of `REDIS_URL` (which may hold an AUTH token).
    pub redis_url: Option<String>,
    /// `SECRETS_ENDPOINT`: a Secrets Manager-compatible endpoint instead of AWS's.
    pub endpoint: Option<String>,
}

impl SecretRefs {
    fn from_env() -> Self {
        Self {
            jwt_secret: optional("JWT_SECRET_ARN"),
            database_url: optional("DATABASE_URL_SECRET_ARN"),
            redis_url: optional("REDIS_URL_SECRET_ARN"),
            endpoint: optional("SECRETS_ENDPOINT"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// `postgres://` URL; the spec's `postgresql+asyncpg://` form is accepted too.
    /// TLS as `sslmode` / `sslrootcert` in it say (libpq's meanings; see `store::tls`).
    pub database_url: String,
    /// `redis://`, `rediss://` (TLS), or `redis+cluster://` / `rediss+cluster://` with the nodes.
    pub redis_url: String,
    /// A PEM file of the CA certificates to trust for `rediss://`, instead of the public roots
    /// (a Redis with a private CA).
    pub redis_ca_file: Option<String>,
    pub jwt_secret: String,
    /// The `aud` and `iss` a token must carry; unset, they are not checked.
    pub jwt_audience: Option<String>,
    pub jwt_issuer: Option<String>,
    /// Live connections one user may hold; the next `$connect` is refused.
    pub max_connections_per_user: usize,
    /// Where PostToConnection goes. Unset on AWS: it is derived from each event's domain and stage.
    pub management_endpoint: Option<String>,
    pub aws_region: String,
    /// Sign management-API calls with real AWS credentials: in Lambda, or when keys are in the environment.
    /// Otherwise static local credentials are used (the local gateway does not check signatures).
    pub use_aws_credentials: bool,
    pub db_pool_size: usize,
    /// `DB_STATEMENTS`: how statements reach Postgres (see `store::StatementMode`).
    pub db_statements: StatementMode,
    /// Longest wait for a database connection or statement.
    pub db_timeout: Duration,
    /// Longest wait for a Redis connection or reply.
    pub redis_timeout: Duration,
    /// Longest time one frame or HTTP request may take before the client is told to retry.
    pub request_timeout: Duration,
    /// A connection younger than this that answers Gone may still be being accepted: not pruned.
    pub prune_grace: Duration,
    /// How many PostToConnection calls one fan-out keeps in flight.
    pub fanout_concurrency: usize,
    /// Connections per chunk of a fan-out: more than this are split, and handed to
    /// `fanout_function` when it is set.
    pub fanout_chunk: usize,
    /// The function that runs fan-out chunks (asynchronous invocations); unset, they run in
    /// the invoking process.
    pub fanout_function: Option<String>,
    /// A room of at most this many members is fanned out from its member list; a bigger one
    /// from its tenant's live connections when those are fewer than its members, so a message
    /// in a big room with few members online costs as little as in a small one.
    pub fanout_member_list_max: i64,
    /// Presence changes are pushed to those who share a room of at most this many members:
    /// in bigger rooms each one would be a post to every member (clients ask with `get_presence`).
    pub presence_room_limit: i64,
    pub typing_ttl: Duration,
    /// How often expired typing indicators are swept: by the local gateway, and by the
    /// typing-cleanup function within each scheduled invocation.
    pub typing_sweep_interval: Duration,
    /// How long one typing-cleanup invocation keeps sweeping (the schedule runs it every minute;
    /// zero sweeps once).
    pub sweep_window: Duration,
    pub rate_limits: RateLimits,
    /// Where messages older than `archive_after` go (S3), as gzipped JSON Lines per room and
    /// month; unset, nothing is archived.
    pub archive_bucket: Option<String>,
    pub archive_after: Duration,
    /// Messages of a room one archive step reads, writes and deletes at most.
    pub archive_batch: usize,
    /// An S3-compatible endpoint instead of AWS's (path-style addressing), e.g. a local server.
    pub s3_endpoint: Option<String>,
    /// The local gateway mints development tokens at `POST /api/v1/dev/token` (never in production).
    pub dev_tokens: bool,
    /// How the handlers inside the local gateway reach its sockets.
    pub gateway_delivery: GatewayDelivery,
    /// Frames of one connection the local gateway handles at once (API Gateway invokes the
    /// route for each frame as it comes); 1 handles them one at a time, in order.
    pub gateway_frame_concurrency: usize,
    /// Frames the local gateway has in hand at once across its connections, fan-outs included;
    /// one more is refused at once (`service_unavailable` with `retry_after_ms`) rather than
    /// queued behind them.
    pub gateway_max_in_flight: usize,
    /// The local gateway pings each client this often, and closes a connection it has heard
    /// nothing from (not even a pong) for two intervals: a client gone without a close frame
    /// then goes offline as with any `$disconnect`.
    pub gateway_ping_interval: Duration,
    /// `METRICS_NAMESPACE`: the CloudWatch namespace of the functions' metrics.
    pub metrics_namespace: String,
    /// `METRICS_TENANT_DIMENSION=1`: the functions' metrics are also kept per tenant (a
    /// CloudWatch metric per tenant and name: cost grows with the tenants).
    pub metrics_by_tenant: bool,
    /// The webhook function's SQS queue; unset, this process posts the webhooks it produces.
    pub webhook_queue_url: Option<String>,
    /// An SQS-compatible endpoint instead of AWS's (a local server).
    pub sqs_endpoint: Option<String>,
    /// `WEBHOOK_ALLOW_HTTP=1` (development): endpoints may be plain HTTP and on this machine.
    pub webhook_allow_http: bool,
    /// Webhook POSTs one process has in flight at most.
    pub webhook_max_in_flight: usize,
    /// The first retry's delay; each further one doubles it.
    pub webhook_retry_base: Duration,
    /// Attempts before an event is given up (on AWS, then left to the queue's dead letters).
    pub webhook_max_attempts: u32,
    /// `WEBHOOK_CA_FILE`: PEM certificates webhook endpoints may also chain to, beside the
    /// public roots (a private CA, for development and tests).
    pub webhook_ca_certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Where the local gateway finds the web page and the built JavaScript client.
    pub web_dir: String,
    pub js_client_dir: String,
}

impl Config {
    /// The configuration from plain environment variables alone.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(&SecretRefs::default())
    }

    /// The configuration at cold start: the environment, with the secrets that `JWT_SECRET_ARN`,
    /// `DATABASE_URL_SECRET_ARN` and `REDIS_URL_SECRET_ARN` name fetched from Secrets Manager,
    /// once: the process keeps them for its life.
    pub async fn load() -> Result<Self, ConfigError> {
        let refs = SecretRefs::from_env();
        Self::read(&refs)?.with_secrets(&refs).await
    }

    /// Fills in the values `refs` names from Secrets Manager.
    pub async fn with_secrets(mut self, refs: &SecretRefs) -> Result<Self, ConfigError> {
        if refs.jwt_secret.is_none() && refs.database_url.is_none() && refs.redis_url.is_none() {
            return Ok(self);
        }
        let sdk = crate::aws::sdk_config(&self).await;
        let client = crate::secrets::client(&sdk, refs.endpoint.as_deref());
        let fetch = |name: &'static str, secret_id: &str| {
            let (client, secret_id) = (client.clone(), secret_id.to_string());
            async move {
                crate::secrets::value(&client, &secret_id, name)
                    .await
                    .map_err(|reason| ConfigError::Secret { name, reason })
            }
        };
        if let Some(id) = &refs.jwt_secret {
            self.jwt_secret = fetch("JWT_SECRET_KEY", id).await?;
        }
        if let Some(id) = &refs.database_url {
            self.database_url = normalize_database_url(&fetch("DATABASE_URL", id).await?);
        }
        if let Some(id) = &refs.redis_url {
            self.redis_url = fetch("REDIS_URL", id).await?;
        }
        Ok(self)
    }

    /// The environment; a value that `refs` names in Secrets Manager is left empty here.
    fn read(refs: &SecretRefs) -> Result<Self, ConfigError> {
        let unless_secret = |name, secret: &Option<String>| match secret {
            Some(_) => Ok(String::new()),
            None => required(name),
        };
        Ok(Self {
            database_url: normalize_database_url(&unless_secret("DATABASE_URL", &refs.database_url)?),
            redis_url: unless_secret("REDIS_URL", &refs.redis_url)?,
            redis_ca_file: optional("REDIS_CA_FILE"),
            jwt_secret: unless_secret("JWT_SECRET_KEY", &refs.jwt_secret)?,
            jwt_audience: optional("JWT_AUDIENCE"),
            jwt_issuer: optional("JWT_ISSUER"),
            max_connections_per_user: parsed("MAX_CONNECTIONS_PER_USER", 20)?,
            management_endpoint: optional("APIGW_MANAGEMENT_ENDPOINT"),
            aws_region: optional("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            use_aws_credentials: optional("AWS_LAMBDA_FUNCTION_NAME").is_some()
                || optional("AWS_ACCESS_KEY_ID").is_some(),
            db_pool_size: parsed("DB_POOL_SIZE", 16)?,
            db_statements: parsed("DB_STATEMENTS", StatementMode::Prepared)?,
            db_timeout: Duration::from_millis(parsed("DB_TIMEOUT_MS", 5000)?),
            redis_timeout: Duration::from_millis(parsed("REDIS_TIMEOUT_MS", 2000)?),
            request_timeout: Duration::from_millis(parsed("REQUEST_TIMEOUT_MS", 10_000)?),
            prune_grace: Duration::from_millis(parsed("PRUNE_GRACE_MS", 5000)?),
            fanout_concurrency: parsed("FANOUT_CONCURRENCY", 64)?,
            fanout_chunk: parsed("FANOUT_CHUNK", 500)?,
            fanout_function: optional("FANOUT_FUNCTION"),
            fanout_member_list_max: parsed("FANOUT_MEMBER_LIST_MAX", 500)?,
            presence_room_limit: parsed("PRESENCE_ROOM_LIMIT", 100)?,
            typing_ttl: Duration::from_secs(parsed("TYPING_TTL_SECONDS", 10)?),
            typing_sweep_interval: Duration::from_millis(parsed("TYPING_SWEEP_INTERVAL_MS", 1000)?),
            sweep_window: Duration::from_secs(parsed("SWEEP_WINDOW_SECONDS", 0)?),
            archive_bucket: optional("ARCHIVE_BUCKET"),
            archive_after: Duration::from_secs(86_400 * parsed::<u64>("ARCHIVE_AFTER_DAYS", 365)?),
            archive_batch: parsed::<usize>("ARCHIVE_BATCH", 5000)?.max(1),
            s3_endpoint: optional("S3_ENDPOINT"),
            dev_tokens: flag("DEV_TOKENS"),
            gateway_delivery: parsed("GATEWAY_DELIVERY", GatewayDelivery::InProcess)?,
            gateway_frame_concurrency: parsed("GATEWAY_FRAME_CONCURRENCY", 8)?,
            gateway_max_in_flight: parsed::<usize>("GATEWAY_MAX_IN_FLIGHT", 256)?.max(1),
            gateway_ping_interval: Duration::from_millis(parsed("GATEWAY_PING_INTERVAL_MS", 30_000)?),
            metrics_namespace: optional("METRICS_NAMESPACE").unwrap_or_else(|| "ChatBackend".into()),
            metrics_by_tenant: flag("METRICS_TENANT_DIMENSION"),
            webhook_queue_url: optional("WEBHOOK_QUEUE_URL"),
            sqs_endpoint: optional("SQS_ENDPOINT"),
            webhook_allow_http: flag("WEBHOOK_ALLOW_HTTP"),
            webhook_max_in_flight: parsed::<usize>("WEBHOOK_MAX_IN_FLIGHT", 16)?.max(1),
            webhook_retry_base: Duration::from_millis(parsed("WEBHOOK_RETRY_BASE_MS", 1000)?),
            webhook_max_attempts: parsed::<u32>("WEBHOOK_MAX_ATTEMPTS", 8)?.max(1),
            webhook_ca_certs: certificates("WEBHOOK_CA_FILE")?,
            web_dir: optional("WEB_DIR").unwrap_or_else(|| "clients/web".into()),
            js_client_dir: optional("JS_CLIENT_DIR").unwrap_or_else(|| "clients/js/dist".into()),
            rate_limits: {
                let d = RateLimits::default();
                RateLimits {
                    messages: parsed("RATE_LIMIT_MESSAGES", d.messages)?,
                    typing: parsed("RATE_LIMIT_TYPING", d.typing)?,
                    frames: parsed("RATE_LIMIT_FRAMES", d.frames)?,
                    connects_per_user: parsed("RATE_LIMIT_CONNECTS_PER_USER", d.connects_per_user)?,
                    connects_per_ip: parsed("RATE_LIMIT_CONNECTS_PER_IP", d.connects_per_ip)?,
                    http: parsed("RATE_LIMIT_HTTP", d.http)?,
                    http_per_ip: parsed("RATE_LIMIT_HTTP_PER_IP", d.http_per_ip)?,
                }
            },
        })
    }
}

/// How the local gateway's handlers post to its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayDelivery {
    /// Straight into the sockets' queues (`in-process`, the default).
    InProcess,
    /// Through the real SDK client and the gateway's `@connections` endpoint (`sdk`), as on AWS.
    Sdk,
}

impl std::str::FromStr for GatewayDelivery {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "in-process" => Ok(Self::InProcess),
            "sdk" => Ok(Self::Sdk),
            other => Err(format!("{other:?}: expected in-process or sdk")),
        }
    }
}

/// SQLAlchemy-style URLs carry the driver in the scheme; tokio-postgres wants plain `postgres://`.
pub fn normalize_database_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) if scheme.starts_with("postgresql+") => format!("postgresql://{rest}"),
        _ => url.to_string(),
    }
}

fn optional(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

fn flag(name: &str) -> bool {
    optional(name).is_some_and(|v| v == "1" || v == "true")
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    optional(name).ok_or(ConfigError::Missing(name))
}

/// The PEM certificates of the file the variable names (none when it is unset).
fn certificates(name: &'static str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, ConfigError> {
    let Some(path) = optional(name) else { return Ok(Vec::new()) };
    pem_certificates(&path).map_err(|reason| ConfigError::Invalid { name, reason: format!("{path}: {reason}") })
}

/// The certificates of a PEM file, at least one.
pub fn pem_certificates(path: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificates in the file".into());
    }
    Ok(certs)
}

fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e: T::Err| ConfigError::Invalid { name, reason: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_sqlalchemy_driver() {
        assert_eq!(normalize_database_url("postgresql+asyncpg://u:p@h/db"), "postgresql://u:p@h/db");
        assert_eq!(normalize_database_url("postgres://h/db"), "postgres://h/db");
    }
}
