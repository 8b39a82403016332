//! Load against the release local gateway, run as a separate process.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream;
use futures::{SinkExt, StreamExt};
use integration_tests::lambda::LocalLambda;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

use crate::exchange::DEADLINE;
use crate::fan_out::Server;
use crate::wire::{Protocol, Ws};

/// The workspace's build with symbols (`cargo build --profile profiling`), to profile under load.
pub fn release_binary(name: &str) -> String {
    format!("{}/../target/profiling/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub struct Gateway {
    child: Child,
    pub port: u16,
    pub secret: String,
}

impl Gateway {
    pub async fn start() -> Self {
        let secret = uuid::Uuid::new_v4().to_string();
        let limits = ["MESSAGES", "TYPING", "FRAMES", "CONNECTS_PER_USER", "CONNECTS_PER_IP", "HTTP", "HTTP_PER_IP"];
        let mut command = Command::new(release_binary("local-gateway"));
        command
            .env("JWT_SECRET_KEY", &secret)
            .env("RUST_LOG", std::env::var("BENCH_GATEWAY_LOG").unwrap_or_else(|_| "error".into()));
        for limit in limits {
            command.env(format!("RATE_LIMIT_{limit}"), "off");
        }
        let status = Command::new(release_binary("local-gateway"))
            .env("JWT_SECRET_KEY", &secret)
            .arg("migrate")
            .status()
            .await
            .expect("migrate");
        assert!(status.success());
        let mut child =
            command.args(["serve", "--port", "0"]).stdout(Stdio::piped()).kill_on_drop(true).spawn().expect("gateway");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            let line = lines.next_line().await.unwrap().expect("gateway exited");
            if let Some(address) = line.strip_prefix("local gateway listening on http://") {
                break address.rsplit_once(':').unwrap().1.parse().unwrap();
            }
        };
        // What the gateway logs (errors only, unless BENCH_GATEWAY_LOG says otherwise).
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("gateway: {line}");
            }
        });
        Self { child, port, secret }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    fn rss_kib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Waits until every closed connection has been through `$disconnect` (`open` are still
    /// held), so the next scenario does not share the machine with that work.
    pub async fn settle(&self, open: usize) {
        // Every tenant's connections: the registry itself (health says nothing of tenants).
        let redis_url = std::env::var("REDIS_URL").expect("REDIS_URL");
        let ca_file = std::env::var("REDIS_CA_FILE").ok();
        let redis = shared::redis_conn::RedisConn::connect(&redis_url, ca_file.as_deref(), Duration::from_secs(5))
            .await
            .expect("redis");
        let presence = shared::presence::Presence::new(redis);
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if presence.active_connections().await.expect("redis") == open as i64 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!("bench: connections still open after {DEADLINE:?}");
    }

    pub fn management_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, gateway::STAGE)
    }

    /// A connected client and its connection id.
    async fn connect(&self, tenant: &str, user: &str) -> (Ws, String) {
        let token = shared::auth::mint(&self.secret, tenant, user, None, 3600);
        let url = format!("ws://127.0.0.1:{}/api/v1/ws/chat?token={token}", self.port);
        // As browsers do, send small frames without waiting on Nagle.
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await.expect("connect");
        let hello = next_frame(&mut ws).await;
        (ws, hello["connection_id"].as_str().unwrap().to_string())
    }

    pub async fn connect_many(&self, tenant: &str, users: &[String]) -> Vec<(Ws, String)> {
        let clients: Vec<_> = stream::iter(users).map(|u| self.connect(tenant, u)).buffered(100).collect().await;
        clients
    }
}

impl Server for Gateway {
    fn protocol(&self) -> Protocol {
        Protocol::Ours
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// In a tenant of their own, each room made by its first member with the others in it.
    async fn rooms(&self, size: usize, rooms: usize) -> (Vec<Ws>, Vec<String>) {
        let tenant = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let users: Vec<String> = (0..size * rooms).map(|i| format!("u{i}")).collect();
        let mut clients: Vec<Ws> = self.connect_many(&tenant, &users).await.into_iter().map(|(ws, _)| ws).collect();
        let mut room_ids = Vec::new();
        for room in 0..rooms {
            let members = &users[room * size + 1..(room + 1) * size];
            let created = request(
                &mut clients[room * size],
                json!({ "type": "create_room", "name": "bench", "room_type": "group", "participants": members }),
            )
            .await;
            room_ids.push(created["room"]["id"].as_str().expect("room created").to_string());
        }
        (clients, room_ids)
    }

    /// Every connection has been through `$disconnect`.
    async fn closed(&self) {
        self.settle(0).await;
    }
}

async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await.expect("socket closed").expect("socket error") {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            _ => continue,
        }
    }
}

/// Sends a frame and reads until its reply (other frames are dropped).
pub async fn request(ws: &mut Ws, mut frame: Value) -> Value {
    frame["request_id"] = json!("bench");
    ws.send(Message::Text(frame.to_string().into())).await.unwrap();
    loop {
        let reply = next_frame(ws).await;
        if reply["request_id"] == "bench" {
            return reply;
        }
    }
}

