//! The chat service: what each client frame and connection event does, whatever invoked it
//! (a Lambda function or the local gateway). Room and message operations live in the submodules.

mod archive;
mod blocks;
mod export;
mod messages;
mod moderation;
mod reports;
mod rooms;
pub(crate) mod validate;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use futures::future::BoxFuture;
use tracing::Span;
use uuid::Uuid;

use crate::auth::{self, AuthError, Claims};
use crate::cache::RecentCache;
use crate::channels::{self, Channel};
use crate::config::Config;
use crate::fanout::{Audience, Connections, Fanout, FanoutError, ManagementApi, Payload, PostError, Skip, Workers};
use crate::metrics::{self, Counter, Histogram};
use crate::model::{Caller, Message, Role};
use crate::presence::Presence;
use crate::protocol::{self, ClientFrame, ErrorCode, PresenceStatus, ProtocolError, ServerFrame};
use crate::ratelimit::{Limit, RateLimiter, Subject};
use crate::receipts::Receipts;
use crate::redis_conn::RedisConn;
use crate::store::{Membership, ReactionChange, Store, StoreError, WentOffline};
use crate::webhooks::Webhooks;
use messages::Typing;

pub use archive::ArchiveReport;
pub use export::{Export, Format as ExportFormat};
pub use messages::SYSTEM_USER;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("not authenticated: {0}")]
    Unauthorized(#[from] AuthError),
    #[error("connection is not registered")]
    UnknownConnection,
    /// The connection's token expired during the session: the connection is closed.
    #[error("token expired")]
    SessionExpired,
    #[error("at most {max} connections per user")]
    TooManyConnections { max: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Fanout(#[from] FanoutError),
    #[error(transparent)]
    Post(#[from] PostError),
    #[error("rate limit exceeded: retry in {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    #[error("the request took too long")]
    Timeout,
    /// The local gateway has as many frames in hand as it takes (`GATEWAY_MAX_IN_FLIGHT`).
    #[error("the server is busy")]
    Overloaded,
}

impl ChatError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Protocol(e) => e.code(),
            Self::Invalid(_) => ErrorCode::ValidationError,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::PermissionDenied(_) => ErrorCode::PermissionDenied,
            Self::Unauthorized(_) | Self::UnknownConnection | Self::SessionExpired => ErrorCode::Unauthorized,
            Self::RateLimited { .. } | Self::TooManyConnections { .. } => ErrorCode::RateLimited,
            Self::Store(e) | Self::Fanout(FanoutError::Store(e)) if e.is_unavailable() => ErrorCode::ServiceUnavailable,
            Self::Redis(_) | Self::Fanout(FanoutError::Redis(_)) | Self::Timeout | Self::Overloaded => {
                ErrorCode::ServiceUnavailable
            }
            Self::Store(_) | Self::Fanout(_) | Self::Post(_) => ErrorCode::InternalError,
        }
    }

    /// The message the client sees: internal details stay in the logs.
    pub fn to_frame_message(&self) -> String {
        match self.code() {
            ErrorCode::InternalError => "internal error".to_string(),
            ErrorCode::ServiceUnavailable => "service temporarily unavailable, retry shortly".to_string(),
            _ => self.to_string(),
        }
    }

    pub fn to_frame(&self) -> ServerFrame {
        ServerFrame::Error {
            code: self.code(),
            message: self.to_frame_message(),
            retry_after_ms: self.retry_after_ms(),
        }
    }

    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_ms } => Some(*retry_after_ms),
            Self::Overloaded => Some(OVERLOADED_RETRY_MS),
            _ => None,
        }
    }

    /// The HTTP status for the same error, where one is answered over HTTP ($connect, HTTP routes).
    pub fn http_status(&self) -> u16 {
        use ErrorCode as C;
        match self.code() {
            C::InvalidJson | C::InvalidFrame | C::UnknownType | C::ValidationError | C::FrameTooLarge => 400,
            C::Unauthorized => 401,
            C::PermissionDenied => 403,
            C::NotFound => 404,
            C::MethodNotAllowed => 405,
            C::RateLimited => 429,
            C::ServiceUnavailable => 503,
            C::InternalError => 500,
        }
    }
}

/// When a frame refused for overload is worth sending again: about the time a few frames in hand
/// take to finish.
const OVERLOADED_RETRY_MS: u64 = 200;

