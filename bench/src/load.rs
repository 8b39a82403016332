//! Load against the release local gateway, run as a separate process.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, SplitStream};
use futures::{SinkExt, StreamExt};
use integration_tests::lambda::LocalLambda;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const DEADLINE: Duration = Duration::from_secs(60);

fn release_binary(name: &str) -> String {
    format!("{}/../target/release/{name}", env!("CARGO_MANIFEST_DIR"))
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
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id().unwrap())).unwrap();
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

    /// Waits until the gateway uses next to no CPU: the follow-up work of what came before (such
    /// as telling contacts that members came online) is over.
    pub async fn idle(&self) {
        let stat = format!("/proc/{}/stat", self.child.id().unwrap());
        let deadline = Instant::now() + DEADLINE;
        let mut used = cpu_ticks(&stat);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = cpu_ticks(&stat);
            if now - used <= 1 {
                return;
            }
            used = now;
        }
        eprintln!("bench: gateway still busy after {DEADLINE:?}");
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

#[derive(Default)]
pub struct FanOut {
    /// Stored and acknowledged.
    pub messages: usize,
    /// Sends answered with an error frame.
    pub failed: usize,
    pub messages_per_sec: f64,
    pub deliveries_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    /// From sending to the sender's `message_sent` (the peer's load generator does not time these).
    pub ack_p50: Duration,
    pub ack_p99: Duration,
}

/// `rooms` rooms of `size` members; in each, `senders` members send `per_sender` messages each,
/// each waiting for its acknowledgement (stored in Postgres) before the next. Latency is from
/// sending to delivery at each other member.
pub async fn fan_out(gateway: &Gateway, size: usize, senders: usize, per_sender: usize, rooms: usize) -> FanOut {
    let tenant = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let users: Vec<String> = (0..size * rooms).map(|i| format!("u{i}")).collect();
    let mut clients = gateway.connect_many(&tenant, &users).await;
    let mut room_ids = Vec::new();
    for room in 0..rooms {
        let members = &users[room * size + 1..(room + 1) * size];
        let created = request(
            &mut clients[room * size].0,
            json!({ "type": "create_room", "name": "bench", "room_type": "group", "participants": members }),
        )
        .await;
        room_ids.push(created["room"]["id"].as_str().expect("room created").to_string());
    }
    let parts = clients
        .into_iter()
        .enumerate()
        .map(|(i, (ws, _))| {
            let sends = i % size < senders;
            Part {
                ws,
                sends_to: sends.then(|| room_ids[i / size].clone()),
                deliveries: senders * per_sender - if sends { per_sender } else { 0 },
            }
        })
        .collect();
    let (figures, clients) = exchange(parts, per_sender).await;
    drop(clients);
    gateway.settle(0).await;
    figures
}

/// A client of an exchange: the room it sends to, if it sends, and how many deliveries it awaits.
pub struct Part {
    pub ws: Ws,
    pub sends_to: Option<String>,
    pub deliveries: usize,
}

