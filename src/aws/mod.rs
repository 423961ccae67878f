//! AWS clients, built once from the standard credential chain (env, profiles, SSO, web identity).

/// Loads SDK config for an optional profile and region; `AWS_ENDPOINT_URL*` overrides apply.
pub async fn sdk_config(profile: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    loader.load().await
}

/// An S3 client; path-style addressing when a custom endpoint is set (MinIO, moto, proxies).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = sdk.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(custom_endpoint).build();
    aws_sdk_s3::Client::from_conf(config)
}
