//! X-Ray sub-segments for the Postgres statements, Redis commands and fan-outs of a Lambda
//! invocation. No maintained X-Ray SDK for Rust records them, but the X-Ray daemon that Lambda
//! runs beside a traced function takes segment documents over UDP: a `tracing` layer turns each
//! span of target [`TARGET`] inside a sampled invocation into one, whose parent is the enclosing
//! such span or the function's own segment (the `Parent` of the invocation's trace header).
//! Elsewhere (the local gateway, an untraced function) the layer is absent and the spans are
//! disabled at their call sites.

use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Instrument, Span, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The target of the spans that become sub-segments.
pub const TARGET: &str = "xray";

/// What the daemon expects before each document.
const HEADER: &str = r#"{"format": "json", "version": 1}"#;

/// A Postgres statement (`sql` has placeholders, never values).
pub fn postgres(sql: &str) -> Span {
    tracing::trace_span!(target: TARGET, "postgres", sql, fault = tracing::field::Empty)
}

/// A Redis command, or a pipeline named by its first command.
pub fn redis(command: Option<&redis::Cmd>) -> Span {
    tracing::trace_span!(target: TARGET, "redis", command = %CommandName(command), fault = tracing::field::Empty)
}

/// A command's name (its first argument), written only when a span records it.
struct CommandName<'a>(Option<&'a redis::Cmd>);

impl std::fmt::Display for CommandName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.and_then(|cmd| cmd.args_iter().next()) {
            Some(redis::Arg::Simple(name)) => f.write_str(&String::from_utf8_lossy(name).to_ascii_uppercase()),
            _ => Ok(()),
        }
    }
}

/// Runs `work` in `span` and marks the span a fault when it fails.
pub async fn traced<T, E>(span: Span, work: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    let result = work.instrument(span.clone()).await;
    if result.is_err() {
        span.record("fault", true);
    }
    result
}

/// The layer, when this process runs in a traced Lambda function (`AWS_XRAY_DAEMON_ADDRESS`,
/// `host:port` or `tcp:host:port udp:host:port`).
pub struct Layer {
    socket: UdpSocket,
    daemon: SocketAddr,
}

impl Layer {
    pub fn new(address: &str) -> Option<Self> {
        let udp = address.split_whitespace().find_map(|a| a.strip_prefix("udp:")).unwrap_or(address);
        let daemon = udp.to_socket_addrs().ok()?.next()?;
        let socket = UdpSocket::bind(if daemon.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(Self { socket, daemon })
    }
}

/// A sampled invocation's trace: where its sub-segments hang.
struct Trace {
    root: String,
    parent: String,
}

impl Trace {
    /// From a trace header (`Root=…;Parent=…;Sampled=1`); none unless sampled.
    fn sampled(header: &str) -> Option<Self> {
        let part = |key: &str| header.split(';').find_map(|kv| kv.trim().strip_prefix(key)?.strip_prefix('='));
        (part("Sampled")? == "1").then(|| Some(Self { root: part("Root")?.into(), parent: part("Parent")?.into() }))?
    }
}

/// An open sub-segment.
struct Sub {
    id: String,
    root: String,
    parent: String,
    start: f64,
    fields: Fields,
}

#[derive(Default)]
struct Fields {
    trace_id: Option<String>,
    sql: Option<String>,
    command: Option<String>,
    fault: bool,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "trace_id" => self.trace_id = Some(value.into()),
            "sql" => self.sql = Some(value.into()),
            "command" => self.command = Some(value.into()),
            _ => {}
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "fault" {
            self.fault = value;
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "command" {
            self.command = Some(format!("{value:?}"));
        }
    }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Layer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if attrs.metadata().target() != TARGET {
            // The invocation's span, which names the trace.
            if let Some(trace) = fields.trace_id.as_deref().and_then(Trace::sampled) {
                span.extensions_mut().insert(trace);
            }
            return;
        }
        let enclosing = span.scope().skip(1).find_map(|outer| {
            let extensions = outer.extensions();
            let sub = extensions.get::<Sub>().map(|sub| (sub.root.clone(), sub.id.clone()));
            sub.or_else(|| extensions.get::<Trace>().map(|t| (t.root.clone(), t.parent.clone())))
        });
        if let Some((root, parent)) = enclosing {
            let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
            span.extensions_mut().insert(Sub { id, root, parent, start: now(), fields });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(sub) = span.extensions_mut().get_mut::<Sub>() {
                values.record(&mut sub.fields);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(sub) = span.extensions_mut().remove::<Sub>() else { return };
        let document = document(span.name(), sub, now());
        // Best effort, as the X-Ray SDKs: a trace must never hold up or fail the work.
        let _ = self.socket.send_to(format!("{HEADER}\n{document}").as_bytes(), self.daemon);
    }
}

fn document(name: &str, sub: Sub, end: f64) -> Value {
    let mut document = json!({
        "name": name, "id": sub.id, "trace_id": sub.root, "parent_id": sub.parent,
        "start_time": sub.start, "end_time": end, "type": "subsegment",
    });
    if sub.fields.fault {
        document["fault"] = json!(true);
    }
    if let Some(sql) = sub.fields.sql {
        document["namespace"] = json!("remote");
        document["sql"] = json!({ "database_type": "PostgreSQL", "sanitized_query": sql });
    }
    if let Some(command) = sub.fields.command {
        document["namespace"] = json!("remote");
        document["metadata"] = json!({ "default": { "command": command } });
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sampled_header_names_a_trace() {
        let trace = Trace::sampled("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
            .expect("sampled");
        assert_eq!(
            (trace.root.as_str(), trace.parent.as_str()),
            ("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8")
        );
        assert!(Trace::sampled("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0").is_none());
        assert!(Trace::sampled("Root=1-5759e988-bd862e3fe1be46a994272793").is_none());
    }

    #[test]
    fn the_daemon_address_may_name_its_udp_port_apart() {
        let layer = Layer::new("tcp:127.0.0.1:2000 udp:127.0.0.1:2001").expect("parsed");
        assert_eq!(layer.daemon.port(), 2001);
        assert_eq!(Layer::new("127.0.0.1:2000").expect("parsed").daemon.port(), 2000);
    }
}
