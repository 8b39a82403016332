//! What the load generator writes and reads on a WebSocket, in our protocol and in Socket.IO's
//! (Engine.IO v4 packets over a plain WebSocket: `42[event,data]` events, `42<id>[...]` when an
//! acknowledgement is wanted, answered `43<id>[...]`; the server pings `2`, the client pongs `3`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::json;
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

    /// Reads only what the generator needs (a frame's type, a message's content, a refusal's
    /// delay), the same way for every server, so that a server whose frames carry more fields
    /// does not make the generator the bound (a full parse into `Value` cost in proportion).
    pub fn parse(self, text: &str) -> Frame {
        match self {
            Protocol::Ours => match serde_json::from_str::<Incoming>(text) {
                Ok(frame) => frame.seen(text),
                Err(e) => panic!("a frame the generator cannot read ({e}): {text}"),
            },
            Protocol::SocketIo => {
                if text == "2" {
                    Frame::Ping
                } else if text.starts_with("43") {
                    Frame::Answer(Answer::Acked)
                } else if let Some(event) = text.strip_prefix("42") {
                    match serde_json::from_str::<(Cow<str>, Incoming)>(event) {
                        Ok((name, frame)) if name == "new_message" => frame.seen(text),
                        _ => Frame::Other,
                    }
                } else {
                    Frame::Other
                }
            }
        }
    }
}

/// The fields of a frame the generator looks at; the others are skipped unread.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    message: Option<Carried<'a>>,
    retry_after_ms: Option<u64>,
}

/// A frame's `message`: a message object, of which its `content` is read, or an error's text.
struct Carried<'a> {
    content: Option<Cow<'a, str>>,
}

/// A string borrowed from the frame where it has no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Carried<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Either<'a> {
            type Value = Carried<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a message or a text")
            }

            fn visit_str<E>(self, _: &str) -> Result<Carried<'a>, E> {
                Ok(Carried { content: None })
            }

            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Carried<'a>, M::Error> {
                let mut content = None;
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    if key == "content" {
                        content = map.next_value::<Option<Text<'de>>>()?.map(|Text(text)| text);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(Carried { content })
            }
        }
        deserializer.deserialize_any(Either(std::marker::PhantomData))
    }
}

impl Incoming<'_> {
    fn seen(self, text: &str) -> Frame {
        match (&*self.kind, self.retry_after_ms) {
            // A delivery if the load generator sent it (not a system message).
            ("new_message", _) => {
                let content = self.message.and_then(|m| m.content);
                let sent = content.as_deref().and_then(|c| c.strip_prefix(TAG)).map(|sent| sent.parse().unwrap());
                sent.map_or(Frame::Other, Frame::Delivery)
            }
            ("message_sent", _) => Frame::Answer(Answer::Acked),
            ("error", Some(ms)) => Frame::Answer(Answer::RetryAfter(std::time::Duration::from_millis(ms))),
            ("error", None) => {
                eprintln!("bench: error frame {text}");
                Frame::Answer(Answer::Refused)
            }
            _ => Frame::Other,
        }
    }
}
