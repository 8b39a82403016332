//! Test helpers: each test gets its own Postgres database and tenant, and a local gateway on a
//! random port, and drives it through real WebSocket clients.
//!
//! `DATABASE_URL` names a server the tests may create databases on and `REDIS_URL` a Redis
//! (`REDIS_CA_FILE` its private CA, for `rediss://`); `make test` brings up private ones when
//! they are not set.

pub mod contract;
pub mod faults;
pub mod lambda;
pub mod webhook;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use gateway::RunningGateway;
use serde_json::{json, Value};
use shared::Config;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame it expects before failing.
pub const WAIT: Duration = Duration::from_secs(10);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests with `make test`"))
}

/// The private CA of a `rediss://` `REDIS_URL`, if it has one.
pub fn redis_ca_file() -> Option<String> {
    std::env::var("REDIS_CA_FILE").ok().filter(|v| !v.is_empty())
}

/// Replaces the database name of a `postgres://` URL, keeping its parameters (such as `sslmode`).
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("DATABASE_URL is a URL");
    let (authority, query) = match rest.split_once('/') {
        Some((authority, path)) => (authority, path.split_once('?').map(|(_, q)| q)),
        None => (rest, None),
    };
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

/// A fresh, migrated database on `DATABASE_URL`'s server; returns its URL.
pub async fn fresh_database() -> String {
    fresh_database_on(&env("DATABASE_URL")).await
}

/// A fresh, migrated database on the server of `server_url`; returns its URL.
pub async fn fresh_database_on(server_url: &str) -> String {
    let server = shared::config::normalize_database_url(server_url);
    let name = format!("chat_test_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) = shared::store::connect_one(&server).await.expect("connect to the database server");
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    let url = with_database(&server, &name);
    shared::store::Store::connect(&url, 1, Duration::from_secs(30), statements())
        .unwrap()
        .migrate()
        .await
        .expect("migrate");
    url
}

/// The test command runs the main suites through PgBouncer with `DB_STATEMENTS=unnamed`.
pub fn statements() -> shared::store::StatementMode {
    std::env::var("DB_STATEMENTS").map_or(shared::store::StatementMode::Prepared, |v| v.parse().expect("DB_STATEMENTS"))
}

/// A configuration for one test: its own database, a random secret, fast typing expiry.
pub async fn test_config() -> Config {
    config_with(fresh_database().await, env("REDIS_URL"), redis_ca_file())
}

/// The same with the given database and Redis.
pub fn config_with(database_url: String, redis_url: String, redis_ca_file: Option<String>) -> Config {
    Config {
        database_url,
        redis_url,
        redis_ca_file,
        jwt_secret: uuid::Uuid::new_v4().to_string(),
        jwt_audience: None,
        jwt_issuer: None,
        max_connections_per_user: 20,
        management_endpoint: None,
        aws_region: "us-east-1".into(),
        use_aws_credentials: false,
        db_pool_size: 8,
        db_statements: statements(),
        db_timeout: Duration::from_secs(5),
        redis_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(8),
        prune_grace: Duration::from_secs(5),
        fanout_concurrency: 32,
        fanout_chunk: 500,
        fanout_function: None,
        // The test command's second run of the main suites takes the big-room paths everywhere (0).
        fanout_member_list_max: std::env::var("FANOUT_MEMBER_LIST_MAX")
            .map_or(500, |v| v.parse().expect("FANOUT_MEMBER_LIST_MAX")),
        presence_room_limit: 100,
        typing_ttl: Duration::from_secs(10),
        typing_sweep_interval: Duration::from_millis(200),
        sweep_window: Duration::ZERO,
        // Tests that are about limits set their own.
        rate_limits: shared::ratelimit::RateLimits::OFF,
        // The archive suite sets a bucket; S3_ENDPOINT names the local S3-compatible server.
        archive_bucket: None,
        archive_after: Duration::from_secs(365 * 86_400),
        archive_batch: 5000,
        s3_endpoint: std::env::var("S3_ENDPOINT").ok(),
        dev_tokens: false,
        // The test command runs the main suites both ways (GATEWAY_DELIVERY=sdk the second time).
        gateway_delivery: std::env::var("GATEWAY_DELIVERY")
            .ok()
            .map_or(shared::config::GatewayDelivery::InProcess, |v| v.parse().expect("GATEWAY_DELIVERY")),
        // The test command runs the main suites both ways (1 the second time).
        gateway_frame_concurrency: std::env::var("GATEWAY_FRAME_CONCURRENCY")
            .map_or(8, |v| v.parse().expect("GATEWAY_FRAME_CONCURRENCY")),
        gateway_max_in_flight: 256,
        gateway_ping_interval: Duration::from_secs(30),
        metrics_namespace: "ChatBackend".into(),
        metrics_by_tenant: false,
        // The webhook suites' receivers are on this machine; their retries quick.
        webhook_queue_url: None,
        sqs_endpoint: std::env::var("S3_ENDPOINT").ok(),
        webhook_allow_http: true,
        webhook_max_in_flight: 16,
        webhook_retry_base: Duration::from_millis(50),
        webhook_max_attempts: 4,
        webhook_ca_certs: Vec::new(),
        web_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/web").into(),
        js_client_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/js/dist").into(),
    }
}

/// A new bucket on the local S3-compatible server (`S3_ENDPOINT`), through the real SDK client.
pub async fn archive_bucket() -> String {
    let bucket = format!("chat-archive-{}", uuid::Uuid::new_v4().simple());
    let sdk = shared::aws::sdk_config_for("us-east-1", false).await;
    let s3 = shared::archive::s3_client(&sdk, Some(&env("S3_ENDPOINT")));
    s3.create_bucket().bucket(&bucket).send().await.expect("create bucket");
    bucket
}

pub struct TestApp {
    pub gateway: RunningGateway,
    pub tenant: String,
    pub secret: String,
    pub database_url: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config().await).await
}

