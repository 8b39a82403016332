//! The benchmark: our figures beside the physical limits measured in the same run, as ratios.
//! Run it with `scripts/dev.sh bench` (services, release build, pgbench and redis-benchmark).
//! Scenario sizes come from the environment (see README, "Benchmarks"), and for the write-path
//! section (0 skips a scenario):
//!   BENCH_WRITE_ROOMS       room sizes, comma-separated (default 10,100,1000,10000): messages
//!                           with only the senders connected, rows/WAL/Redis commands per message
//!   BENCH_CONNECTED_MAX     the largest of those rooms measured again with every member
//!                           connected (default 10000; skipped when file descriptors are short)
//!   BENCH_WRITE_CONCURRENT  concurrent senders, each in a room of 10 of its own (default 32)
//!   BENCH_WRITE_PATH_ONLY=1 only the limits and the write-path section

mod alloc;
mod cpu;
mod exchange;
mod fan_out;
mod limits;
mod load;
mod peer;
mod wire;
mod write_path;

use std::time::Duration;

use exchange::{FanOut, Pace};

#[global_allocator]
static COUNTING: alloc::Counting = alloc::Counting;

/// One row of the table.
pub struct Row {
    pub scenario: String,
    pub ours: String,
    pub reference: String,
    pub ratio: String,
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let rows = runtime.block_on(run());
    let widths = [48, 50, 60, 16];
    let line = |cells: [&str; 4]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("| {} |", padded.join(" | "));
    };
    println!();
    line(["scenario", "ours", "limit or reference", "ratio"]);
    println!("|{}|", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
    for row in &rows {
        line([&row.scenario, &row.ours, &row.reference, &row.ratio]);
    }
}

async fn run() -> Vec<Row> {
    let mut rows = Vec::new();
    let limits = limits::measure().await;
    let gateway = load::Gateway::start().await;
    if std::env::var_os("BENCH_WRITE_PATH_ONLY").is_none() {
        fan_out_rows(&gateway, &limits, &mut rows).await;
        if std::env::var_os("BENCH_FANOUT_ONLY").is_some() || std::env::var_os("BENCH_IDLE_ONLY").is_some() {
            gateway.stop().await;
            return rows;
        }
        invocation_rows(&gateway, &limits, &mut rows).await;
    }
    write_path::rows(&gateway, &limits, &mut rows).await;
    gateway.stop().await;
    rows
}

/// Idle connections, then the fan-out scenarios beside the peers.
async fn fan_out_rows(gateway: &load::Gateway, limits: &limits::Limits, rows: &mut Vec<Row>) {
    // First, while the gateway's memory holds nothing else. 19 000: the bench and the gateway
    // each hold one socket per connection, and this machine's open-files limit is 20 000 a process.
    let idle_count = env_or("BENCH_IDLE", 19_000);
    if idle_count > 0 {
        let idle = load::idle_connections(gateway, idle_count).await;
        rows.push(Row {
            scenario: format!("idle connections held ({})", idle.held),
            ours: format!("{:.1} KiB RSS each", idle.rss_per_connection_kib),
            reference: format!("opened at {:.0}/s", idle.opened_per_sec),
            ratio: String::new(),
        });
    }
    if std::env::var_os("BENCH_IDLE_ONLY").is_some() {
        return;
    }

    let peers = [peer::Peer::socketio().await, peer::Peer::socketioxide().await];
    // A size of 0 (e.g. BENCH_BIG_ROOM=0) skips that scenario; BENCH_FANOUT_ONLY stops after fan-out.

    // (members per room, senders per room, messages per sender, rooms)
    for (size, senders, per_sender, rooms) in [
        (env_or("BENCH_ROOM", 100), env_or("BENCH_SENDERS", 10), env_or("BENCH_MESSAGES", 50), 1),
        (10, 5, 40, 1),
        (env_or("BENCH_BIG_ROOM", 1000), 2, 10, 1),
        (10, 1, 10, env_or("BENCH_ROOMS", 1000)),
    ] {
        if size * rooms == 0 {
            continue;
        }
        let pace = Pace::Acked(per_sender);
        let ours = fan_out::fan_out(gateway, size, senders, pace, rooms).await;
        let name =
            if rooms > 1 { format!("{rooms} rooms of {size}") } else { format!("room of {size}, {senders} senders") };
        for (i, peer) in peers.iter().enumerate() {
            let theirs = fan_out::fan_out(peer, size, senders, pace, rooms).await;
            rows.push(Row {
                scenario: if i == 0 { format!("fan-out, {name}") } else { String::new() },
                ours: if i == 0 { fan_out_figures(&ours) } else { String::new() },
                reference: format!("{} {}", peer.name, fan_out_figures(&theirs)),
                ratio: format!(
                    "{:.2} / p99 {:.1}x",
                    ours.deliveries_per_sec / theirs.deliveries_per_sec,
                    ours.p99.as_secs_f64() / theirs.p99.as_secs_f64()
                ),
            });
        }
        rows.push(Row {
            scenario: "  stored msgs/s vs pgbench inserts/s".into(),
            ours: format!("{:.0} msgs/s stored+acked", ours.messages_per_sec),
            reference: format!("{:.0} inserts/s", limits.pg_inserts_per_sec),
            ratio: format!("{:.3}", ours.messages_per_sec / limits.pg_inserts_per_sec),
        });
    }

    let (size, rate, seconds) =
        (env_or("BENCH_RATE_ROOM", 100), env_or("BENCH_RATE", 1000), env_or("BENCH_RATE_SECONDS", 5));
    if size * rate * seconds > 0 {
        let ours = fan_out::fixed_rate(gateway, size, rate, seconds).await;
        for (i, peer) in peers.iter().enumerate() {
            let theirs = fan_out::fixed_rate(peer, size, rate, seconds).await;
            rows.push(Row {
                scenario: if i == 0 { format!("fixed rate, room of {size}, {rate} msgs/s") } else { String::new() },
                ours: if i == 0 { fixed_rate_figures(&ours) } else { String::new() },
                reference: format!("{} {}", peer.name, fixed_rate_figures(&theirs)),
                ratio: format!(
                    "p99 {:.1}x / cpu {:.1}x",
                    ours.p99.as_secs_f64() / theirs.p99.as_secs_f64(),
                    ours.cores.server / theirs.cores.server
                ),
            });
        }
    }
    for peer in peers {
        peer.stop().await;
    }
}

