//! `$connect`: checks the token and records the connection. API Gateway will not deliver posts to
//! a connection before `$connect` returns, so on success this function invokes itself
//! asynchronously with a welcome event, which posts the `connection` frame once the socket is open.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde::Deserialize;
use shared::handlers::{self, WelcomeEvent};
use shared::ChatService;

#[derive(Deserialize)]
#[serde(untagged)]
enum Event {
    Welcome { welcome: WelcomeEvent },
    Connect(Box<ApiGatewayWebsocketProxyRequest>),
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let service = &ChatService::from_env().await?;
    let lambda = &aws_sdk_lambda::Client::new(&aws_config::load_from_env().await);
    let function = &std::env::var("AWS_LAMBDA_FUNCTION_NAME")?;
    run(service_fn(move |event: LambdaEvent<Event>| {
        let trace_id = event.context.xray_trace_id.clone();
        shared::telemetry::invocation(&service.config, "connect", trace_id, async move {
            match event.payload {
                Event::Welcome { welcome } => {
                    handlers::welcome(service, welcome).await?;
                    Ok::<Option<ApiGatewayProxyResponse>, Error>(None)
                }
                Event::Connect(request) => {
                    let welcome = handlers::welcome_event(service, &request);
                    let response = handlers::connect(service, *request).await;
                    if let (200, Some(welcome)) = (response.status_code, welcome) {
                        let payload = serde_json::to_vec(&serde_json::json!({ "welcome": welcome }))?;
                        lambda
                            .invoke()
                            .function_name(function)
                            .invocation_type(InvocationType::Event)
                            .payload(Blob::new(payload))
                            .send()
                            .await?;
                    }
                    Ok(Some(response))
                }
            }
        })
    }))
    .await
}
