//! A tenant's backend as the webhooks reach it: a real HTTP server that checks each request's
//! signature against the secret, can answer failures, or hold requests until released.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::{TestApp, WAIT};

/// One request as received.
#[derive(Debug)]
pub struct Received {
    pub event: String,
    pub delivery: String,
    pub body: Value,
    /// What the receiver answered.
    pub status: u16,
}

struct Shared {
    secret: Mutex<String>,
    failures_left: AtomicUsize,
    open: watch::Receiver<bool>,
    in_hand: AtomicUsize,
    most_in_hand: AtomicUsize,
    arrived: mpsc::UnboundedSender<()>,
    received: mpsc::UnboundedSender<Received>,
}

pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
    open: watch::Sender<bool>,
    arrived: mpsc::UnboundedReceiver<()>,
    received: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    /// Over plain HTTP (the suites' configuration lets endpoints be on this machine and HTTP).
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/chat", listener.local_addr().unwrap());
        Self::serve(listener, url)
    }

    /// Over HTTPS, with the certificate and key of these PEM files (one for 127.0.0.1).
    pub async fn start_tls(cert: &Path, key: &Path) -> Self {
        let certs = CertificateDer::pem_file_iter(cert).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/hooks/chat", tcp.local_addr().unwrap());
        Self::serve(TlsListener { tcp, acceptor: TlsAcceptor::from(Arc::new(tls)) }, url)
    }

    fn serve(listener: impl axum::serve::Listener<Addr = SocketAddr>, url: String) -> Self {
        let (open, open_rx) = watch::channel(true);
        let (arrived_tx, arrived) = mpsc::unbounded_channel();
        let (received_tx, received) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            secret: Mutex::default(),
            failures_left: AtomicUsize::new(0),
            open: open_rx,
            in_hand: AtomicUsize::new(0),
            most_in_hand: AtomicUsize::new(0),
            arrived: arrived_tx,
            received: received_tx,
        });
        let app = axum::Router::new().route("/hooks/chat", axum::routing::post(take)).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, shared, open, arrived, received }
    }

    /// Makes this the tenant's endpoint (`body`: the rest of the `PUT`) with an admin's token,
    /// and expects requests signed with the secret it answers.
    pub async fn subscribe(&self, app: &TestApp, mut body: Value) -> Value {
        body["url"] = json!(self.url);
        let admin = app.token_with_roles("boss", &["admin"]);
        let (status, endpoint) = app.http(reqwest::Method::PUT, "webhook", Some(admin), Some(body)).await;
        assert_eq!(status, 200, "{endpoint}");
        *self.shared.secret.lock().unwrap() = endpoint["secret"].as_str().unwrap().to_string();
        endpoint
    }

    /// The next `n` requests are answered 500.
    pub fn fail_next(&self, n: usize) {
        self.shared.failures_left.store(n, Ordering::SeqCst);
    }

    /// Requests are held unanswered until [`release`](Self::release).
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Waits for a request to arrive (held or not).
    pub async fn arrival(&mut self) {
        tokio::time::timeout(WAIT, self.arrived.recv()).await.expect("no webhook request in time");
    }

    /// The next request answered.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.received.recv()).await.expect("no webhook request in time").unwrap()
    }

    /// The most requests it held at once.
    pub fn most_in_hand(&self) -> usize {
        self.shared.most_in_hand.load(Ordering::SeqCst)
    }
}

async fn take(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> StatusCode {
    let in_hand = shared.in_hand.fetch_add(1, Ordering::SeqCst) + 1;
    shared.most_in_hand.fetch_max(in_hand, Ordering::SeqCst);
    let _ = shared.arrived.send(());
    let mut open = shared.open.clone();
    let _ = open.wait_for(|open| *open).await;
    shared.in_hand.fetch_sub(1, Ordering::SeqCst);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let status = if !signed(&shared.secret.lock().unwrap(), &header("x-chat-signature"), &body) {
        StatusCode::UNAUTHORIZED
    } else if shared.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let received = Received {
        event: header("x-chat-event"),
        delivery: header("x-chat-delivery"),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
        status: status.as_u16(),
    };
    let _ = shared.received.send(received);
    status
}

/// Accepts TLS connections; one whose handshake fails is dropped and the next one taken.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, address)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Checks `t=…,v1=…` as a receiver should: the HMAC of "t.body", a timestamp within five minutes.
fn signed(secret: &str, header: &str, body: &str) -> bool {
    let part = |key: &str| header.split(',').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='));
    let Some(timestamp) = part("t").and_then(|t| t.parse::<i64>().ok()) else { return false };
    let fresh = (chrono::Utc::now().timestamp() - timestamp).abs() <= 300;
    fresh && shared::webhooks::signature(secret, timestamp, body) == header
}
