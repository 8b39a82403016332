//! CPU time of the processes under load, from /proc: the server's, Redis' and Postgres' cores
//! over a scenario, and waiting until a server is idle.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::limits;

/// User and system CPU time, in clock ticks (10 ms), from a `/proc/.../stat` file; 0 when the
/// process is gone.
pub fn ticks(stat: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(stat) else { return 0 };
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn pid_ticks(pid: u32) -> u64 {
    ticks(&format!("/proc/{pid}/stat"))
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Waits until `pid` uses next to no CPU: the follow-up work of what came before (such as
/// telling contacts that members came online) is over.
pub async fn idle(pid: u32, deadline: Duration) {
    let until = Instant::now() + deadline;
    let mut used = pid_ticks(pid);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = pid_ticks(pid);
        if now - used <= 1 {
            return;
        }
        used = now;
    }
    eprintln!("bench: process {pid} still busy after {deadline:?}");
}

/// The processes a server's work runs in: its own, and the bench's Redis and Postgres (the
/// postmaster and every process it started, backends included) when they run on this machine.
pub struct Processes {
    server: u32,
    redis: Option<u32>,
    postmaster: Option<u32>,
}

/// Cores used over a window: CPU time ÷ wall time.
#[derive(Clone, Copy, Default)]
pub struct Cores {
    pub server: f64,
    pub redis: f64,
    pub postgres: f64,
    /// The load generator's own (this process): near a core, it may be what bounds the figures.
    pub generator: f64,
}

impl Processes {
    pub async fn of(server: u32) -> Self {
        let info = limits::redis_info("server").await;
        let redis = info.lines().find_map(|l| l.strip_prefix("process_id:")?.trim().parse().ok());
        let (client, connection) =
            shared::store::connect_one(&limits::env("DATABASE_URL")).await.expect("connect to Postgres");
        tokio::spawn(connection);
        let backend: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
        Self { server, redis, postmaster: parent(backend as u32) }
    }

    /// The postmaster and its children, with their ticks.
    fn postgres(&self) -> HashMap<u32, u64> {
        let Some(postmaster) = self.postmaster else { return HashMap::new() };
        let children = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| parent(pid) == Some(postmaster));
        children.chain([postmaster]).map(|pid| (pid, pid_ticks(pid))).collect()
    }

    pub fn start(&self) -> Window<'_> {
        Window {
            processes: self,
            started: Instant::now(),
            server: pid_ticks(self.server),
            generator: pid_ticks(std::process::id()),
            redis: self.redis.map_or(0, pid_ticks),
            postgres: self.postgres(),
        }
    }
}

pub struct Window<'a> {
    processes: &'a Processes,
    started: Instant,
    server: u64,
    generator: u64,
    redis: u64,
    postgres: HashMap<u32, u64>,
}

impl Window<'_> {
    /// Since the start. A Postgres process started since counts whole; one that ended is lost.
    pub fn cores(&self) -> Cores {
        let wall = self.started.elapsed().as_secs_f64();
        let cores = |ticks: u64| ticks as f64 / 100.0 / wall;
        let postgres = self
            .processes
            .postgres()
            .into_iter()
            .map(|(pid, t)| t.saturating_sub(self.postgres.get(&pid).copied().unwrap_or(0)));
        Cores {
            server: cores(pid_ticks(self.processes.server).saturating_sub(self.server)),
            generator: cores(pid_ticks(std::process::id()).saturating_sub(self.generator)),
            redis: cores(self.processes.redis.map_or(0, pid_ticks).saturating_sub(self.redis)),
            postgres: cores(postgres.sum()),
        }
    }
}
