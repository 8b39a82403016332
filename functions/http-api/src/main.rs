//! The HTTP API's routes (health, history, search, metrics, export) behind API Gateway's HTTP API.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body as LambdaBody;
use http::HeaderValue;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::http_api::{self, Body, HttpRequest};
use shared::ChatService;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let service = &ChatService::from_env().await?;
    run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
        let trace_id = event.context.xray_trace_id.clone();
        shared::telemetry::invocation(&service.config, "http-api", trace_id, async move {
            let event = event.payload;
            let request = HttpRequest {
                method: event.request_context.http.method.clone(),
                path: event.raw_path.clone().unwrap_or_default(),
                query: event.query_string_parameters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                headers: event.headers,
                source_ip: event.request_context.http.source_ip.clone(),
                body: body(event.body.as_deref(), event.is_base64_encoded)?,
            };
            let answer = http_api::handle(service, request).await;
            let mut response = ApiGatewayV2httpResponse::default();
            response.status_code = i64::from(answer.status);
            if let Some(seconds) = answer.retry_after {
                response.headers.insert(http::header::RETRY_AFTER, seconds.into());
            }
            match answer.body {
                Body::Json(json) => {
                    response.headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    response.body = Some(LambdaBody::Text(json));
                }
                Body::Export(export) => {
                    for (name, value) in http_api::export_headers(&export) {
                        response.headers.insert(name, HeaderValue::from_str(&value)?);
                    }
                    let (body, resume_after) = http_api::gather(export, http_api::MAX_EXPORT_RESPONSE_BYTES).await?;
                    response
                        .headers
                        .insert("x-export-complete", HeaderValue::from_static(bool_str(resume_after.is_none())));
                    if let Some(seq) = resume_after {
                        response.headers.insert("x-export-resume-after", seq.into());
                    }
                    response.body = Some(LambdaBody::Text(body));
                }
            }
            Ok::<_, Error>(response)
        })
    }))
    .await
}

/// API Gateway passes a body that is not text in base64.
fn body(body: Option<&str>, base64: bool) -> Result<bytes::Bytes, Error> {
    let body = body.unwrap_or_default();
    Ok(if base64 {
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body)?.into()
    } else {
        body.to_owned().into()
    })
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}