pub async fn spawn_app_with(config: Config) -> TestApp {
    shared::telemetry::init();
    let secret = config.jwt_secret.clone();
    let database_url = config.database_url.clone();
    let gateway = gateway::start(config, "127.0.0.1:0".parse().unwrap()).await.expect("start gateway");
    TestApp { gateway, tenant: format!("tenant-{}", uuid::Uuid::new_v4().simple()), secret, database_url }
}

impl TestApp {
    pub fn token(&self, user: &str) -> String {
        shared::auth::mint(&self.secret, &self.tenant, user, Some(&display_name(user)), 3600)
    }

    /// A WebSocket with the given token, before any frame is read.
    pub async fn open(&self, token: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let (ws, _) = tokio_tungstenite::connect_async(self.gateway.ws_url(token)).await?;
        Ok(ws)
    }

    /// The same from a given loopback address (127.0.0.0/8), as a distinct client IP.
    pub async fn open_from(
        &self,
        ip: std::net::Ipv4Addr,
        token: &str,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((ip, 0).into())?;
        self.open_over(socket.connect(self.gateway.addr).await?, token).await
    }

    /// The same over a given TCP stream (e.g. through a proxy).
    pub async fn open_over(
        &self,
        stream: tokio::net::TcpStream,
        token: &str,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let (ws, _) =
            tokio_tungstenite::client_async(self.gateway.ws_url(token), MaybeTlsStream::Plain(stream)).await?;
        Ok(ws)
    }

    /// A connected client of `user`, its `connection` frame already read.
    pub async fn connect(&self, user: &str) -> Client {
        self.connect_as(user, &[]).await.0
    }

    /// A connected client of `user` holding tenant-wide `roles`, and its `connection` frame.
    pub async fn connect_as(&self, user: &str, roles: &[&str]) -> (Client, Value) {
        self.connect_with(user, &self.token_with_roles(user, roles)).await
    }

    /// A connected client of `user` with the given token, and its `connection` frame.
    pub async fn connect_with(&self, user: &str, token: &str) -> (Client, Value) {
        self.client_on(user, self.open(token).await.expect("connect")).await
    }

