//! The load generator's exchange, whatever the server and its protocol: senders send to their
//! rooms at a pace while every client reads its deliveries; latency is from send to arrival at
//! each member.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, Mutex};
use tokio_tungstenite::tungstenite::Message;

use crate::cpu::Cores;
use crate::wire::{Answer, Frame, Protocol, Ws};

/// How long a client waits for what it awaits.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A client of an exchange: the room it sends to, if it sends, and how many deliveries it awaits.
pub struct Part {
    pub ws: Ws,
    pub sends_to: Option<String>,
    pub deliveries: usize,
}

#[derive(Clone, Copy)]
pub enum Pace {
    /// This many messages from each sender, each after the previous one's answer: as fast as the
    /// server goes.
    Acked(usize),
    /// `count` messages from each sender, one every `interval` whatever the answers, the senders'
    /// schedules spread evenly over the interval. Latency counts from the scheduled time, so
    /// that a server falling behind shows its queue (no coordinated omission).
    Every { interval: Duration, count: usize },
}

impl Pace {
    pub fn per_sender(self) -> usize {
        match self {
            Pace::Acked(count) | Pace::Every { count, .. } => count,
        }
    }
}

#[derive(Default)]
pub struct FanOut {
    /// Stored and acknowledged (relayed and acknowledged, for a peer).
    pub messages: usize,
    /// Sends answered with an error frame.
    pub failed: usize,
    /// Sends refused for now and sent again after the delay the refusal gave.
    pub retried: usize,
    pub messages_per_sec: f64,
    pub deliveries_per_sec: f64,
    /// Deliveries that arrived, of those awaited.
    pub delivered: usize,
    pub expected: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    /// From sending to the answer (acknowledged pace only).
    pub ack_p50: Duration,
    pub ack_p99: Duration,
    /// Over the exchange.
    pub cores: Cores,
}

type Sink = Arc<Mutex<SplitSink<Ws, Message>>>;

