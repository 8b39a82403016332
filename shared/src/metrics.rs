//! Operational metrics, kept in the process and read two ways: the local gateway serves them at
//! `/metrics` in the Prometheus text format, and a Lambda function prints what one invocation
//! added as one CloudWatch Embedded Metric Format (EMF) line, which CloudWatch turns into metrics
//! with no API call. Dimensions stay bounded: the function, and the tenant only where the
//! operator asks for it (`METRICS_TENANT_DIMENSION`); never a user or a room.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    MessagesStored,
    PostsDelivered,
    PostsGone,
    PostsFailed,
    RateLimited,
    FramesRefused,
    DbPoolTimeouts,
    WebhooksDelivered,
    WebhooksFailed,
}

impl Counter {
    const ALL: [Counter; 9] = [
        Counter::MessagesStored,
        Counter::PostsDelivered,
        Counter::PostsGone,
        Counter::PostsFailed,
        Counter::RateLimited,
        Counter::FramesRefused,
        Counter::DbPoolTimeouts,
        Counter::WebhooksDelivered,
        Counter::WebhooksFailed,
    ];

    /// The CloudWatch name; the Prometheus one is derived from it.
    fn name(self) -> &'static str {
        match self {
            Counter::MessagesStored => "MessagesStored",
            Counter::PostsDelivered => "PostsDelivered",
            Counter::PostsGone => "PostsGone",
            Counter::PostsFailed => "PostsFailed",
            Counter::RateLimited => "RateLimited",
            Counter::FramesRefused => "FramesRefused",
            Counter::DbPoolTimeouts => "DbPoolTimeouts",
            Counter::WebhooksDelivered => "WebhooksDelivered",
            Counter::WebhooksFailed => "WebhooksFailed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Histogram {
    /// One message's fan-out, from the first post to the last (milliseconds).
    FanoutDuration,
    /// A frame's handling until its ack is posted (milliseconds).
    AckLatency,
}

impl Histogram {
    const ALL: [Histogram; 2] = [Histogram::FanoutDuration, Histogram::AckLatency];

    fn name(self) -> &'static str {
        match self {
            Histogram::FanoutDuration => "FanoutDuration",
            Histogram::AckLatency => "AckLatency",
        }
    }
}

/// Bucket bounds in milliseconds, for Prometheus.
const BUCKETS_MS: [f64; 12] = [1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0];
/// EMF takes at most 100 values per metric in one line.
const EMF_VALUES: usize = 100;

#[derive(Default)]
struct Observations {
    buckets: [u64; BUCKETS_MS.len()],
    count: u64,
    sum: f64,
    /// Values since the last EMF line.
    pending: Vec<f64>,
}

struct Registry {
    counters: [AtomicU64; Counter::ALL.len()],
    /// Counter values already printed in an EMF line.
    flushed: [AtomicU64; Counter::ALL.len()],
    /// Frames by type: the protocol's fixed set of names.
    frames: Mutex<BTreeMap<&'static str, (u64, u64)>>,
    histograms: [Mutex<Observations>; Histogram::ALL.len()],
    tenant: Mutex<Option<String>>,
    cold: AtomicBool,
}

static REGISTRY: Registry = Registry {
    counters: [const { AtomicU64::new(0) }; Counter::ALL.len()],
    flushed: [const { AtomicU64::new(0) }; Counter::ALL.len()],
    frames: Mutex::new(BTreeMap::new()),
    histograms: [const {
        Mutex::new(Observations { buckets: [0; BUCKETS_MS.len()], count: 0, sum: 0.0, pending: Vec::new() })
    }; Histogram::ALL.len()],
    tenant: Mutex::new(None),
    cold: AtomicBool::new(true),
};

pub fn count(counter: Counter, n: u64) {
    REGISTRY.counters[counter as usize].fetch_add(n, Ordering::Relaxed);
}

/// One client frame of this `type` (`ClientFrame::kind`).
pub fn frame(kind: &'static str) {
    REGISTRY.frames.lock().unwrap().entry(kind).or_default().0 += 1;
}

