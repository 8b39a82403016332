//! The physical limits on this machine, measured in the same run: Postgres single-row inserts
//! (pgbench, the server's own durability settings), Redis round trips (redis-benchmark), and a
//! bare axum WebSocket echo.

use std::process::Command;
use std::time::Instant;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Limits {
    pub pg_inserts_per_sec: f64,
    pub redis_ops_per_sec: f64,
}

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/dev.sh bench"))
}

/// Host and port of `REDIS_URL` (a single node).
pub fn redis_address() -> (String, String) {
    let redis = env("REDIS_URL");
    let address = redis.trim_start_matches("redis://").trim_end_matches('/');
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "6379"));
    (host.to_string(), port.to_string())
}

/// A section of Redis' `INFO`, through a bare connection.
pub async fn redis_info(section: &str) -> String {
    let (host, port) = redis_address();
    let mut redis = BufReader::new(TcpStream::connect(format!("{host}:{port}")).await.expect("connect to Redis"));
    redis.get_mut().write_all(format!("INFO {section}\r\n").as_bytes()).await.unwrap();
    // A bulk string: "$<length>\r\n<text>\r\n".
    let mut header = String::new();
    redis.read_line(&mut header).await.unwrap();
    let length: usize = header.trim().strip_prefix('$').and_then(|n| n.parse().ok()).expect("INFO reply");
    let mut text = vec![0; length];
    redis.read_exact(&mut text).await.unwrap();
    String::from_utf8_lossy(&text).into_owned()
}

fn tool(name: &str) -> String {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|dirs| dirs.filter_map(Result::ok).map(|d| d.path().join("bin").join(name)).find(|p| p.exists()));
    debian.map_or(name.to_string(), |p| p.display().to_string())
}

fn number_after(text: &str, marker: &str) -> f64 {
    text.lines()
        .find_map(|line| line.split_once(marker).and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok()))
        .unwrap_or_else(|| panic!("no {marker:?} in:\n{text}"))
}

pub async fn measure() -> Limits {
    let url = env("DATABASE_URL");
    let (client, connection) = shared::store::connect_one(&url).await.expect("connect for pgbench setup");
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE IF EXISTS bench_insert;
             CREATE TABLE bench_insert (id bigserial PRIMARY KEY, tenant_id text NOT NULL, room_id uuid NOT NULL,
                                        content text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());",
        )
        .await
        .unwrap();
    let script = std::env::temp_dir().join("chat-bench-insert.sql");
    std::fs::write(
        &script,
        "INSERT INTO bench_insert (tenant_id, room_id, content) VALUES ('t', '6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5', 'benchmark message');\n",
    )
    .unwrap();
    let pgbench = Command::new(tool("pgbench"))
        .args(["-n", "-c", "8", "-j", "2", "-T", "8", "-f"])
        .arg(&script)
        .arg(&url)
        .output()
        .expect("run pgbench");
    let pg_inserts_per_sec = number_after(&String::from_utf8_lossy(&pgbench.stdout), "tps = ");
    client.batch_execute("DROP TABLE bench_insert").await.unwrap();

    let (host, port) = redis_address();
    let benchmark = Command::new("redis-benchmark")
        .args(["-h", &host, "-p", &port, "-c", "50", "-n", "200000", "-t", "ping", "-q"])
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&benchmark.stdout).replace('\r', "\n");
    let redis_ops_per_sec = number_after(&text, "PING_MBULK: ");
    Limits { pg_inserts_per_sec, redis_ops_per_sec }
}

/// Echoes per second through a bare axum WebSocket server: `clients` each send `each` messages,
/// one at a time.
pub async fn websocket_echo(clients: usize, each: usize) -> f64 {
    let app = axum::Router::new().route(
        "/",
        get(|ws: WebSocketUpgrade| async {
            ws.on_upgrade(|mut socket| async move {
                while let Some(Ok(message)) = socket.next().await {
                    if matches!(message, Message::Text(_)) && socket.send(message).await.is_err() {
                        return;
                    }
                }
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut sockets = Vec::new();
    for _ in 0..clients {
        sockets.push(tokio_tungstenite::connect_async_with_config(&url, None, true).await.unwrap().0);
    }
    let started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                for i in 0..each {
                    ws.send(tokio_tungstenite::tungstenite::Message::Text(format!("{{\"n\":{i}}}").into()))
                        .await
                        .unwrap();
                    ws.next().await.unwrap().unwrap();
                }
            })
        })
        .collect();
    futures::future::join_all(tasks).await;
    let rate = (clients * each) as f64 / started.elapsed().as_secs_f64();
    server.abort();
    rate
}