/// Each sender sends its messages at `pace`; every client reads until its deliveries and the
/// answers to its sends have arrived (or `DEADLINE`). Gives the sockets back, in order, for the
/// next scenario.
pub async fn run(protocol: Protocol, parts: Vec<Part>, pace: Pace) -> (FanOut, Vec<Ws>) {
    let base = Instant::now();
    let (latency_tx, mut latency_rx) = mpsc::unbounded_channel::<u64>();
    let senders = parts.iter().filter(|p| p.sends_to.is_some()).count();
    let expected = parts.iter().map(|p| p.deliveries).sum();
    let mut clients = Vec::new();
    // Each sender's place among the senders, for its schedule.
    let mut slot = 0;
    for Part { ws, sends_to, deliveries } in parts {
        let (sink, stream) = ws.split();
        // The reader answers heartbeats on the sink the sender writes to.
        let sink = Arc::new(Mutex::new(sink));
        let (answer_tx, answers) = mpsc::unbounded_channel::<Answer>();
        let sends = sends_to.is_some();
        let answers_awaited = if sends { pace.per_sender() } else { 0 };
        let retries = matches!(pace, Pace::Acked(_));
        let reader = Reader {
            protocol,
            deliveries,
            answers: answers_awaited,
            retries,
            answer_tx,
            latency_tx: latency_tx.clone(),
            base,
        };
        let reader = tokio::spawn(reader.run(stream, sink.clone()));
        clients.push((sink, sends_to.map(|room| (room, slot)), answers, reader));
        slot += sends as usize;
    }
    drop(latency_tx);
    // Every reader runs before the first message goes out.
    let started = Instant::now();
    let clients = clients.into_iter().map(|(sink, sends_to, answers, reader)| {
        tokio::spawn(async move {
            let sent = match sends_to {
                Some((room, slot)) => {
                    let sender = Sender { protocol, sink: sink.clone(), room, answers, base };
                    match pace {
                        Pace::Acked(count) => sender.acked(count).await,
                        Pace::Every { interval, count } => {
                            let first = started + interval.mul_f64(slot as f64 / senders as f64);
                            sender.every(first, interval, count).await
                        }
                    }
                }
                None => Sent::default(),
            };
            let stream = reader.await.unwrap();
            let sink = Arc::try_unwrap(sink).unwrap_or_else(|_| panic!("the reader is done")).into_inner();
            (sink.reunite(stream).unwrap(), sent)
        })
    });
    let (mut sockets, mut sent) = (Vec::new(), Sent::default());
    for client in futures::future::join_all(clients).await {
        let (ws, client) = client.unwrap();
        sockets.push(ws);
        sent.acked += client.acked;
        sent.ack_latencies.extend(client.ack_latencies);
        sent.failed += client.failed;
        sent.retried += client.retried;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    while let Ok(l) = latency_rx.try_recv() {
        latencies.push(l);
    }
    latencies.sort_unstable();
    let acks = &mut sent.ack_latencies;
    acks.sort_unstable();
    let figures = FanOut {
        messages: sent.acked,
        failed: sent.failed,
        retried: sent.retried,
        messages_per_sec: sent.acked as f64 / elapsed,
        deliveries_per_sec: latencies.len() as f64 / elapsed,
        delivered: latencies.len(),
        expected,
        p50: quantile(&latencies, 0.5),
        p99: quantile(&latencies, 0.99),
        p999: quantile(&latencies, 0.999),
        ack_p50: quantile(acks, 0.5),
        ack_p99: quantile(acks, 0.99),
        cores: Cores::default(),
    };
    (figures, sockets)
}

/// The `q` quantile (nearest rank) of sorted latencies in microseconds: of 3, p99 is the largest.
fn quantile(sorted: &[u64], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Duration::from_micros(sorted.get(rank.saturating_sub(1)).copied().unwrap_or(0))
}

/// What one sender's messages came to.
#[derive(Default)]
struct Sent {
    acked: usize,
    failed: usize,
    retried: usize,
    ack_latencies: Vec<u64>,
}

struct Sender {
    protocol: Protocol,
    sink: Sink,
    room: String,
    answers: mpsc::UnboundedReceiver<Answer>,
    base: Instant,
}

impl Sender {
    fn now(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    /// False once the socket is closed (the server closed it): the sender stops.
    async fn send(&self, sent_us: u64) -> bool {
        let sent = self.sink.lock().await.send(self.protocol.send_message(&self.room, sent_us)).await;
        if let Err(e) = &sent {
            eprintln!("bench: send failed: {e}");
        }
        sent.is_ok()
    }

    /// Each message after the previous one's answer, timing the answers.
    async fn acked(mut self, count: usize) -> Sent {
        let mut sent = Sent::default();
        'messages: for _ in 0..count {
            // A message refused for now goes again after the delay it was given, as a client
            // would; its latencies count from its first attempt.
            let at = self.now();
            loop {
                if !self.send(at).await {
                    break 'messages;
                }
                match self.answers.recv().await {
                    Some(Answer::Acked) => {
                        sent.acked += 1;
                        sent.ack_latencies.push(self.now() - at);
                    }
                    Some(Answer::RetryAfter(delay)) => {
                        sent.retried += 1;
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    Some(Answer::Refused) => sent.failed += 1,
                    // The reader gave up waiting.
                    None => break 'messages,
                }
                break;
            }
        }
        sent
    }

    /// On schedule from `first`, then the answers counted.
    async fn every(mut self, first: Instant, interval: Duration, count: usize) -> Sent {
        for n in 0..count {
            let at = first + interval * n as u32;
            tokio::time::sleep_until(at.into()).await;
            if !self.send((at - self.base).as_micros() as u64).await {
                break;
            }
        }
        let mut sent = Sent::default();
        while let Some(answer) = self.answers.recv().await {
            match answer {
                Answer::Acked => sent.acked += 1,
                Answer::Refused | Answer::RetryAfter(_) => sent.failed += 1,
            }
        }
        sent
    }
}

struct Reader {
    protocol: Protocol,
    deliveries: usize,
    answers: usize,
    /// Whether the sender sends a message refused for now again (then its answer is not final).
    retries: bool,
    answer_tx: mpsc::UnboundedSender<Answer>,
    latency_tx: mpsc::UnboundedSender<u64>,
    base: Instant,
}

impl Reader {
    /// Reads until the deliveries and the answers to its sends have arrived (or `DEADLINE`),
    /// then gives the stream back.
    async fn run(self, mut stream: SplitStream<Ws>, sink: Sink) -> SplitStream<Ws> {
        let (mut delivered, mut answered) = (0, 0);
        let deadline = tokio::time::sleep(DEADLINE);
        tokio::pin!(deadline);
        while delivered < self.deliveries || answered < self.answers {
            let frame = tokio::select! {
                frame = stream.next() => frame,
                _ = &mut deadline => {
                    eprintln!("bench: gave up waiting ({delivered}/{} delivered)", self.deliveries);
                    break;
                }
            };
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(_) => continue,
                None => {
                    eprintln!("bench: socket closed ({delivered}/{} delivered)", self.deliveries);
                    break;
                }
            };
            match self.protocol.parse(&text) {
                Frame::Delivery(sent) => {
                    let _ = self.latency_tx.send((self.base.elapsed().as_micros() as u64).saturating_sub(sent));
                    delivered += 1;
                }
                Frame::Answer(answer) => {
                    if !(self.retries && matches!(answer, Answer::RetryAfter(_))) {
                        answered += 1;
                    }
                    let _ = self.answer_tx.send(answer);
                }
                Frame::Ping => {
                    let _ = sink.lock().await.send(self.protocol.pong()).await;
                }
                Frame::Other => {}
            }
        }
        stream
    }
}
