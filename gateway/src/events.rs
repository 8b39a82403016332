//! Builds API Gateway WebSocket events exactly as API Gateway sends them to Lambda.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chrono::Utc;
use http::HeaderMap;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// What the gateway knows of one WebSocket connection.
#[derive(Clone, Debug)]
pub struct ConnectionContext {
    pub connection_id: String,
    pub connected_at_ms: i64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    pub domain_name: String,
    pub stage: String,
}

impl ConnectionContext {
    fn request_context(&self, route_key: &str, event_type: &str) -> Value {
        let now = Utc::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        json!({
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": self.connected_at_ms,
            "requestTimeEpoch": now.timestamp_millis(),
            "identity": { "sourceIp": self.source_ip, "userAgent": self.user_agent },
            "requestId": request_id,
            "domainName": self.domain_name,
            "connectionId": self.connection_id,
            "apiId": "local",
        })
    }

    pub fn connect(&self, headers: &HeaderMap, query: &HashMap<String, String>) -> ApiGatewayWebsocketProxyRequest {
        let header_map: Map<String, Value> = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), Value::String(v.to_str().ok()?.to_string()))))
            .collect();
        let multi_headers: Map<String, Value> =
            header_map.iter().map(|(k, v)| (k.clone(), Value::Array(vec![v.clone()]))).collect();
        let multi_query: Map<String, Value> = query.iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
        build(json!({
            "headers": header_map,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "requestContext": self.request_context("$connect", "CONNECT"),
            "isBase64Encoded": false,
        }))
    }

    pub fn message(&self, body: String) -> ApiGatewayWebsocketProxyRequest {
        let mut context = self.request_context("$default", "MESSAGE");
        context["messageId"] = json!(uuid::Uuid::new_v4().to_string());
        build(json!({ "requestContext": context, "body": body, "isBase64Encoded": false }))
    }

    pub fn disconnect(&self, status_code: u16, reason: &str) -> ApiGatewayWebsocketProxyRequest {
        let mut context = self.request_context("$disconnect", "DISCONNECT");
        context["disconnectStatusCode"] = json!(status_code);
        context["disconnectReason"] = json!(reason);
        build(json!({ "headers": {}, "multiValueHeaders": {}, "requestContext": context, "isBase64Encoded": false }))
    }
}

fn build(value: Value) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(value).expect("API Gateway event shape")
}

/// An id shaped like API Gateway's: 16 base64 characters ending in `=`.
pub fn new_connection_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut id: String = bytes.iter().take(15).map(|b| ALPHABET[(*b & 63) as usize] as char).collect();
    id.push('=');
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ConnectionContext {
        ConnectionContext {
            connection_id: "abc=".into(),
            connected_at_ms: 1,
            source_ip: "127.0.0.1".into(),
            user_agent: Some("test".into()),
            domain_name: "127.0.0.1:8000".into(),
            stage: "local".into(),
        }
    }

    #[test]
    fn events_carry_route_and_connection() {
        let query = HashMap::from([("token".to_string(), "t".to_string())]);
        let connect = ctx().connect(&HeaderMap::new(), &query);
        assert_eq!(connect.request_context.route_key.as_deref(), Some("$connect"));
        assert_eq!(connect.query_string_parameters.first("token"), Some("t"));
        let message = ctx().message("{}".into());
        assert_eq!(message.body.as_deref(), Some("{}"));
        assert_eq!(message.request_context.connection_id.as_deref(), Some("abc="));
        let disconnect = ctx().disconnect(1001, "going away");
        assert_eq!(disconnect.request_context.disconnect_status_code, Some(1001));
    }

    #[test]
    fn connection_ids_look_like_api_gateway_ones() {
        let id = new_connection_id();
        assert_eq!(id.len(), 16);
        assert!(id.ends_with('='));
    }
}
