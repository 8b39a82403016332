//! The write path: what one stored message costs as its room grows (Postgres rows and WAL,
//! Redis commands, time to the acknowledgement), with only the senders connected and then with
//! every member connected; and concurrent senders, each in a room of its own.

use std::time::Duration;

use serde_json::json;

use crate::exchange::{self, FanOut, Pace, Part};
use crate::fan_out::Server;
use crate::limits::{self, Limits};
use crate::load::{self, Gateway};
use crate::wire::{Protocol, Ws};
use crate::{ms, Row};

/// What one frame may carry (shared/src/service/validate.rs): the participants of a
/// `create_room`, the user ids of an `invite`.
const MAX_INITIAL_MEMBERS: usize = 1_000;
const MAX_USERS_PER_FRAME: usize = 100;
/// Connections of a room's creator inviting at once while a room is set up (each invite's
/// system messages are fanned out to the room; two halved the set-up time of a room of 10 000
/// when each one read every member).
const INVITERS: usize = 2;
/// Senders per room (the first members).
const SENDERS: usize = 4;
/// Posts of the messages in flight at once with every member connected: 4 concurrent fan-outs
/// to 10 000 members overran the 10 s request timeout on the 2-core machine, so larger rooms get
/// fewer senders.
const FAN_OUT_POSTS: usize = 10_000;
/// Each concurrent sender's room.
const CONCURRENT_ROOM: usize = 10;
/// Until a backend's row counts are in pg_stat_database: an idle pooled backend flushes them
/// after 10 s.
const STATS_DELAY: Duration = Duration::from_secs(11);

pub async fn rows(gateway: &Gateway, limits: &Limits, rows: &mut Vec<Row>) {
    let mut sizes: Vec<usize> = std::env::var("BENCH_WRITE_ROOMS")
        .unwrap_or_else(|_| "10,100,1000,10000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_WRITE_ROOMS: sizes separated by commas"))
        .filter(|&n| n > 0)
        .collect();
    // Ascending, as the all-connected scenarios connect the members of each room in turn.
    sizes.sort_unstable();
    sizes.dedup();
    if !sizes.is_empty() {
        by_room_size(gateway, &sizes, crate::env_or("BENCH_CONNECTED_MAX", 10_000), rows).await;
    }
    let count = crate::env_or("BENCH_WRITE_CONCURRENT", 32);
    if count > 0 {
        let f = concurrent_senders(gateway, count).await;
        rows.push(Row {
            scenario: format!("write path, {count} senders in {count} rooms of {CONCURRENT_ROOM}"),
            ours: stored(&f),
            reference: format!("{:.0} inserts/s (pgbench)", limits.pg_inserts_per_sec),
            ratio: format!("{:.3}", f.messages_per_sec / limits.pg_inserts_per_sec),
        });
    }
}

fn stored(f: &FanOut) -> String {
    // One decimal where a room of 10 000 stores a few per second.
    let rate = f.messages_per_sec;
    let rate = if rate < 10.0 { format!("{rate:.1}") } else { format!("{rate:.0}") };
    let failed = if f.failed > 0 { format!(", {} sends failed", f.failed) } else { String::new() };
    format!("{rate} msgs/s stored, ack p50 {} p99 {}{failed}", ms(f.ack_p50), ms(f.ack_p99))
}