pub struct Idle {
    pub held: usize,
    pub rss_per_connection_kib: f64,
    pub opened_per_sec: f64,
}

pub async fn idle_connections(gateway: &Gateway, count: usize) -> Idle {
    let tenant = format!("idle-{}", uuid::Uuid::new_v4().simple());
    let users: Vec<String> = (0..count).map(|i| format!("idle{i}")).collect();
    let before = gateway.rss_kib();
    let started = Instant::now();
    let clients = gateway.connect_many(&tenant, &users).await;
    let opened_per_sec = count as f64 / started.elapsed().as_secs_f64();
    let after = gateway.rss_kib();
    let held = clients.len();
    drop(clients);
    gateway.settle(0).await;
    Idle { held, rss_per_connection_kib: (after - before) / held as f64, opened_per_sec }
}

pub struct Cost {
    pub cpu_ms: f64,
    pub wall_ms: f64,
    pub allocations: f64,
}

fn thread_cpu() -> Duration {
    Duration::from_millis(crate::cpu::ticks("/proc/thread-self/stat") * 10)
}

/// The message-route handler called in-process on a thread of its own, for a send_message in a
/// two-member room: CPU time and allocations per invocation, what a Lambda bill follows.
pub async fn invocation_cost(gateway: &Gateway, invocations: usize) -> Cost {
    let tenant = format!("cost-{}", uuid::Uuid::new_v4().simple());
    let (mut alice, connection) = gateway.connect(&tenant, "alice").await;
    let (_bob, _) = gateway.connect(&tenant, "bob").await;
    let room = request(
        &mut alice,
        json!({ "type": "create_room", "name": "cost", "room_type": "group", "participants": ["bob"] }),
    )
    .await;
    let room = room["room"]["id"].as_str().unwrap().to_string();
    let mut config = shared::Config::from_env().expect("configuration");
    config.jwt_secret = gateway.secret.clone();
    config.management_endpoint = Some(gateway.management_endpoint());
    config.rate_limits = shared::ratelimit::RateLimits::OFF;
    let endpoint = gateway.management_endpoint();
    let context = Arc::new(gateway::ConnectionContext {
        connection_id: connection,
        connected_at_ms: 0,
        source_ip: "127.0.0.1".into(),
        user_agent: None,
        domain_name: endpoint,
        stage: gateway::STAGE.into(),
    });
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let service = shared::ChatService::new(config).await.unwrap();
            let event = |i: usize| {
                context.message(
                    json!({ "type": "send_message", "room_id": room, "content": format!("cost {i}") }).to_string(),
                )
            };
            for i in 0..50 {
                shared::handlers::message(&service, event(i)).await;
            }
            let (cpu, allocations, wall) =
                (thread_cpu(), crate::alloc::ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed), Instant::now());
            for i in 0..invocations {
                let response = shared::handlers::message(&service, event(i)).await;
                debug_assert_eq!(response.status_code, 200);
            }
            let n = invocations as f64;
            Cost {
                cpu_ms: (thread_cpu() - cpu).as_secs_f64() * 1000.0 / n,
                wall_ms: wall.elapsed().as_secs_f64() * 1000.0 / n,
                allocations: (crate::alloc::ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed) - allocations)
                    as f64
                    / n,
            }
        })
    })
    .join()
    .unwrap()
}

/// Each release function binary from process start to its first response.
pub async fn cold_starts(gateway: &Gateway) -> Vec<(String, Duration)> {
    let env = vec![
        ("DATABASE_URL", std::env::var("DATABASE_URL").unwrap()),
        ("REDIS_URL", std::env::var("REDIS_URL").unwrap()),
        ("JWT_SECRET_KEY", gateway.secret.clone()),
        ("APIGW_MANAGEMENT_ENDPOINT", gateway.management_endpoint()),
    ];
    let websocket = |route: &str, body: Option<&str>| {
        json!({ "requestContext": { "routeKey": route, "connectionId": "ColdStartConn=", "domainName": "localhost",
                "stage": gateway::STAGE, "identity": { "sourceIp": "127.0.0.1" }, "connectedAt": 0, "requestTimeEpoch": 0 },
                "queryStringParameters": { "token": "none" }, "body": body, "isBase64Encoded": false })
    };
    let events = [
        ("connect", websocket("$connect", None)),
        ("message-route", websocket("$default", Some(r#"{"type":"ping"}"#))),
        ("disconnect", websocket("$disconnect", None)),
        ("typing-cleanup", json!({ "detail-type": "Scheduled Event", "source": "aws.events" })),
        (
            "http-api",
            json!({ "version": "2.0", "rawPath": "/api/v1/chat/health", "headers": {},
            "requestContext": { "http": { "method": "GET", "path": "/api/v1/chat/health", "sourceIp": "127.0.0.1" } } }),
        ),
    ];
    let mut figures = Vec::new();
    for (name, event) in events {
        let mut lambda = LocalLambda::with_binary(name, release_binary(name).into()).await;
        let (outcome, cold) = lambda.cold_start(&env, event).await;
        assert!(outcome.is_ok(), "{name}: {outcome:?}");
        figures.push((name.to_string(), cold));
    }
    figures
}
