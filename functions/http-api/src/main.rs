//! The HTTP API's routes (health, history, search, metrics) behind API Gateway's HTTP API.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::http_api::{self, HttpRequest};
use shared::ChatService;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let service = &ChatService::from_env().await?;
    run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
        let event = event.payload;
        let request = HttpRequest {
            method: event.request_context.http.method.clone(),
            path: event.raw_path.clone().unwrap_or_default(),
            query: event.query_string_parameters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            headers: event.headers,
        };
        let answer = http_api::handle(service, request).await;
        let mut response = ApiGatewayV2httpResponse::default();
        response.status_code = i64::from(answer.status);
        response.headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        if let Some(seconds) = answer.retry_after {
            response.headers.insert(http::header::RETRY_AFTER, seconds.into());
        }
        response.body = Some(Body::Text(answer.body));
        Ok::<_, Error>(response)
    }))
    .await
}
