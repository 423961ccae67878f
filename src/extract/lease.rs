//! `{prefix}/_state/lease.json`: one extraction at a time per environment. A run takes the lease by
//! a conditional write (`If-None-Match: *`, or `If-Match` over an expired lease), so two runs
//! never both hold it; a crashed holder's lease expires by itself. The lease is taken without
//! reading a missing key, which S3 answers with 403 to a role that may not list the bucket.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ExtractError;
use super::sink::{Sink, SinkError};

/// What the lease object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Who holds it: the host and process, or the Lambda function.
    pub holder: String,
    /// The holder's run id.
    pub run_id: String,
    /// RFC 3339, UTC: after this the lease is free whatever the holder does.
    pub expires_at: String,
    /// The holder's host and process id, when it is a process on a host (not a Lambda): a later
    /// run on the same host takes over at once when that process is gone (it crashed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<(String, u32)>,
}

/// A lease this run holds, with the version to release it by.
#[derive(Debug)]
pub struct Held {
    key: String,
    version: String,
    lease: Lease,
}

/// The lease's key under a prefix.
pub fn key(prefix: &str) -> String {
    format!("{prefix}/_state/lease.json")
}

/// Takes the lease for `ttl`, or says who holds it and until when.
pub async fn acquire(sink: &Sink, prefix: &str, run_id: &str, ttl: Duration) -> Result<Held, ExtractError> {
    let key = key(prefix);
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
    let process = process();
    let holder = match &process {
        Some((host, pid)) => format!("{host} (pid {pid})"),
        None => format!("Lambda {}", std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default()),
    };
    let expires_at = (Utc::now() + ttl).to_rfc3339();
    let lease = Lease { holder, run_id: run_id.to_string(), expires_at, process };
    let body = serde_json::to_vec_pretty(&lease).expect("lease serializes");
    match sink.put_if(&key, body.clone(), None).await {
        Ok(version) => return Ok(Held { key, version, lease }),
        Err(SinkError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(stored) = sink.get(&key).await? else {
        return Err(SinkError::Conflict(format!("{}/{key}", sink.location())).into());
    };
    let current: Option<Lease> = serde_json::from_slice(&stored.body).ok();
    if let Some(current) = current.filter(|l| !expired(l)) {
        if !crashed_here(&current) {
            return Err(held_by(sink, &key, current));
        }
        tracing::warn!("taking over the run lease of {}: that process is gone", current.holder);
    }
    match sink.put_if(&key, body, Some(&stored.version)).await {
        Ok(version) => Ok(Held { key, version, lease }),
        // Another run took the expired lease at the same moment: it holds it now.
        Err(SinkError::Conflict(_)) => {
            let winner = sink.get(&key).await?.and_then(|s| serde_json::from_slice::<Lease>(&s.body).ok());
            Err(match winner {
                Some(lease) => held_by(sink, &key, lease),
                None => SinkError::Conflict(format!("{}/{key}", sink.location())).into(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Gives the lease back by marking it expired (over the version this run wrote). A failure only
/// means the next run waits for the expiry, so it is logged, not raised.
pub async fn release(sink: &Sink, held: Held) {
    let lease = Lease { expires_at: Utc::now().to_rfc3339(), ..held.lease };
    let body = serde_json::to_vec_pretty(&lease).expect("lease serializes");
    if let Err(e) = sink.put_if(&held.key, body, Some(&held.version)).await {
        tracing::warn!("could not release the run lease (it expires by itself at its time): {e}");
    }
}

fn expired(lease: &Lease) -> bool {
    DateTime::parse_from_rfc3339(&lease.expires_at).map_or(true, |t| t <= Utc::now())
}

fn held_by(sink: &Sink, key: &str, lease: Lease) -> ExtractError {
    ExtractError::LeaseHeld {
        location: format!("{}/{key}", sink.location()),
        holder: lease.holder,
        run_id: lease.run_id,
        expires_at: lease.expires_at,
    }
}

/// This host and process; None inside Lambda, where a process id says nothing across invocations.
fn process() -> Option<(String, u32)> {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        return None;
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    Some((host, std::process::id()))
}

/// True when the lease names a process on this host that no longer runs.
fn crashed_here(lease: &Lease) -> bool {
    let (Some((host, pid)), Some((here, _))) = (&lease.process, process()) else { return false };
    *host == here && !alive(*pid)
}

#[cfg(unix)]
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn alive(_pid: u32) -> bool {
    true
}
