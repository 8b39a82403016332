//! Fault injection between the system and its dependencies or its clients: a TCP proxy that can
//! be cut (Postgres, Redis) or go silent (a client whose network is gone), and a front for the
//! management API that can answer with errors.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

struct ProxyState {
    /// While down, connections are refused and open ones dropped.
    down: Mutex<bool>,
    /// While frozen, nothing passes either way and nothing is closed.
    frozen: Arc<AtomicBool>,
    links: Mutex<Vec<JoinHandle<()>>>,
}

/// A TCP proxy in front of a dependency.
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
    server: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
        self.cut_links();
    }
}

impl FaultProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let state = Arc::new(ProxyState { down: Mutex::new(false), frozen, links: Mutex::new(Vec::new()) });
        let shared = state.clone();
        let server = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *shared.down.lock().unwrap() {
                    continue;
                }
                let frozen = shared.frozen.clone();
                let link = tokio::spawn(async move {
                    let Ok(upstream) = TcpStream::connect(target).await else { return };
                    let (client_read, client_write) = client.into_split();
                    let (up_read, up_write) = upstream.into_split();
                    tokio::join!(pipe(client_read, up_write, &frozen), pipe(up_read, client_write, &frozen));
                });
                shared.links.lock().unwrap().push(link);
            }
        });
        Self { addr, state, server }
    }

    /// The URL of the dependency with this proxy's address in place of its host and port.
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let after_host = rest.find(['/', '?']).map_or("", |at| &rest[at..]);
        let credentials =
            rest.split_once('@').filter(|(c, _)| !c.contains('/')).map_or(String::new(), |(c, _)| format!("{c}@"));
        format!("{scheme}://{credentials}{}{after_host}", self.addr)
    }

    /// Refuses new connections and drops the open ones, as a crashed server would.
    pub fn down(&self) {
        *self.state.down.lock().unwrap() = true;
        self.cut_links();
    }

    pub fn up(&self) {
        *self.state.down.lock().unwrap() = false;
    }

    /// Passes nothing more either way and closes nothing, as when a client's network drops
    /// without a close frame or a FIN: each side's socket stays open, silent.
    pub fn freeze(&self) {
        self.state.frozen.store(true, Ordering::SeqCst);
    }

    fn cut_links(&self) {
        for link in self.state.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

async fn pipe(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, frozen: &AtomicBool) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if frozen.load(Ordering::SeqCst) {
            // Holds both sockets open, forever silent.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// What the management front answers instead of passing a post on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Answer {
    Pass,
    /// This status with API Gateway's error type, for the next `times` posts (then Pass).
    Fail {
        status: u16,
        times: usize,
    },
}

struct FrontState {
    target: Mutex<String>,
    answer: Mutex<Answer>,
    failed: Mutex<usize>,
    client: reqwest::Client,
}

/// A management API front: passes posts on to the gateway, or fails them as told.
pub struct ManagementFront {
    pub endpoint: String,
    state: Arc<FrontState>,
    server: JoinHandle<()>,
}

impl Drop for ManagementFront {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ManagementFront {
    /// A front whose target (`point_at`) is set once the gateway it fronts has started.
    pub async fn start() -> Self {
        let state = Arc::new(FrontState {
            target: Mutex::new(String::new()),
            answer: Mutex::new(Answer::Pass),
            failed: Mutex::new(0),
            client: reqwest::Client::new(),
        });
        let app = Router::new().route("/{stage}/@connections/{id}", any(forward)).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/local", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { endpoint, state, server }
    }

    /// Passes posts on to this management endpoint (`http://host:port/stage`).
    pub fn point_at(&self, target: String) {
        *self.state.target.lock().unwrap() = target;
    }

    pub fn answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
        *self.state.failed.lock().unwrap() = 0;
    }

    /// How many posts were failed on purpose.
    pub fn failed(&self) -> usize {
        *self.state.failed.lock().unwrap()
    }
}

async fn forward(
    State(state): State<Arc<FrontState>>,
    Path((_, id)): Path<(String, String)>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let failure = {
        let mut answer = state.answer.lock().unwrap();
        match *answer {
            Answer::Fail { status, times } if times > 0 => {
                *answer = if times == 1 { Answer::Pass } else { Answer::Fail { status, times: times - 1 } };
                *state.failed.lock().unwrap() += 1;
                Some(status)
            }
            _ => None,
        }
    };
    if let Some(status) = failure {
        let kind = match status {
            410 => "GoneException",
            429 => "LimitExceededException",
            _ => "InternalServerErrorException",
        };
        return (StatusCode::from_u16(status).unwrap(), [("x-amzn-ErrorType", kind)], r#"{"message":null}"#)
            .into_response();
    }
    let url = format!("{}/@connections/{}", state.target.lock().unwrap(), urlencode(&id));
    let mut request = state.client.request(method, url).body(body);
    if let Some(kind) = headers.get("content-type") {
        request = request.header("content-type", kind);
    }
    match request.send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            let kind = answer.headers().get("x-amzn-ErrorType").cloned();
            let mut response = (status, answer.bytes().await.unwrap_or_default()).into_response();
            if let Some(kind) = kind {
                response.headers_mut().insert("x-amzn-ErrorType", kind);
            }
            response
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

fn urlencode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
