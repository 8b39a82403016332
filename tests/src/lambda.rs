//! A local Lambda: the Runtime API a function binary polls (next invocation, response, error),
//! and the Invoke API, so a function that invokes itself asynchronously is served here as well.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, Notify};

use crate::WAIT;

type Outcome = Result<Value, Value>;

/// The X-Ray trace header every invocation here carries.
pub const TRACE_ID: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

/// Checks `line` against CloudWatch's Embedded Metric Format specification: `_aws` holds a
/// millisecond `Timestamp` and `CloudWatchMetrics` directives, each with a `Namespace`,
/// `Dimensions` (sets of at most 30 names, each a string member of the line) and `Metrics`
/// (each named metric a member of the line: a number, or an array of at most 100 numbers).
pub fn check_emf(line: &Value) {
    let aws = &line["_aws"];
    assert!(aws["Timestamp"].as_i64().is_some_and(|t| t > 1_600_000_000_000), "Timestamp in ms: {line}");
    let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics is an array");
    assert!(!directives.is_empty(), "{line}");
    for directive in directives {
        assert!(directive["Namespace"].as_str().is_some_and(|n| !n.is_empty()), "Namespace: {directive}");
        for set in directive["Dimensions"].as_array().expect("Dimensions is an array") {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(set.len() <= 30, "{directive}");
            for name in set {
                let name = name.as_str().expect("a dimension is named by a string");
                assert!(line[name].is_string(), "dimension {name} has a string value in the line: {line}");
            }
        }
        let metrics = directive["Metrics"].as_array().expect("Metrics is an array");
        assert!(metrics.len() <= 100, "{directive}");
        for metric in metrics {
            let name = metric["Name"].as_str().expect("a metric has a Name");
            if let Some(unit) = metric.get("Unit") {
                assert!(unit.is_string(), "{metric}");
            }
            match &line[name] {
                Value::Number(_) => {}
                Value::Array(values) => {
                    assert!(
                        !values.is_empty() && values.len() <= 100 && values.iter().all(Value::is_number),
                        "{name}: {line}"
                    )
                }
                other => panic!("metric {name} is {other} in the line: {line}"),
            }
        }
    }
}

#[derive(Default)]
struct Runtime {
    queue: Mutex<VecDeque<(String, Value)>>,
    queued: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// Payloads received through the Invoke API with InvocationType=Event.
    async_invocations: Mutex<Vec<Value>>,
    invoked: Notify,
    /// The function's EMF lines (what it prints on stdout with an `_aws` key).
    emf: Mutex<Vec<Value>>,
    printed: Notify,
}

/// One function: its runtime endpoint and, once started, its process.
pub struct LocalLambda {
    pub name: String,
    binary: std::path::PathBuf,
    addr: SocketAddr,
    runtime: Arc<Runtime>,
    child: Option<Child>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LocalLambda {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The binary cargo built for a workspace function.
pub fn function_binary(name: &str) -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: build the functions first (cargo build --workspace --bins; make test does)",
        path.display()
    );
    path
}

impl LocalLambda {
    /// The workspace's debug build of the function.
    pub async fn new(name: &str) -> Self {
        Self::with_binary(name, function_binary(name)).await
    }

    pub async fn with_binary(name: &str, binary: std::path::PathBuf) -> Self {
        let runtime = Arc::new(Runtime::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2015-03-31/functions/{name}/invocations", post(invoke_api))
            .with_state(runtime.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { name: name.to_string(), binary, addr, runtime, child: None, server }
    }

    /// Starts the real binary with the environment Lambda gives a function, plus `env`.
    pub fn start(&mut self, env: &[(&str, String)]) {
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_ENDPOINT_URL_LAMBDA", format!("http://{}", self.addr))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start the function binary");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let runtime = self.runtime.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    if value.get("_aws").is_some() {
                        runtime.emf.lock().unwrap().push(value);
                        runtime.printed.notify_waiters();
                    }
                }
            }
        });
        self.child = Some(child);
    }

    /// Waits until the function has printed `n` EMF lines, and returns them.
    pub async fn emf_lines(&self, n: usize) -> Vec<Value> {
        tokio::time::timeout(WAIT, async {
            loop {
                let printed = self.runtime.printed.notified();
                let lines = self.runtime.emf.lock().unwrap().clone();
                if lines.len() >= n {
                    return lines;
                }
                printed.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("fewer than {n} EMF lines in time"))
    }

    /// Queues an event and waits for the function's answer.
    pub async fn invoke(&self, event: Value) -> Outcome {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.runtime.waiting.lock().unwrap().insert(id.clone(), tx);
        self.runtime.queue.lock().unwrap().push_back((id, event));
        self.runtime.queued.notify_one();
        tokio::time::timeout(WAIT, rx).await.expect("the function did not answer in time").expect("runtime stopped")
    }

    /// Starts the binary and times its first invocation: the cold start to first response.
    pub async fn cold_start(&mut self, env: &[(&str, String)], event: Value) -> (Outcome, Duration) {
        let started = Instant::now();
        self.start(env);
        let outcome = self.invoke(event).await;
        (outcome, started.elapsed())
    }

    /// Waits for the next asynchronous invocation the function made of itself, runs it, and
    /// returns its payload and outcome.
    pub async fn run_async_invocation(&self) -> (Value, Outcome) {
        let payload = self.next_async_invocation().await;
        let outcome = self.invoke(payload.clone()).await;
        (payload, outcome)
    }

    /// Waits for the next payload the function sent through the Invoke API with
    /// InvocationType=Event (to itself or to another function).
    pub async fn next_async_invocation(&self) -> Value {
        tokio::time::timeout(WAIT, async {
            loop {
                // Created before the check, so a payload arriving in between still wakes it.
                let invoked = self.runtime.invoked.notified();
                if let Some(p) = self.runtime.async_invocations.lock().unwrap().pop() {
                    return p;
                }
                invoked.await;
            }
        })
        .await
        .expect("no asynchronous invocation in time")
    }
}

async fn next(State(runtime): State<Arc<Runtime>>) -> Response {
    loop {
        let notified = runtime.queued.notified();
        if let Some((id, event)) = runtime.queue.lock().unwrap().pop_front() {
            let deadline = chrono::Utc::now().timestamp_millis() + 15_000;
            return (
                [
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:local".into(),
                    ),
                    ("lambda-runtime-trace-id", TRACE_ID.into()),
                    ("content-type", "application/json".into()),
                ],
                event.to_string(),
            )
                .into_response();
        }
        notified.await;
    }
}

fn finish(runtime: &Runtime, id: &str, outcome: Outcome) -> StatusCode {
    match runtime.waiting.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

fn json(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn respond(State(runtime): State<Arc<Runtime>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&runtime, &id, Ok(json(&body)))
}

async fn fail(State(runtime): State<Arc<Runtime>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&runtime, &id, Err(json(&body)))
}

async fn init_error(body: Bytes) -> StatusCode {
    panic!("function failed to initialize: {}", String::from_utf8_lossy(&body));
}

/// The Invoke API: asynchronous invocations are queued for the same function, as Lambda does.
async fn invoke_api(State(runtime): State<Arc<Runtime>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    assert_eq!(headers.get("x-amz-invocation-type").and_then(|v| v.to_str().ok()), Some("Event"));
    runtime.async_invocations.lock().unwrap().push(json(&body));
    runtime.invoked.notify_waiters();
    StatusCode::ACCEPTED
}