    /// A connected client of `user` through the proxy at `via`.
    pub async fn connect_via(&self, via: std::net::SocketAddr, user: &str) -> Client {
        let stream = tokio::net::TcpStream::connect(via).await.expect("connect to the proxy");
        self.client_on(user, self.open_over(stream, &self.token(user)).await.expect("connect")).await.0
    }

    /// A client of `user` on an opened socket, once its `connection` frame has come.
    async fn client_on(&self, user: &str, ws: Ws) -> (Client, Value) {
        let mut client = Client { ws, user: user.to_string(), connection_id: String::new(), next_request: 0 };
        let hello = client.recv().await;
        assert_eq!(hello["type"], "connection", "first frame: {hello}");
        assert_eq!(hello["status"], "connected");
        client.connection_id = hello["connection_id"].as_str().unwrap().to_string();
        // The gateway reads frames only once the welcome (and its presence fan-out) is done,
        // so a ping's answer means this connection is fully set up.
        client.assert_quiet().await;
        (client, hello)
    }

    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) = shared::store::connect_one(&self.database_url).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// The single number a query returns, e.g. a count.
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.db().await.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// `GET /api/v1/chat/{path}` with `user`'s token (or none), returning status and JSON body.
    pub async fn get(&self, path: &str, user: Option<&str>) -> (u16, Value) {
        self.get_with(path, user.map(|u| self.token(u))).await
    }

    pub async fn get_with(&self, path: &str, token: Option<String>) -> (u16, Value) {
        self.http(reqwest::Method::GET, path, token, None).await
    }

    /// `/api/v1/chat/{path}` with the method, token and JSON body given, returning status and JSON body.
    pub async fn http(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<String>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("http://{}/api/v1/chat/{path}", self.gateway.addr);
        let mut request = reqwest::Client::new().request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = tokio::time::timeout(WAIT, request.send()).await.expect("no HTTP answer in time").unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// A token of `user` holding tenant-wide `roles`.
    pub fn token_with_roles(&self, user: &str, roles: &[&str]) -> String {
        shared::auth::mint_with_roles(&self.secret, &self.tenant, user, Some(&display_name(user)), 3600, roles)
    }

    /// A subscription to Redis channels for this test's tenant, ready before this returns.
    pub async fn subscribe(&self, channels: &[String]) -> Subscription {
        // On a cluster, PUBLISH reaches subscribers on every node: any one of them will do.
        let url = env("REDIS_URL");
        let node = shared::redis_conn::cluster_nodes(&url).map_or(url, |nodes| nodes[0].clone());
        let client = shared::redis_conn::client(&node, redis_ca_file().as_deref()).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        for channel in channels {
            pubsub.subscribe(channel).await.unwrap();
        }
        Subscription { pubsub, tenant: self.tenant.clone() }
    }

    /// The system's own kind of Redis connection (one node or a cluster, as configured).
    pub async fn redis(&self) -> shared::redis_conn::RedisConn {
        let ca_file = redis_ca_file();
        shared::redis_conn::RedisConn::connect(&env("REDIS_URL"), ca_file.as_deref(), Duration::from_secs(5))
            .await
            .unwrap()
    }

    /// Creates a room through `owner` with the other clients as participants; each of them
    /// receives `room_created`. Returns the room id.
    pub async fn room(&self, owner: &mut Client, others: &mut [&mut Client], extra: Value) -> String {
        let mut frame = json!({
            "type": "create_room",
            "name": "Room",
            "room_type": "group",
            "participants": others.iter().map(|c| c.user.clone()).collect::<Vec<_>>(),
        });
        merge(&mut frame, extra);
        let reply = owner.request(frame).await;
        assert_eq!(reply["type"], "room_created", "{reply}");
        let room_id = reply["room"]["id"].as_str().unwrap().to_string();
        for other in others.iter_mut() {
            let event = other.expect("room_created").await;
            assert_eq!(event["room"]["id"], room_id.as_str());
        }
        room_id
    }
}

