//! The profiles in `~/.aws/config` and `~/.aws/credentials` (or `AWS_CONFIG_FILE` /
//! `AWS_SHARED_CREDENTIALS_FILE`), read with the SDK's own parser so `init` offers exactly the
//! profiles the credential chain will find.

use aws_runtime::env_config::file::EnvConfigFiles as ProfileFiles;
use aws_types::os_shim_internal::{Env, Fs};

/// A profile a user can pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `x` of `[profile x]` (config) or `[x]` (credentials).
    pub name: String,
    /// Its `region`, the default `init` offers.
    pub region: Option<String>,
}

/// Every profile, `default` first then by name; an unreadable or invalid file is an error naming it.
pub async fn list() -> Result<Vec<Profile>, String> {
    list_in(&Fs::real(), &Env::real()).await
}

async fn list_in(fs: &Fs, env: &Env) -> Result<Vec<Profile>, String> {
    let set = aws_config::profile::load(fs, env, &ProfileFiles::default(), None).await.map_err(|e| {
        let mut text = e.to_string();
        if let Some(cause) = std::error::Error::source(&e) {
            text = format!("{text}: {cause}");
        }
        text
    })?;
    let mut names: Vec<&str> = set.profiles().collect();
    names.sort_by_key(|name| (*name != "default", name.to_string()));
    let region = |name: &str| set.get_profile(name).and_then(|p| p.get("region")).map(str::to_string);
    Ok(names.into_iter().map(|name| Profile { name: name.to_string(), region: region(name) }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn profiles_come_from_both_files_with_their_regions() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let credentials = dir.path().join("credentials");
        std::fs::write(&config, "[default]\nregion = us-east-1\n[profile prod]\nregion = eu-west-1\n[sso-session x]\n")
            .unwrap();
        std::fs::write(&credentials, "[ci]\naws_access_key_id = A\naws_secret_access_key = B\n").unwrap();
        let (config, credentials) = (config.display().to_string(), credentials.display().to_string());
        let env = Env::from_slice(&[
            ("HOME", "/nonexistent"),
            ("AWS_CONFIG_FILE", &config),
            ("AWS_SHARED_CREDENTIALS_FILE", &credentials),
        ]);
        let profiles = list_in(&Fs::real(), &env).await.unwrap();
        let got: Vec<(&str, Option<&str>)> = profiles.iter().map(|p| (p.name.as_str(), p.region.as_deref())).collect();
        assert_eq!(got, [("default", Some("us-east-1")), ("ci", None), ("prod", Some("eu-west-1"))]);
    }

    #[tokio::test]
    async fn no_files_means_no_profiles_and_a_broken_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().display().to_string();
        assert_eq!(list_in(&Fs::real(), &Env::from_slice(&[("HOME", &home)])).await.unwrap(), []);
        let config = dir.path().join("config");
        std::fs::write(&config, "[profile prod\nregion = x\n").unwrap();
        let config = config.display().to_string();
        let env = Env::from_slice(&[("HOME", &home), ("AWS_CONFIG_FILE", &config)]);
        let err = list_in(&Fs::real(), &env).await.unwrap_err();
        assert!(err.contains("parse"), "{err}");
    }
}
