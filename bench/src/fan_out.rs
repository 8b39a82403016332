//! The fan-out scenarios, the same on every server: rooms whose senders go as fast as the server
//! answers, and a room that receives messages at a fixed rate.

use std::time::Duration;

use crate::cpu::{self, Processes};
use crate::exchange::{self, FanOut, Pace, Part, DEADLINE};
use crate::wire::{Protocol, Ws};

/// A chat server under load: ours or a peer.
pub trait Server {
    fn protocol(&self) -> Protocol;

    /// Its process, whose CPU time the scenarios report.
    fn pid(&self) -> u32;

    /// `rooms` rooms of `size` connected members: the clients, room by room, and the rooms' ids.
    async fn rooms(&self, size: usize, rooms: usize) -> (Vec<Ws>, Vec<String>);

    /// Once a scenario's clients have gone: waits until the server is done with them.
    async fn closed(&self);

    /// Waits until the server uses next to no CPU: the follow-up work of what came before (such
    /// as telling contacts that members came online) is over.
    async fn idle(&self) {
        cpu::idle(self.pid(), DEADLINE).await;
    }
}

/// `rooms` rooms of `size` members; in each, `senders` members send at `pace`. Latency is from
/// sending to delivery at each other member; CPU is over the exchange.
pub async fn fan_out(server: &impl Server, size: usize, senders: usize, pace: Pace, rooms: usize) -> FanOut {
    let processes = Processes::of(server.pid()).await;
    let (clients, room_ids) = server.rooms(size, rooms).await;
    server.idle().await;
    let per_sender = pace.per_sender();
    let parts = clients
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let sends = i % size < senders;
            Part {
                ws,
                sends_to: sends.then(|| room_ids[i / size].clone()),
                deliveries: senders * per_sender - if sends { per_sender } else { 0 },
            }
        })
        .collect();
    let window = processes.start();
    let (mut figures, clients) = exchange::run(server.protocol(), parts, pace).await;
    figures.cores = window.cores();
    drop(clients);
    server.closed().await;
    figures
}

/// A room of `size` receiving `rate` messages/s for `seconds`, from 10 senders on a fixed
/// schedule.
pub async fn fixed_rate(server: &impl Server, size: usize, rate: usize, seconds: usize) -> FanOut {
    let senders = 10.min(size);
    let interval = Duration::from_secs(1).mul_f64(senders as f64 / rate as f64);
    fan_out(server, size, senders, Pace::Every { interval, count: rate * seconds / senders }, 1).await
}