pub fn display_name(user: &str) -> String {
    let mut chars = user.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn merge(target: &mut Value, extra: Value) {
    if let (Value::Object(target), Value::Object(extra)) = (target, extra) {
        target.extend(extra);
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Client {
    pub ws: Ws,
    pub user: String,
    pub connection_id: String,
    next_request: u64,
}

impl Client {
    /// Sends a frame, which must match the protocol's schemas (`contract`).
    pub async fn send(&mut self, frame: Value) {
        contract::sent(&frame);
        self.send_text(frame.to_string()).await;
    }

    /// Sends a frame the schemas refuse, for tests of what the server does with one.
    pub async fn send_invalid(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    /// Sends any text at all, unchecked.
    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::Text(text.into())).await.expect("send");
    }

    /// The next frame, failing the test when none comes in time or it does not match the
    /// protocol's schemas.
    pub async fn recv(&mut self) -> Value {
        let frame = self.recv_unchecked().await;
        contract::received(&frame);
        frame
    }

    /// The next frame, whatever it is (the management API posts anything it is given).
    pub async fn recv_unchecked(&mut self) -> Value {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no frame within {WAIT:?}", self.user));
            match next {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).expect("frames are JSON"),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("{}: expected a frame, got {other:?}", self.user),
            }
        }
    }

    /// The next frame, which must be of type `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let frame = self.recv().await;
        assert_eq!(frame["type"], kind, "{} expected {kind}, got {frame}", self.user);
        frame
    }

    /// Sends a frame with a fresh `request_id` and returns the reply carrying it, failing on
    /// any other frame in between (events must not arrive unannounced in these tests).
    pub async fn request(&mut self, frame: Value) -> Value {
        contract::sent(&frame);
        self.exchange(frame).await
    }

    /// The same with a frame the schemas refuse, for tests of what the server does with one.
    pub async fn request_invalid(&mut self, frame: Value) -> Value {
        self.exchange(frame).await
    }

    async fn exchange(&mut self, mut frame: Value) -> Value {
        self.next_request += 1;
        let id = format!("{}-{}", self.user, self.next_request);
        frame["request_id"] = json!(id);
        self.send_text(frame.to_string()).await;
        let reply = self.recv().await;
        assert_eq!(reply["request_id"], id.as_str(), "{} expected the reply to {id}, got {reply}", self.user);
        contract::answered(&frame, &reply);
        reply
    }

    /// Reads and drops every event already posted to this client (those queued before the
    /// answer to a ping), for tests about what was stored rather than what was told.
    pub async fn drain(&mut self) {
        self.next_request += 1;
        let id = format!("{}-{}", self.user, self.next_request);
        self.send(json!({ "type": "ping", "request_id": id })).await;
        while self.recv().await["request_id"] != id.as_str() {}
    }

    /// Asserts nothing is waiting for this client: everything already posted to it is queued
    /// before the reply to a ping, so the ping's pong must come first.
    pub async fn assert_quiet(&mut self) {
        let pong = self.request(json!({ "type": "ping" })).await;
        assert_eq!(pong["type"], "pong", "{} was sent {pong}", self.user);
    }
}

pub struct Subscription {
    pubsub: redis::aio::PubSub,
    tenant: String,
}

impl Subscription {
    /// The next envelope published for this tenant, and its channel. `user:` channels are shared
    /// by every tenant's users of the same id, so subscribers filter on `tenant_id`.
    pub async fn next(&mut self) -> (String, Value) {
        let mut stream = self.pubsub.on_message();
        loop {
            let message = tokio::time::timeout(WAIT, stream.next())
                .await
                .expect("no publication in time")
                .expect("subscription ended");
            let envelope: Value = serde_json::from_str(&message.get_payload::<String>().unwrap()).unwrap();
            if envelope["tenant_id"] == self.tenant.as_str() {
                contract::published(&envelope);
                return (message.get_channel_name().to_string(), envelope);
            }
        }
    }
}