type Result<T, E = ChatError> = std::result::Result<T, E>;

/// A frame's answer: the reply for the sender, and the work that follows once they have it.
struct Answer<'a> {
    reply: Option<ServerFrame>,
    then: Option<BoxFuture<'a, Result<()>>>,
}

impl From<Option<ServerFrame>> for Answer<'_> {
    fn from(reply: Option<ServerFrame>) -> Self {
        Self { reply, then: None }
    }
}

/// Everything the handlers need, built once per process (per Lambda execution environment).
pub struct ChatService {
    pub config: Config,
    pub store: Store,
    pub presence: Presence,
    pub cache: RecentCache,
    pub limiter: RateLimiter,
    pub receipts: Receipts,
    pub fanout: Fanout,
    /// Cold storage of old messages, when `ARCHIVE_BUCKET` is set.
    pub archive: Option<crate::archive::Archive>,
    pub webhooks: Webhooks,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// A user's presence as it changed: online or offline since `at`.
#[derive(Clone, Copy)]
struct StatusChange<'a> {
    user_id: &'a str,
    status: PresenceStatus,
    at: DateTime<Utc>,
}

/// One request: who asks, and the management endpoint of the event that carried it (on AWS the
/// stage's; `None` locally and over HTTP, where the configured one serves).
#[derive(Clone, Copy)]
pub struct Request<'c, 'e> {
    pub caller: &'c Caller,
    pub endpoint: Option<&'e str>,
}

impl ChatService {
    /// Posts go through the real management API client (Lambda, or a gateway's `@connections`).
    pub async fn new(config: Config) -> Result<Self, InitError> {
        let connections = Arc::new(ManagementApi::new(&config).await);
        Self::with_connections(config, connections).await
    }

    /// Posts go where `connections` takes them (the local gateway's own queues).
    pub async fn with_connections(config: Config, connections: Arc<dyn Connections>) -> Result<Self, InitError> {
        // Never an empty HMAC key, whatever path the configuration took.
        if config.jwt_secret.is_empty() {
            return Err(crate::config::ConfigError::Missing("JWT_SECRET_KEY").into());
        }
        let store = Store::connect(&config.database_url, config.db_pool_size, config.db_timeout, config.db_statements)?;
        let redis =
            RedisConn::connect(&config.redis_url, config.redis_ca_file.as_deref(), config.redis_timeout).await?;
        let presence = Presence::new(redis.clone());
        let archive = crate::archive::Archive::new(&config).await;
        let receipts = Receipts::new(redis.clone());
        let workers = Workers::new(&config).await;
        let webhooks = Webhooks::new(&config, store.clone(), presence.clone()).await;
        Ok(Self {
            fanout: Fanout::new(&config, connections, workers, presence.clone(), store.clone(), receipts.clone()),
            store,
            cache: RecentCache::new(redis.clone()),
            limiter: RateLimiter::new(redis, config.rate_limits.clone()),
            receipts,
            presence,
            archive,
            webhooks,
            config,
        })
    }

    /// The service at cold start, its secrets fetched from Secrets Manager when so configured.
    pub async fn from_env() -> Result<Self, InitError> {
        Self::new(Config::load().await?).await
    }

    // ---- connection lifecycle ----

    /// Checks a token's signature, times, and `aud`/`iss` when configured.
    pub fn verify_token(&self, token: &str) -> Result<Claims, AuthError> {
        let expected =
            auth::Expected { audience: self.config.jwt_audience.as_deref(), issuer: self.config.jwt_issuer.as_deref() };
        auth::verify(token, &self.config.jwt_secret, expected)
    }

    /// `$connect`: checks the token and records who the connection is and when its token
    /// expires. Nothing is recorded on failure. Attempts are limited per source IP (before the
    /// token is even read, which also slows token guessing) and per user, and a user holds at
    /// most `max_connections_per_user` connections.
    pub async fn connect(
        &self,
        token: Option<&str>,
        connection_id: &str,
        source_ip: Option<&str>,
        endpoint: Option<&str>,
    ) -> Result<Claims> {
        if let Some(ip) = source_ip {
            self.limit(Limit::ConnectsPerIp, Subject::Ip(ip)).await?;
        }
        let claims = self.verify_token(token.unwrap_or_default())?;
        let caller = Caller::from_claims(&claims, connection_id);
        self.limit(Limit::ConnectsPerUser, Subject::User(&caller)).await?;
        Span::current().record("user_id", caller.user_id.as_str()).record("tenant_id", caller.tenant_id.as_str());
        let max = self.config.max_connections_per_user;
        if self.presence.live_connections(&caller.tenant_id, &caller.user_id, max).await? >= max {
            return Err(ChatError::TooManyConnections { max });
        }
        self.presence.register(&caller, claims.expires_at(), endpoint).await?;
        Ok(claims)
    }