/// One room of each size in one tenant, nested: the room of 10 holds the first 10 members of the
/// room of 100, and so on. The same sender connections (the first members) send in each room, the
/// other members not connected; then each room again with every member connected.
async fn by_room_size(gateway: &Gateway, sizes: &[usize], connected_max: usize, rows: &mut Vec<Row>) {
    let tenant = format!("write-{}", uuid::Uuid::new_v4().simple());
    let users: Vec<String> = (0..sizes[sizes.len() - 1]).map(|i| format!("u{i}")).collect();
    let mut clients = connect(gateway, &tenant, &vec![users[0].clone(); INVITERS]).await;
    let mut rooms = Vec::new();
    for &size in sizes {
        rooms.push(room(&mut clients, &users[..size]).await);
    }
    // The creator's first connection is a sender; its others go.
    clients.truncate(1);
    let senders = SENDERS.min(sizes[0]);
    clients.extend(connect(gateway, &tenant, &users[1..senders]).await);
    gateway.settle(senders).await;

    // Setting up left dead rows behind (each invite's system message updates every member's
    // row): vacuumed now, so that autovacuum does not write inside the measured windows. And the
    // setup's row counts must be in the view before the first reading.
    let meter = Meter::connect().await;
    meter.0.batch_execute("VACUUM ANALYZE").await.unwrap();
    tokio::time::sleep(STATS_DELAY).await;
    let mut before = meter.read().await;
    for (&size, room) in sizes.iter().zip(&rooms) {
        // Enough messages for stable figures, fewer where each one writes more.
        let per_sender = (4000 / size).clamp(10, 100);
        let (f, back) =
            exchange::run(Protocol::Ours, parts(clients, room, senders, per_sender), Pace::Acked(per_sender)).await;
        clients = back;
        let (written, after) = meter.written_since(before, f.messages).await;
        before = after;
        rows.push(Row {
            scenario: format!("write path, room of {size}, {senders} connected"),
            ours: stored(&f),
            reference: String::new(),
            ratio: String::new(),
        });
        rows.push(Row {
            scenario: "  per message: Postgres, WAL, Redis".into(),
            ours: format!(
                "{:.1} rows, {:.1} KiB WAL, {:.1} Redis commands",
                written.rows,
                written.wal / 1024.0,
                written.redis
            ),
            reference: format!("{:.2} rows per member", written.rows / size as f64),
            ratio: String::new(),
        });
    }

    let open_files = open_files_limit();
    for (&size, room) in sizes.iter().zip(&rooms).filter(|(&size, _)| size <= connected_max) {
        let senders = senders.min(FAN_OUT_POSTS / size).max(1);
        let scenario = format!("fan-out, room of {size}, all connected, {senders} sending");
        // This process holds a socket per member, the gateway one too, and up to 512 posts
        // through its management API at once (both ends in the same process).
        let needed = size + 2_000;
        if needed > open_files {
            let ours = format!("skipped: {needed} file descriptors needed, limit {open_files}");
            rows.push(Row { scenario, ours, reference: String::new(), ratio: String::new() });
            continue;
        }
        clients.extend(connect(gateway, &tenant, &users[clients.len()..size]).await);
        gateway.idle().await;
        let per_sender = (2000 / size).clamp(3, 50);
        let (f, back) =
            exchange::run(Protocol::Ours, parts(clients, room, senders, per_sender), Pace::Acked(per_sender)).await;
        clients = back;
        rows.push(Row {
            scenario,
            ours: stored(&f),
            reference: format!("delivery p50 {} p99 {} ({:.0}/s)", ms(f.p50), ms(f.p99), f.deliveries_per_sec),
            ratio: String::new(),
        });
    }
    // A thousand at a time: ten thousand at once, most of their $disconnects overran the
    // request timeout on the 2-core machine (and left their connections registered).
    while !clients.is_empty() {
        clients.truncate(clients.len().saturating_sub(1_000));
        gateway.idle().await;
    }
    gateway.settle(0).await;
}

/// `count` senders at once, each the only connected member of a room of its own.
async fn concurrent_senders(gateway: &Gateway, count: usize) -> FanOut {
    let tenant = format!("concurrent-{}", uuid::Uuid::new_v4().simple());
    let users: Vec<String> = (0..count * CONCURRENT_ROOM).map(|i| format!("u{i}")).collect();
    let creators: Vec<String> = users.iter().step_by(CONCURRENT_ROOM).cloned().collect();
    let mut clients = connect(gateway, &tenant, &creators).await;
    let mut rooms = Vec::new();
    for (ws, members) in clients.iter_mut().zip(users.chunks(CONCURRENT_ROOM)) {
        rooms.push(room(std::slice::from_mut(ws), members).await);
    }
    let parts = clients.into_iter().zip(rooms).map(|(ws, room)| Part { ws, sends_to: Some(room), deliveries: 0 });
    // Long enough that each pooled connection's first prepares and plans are a small part of it:
    // 20 each (the figure until 2026-11-28) was over in a fifth of a second.
    let per_sender = crate::env_or("BENCH_WRITE_CONCURRENT_MESSAGES", 200);
    let (figures, clients) = exchange::run(Protocol::Ours, parts.collect(), Pace::Acked(per_sender)).await;
    drop(clients);
    gateway.settle(0).await;
    figures
}

