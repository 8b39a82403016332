//! The benchmark's second peer, what a Rust team would deploy: a Socket.IO server (socketioxide on
//! axum) scaled out with its Redis adapter, with the events and replies of bench/socketio's
//! server. Rooms and relay only; unlike ours it stores nothing.
//!   PORT=0 REDIS_URL=redis://127.0.0.1:6379 socketioxide-peer   (prints "listening on PORT")

use std::convert::Infallible;

use axum::serve::ListenerExt;
use serde::Deserialize;
use serde_json::{json, Value};
use socketioxide::adapter::Emitter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;
use socketioxide_redis::{RedisAdapter, RedisAdapterCtr};

type Adapter = RedisAdapter<Emitter>;
type Socket = SocketRef<Adapter>;

#[derive(Deserialize)]
struct SendMessage {
    room_id: String,
    content: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // The adapter takes pushed messages, which only RESP3 has.
    let separator = if redis.contains('?') { '&' } else { '?' };
    let client = redis::Client::open(format!("{redis}{separator}protocol=resp3"))?;
    let adapter = RedisAdapterCtr::new_with_redis(&client).await?;
    let (layer, io) = SocketIo::builder().with_adapter::<Adapter>(adapter).build_layer();
    io.ns("/", (async || {}).with(on_connect)).await?;

    let app = axum::Router::new().layer(layer);
    let port = std::env::var("PORT").unwrap_or_else(|_| "0".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on {}", listener.local_addr()?.port());
    // As the other servers do, small frames go out without waiting on Nagle.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

/// A connect middleware rather than the connect handler: socketioxide runs middlewares before it
/// sends the connect packet but spawns the handler after, so a client's first event could find
/// no handler yet (joins were lost that way under load).
async fn on_connect(socket: Socket, Data(auth): Data<Value>) -> Result<(), Infallible> {
    let user = auth["user"].as_str().map_or_else(|| socket.id.to_string(), str::to_string);
    socket.on("join_room", async |socket: Socket, Data(room): Data<String>, ack: AckSender<Adapter>| {
        socket.join(room.clone());
        let _ = ack.send(&json!({ "type": "room_joined", "room_id": room }));
    });
    socket.on("send_message", async move |socket: Socket, Data(send): Data<SendMessage>, ack: AckSender<Adapter>| {
        let message = json!({
            "id": uuid::Uuid::new_v4(),
            "room_id": send.room_id,
            "sender_id": user,
            "content": send.content,
            "created_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        let _ =
            socket.to(send.room_id).emit("new_message", &json!({ "type": "new_message", "message": message })).await;
        let _ = ack.send(&json!({ "type": "message_sent", "message": message }));
    });
    Ok(())
}