pub fn observe(histogram: Histogram, elapsed: Duration) {
    let ms = elapsed.as_secs_f64() * 1000.0;
    let mut h = REGISTRY.histograms[histogram as usize].lock().unwrap();
    if let Some(i) = BUCKETS_MS.iter().position(|bound| ms <= *bound) {
        h.buckets[i] += 1;
    }
    h.count += 1;
    h.sum += ms;
    if h.pending.len() < EMF_VALUES {
        h.pending.push(ms);
    }
}

/// The tenant this invocation serves, for the tenant dimension.
pub fn tenant(tenant_id: &str) {
    *REGISTRY.tenant.lock().unwrap() = Some(tenant_id.to_string());
}

/// Everything since the process started, in the Prometheus text format (version 0.0.4).
pub fn prometheus() -> String {
    let mut out = String::new();
    for counter in Counter::ALL {
        let name = format!("chat_{}_total", snake(counter.name()));
        let value = REGISTRY.counters[counter as usize].load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE {name} counter\n{name} {value}");
    }
    let _ = writeln!(out, "# TYPE chat_frames_total counter");
    for (kind, (n, _)) in REGISTRY.frames.lock().unwrap().iter() {
        let _ = writeln!(out, "chat_frames_total{{type=\"{kind}\"}} {n}");
    }
    for histogram in Histogram::ALL {
        let name = format!("chat_{}_milliseconds", snake(histogram.name()));
        let h = REGISTRY.histograms[histogram as usize].lock().unwrap();
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, n) in BUCKETS_MS.iter().zip(h.buckets) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ =
            writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}", h.count, h.sum, h.count);
    }
    out
}

/// What the process added since the last call, as one EMF line for CloudWatch Logs: every metric
/// in `config.metrics_namespace` under the `Function` dimension and under none, and under
/// `Function` and `Tenant` too with `config.metrics_by_tenant`. `ColdStart` is in every line,
/// 1 in a process's first.
pub fn emf(config: &Config, function: &str, trace_id: Option<&str>, timestamp_ms: i64) -> String {
    let mut root = Map::new();
    let mut metrics = Vec::new();
    let mut put = |name: String, unit: &str, value: Value| {
        metrics.push(json!({ "Name": name, "Unit": unit }));
        root.insert(name, value);
    };
    let cold = REGISTRY.cold.swap(false, Ordering::Relaxed);
    put("ColdStart".into(), "Count", json!(u64::from(cold)));
    // A count of nothing is left out: a function then makes metrics of what it does alone
    // (CloudWatch bills each metric that ever had a value).
    for counter in Counter::ALL {
        let total = REGISTRY.counters[counter as usize].load(Ordering::Relaxed);
        let before = REGISTRY.flushed[counter as usize].swap(total, Ordering::Relaxed);
        if total > before {
            put(counter.name().into(), "Count", json!(total - before));
        }
    }
    for (kind, (n, flushed)) in REGISTRY.frames.lock().unwrap().iter_mut() {
        if *n > *flushed {
            put(format!("Frames.{kind}"), "Count", json!(*n - *flushed));
            *flushed = *n;
        }
    }
    for histogram in Histogram::ALL {
        let pending = std::mem::take(&mut REGISTRY.histograms[histogram as usize].lock().unwrap().pending);
        if !pending.is_empty() {
            put(histogram.name().into(), "Milliseconds", json!(pending));
        }
    }
    // No dimension at all: the stack-wide figure the alarms and the dashboard read.
    let mut dimensions = vec![json!(["Function"]), json!([])];
    root.insert("Function".into(), json!(function));
    if let Some(tenant) = REGISTRY.tenant.lock().unwrap().take().filter(|_| config.metrics_by_tenant) {
        dimensions.push(json!(["Function", "Tenant"]));
        root.insert("Tenant".into(), json!(tenant));
    }
    if let Some(trace_id) = trace_id {
        root.insert("TraceId".into(), json!(trace_id));
    }
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{ "Namespace": config.metrics_namespace, "Dimensions": dimensions, "Metrics": metrics }],
        }),
    );
    Value::Object(root).to_string()
}

/// `PostsGone` → `posts_gone`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}
