//! The peer: a Socket.IO chat server with the Redis adapter (bench/socketio), driven by the same
//! load logic written against its own client library.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::load::FanOut;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("socketio")
}

pub struct Peer {
    child: Child,
    url: String,
}

impl Peer {
    pub async fn start() -> Self {
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(dir())
            .env("PORT", "0")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node: install Node.js (scripts/dev.sh bench does)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next_line().await.unwrap().expect("Socket.IO server exited");
        let port = line.strip_prefix("listening on ").expect("Socket.IO server's first line");
        Self { url: format!("http://127.0.0.1:{port}"), child }
    }

    pub async fn fan_out(&self, size: usize, senders: usize, per_sender: usize, rooms: usize) -> FanOut {
        let output = Command::new("node")
            .arg("load.mjs")
            .arg(&self.url)
            .args([size, senders, per_sender, rooms].map(|n| n.to_string()))
            .current_dir(dir())
            .output()
            .await
            .expect("run the Socket.IO load generator");
        let figures: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("Socket.IO load generator: {}", String::from_utf8_lossy(&output.stderr)));
        let us = |key: &str| Duration::from_micros(figures[key].as_f64().unwrap_or(0.0) as u64);
        FanOut {
            messages_per_sec: figures["messages_per_sec"].as_f64().unwrap_or(0.0),
            deliveries_per_sec: figures["deliveries_per_sec"].as_f64().unwrap_or(0.0),
            p50: us("p50_us"),
            p99: us("p99_us"),
            p999: us("p999_us"),
            ..FanOut::default()
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