/// Each sender sends `per_sender` messages, each after the previous one's answer (its
/// acknowledgement or an error); every client reads until its deliveries have arrived (or
/// `DEADLINE`). Delivery latency is from sending to arrival, ack latency from sending to
/// `message_sent`. Gives the sockets back, in order, for the next scenario.
pub async fn exchange(parts: Vec<Part>, per_sender: usize) -> (FanOut, Vec<Ws>) {
    let base = Instant::now();
    let (latency_tx, mut latency_rx) = mpsc::unbounded_channel::<u64>();
    let mut clients = Vec::new();
    for Part { ws, sends_to, deliveries } in parts {
        let (sink, stream) = ws.split();
        let (answer_tx, answers) = mpsc::unbounded_channel::<bool>();
        let sends = if sends_to.is_some() { per_sender } else { 0 };
        let reader = tokio::spawn(read(stream, deliveries, sends, answer_tx, latency_tx.clone(), base));
        clients.push((sink, sends_to, answers, reader));
    }
    drop(latency_tx);
    // Every reader runs before the first message goes out.
    let started = Instant::now();
    let clients = clients.into_iter().map(|(mut sink, sends_to, mut answers, reader)| {
        tokio::spawn(async move {
            let (mut ack_latencies, mut failed) = (Vec::new(), 0);
            if let Some(room) = sends_to {
                for _ in 0..per_sender {
                    let sent = base.elapsed().as_micros() as u64;
                    let frame = json!({ "type": "send_message", "room_id": room, "content": format!("bench:{sent}") });
                    sink.send(Message::Text(frame.to_string().into())).await.unwrap();
                    match answers.recv().await {
                        Some(true) => ack_latencies.push(base.elapsed().as_micros() as u64 - sent),
                        Some(false) => failed += 1,
                        // The reader gave up waiting.
                        None => break,
                    }
                }
            }
            let stream = reader.await.unwrap();
            (sink.reunite(stream).unwrap(), ack_latencies, failed)
        })
    });
    let (mut sockets, mut acks, mut failed) = (Vec::new(), Vec::new(), 0);
    for client in futures::future::join_all(clients).await {
        let (ws, latencies, errors) = client.unwrap();
        sockets.push(ws);
        acks.extend(latencies);
        failed += errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    while let Ok(l) = latency_rx.try_recv() {
        latencies.push(l);
    }
    latencies.sort_unstable();
    acks.sort_unstable();
    let figures = FanOut {
        messages: acks.len(),
        failed,
        messages_per_sec: acks.len() as f64 / elapsed,
        deliveries_per_sec: latencies.len() as f64 / elapsed,
        p50: quantile(&latencies, 0.5),
        p99: quantile(&latencies, 0.99),
        p999: quantile(&latencies, 0.999),
        ack_p50: quantile(&acks, 0.5),
        ack_p99: quantile(&acks, 0.99),
    };
    (figures, sockets)
}

/// The `q` quantile (nearest rank) of sorted latencies in microseconds: of 3, p99 is the largest.
fn quantile(sorted: &[u64], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Duration::from_micros(sorted.get(rank.saturating_sub(1)).copied().unwrap_or(0))
}

/// Reads until the deliveries and the answers to its sends (acknowledgement: true, error: false)
/// have arrived (or `DEADLINE`), then gives the stream back.
async fn read(
    mut stream: SplitStream<Ws>,
    deliveries: usize,
    answers: usize,
    answer_tx: mpsc::UnboundedSender<bool>,
    latency_tx: mpsc::UnboundedSender<u64>,
    base: Instant,
) -> SplitStream<Ws> {
    let (mut delivered, mut answered) = (0, 0);
    let deadline = tokio::time::sleep(DEADLINE);
    tokio::pin!(deadline);
    while delivered < deliveries || answered < answers {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = &mut deadline => { eprintln!("bench: gave up waiting ({delivered}/{deliveries} delivered)"); break; }
        };
        let Some(Ok(Message::Text(text))) = frame else { continue };
        let frame: Value = serde_json::from_str(&text).unwrap();
        match frame["type"].as_str() {
            Some("new_message") => {
                if let Some(sent) = frame["message"]["content"].as_str().and_then(|c| c.strip_prefix("bench:")) {
                    let sent: u64 = sent.parse().unwrap();
                    let _ = latency_tx.send(base.elapsed().as_micros() as u64 - sent);
                    delivered += 1;
                }
            }
            Some("message_sent") => {
                answered += 1;
                let _ = answer_tx.send(true);
            }
            Some("error") => {
                eprintln!("bench: error frame {frame}");
                answered += 1;
                let _ = answer_tx.send(false);
            }
            _ => {}
        }
    }
    stream
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

/// User and system CPU time, in clock ticks (10 ms), from a `/proc/.../stat` file.
fn cpu_ticks(stat: &str) -> u64 {
    let stat = std::fs::read_to_string(stat).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn thread_cpu() -> Duration {
    Duration::from_millis(cpu_ticks("/proc/thread-self/stat") * 10)
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