    /// `refresh_token`: a fresh token for the same user and tenant moves the session's expiry;
    /// its roles and name replace the old ones from the next frame on.
    async fn refresh_token(&self, caller: &Caller, token: &str) -> Result<ServerFrame> {
        let claims = self.verify_token(token)?;
        if claims.sub != caller.user_id || claims.tenant_id != caller.tenant_id {
            return Err(AuthError::Invalid("the token is for another user or tenant".into()).into());
        }
        let refreshed = Caller::from_claims(&claims, &caller.connection_id);
        let expires_at = claims.expires_at();
        if !self.presence.refresh(&refreshed, expires_at).await? {
            return Err(ChatError::UnknownConnection);
        }
        // Participants show the name of the user's latest token.
        self.store.seen(&refreshed, Utc::now().trunc_subsecs(6)).await?;
        Ok(ServerFrame::TokenRefreshed { expires_at })
    }

    /// Posts the `connection` frame once the connection is open, then lets fan-out reach it, so
    /// that frame is always the first. API Gateway refuses posts to a connection still in
    /// `$connect`, so this runs just after it (see README, "The connection frame"), and a Gone
    /// answer within the first moments is retried rather than taken as a closed socket.
    pub async fn welcome(&self, connection_id: &str, endpoint: &str) -> Result<()> {
        let caller = self.caller(connection_id).await?;
        // Postgres keeps microseconds: live frames say what a later query will.
        let now = Utc::now().trunc_subsecs(6);
        // Recorded before the frame: once a client holds it, others see its token's name.
        let (unread, ()) = tokio::try_join!(
            self.store.unread_summary(&caller.tenant_id, &caller.user_id),
            self.store.seen(&caller, now)
        )?;
        let frame: Payload = ServerFrame::Connection {
            status: "connected",
            connection_id: caller.connection_id.clone(),
            user_id: caller.user_id.clone(),
            tenant_id: caller.tenant_id.clone(),
            display_name: caller.display_name.clone(),
            server_time: now,
            unread,
        }
        .to_json()
        .into();
        let mut delay = Duration::from_millis(25);
        let deadline = tokio::time::Instant::now() + self.config.prune_grace;
        loop {
            match self.fanout.post(endpoint, connection_id, frame.clone()).await {
                Err(PostError::Gone) if tokio::time::Instant::now() + delay < deadline => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(500));
                }
                result => break result?,
            }
        }
        if self.presence.activate(&caller).await? {
            let (tenant_id, endpoint) = (&caller.tenant_id, Some(endpoint));
            let contacts = self.store.contacts(tenant_id, &caller.user_id, self.config.presence_room_limit).await?;
            let online = StatusChange { user_id: &caller.user_id, status: PresenceStatus::Online, at: now };
            let offline = self.presence_changed(endpoint, tenant_id, online, &contacts).await?;
            self.gone_offline(endpoint, tenant_id, offline).await?;
        }
        Ok(())
    }

    /// `$disconnect`: forgets the connection; the user's last one takes them offline.
    pub async fn disconnect(&self, connection_id: &str, endpoint: Option<&str>) -> Result<()> {
        let Some((caller, last)) = self.presence.unregister(connection_id).await? else {
            return Ok(());
        };
        Span::current().record("user_id", caller.user_id.as_str()).record("tenant_id", caller.tenant_id.as_str());
        if last {
            self.gone_offline(endpoint, &caller.tenant_id, vec![caller.user_id]).await?;
        }
        Ok(())
    }

    /// Users left without connections (a `$disconnect`, or Gone posts pruned): their typing
    /// indicators stop, their last-seen time is stored, and their contacts are told. Those posts
    /// may prune more users, who are told of in turn. Postgres' part is one statement per user:
    /// a crowd disconnecting at once (a deploy, a network split) waits for one pooled
    /// connection each, not three in turn.
    async fn gone_offline(&self, endpoint: Option<&str>, tenant_id: &str, mut users: Vec<String>) -> Result<()> {
        while let Some(user_id) = users.pop() {
            let now = Utc::now().trunc_subsecs(6);
            let WentOffline { typing_in, contacts } =
                self.store.went_offline(tenant_id, &user_id, now, self.config.presence_room_limit).await?;
            for room_id in typing_in {
                let frame = ServerFrame::TypingStop { room_id, user_id: user_id.clone() };
                let typing = [Channel::Typing(room_id)];
                users.extend(
                    self.broadcast(endpoint, tenant_id, Audience::Room(room_id), &frame, Skip::Nobody, &typing).await?,
                );
            }
            let offline = StatusChange { user_id: &user_id, status: PresenceStatus::Offline, at: now };
            users.extend(self.presence_changed(endpoint, tenant_id, offline, &contacts).await?);
        }
        Ok(())
    }

    /// Records the user's status and tells their contacts; `at` is the last-seen time just
    /// stored. Returns the users its posts took offline.
    async fn presence_changed(
        &self,
        endpoint: Option<&str>,
        tenant_id: &str,
        change: StatusChange<'_>,
        contacts: &[String],
    ) -> Result<Vec<String>> {
        let StatusChange { user_id, status, at } = change;
        self.presence.set_status(tenant_id, user_id, status == PresenceStatus::Online, at).await?;
        let frame = ServerFrame::Presence { user_id: user_id.to_string(), status, last_seen: at };
        let channels = [Channel::User(user_id.to_string())];
        self.broadcast(endpoint, tenant_id, Audience::Users(contacts), &frame, Skip::Nobody, &channels).await
    }

    /// One chunk of a fan-out, in the fan-out function.
    pub async fn run_chunk(&self, chunk: crate::fanout::Chunk) -> Result<()> {
        let (endpoint, tenant_id) = (chunk.endpoint.clone(), chunk.tenant_id.clone());
        let offline = self.fanout.run(chunk).await?;
        self.gone_offline(Some(&endpoint), &tenant_id, offline).await
    }

    async fn caller(&self, connection_id: &str) -> Result<Caller> {
        let registered = self.presence.lookup(connection_id).await?.ok_or(ChatError::UnknownConnection)?;
        Ok(registered.caller)
    }

    /// The connection's caller while its token holds.
    async fn session(&self, connection_id: &str) -> Result<Caller> {
        let registered = self.presence.lookup(connection_id).await?.ok_or(ChatError::UnknownConnection)?;
        if registered.expires_at.is_some_and(auth::has_expired) {
            return Err(ChatError::SessionExpired);
        }
        Ok(registered.caller)
    }

    /// Tells the client its token expired, then closes the connection (DeleteConnection). The
    /// error is posted rather than answered: a route response would come after the close.
    async fn end_session(&self, endpoint: Option<&str>, connection_id: &str, reply: String) {
        if let Err(err) = self.fanout.post_to(endpoint, connection_id, reply.into()).await {
            tracing::warn!(error = %err, "expiry not told before closing");
        }
        if let Err(err) = self.fanout.close(endpoint, connection_id).await {
            tracing::warn!(error = %err, "expired connection not closed");
        }
    }

    // ---- client frames ----

    /// `$default`: handles one client frame and returns the reply for the sender, if any. A
    /// change whose fan-out follows (a sent message) posts its reply to the sender first, then
    /// fans out, and returns nothing: the sender's latency does not grow with the room.
    pub async fn handle_frame(&self, connection_id: &str, endpoint: Option<&str>, body: &str) -> Option<String> {
        let started = std::time::Instant::now();
        let (frame, request_id) = match protocol::parse(body) {
            Ok(inbound) => (inbound.frame, inbound.request_id),
            Err((err, request_id)) => return Some(ChatError::from(err).to_frame().reply_json(request_id.as_deref())),
        };
        metrics::frame(frame.kind());
        let result = self
            .bounded(async {
                let caller = self.session(connection_id).await?;
                Span::current()
                    .record("user_id", caller.user_id.as_str())
                    .record("tenant_id", caller.tenant_id.as_str());
                metrics::tenant(&caller.tenant_id);
                self.limit(limit_of(&frame), Subject::User(&caller)).await?;
                self.dispatch(Request { caller: &caller, endpoint }, frame).await
            })
            .await;
        let answer = match result {
            Ok(answer) => answer,
            Err(err) => {
                if matches!(err.code(), ErrorCode::InternalError | ErrorCode::ServiceUnavailable) {
                    tracing::error!(error = %err, "frame failed");
                } else {
                    let refused = if err.code() == ErrorCode::RateLimited {
                        Counter::RateLimited
                    } else {
                        Counter::FramesRefused
                    };
                    metrics::count(refused, 1);
                    tracing::info!(error = %err, "frame refused");
                }
                let reply = err.to_frame().reply_json(request_id.as_deref());
                if matches!(err, ChatError::SessionExpired) {
                    self.end_session(endpoint, connection_id, reply).await;
                    return None;
                }
                return Some(reply);
            }
        };
        let reply = answer.reply.map(|frame| frame.reply_json(request_id.as_deref()));
        let Some(then) = answer.then else { return reply };
        // Committed: the client gets its reply whatever follows. Should the post fail, the
        // reply goes back as the response (API Gateway's route response) after the fan-out.
        let mut unposted = reply;
        if let Some(reply) = &unposted {
            match self.fanout.post_to(endpoint, connection_id, reply.clone().into()).await {
                Ok(()) => unposted = None,
                Err(err) => tracing::warn!(error = %err, "reply not posted ahead of the fan-out"),
            }
        }
        metrics::observe(Histogram::AckLatency, started.elapsed());
        let fanout_started = std::time::Instant::now();
        if let Err(err) = self.bounded(then).await {
            tracing::error!(error = %err, "fan-out after the reply failed");
        }
        metrics::observe(Histogram::FanoutDuration, fanout_started.elapsed());
        unposted
    }

    async fn dispatch<'a>(&'a self, request: Request<'_, 'a>, frame: ClientFrame) -> Result<Answer<'a>> {
        let Request { caller, .. } = request;
        use ClientFrame as F;
        let reply = match frame {
            F::Ping => ServerFrame::Pong,
            F::RefreshToken { token } => self.refresh_token(caller, &token).await?,
            F::PinMessage { message_id } => self.pin_message(request, message_id).await?,
            F::UnpinMessage { message_id } => self.unpin_message(request, message_id).await?,
            F::ListPins { room_id } => self.list_pins(caller, room_id).await?,
            F::FreezeRoom { room_id } => self.freeze_room(request, room_id).await?,
            F::UnfreezeRoom { room_id } => self.unfreeze_room(request, room_id).await?,
            F::SetSlowMode { room_id, seconds } => self.set_slow_mode(request, room_id, seconds).await?,
            F::BlockUser { user_id } => self.block_user(request, &user_id).await?,
            F::UnblockUser { user_id } => self.unblock_user(request, &user_id).await?,
            F::ListBlocked => self.list_blocked(caller).await?,
            F::ReportMessage { message_id, reason } => self.report_message(request, message_id, &reason).await?,
            F::ListReports { room_id, status } => self.list_reports(caller, room_id, status).await?,
            F::ResolveReport { report_id, action } => return self.resolve_report(request, report_id, action).await,
            F::SendMessage(req) => return self.send_message(request, req).await,
            F::CreateRoom(req) => self.create_room(request, req).await?,
            F::JoinRoom { room_id } => self.join_room(request, room_id).await?,
            F::LeaveRoom { room_id } => self.leave_room(request, room_id).await?,
            F::UpdateRoom { room_id, name, description, is_private } => {
                self.update_room(request, room_id, name, description, is_private).await?
            }
            F::Invite { room_id, user_ids } => self.invite(request, room_id, user_ids).await?,
            F::RemoveParticipant { room_id, user_id } => self.remove_participant(request, room_id, &user_id).await?,
            F::SetRole { room_id, user_id, role } => self.set_role(request, room_id, &user_id, role).await?,
            F::MuteUser { room_id, user_id, duration_seconds } => {
                self.mute(request, room_id, &user_id, duration_seconds).await?
            }
            F::UnmuteUser { room_id, user_id } => self.unmute(request, room_id, &user_id).await?,
            F::BanUser { room_id, user_id, reason } => self.ban(request, room_id, &user_id, reason).await?,
            F::UnbanUser { room_id, user_id } => self.unban(request, room_id, &user_id).await?,
            F::ListRooms { room_type } => self.list_rooms(caller, room_type).await?,
            F::GetPresence { user_ids } => self.presence_of(caller, user_ids).await?,
            F::Announce { content } => self.announce(request, content).await?,
            F::EditMessage { message_id, content } => self.edit_message(request, message_id, content).await?,
            F::DeleteMessage { message_id } => self.delete_message(request, message_id).await?,
            F::GetEditHistory { message_id } => self.edit_history(caller, message_id).await?,
            F::AddReaction { message_id, emoji } => self.react(request, message_id, emoji, ReactionChange::Add).await?,
            F::RemoveReaction { message_id, emoji } => {
                self.react(request, message_id, emoji, ReactionChange::Remove).await?
            }
            F::GetThread { message_id, after, limit } => self.thread(caller, message_id, after, limit).await?,
            F::GetReceipts { message_id } => self.receipts(caller, message_id).await?,
            F::GetUnread => {
                ServerFrame::Unread { rooms: self.store.unread_summary(&caller.tenant_id, &caller.user_id).await? }
            }
            F::TypingStart { room_id } => return self.typing(request, room_id, Typing::Start).await.map(Answer::from),
            F::TypingStop { room_id } => return self.typing(request, room_id, Typing::Stop).await.map(Answer::from),
            F::MarkRead { room_id, message_ids } => self.mark_read(request, room_id, &message_ids).await?,
            F::GetHistory(req) => self.history(caller, req).await?,
        };
        Ok(Answer::from(Some(reply)))
    }

    /// Runs a request within the request timeout. Work cut short may still have been stored;
    /// a client retrying with the same `client_msg_id` gets the stored message, not a copy.
    pub async fn bounded<T>(&self, request: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.config.request_timeout, request).await.unwrap_or(Err(ChatError::Timeout))
    }

    /// Takes a token from the subject's bucket, or refuses with how long to wait.
    pub async fn limit(&self, limit: Limit, subject: Subject<'_>) -> Result<()> {
        self.limiter.take(limit, subject).await?.map_err(|retry_after_ms| ChatError::RateLimited { retry_after_ms })
    }

    /// The caller's membership of a room; rooms of other tenants look the same as missing ones.
    async fn member(&self, caller: &Caller, room_id: Uuid) -> Result<Membership> {
        Span::current().record("room_id", room_id.to_string());
        if let Some(membership) = self.store.membership(&caller.tenant_id, room_id, &caller.user_id).await? {
            return Ok(membership);
        }
        match self.store.room(&caller.tenant_id, room_id).await? {
            Some(_) => Err(ChatError::PermissionDenied("you are not a member of this room".into())),
            None => Err(ChatError::NotFound("room")),
        }
    }

    /// Room admins and tenant admins see deleted messages' content; members see that they were deleted.
    fn sees_deleted(caller: &Caller, membership: &Membership) -> bool {
        membership.role == Role::Admin || caller.is_tenant_admin()
    }

    /// Messages as this caller sees them: with their reactions, and deleted content hidden from
    /// those who may not see it.
    async fn present(
        &self,
        caller: &Caller,
        membership: &Membership,
        mut messages: Vec<Message>,
    ) -> Result<Vec<Message>> {
        let missing: Vec<Uuid> = messages.iter().filter(|m| m.reactions.is_empty()).map(|m| m.id).collect();
        let mut reactions = self.store.reactions(&caller.tenant_id, &missing).await?;
        let sees_deleted = Self::sees_deleted(caller, membership);
        for message in &mut messages {
            if let Some(r) = reactions.remove(&message.id) {
                message.reactions = r;
            }
        }
        Ok(messages.into_iter().map(|m| if sees_deleted { m } else { m.redacted() }).collect())
    }

    // ---- typing cleanup ----

    /// Sweeps expired typing indicators and tells their rooms `typing_stop`. Returns how many.
    /// The scheduled sweep: expired typing indicators stop, and one step of the walk over the
    /// connection registry prunes connections that ended unnoticed. Returns the indicators stopped.
    pub async fn sweep(&self, endpoint: Option<&str>) -> Result<usize> {
        let expired = self.store.sweep_expired_typing().await?;
        for t in &expired {
            let frame = ServerFrame::TypingStop { room_id: t.room_id, user_id: t.user_id.clone() };
            let channels = [Channel::Typing(t.room_id)];
            self.fan_out_room(endpoint, &t.tenant_id, t.room_id, &frame, Skip::User(&t.user_id), &channels).await;
        }
        for (tenant_id, user_id) in self.fanout.sweep(endpoint).await? {
            self.gone_offline(endpoint, &tenant_id, vec![user_id]).await?;
        }
        Ok(expired.len())
    }

    // ---- fan-out ----

    /// Tells a room's members of the caller's change, on every connection but the caller's
    /// own (which has the reply) and on the room's channel.
    async fn tell_room(&self, request: Request<'_, '_>, room_id: Uuid, frame: &ServerFrame) {
        let Request { caller, endpoint } = request;
        let skip = Skip::Connection(&caller.connection_id);
        self.fan_out_room(endpoint, &caller.tenant_id, room_id, frame, skip, &[Channel::Room(room_id)]).await
    }

    async fn fan_out_room(
        &self,
        endpoint: Option<&str>,
        tenant_id: &str,
        room_id: Uuid,
        frame: &ServerFrame,
        skip: Skip<'_>,
        channels: &[Channel],
    ) {
        self.deliver(endpoint, tenant_id, Audience::Room(room_id), frame, skip, channels).await
    }

    /// Posts the frame to every connection of the audience and publishes it on the channels,
    /// then tells of the users its posts took offline. It follows a committed change, so a
    /// failure is logged, never the request's: clients catch up from history and positions.
    async fn deliver(
        &self,
        endpoint: Option<&str>,
        tenant_id: &str,
        audience: Audience<'_>,
        frame: &ServerFrame,
        skip: Skip<'_>,
        channels: &[Channel],
    ) {
        let told = async {
            let offline = self.broadcast(endpoint, tenant_id, audience, frame, skip, channels).await?;
            self.gone_offline(endpoint, tenant_id, offline).await
        };
        if let Err(err) = told.await {
            tracing::warn!(error = %err, "fan-out after a committed change failed");
        }
    }

    /// Posts the frame to every connection of the audience and publishes it on the channels;
    /// returns the users its posts took offline.
    async fn broadcast(
        &self,
        endpoint: Option<&str>,
        tenant_id: &str,
        audience: Audience<'_>,
        frame: &ServerFrame,
        skip: Skip<'_>,
        channels: &[Channel],
    ) -> Result<Vec<String>> {
        let payload: Payload = frame.to_json().into();
        let (offline, ()) = tokio::join!(
            self.fanout.to(endpoint, tenant_id, audience, (&payload).into(), skip, None),
            self.publish(tenant_id, channels, frame)
        );
        Ok(offline?)
    }

    /// Empties the room's recent-message cache after a committed change. A failure is only
    /// logged: the room's change count in Postgres already keeps the cache from serving the
    /// page it would have emptied.
    async fn uncache(&self, room_id: Uuid) {
        if let Err(err) = self.cache.invalidate(room_id).await {
            tracing::warn!(error = %err, %room_id, "recent-message cache not emptied");
        }
    }

    async fn publish(&self, tenant_id: &str, channels: &[Channel], frame: &ServerFrame) {
        if let Err(err) = channels::publish(self.presence.redis(), tenant_id, channels, frame).await {
            tracing::warn!(error = %err, "publishing on redis channels failed");
        }
    }
}

/// The bucket a frame draws from: sending is limited apart from typing and from everything else.
fn limit_of(frame: &ClientFrame) -> Limit {
    use ClientFrame as F;
    match frame {
        F::SendMessage(_)
        | F::EditMessage { .. }
        | F::AddReaction { .. }
        | F::RemoveReaction { .. }
        | F::Announce { .. } => Limit::Messages,
        F::TypingStart { .. } | F::TypingStop { .. } => Limit::Typing,
        _ => Limit::Frames,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_details() {
        let frame = ChatError::Fanout(FanoutError::NoEndpoint).to_frame();
        assert!(
            matches!(frame, ServerFrame::Error { code: ErrorCode::InternalError, ref message, .. } if message == "internal error")
        );
        assert_eq!(ChatError::PermissionDenied("x".into()).http_status(), 403);
    }
}
