//! Scheduled daily: moves messages older than `ARCHIVE_AFTER_DAYS` to `ARCHIVE_BUCKET`, as
//! gzipped JSON Lines per room and month; history reads reach them there.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::ChatService;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let service = &ChatService::from_env().await?;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let trace_id = event.context.xray_trace_id.clone();
        shared::telemetry::invocation(&service.config, "archive", trace_id, async move {
            let report = service.archive_old_messages().await?;
            Ok::<_, Error>(
                serde_json::json!({ "rooms": report.rooms, "months": report.months, "messages": report.messages }),
            )
        })
    }))
    .await
}
