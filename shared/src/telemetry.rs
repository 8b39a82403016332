//! Logging setup: JSON lines in Lambda (CloudWatch), readable text locally; and the frame of
//! one Lambda invocation.

use std::future::Future;

use tracing::{Instrument, Level};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::{xray, Config};

pub fn init() {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn"));
    let lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let logs = if lambda {
        tracing_subscriber::fmt::layer().json().without_time().with_filter(filter).boxed()
    } else {
        tracing_subscriber::fmt::layer().with_filter(filter).boxed()
    };
    // Lambda names the daemon only when the function's tracing is active.
    let xray = std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok().filter(|_| lambda).and_then(|a| xray::Layer::new(&a));
    let spans = Targets::new().with_target(xray::TARGET, Level::TRACE).with_target(module_path!(), Level::INFO);
    // A second init (tests spawning several gateways) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(logs).with(xray.map(|layer| layer.with_filter(spans))).try_init();
}

/// One Lambda invocation of `function`: its work runs in a span that carries the X-Ray trace id
/// (so every log line of the invocation names its trace, and its sub-segments find their parent), then the metrics it added go to stdout
/// as one EMF line, which CloudWatch Logs turns into metrics (the trace id in it leads from a
/// metric's log line to its trace).
pub async fn invocation<F: Future>(
    config: &Config,
    function: &'static str,
    trace_id: Option<String>,
    work: F,
) -> F::Output {
    let span = tracing::info_span!("invocation", function, trace_id = trace_id.as_deref().unwrap_or_default());
    let output = work.instrument(span).await;
    let now = chrono::Utc::now().timestamp_millis();
    let line = crate::metrics::emf(config, function, trace_id.as_deref(), now);
    println!("{line}");
    output
}