/// One invocation's cost, cold starts, Redis round trips, and the 1:1 exchange beside a bare echo.
async fn invocation_rows(gateway: &load::Gateway, limits: &limits::Limits, rows: &mut Vec<Row>) {
    let invocations = env_or("BENCH_INVOCATIONS", 2000);
    if invocations == 0 {
        return;
    }
    let cost = load::invocation_cost(gateway, invocations).await;
    rows.push(Row {
        scenario: "message-route invocation".into(),
        ours: format!("{:.2} ms CPU, {:.0} allocs", cost.cpu_ms, cost.allocations),
        reference: format!("{:.2} ms wall", cost.wall_ms),
        ratio: String::new(),
    });

    for (name, cold) in load::cold_starts(gateway).await {
        rows.push(Row {
            scenario: format!("cold start, {name}"),
            ours: ms(cold),
            reference: String::new(),
            ratio: String::new(),
        });
    }

    rows.push(Row {
        scenario: "redis round trips".into(),
        ours: format!("{:.0} ops/s (PING, 50 clients)", limits.redis_ops_per_sec),
        reference: String::new(),
        ratio: String::new(),
    });
    let echo = limits::websocket_echo(env_or("BENCH_ECHO_CLIENTS", 50), 200).await;
    let fan = fan_out::fan_out(gateway, 2, 1, Pace::Acked(2000), 1).await;
    rows.push(Row {
        scenario: "1:1 send→ack→deliver vs bare echo".into(),
        ours: format!("{:.0} msgs/s (stored, acked)", fan.messages_per_sec),
        reference: format!("{echo:.0} echoes/s bare axum"),
        ratio: format!("{:.3}", fan.messages_per_sec / echo),
    });
}

fn fan_out_figures(f: &FanOut) -> String {
    format!("{:.0} deliv/s, {}", f.deliveries_per_sec, latencies_and_cpu(f))
}

fn fixed_rate_figures(f: &FanOut) -> String {
    format!("{}, {:.0} deliv/s", latencies_and_cpu(f), f.deliveries_per_sec)
}

/// Delivery latencies, what was missing at the deadline, and the server's CPU beside Postgres'
/// and Redis'.
fn latencies_and_cpu(f: &FanOut) -> String {
    let mut missing = if f.delivered < f.expected {
        format!(" ({} of {} delivered)", f.delivered, f.expected)
    } else {
        String::new()
    };
    if f.failed + f.retried > 0 {
        missing += &format!(" ({} sends refused, {} sent again)", f.failed + f.retried, f.retried);
    }
    format!(
        "p50 {} p99 {} p999 {}{missing}, cpu {:.2} (pg {:.2}, redis {:.2}; load generator {:.2})",
        ms(f.p50),
        ms(f.p99),
        ms(f.p999),
        f.cores.server,
        f.cores.postgres,
        f.cores.redis,
        f.cores.generator
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
