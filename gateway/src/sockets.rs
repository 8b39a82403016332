//! The open client sockets by connection id: what the `@connections` endpoint and in-process
//! posts deliver to. Each socket has a bounded queue of outbound frames: a client that does not
//! read fast enough to keep it from filling is closed (1013, "try again later") and its posts
//! answer Gone, so it is pruned like any closed connection, and no queue grows without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use shared::fanout::{Connections, Payload, PostError};
use tokio::sync::{mpsc, Notify};

use crate::ConnectionContext;

/// Frames waiting for one client: chat traffic for a reader that keeps up, seconds of it for
/// one that does not.
pub const OUTBOUND_QUEUE: usize = 256;

#[derive(Debug)]
pub enum Outbound {
    Frame(Payload),
    Close,
}

pub struct Socket {
    tx: mpsc::Sender<Outbound>,
    /// Told when the queue overflowed: the connection's task closes the socket.
    pub overflowed: Arc<Notify>,
    pub context: ConnectionContext,
    pub last_active: chrono::DateTime<chrono::Utc>,
}

/// What a new socket's task reads from.
pub struct Receiving {
    pub rx: mpsc::Receiver<Outbound>,
    pub overflowed: Arc<Notify>,
}

#[derive(Default)]
pub struct Sockets {
    map: Mutex<HashMap<String, Socket>>,
}

impl Sockets {
    pub fn lock(&self) -> MutexGuard<'_, HashMap<String, Socket>> {
        self.map.lock().expect("lock poisoned")
    }

    /// Registers a socket (before `$connect`, so posts made while the upgrade completes wait).
    pub fn open(&self, context: ConnectionContext) -> Receiving {
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let overflowed = Arc::new(Notify::new());
        let socket =
            Socket { tx, overflowed: overflowed.clone(), last_active: chrono::Utc::now(), context: context.clone() };
        self.lock().insert(context.connection_id, socket);
        Receiving { rx, overflowed }
    }

    pub fn remove(&self, connection_id: &str) {
        self.lock().remove(connection_id);
    }

    /// Queues a frame for the client: Gone when the connection is not open, or when it cannot
    /// keep up (it is then closed).
    pub fn post(&self, connection_id: &str, payload: Payload) -> Result<(), PostError> {
        let mut sockets = self.lock();
        let Some(socket) = sockets.get(connection_id) else { return Err(PostError::Gone) };
        match socket.tx.try_send(Outbound::Frame(payload)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(connection_id, "client cannot keep up: closing it");
                socket.overflowed.notify_one();
                sockets.remove(connection_id);
                Err(PostError::Gone)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(PostError::Gone),
        }
    }

    /// Asks the socket to close (DeleteConnection); false when it is not open.
    pub fn close(&self, connection_id: &str) -> bool {
        let sockets = self.lock();
        let Some(socket) = sockets.get(connection_id) else { return false };
        // A full queue means the client is being closed already.
        let _ = socket.tx.try_send(Outbound::Close);
        true
    }
}

/// The handlers' posts and closes when they run inside the gateway: straight to the socket's
/// queue, with PostToConnection's and DeleteConnection's semantics (the endpoint names this
/// gateway, so it is not looked at).
impl Connections for Sockets {
    fn post<'a>(
        &'a self,
        _endpoint: &'a str,
        connection_id: &'a str,
        payload: Payload,
    ) -> BoxFuture<'a, Result<(), PostError>> {
        Box::pin(std::future::ready(Sockets::post(self, connection_id, payload)))
    }

    fn close<'a>(&'a self, _endpoint: &'a str, connection_id: &'a str) -> BoxFuture<'a, Result<(), PostError>> {
        let closed = if Sockets::close(self, connection_id) { Ok(()) } else { Err(PostError::Gone) };
        Box::pin(std::future::ready(closed))
    }

    fn exists<'a>(&'a self, _endpoint: &'a str, connection_id: &'a str) -> BoxFuture<'a, Result<bool, PostError>> {
        Box::pin(std::future::ready(Ok(self.lock().contains_key(connection_id))))
    }
}
