//! Posts one chunk of a big room's fan-out, handed over by asynchronous invocation (see
//! `shared::fanout`): the posts, pruning of gone connections, and the delivery positions. A
//! failed chunk goes to the function's on-failure destination (a dead-letter queue).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde::Deserialize;
use shared::fanout::Chunk;
use shared::{handlers, ChatService};

#[derive(Deserialize)]
struct Event {
    fanout: Chunk,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let service = &ChatService::from_env().await?;
    run(service_fn(move |event: LambdaEvent<Event>| {
        let trace_id = event.context.xray_trace_id.clone();
        shared::telemetry::invocation(&service.config, "fanout", trace_id, async move {
            handlers::fanout(service, event.payload.fanout).await?;
            Ok::<(), Error>(())
        })
    }))
    .await
}
