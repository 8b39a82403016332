//! Scheduled every minute: removes typing indicators not renewed within their TTL and tells the
//! rooms, sweeping every `TYPING_SWEEP_INTERVAL_MS` for `SWEEP_WINDOW_SECONDS`, so an indicator
//! stops about when it expires rather than up to a minute later.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::{handlers, ChatService};
use tokio::time::{sleep, Instant};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let service = &ChatService::from_env().await?;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let trace_id = event.context.xray_trace_id.clone();
        shared::telemetry::invocation(&service.config, "typing-cleanup", trace_id, async move {
            let until = Instant::now() + service.config.sweep_window;
            let (mut expired, mut sweeps) = (0, 0);
            loop {
                expired += handlers::typing_cleanup(service).await?;
                sweeps += 1;
                if Instant::now() + service.config.typing_sweep_interval >= until {
                    break;
                }
                sleep(service.config.typing_sweep_interval).await;
            }
            Ok::<_, Error>(serde_json::json!({ "expired": expired, "sweeps": sweeps }))
        })
    }))
    .await
}
