//! The peers, what a team would otherwise deploy, both scaled out through Redis and driven by the
//! same load generator as ours over Socket.IO's wire format: a Socket.IO 4.8 server with the
//! Redis adapter (bench/socketio, Node) and socketioxide with its Redis adapter (bench/socketioxide).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures::{stream, SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

use crate::fan_out::Server;
use crate::load::release_binary;
use crate::wire::{Protocol, Ws};

/// Each step of joining a room: it takes milliseconds.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Peer {
    pub name: &'static str,
    child: Child,
    port: u16,
}

impl Peer {
    pub async fn socketio() -> Self {
        let mut node = Command::new("node");
        node.arg("server.mjs").current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("socketio"));
        Self::start("Socket.IO", node).await
    }

    pub async fn socketioxide() -> Self {
        Self::start("socketioxide", Command::new(release_binary("socketioxide-peer"))).await
    }

    /// Either server, on a port of its own, with the environment's REDIS_URL.
    async fn start(name: &'static str, mut command: Command) -> Self {
        let mut child = command
            .env("PORT", "0")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start the {name} peer (scripts/dev.sh bench installs it): {e}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next_line().await.unwrap().unwrap_or_else(|| panic!("the {name} peer exited"));
        let port = line.strip_prefix("listening on ").and_then(|p| p.parse().ok());
        Self { name, child, port: port.unwrap_or_else(|| panic!("the {name} peer's first line: {line}")) }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// A client that has connected the default namespace as `user` and joined `room`; connected
    /// again if that stalls, so that one lost packet does not end the run.
    async fn join(&self, user: &str, room: &str) -> Ws {
        let url = format!("ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket", self.port);
        for attempt in 1.. {
            let (mut ws, _) = tokio_tungstenite::connect_async_with_config(&url, None, true).await.expect("connect");
            let joined = async {
                // The Engine.IO open packet, then the namespace's connect with the user as auth.
                packet(&mut ws, "0").await?;
                send(&mut ws, format!("40{}", json!({ "user": user }))).await;
                packet(&mut ws, "40").await?;
                send(&mut ws, format!("420{}", json!(["join_room", room]))).await;
                packet(&mut ws, "430").await
            };
            match joined.await {
                Ok(()) => return ws,
                Err(seen) if attempt < 3 => eprintln!("bench: {}: {user} did not join, again: {seen}", self.name),
                Err(seen) => panic!("{}: {user} did not join {room}: {seen}", self.name),
            }
        }
        unreachable!()
    }
}

async fn send(ws: &mut Ws, text: String) {
    ws.send(Message::Text(text.into())).await.unwrap();
}

/// Reads until a packet that starts with `prefix`, answering heartbeats; or says what came
/// instead.
async fn packet(ws: &mut Ws, prefix: &str) -> Result<(), String> {
    let mut seen = Vec::new();
    let read = async {
        while let Some(message) = ws.next().await {
            match message.map_err(|e| e.to_string())? {
                Message::Text(text) if text.starts_with(prefix) => return Ok(()),
                Message::Text(text) if text == "2" => ws.send(Protocol::SocketIo.pong()).await.unwrap(),
                other => seen.push(other.to_string()),
            }
        }
        Err("socket closed".to_string())
    };
    let outcome = tokio::time::timeout(JOIN_TIMEOUT, read).await.unwrap_or_else(|_| Err("timed out".into()));
    outcome.map_err(|e| format!("no {prefix:?} packet ({e}) after {seen:?}"))
}

impl Server for Peer {
    fn protocol(&self) -> Protocol {
        Protocol::SocketIo
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    async fn rooms(&self, size: usize, rooms: usize) -> (Vec<Ws>, Vec<String>) {
        let scenario = uuid::Uuid::new_v4().simple();
        let room_ids: Vec<String> = (0..rooms).map(|r| format!("{scenario}-{r}")).collect();
        let clients = stream::iter(0..size * rooms)
            .map(|i| {
                let (user, room) = (format!("u{i}"), &room_ids[i / size]);
                async move { self.join(&user, room).await }
            })
            .buffered(100)
            .collect()
            .await;
        (clients, room_ids)
    }

    /// A peer keeps nothing once its clients have gone: it is done when it is idle.
    async fn closed(&self) {
        self.idle().await;
    }
}