async fn connect(gateway: &Gateway, tenant: &str, users: &[String]) -> Vec<Ws> {
    gateway.connect_many(tenant, users).await.into_iter().map(|(ws, _)| ws).collect()
}

/// The first `senders` clients send to the room; every client is one of its members.
fn parts(clients: Vec<Ws>, room: &str, senders: usize, per_sender: usize) -> Vec<Part> {
    clients
        .into_iter()
        .enumerate()
        .map(|(i, ws)| Part {
            ws,
            sends_to: (i < senders).then(|| room.to_string()),
            deliveries: (if i < senders { senders - 1 } else { senders }) * per_sender,
        })
        .collect()
}

/// A room of `members` made through the protocol: the first member creates it with as many
/// participants as one frame takes, then invites the others as many at a time, on each of
/// `inviters` (connections of the first member) at once.
async fn room(inviters: &mut [Ws], members: &[String]) -> String {
    let (first, rest) = members[1..].split_at(MAX_INITIAL_MEMBERS.min(members.len() - 1));
    let created = load::request(
        &mut inviters[0],
        json!({ "type": "create_room", "name": "bench", "room_type": "group", "participants": first }),
    )
    .await;
    let room = created["room"]["id"].as_str().expect("room created").to_string();
    let chunks: Vec<&[String]> = rest.chunks(MAX_USERS_PER_FRAME).collect();
    let n = inviters.len();
    let invites = inviters.iter_mut().enumerate().map(|(i, ws)| {
        let (room, chunks) = (&room, &chunks);
        async move {
            for chunk in chunks.iter().skip(i).step_by(n) {
                let invite = json!({ "type": "invite", "room_id": room, "user_ids": chunk });
                // Concurrent invites wait on each other's system message (it updates every
                // member's row): on a busy machine one may reach the statement timeout. The
                // members it added stay, so it is sent again.
                for attempt in 1.. {
                    let reply = load::request(ws, invite.clone()).await;
                    if reply["type"] == "invited" {
                        break;
                    }
                    assert!(attempt < 3, "invite failed: {reply}");
                    eprintln!("bench: invite failed, sending it again: {reply}");
                }
            }
        }
    });
    futures::future::join_all(invites).await;
    room
}

/// The soft limit on this process's open files (the gateway inherits it).
fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// Running totals: rows inserted or updated in the gateway's database, WAL bytes, Redis commands.
#[derive(Clone, Copy)]
struct Counters {
    rows: i64,
    wal: i64,
    redis: u64,
}

/// Per message.
struct Written {
    rows: f64,
    wal: f64,
    redis: f64,
}

struct Meter(tokio_postgres::Client);

impl Meter {
    async fn connect() -> Self {
        let (client, connection) = shared::store::connect_one(&limits::env("DATABASE_URL")).await.expect("connect");
        tokio::spawn(connection);
        Self(client)
    }

    async fn read(&self) -> Counters {
        let row = self
            .0
            .query_one(
                "SELECT (SELECT tup_inserted + tup_updated FROM pg_stat_database WHERE datname = current_database()),
                        (pg_current_wal_lsn() - '0/0')::bigint",
                &[],
            )
            .await
            .unwrap();
        Counters { rows: row.get(0), wal: row.get(1), redis: redis_commands().await }
    }

    /// What `messages` wrote since `before`: WAL and Redis commands read at once, rows
    /// `STATS_DELAY` later. Also the counters at the end, for the next scenario.
    async fn written_since(&self, before: Counters, messages: usize) -> (Written, Counters) {
        let now = self.read().await;
        tokio::time::sleep(STATS_DELAY).await;
        let later = self.read().await;
        let n = messages.max(1) as f64;
        let written = Written {
            rows: (later.rows - before.rows) as f64 / n,
            wal: (now.wal - before.wal) as f64 / n,
            // The INFO that read `before` counts among them.
            redis: (now.redis - before.redis - 1) as f64 / n,
        };
        (written, later)
    }
}

/// Commands Redis has run, from `INFO commandstats` (which counts itself in the next one only).
async fn redis_commands() -> u64 {
    limits::redis_info("commandstats")
        .await
        .lines()
        .filter_map(|line| line.split_once(":calls=")?.1.split(',').next()?.parse::<u64>().ok())
        .sum()
}
