//! The AWS SDK configuration the management-API and S3 clients share.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_apigatewaymanagement::config::{Credentials, SharedCredentialsProvider};

use crate::config::Config;

pub async fn sdk_config(config: &Config) -> SdkConfig {
    sdk_config_for(&config.aws_region, config.use_aws_credentials).await
}

/// The same from its two settings (tests build clients for the local stand-ins with it).
pub async fn sdk_config_for(region: &str, use_aws_credentials: bool) -> SdkConfig {
    let region = Region::new(region.to_string());
    if use_aws_credentials {
        aws_config::defaults(BehaviorVersion::latest()).region(region).load().await
    } else {
        // Local stand-ins (the gateway, an S3-compatible server) do not check signatures; static
        // credentials keep the SDK from probing for real ones.
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "local",
                "local",
                None,
                None,
                "local-gateway",
            )))
            .build()
    }
}
