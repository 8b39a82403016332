//! `$disconnect`: forgets the connection; a user's last one takes them offline.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::{handlers, ChatService};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let service = &ChatService::from_env().await?;
    run(service_fn(move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        let trace_id = event.context.xray_trace_id.clone();
        shared::telemetry::invocation(&service.config, "disconnect", trace_id, async move {
            Ok::<ApiGatewayProxyResponse, Error>(handlers::disconnect(service, event.payload).await)
        })
    }))
    .await
}
