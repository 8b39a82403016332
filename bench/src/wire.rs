//! What the load generator writes and reads on a WebSocket, in our protocol and in Socket.IO's
//! (Engine.IO v4 packets over a plain WebSocket: `42[event,data]` events, `42<id>[...]` when an
//! acknowledgement is wanted, answered `43<id>[...]`; the server pings `2`, the client pongs `3`).

use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A delivered message's content says when it was sent: `bench:<µs since the exchange's base>`.
const TAG: &str = "bench:";

#[derive(Clone, Copy)]
pub enum Protocol {
    Ours,
    SocketIo,
}

/// What a send was answered.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Acked,
    Refused,
    /// Refused for now (overload or a rate limit): a client sends it again after the delay.
    RetryAfter(std::time::Duration),
}

/// A received frame, as the load generator sees it.
pub enum Frame {
    /// A message delivered to this member, with the send time it carries.
    Delivery(u64),
    /// The answer to one of this client's sends.
    Answer(Answer),
    /// A heartbeat the client must answer (with `Protocol::pong`).
    Ping,
    Other,
}

impl Protocol {
    pub fn send_message(self, room: &str, sent_us: u64) -> Message {
        let content = format!("{TAG}{sent_us}");
        let text = match self {
            Protocol::Ours => json!({ "type": "send_message", "room_id": room, "content": content }).to_string(),
            // Every send wants ack 1: the generator counts answers (as with ours) rather than
            // match them, and the server only echoes the id.
            Protocol::SocketIo => format!("421{}", json!(["send_message", { "room_id": room, "content": content }])),
        };
        Message::Text(text.into())
    }

    pub fn pong(self) -> Message {
        Message::Text("3".into())
    }

    pub fn parse(self, text: &str) -> Frame {
        match self {
            Protocol::Ours => {
                let frame: Value = serde_json::from_str(text).unwrap();
                match frame["type"].as_str() {
                    Some("new_message") => delivery(&frame),
                    Some("message_sent") => Frame::Answer(Answer::Acked),
                    Some("error") => match frame["retry_after_ms"].as_u64() {
                        Some(ms) => Frame::Answer(Answer::RetryAfter(std::time::Duration::from_millis(ms))),
                        None => {
                            eprintln!("bench: error frame {frame}");
                            Frame::Answer(Answer::Refused)
                        }
                    },
                    _ => Frame::Other,
                }
            }
            Protocol::SocketIo => {
                if text == "2" {
                    Frame::Ping
                } else if text.starts_with("43") {
                    Frame::Answer(Answer::Acked)
                } else if let Some(event) = text.strip_prefix("42") {
                    let event: Value = serde_json::from_str(event).unwrap();
                    if event[0] == "new_message" {
                        delivery(&event[1])
                    } else {
                        Frame::Other
                    }
                } else {
                    Frame::Other
                }
            }
        }
    }
}

/// A `new_message` frame: a delivery if the load generator sent it (not a system message).
fn delivery(frame: &Value) -> Frame {
    let sent = frame["message"]["content"].as_str().and_then(|c| c.strip_prefix(TAG));
    sent.map_or(Frame::Other, |sent| Frame::Delivery(sent.parse().unwrap()))
}
