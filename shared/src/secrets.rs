//! Secrets read from AWS Secrets Manager once, at cold start, instead of from the environment
//! (`config::SecretRefs`).
//!
//! A secret's string is either the value itself or a JSON object holding it under the name of
//! the variable it stands for (`{"JWT_SECRET_KEY": "…", "DATABASE_URL": "…"}`), so one secret
//! can carry the whole configuration.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::Client;
use serde_json::Value;

/// A Secrets Manager client, aimed at `endpoint` instead of AWS's when given (a local server).
pub fn client(sdk: &SdkConfig, endpoint: Option<&str>) -> Client {
    let mut conf = aws_sdk_secretsmanager::config::Builder::from(sdk);
    if let Some(endpoint) = endpoint {
        conf = conf.endpoint_url(endpoint);
    }
    Client::from_conf(conf.build())
}

/// The value the secret `secret_id` (an ARN or a name) holds for the variable `name`.
pub async fn value(client: &Client, secret_id: &str, name: &str) -> Result<String, String> {
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|err| DisplayErrorContext(&err).to_string())?;
    let text = output.secret_string().ok_or("the secret has no string value")?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => match fields.get(name) {
            Some(Value::String(value)) => Ok(value.clone()),
            _ => Err(format!("the secret is a JSON object without a string {name}")),
        },
        _ => Ok(text.to_string()),
    }
}
