//! Posts the webhook events the other functions put on the SQS queue (see `shared::webhooks`).
//! An event that fails goes back on the queue with its backoff as delay; one out of attempts is
//! reported failed, so the queue's redrive policy moves it to the dead-letter queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::webhooks::{self, Deliverer};
use shared::ChatService;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let service = &ChatService::from_env().await?;
    let deliverer = &Deliverer::new(&service.config, service.store.clone(), service.presence.clone());
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let trace_id = event.context.xray_trace_id.clone();
        shared::telemetry::invocation(&service.config, "webhook", trace_id, async move {
            Ok::<SqsBatchResponse, Error>(webhooks::work_batch(&service.webhooks, deliverer, event.payload).await)
        })
    }))
    .await
}
