//! The benchmark: our figures beside the physical limits measured in the same run, as ratios.
//! Run it with `scripts/dev.sh bench` (services, release build, pgbench and redis-benchmark).
//! Scenario sizes come from the environment (see README, "Benchmarks").

mod alloc;
mod limits;
mod load;

use std::time::Duration;

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
    let widths = [34, 30, 30, 10];
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

    for (size, senders, per_sender, rooms) in [
        (env_or("BENCH_ROOM", 100), env_or("BENCH_SENDERS", 10), env_or("BENCH_MESSAGES", 50), 1),
        (10, 5, 40, 1),
        (env_or("BENCH_BIG_ROOM", 1000), 2, 10, 1),
        (10, 1, 10, env_or("BENCH_ROOMS", 100)),
    ] {
        let r = load::fan_out(&gateway, size, senders, per_sender, rooms).await;
        let name =
            if rooms > 1 { format!("{rooms} rooms of {size}") } else { format!("room of {size}, {senders} senders") };
        rows.push(Row {
            scenario: format!("fan-out, {name}"),
            ours: format!("{:.0} deliveries/s, {:.0} msgs/s", r.deliveries_per_sec, r.messages_per_sec),
            reference: format!("p50 {} p99 {} p999 {}", ms(r.p50), ms(r.p99), ms(r.p999)),
            ratio: format!("{:.2}", r.messages_per_sec / limits.pg_inserts_per_sec),
        });
    }
    rows.push(Row {
        scenario: "  (ratio: stored msgs/s ÷ pg inserts/s)".into(),
        ours: String::new(),
        reference: format!("pgbench {:.0} inserts/s", limits.pg_inserts_per_sec),
        ratio: String::new(),
    });

    let idle = load::idle_connections(&gateway, env_or("BENCH_IDLE", 10_000)).await;
    rows.push(Row {
        scenario: format!("idle connections held ({})", idle.held),
        ours: format!("{:.1} KiB RSS each", idle.rss_per_connection_kib),
        reference: format!("opened at {:.0}/s", idle.opened_per_sec),
        ratio: String::new(),
    });

    let cost = load::invocation_cost(&gateway, env_or("BENCH_INVOCATIONS", 2000)).await;
    rows.push(Row {
        scenario: "message-route invocation".into(),
        ours: format!("{:.2} ms CPU, {:.0} allocs", cost.cpu_ms, cost.allocations),
        reference: format!("{:.2} ms wall", cost.wall_ms),
        ratio: String::new(),
    });

    for (name, cold) in load::cold_starts(&gateway).await {
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
    let fan = load::fan_out(&gateway, 2, 1, 2000, 1).await;
    rows.push(Row {
        scenario: "1:1 send→ack→deliver vs bare echo".into(),
        ours: format!("{:.0} msgs/s (stored, acked)", fan.messages_per_sec),
        reference: format!("{echo:.0} echoes/s bare axum"),
        ratio: format!("{:.3}", fan.messages_per_sec / echo),
    });
    gateway.stop().await;
    rows
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
