//! Where pages and the checkpoint are stored: an S3 bucket or a local directory, with the same
//! guarantees: a page is created once and never overwritten, the checkpoint is compare-and-swap.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest, Sha256};

/// An object store: a bucket or a directory.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Keys are paths below this directory.
    Dir(PathBuf),
    /// Keys are object keys in this bucket.
    S3 { client: aws_sdk_s3::Client, bucket: String },
}

/// What a create-only write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The object was written.
    Created,
    /// An object already had that key; it was left as it was.
    AlreadyThere,
}

/// A stored object and its version tag (the S3 ETag, or a content hash on disk).
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The object's bytes.
    pub body: Vec<u8>,
    /// Pass back to [`Sink::put_if`] to write only over this very version.
    pub version: String,
}

/// A storage failure, naming the key and location.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}", path = .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// S3 answered with an error.
    #[error("s3://{bucket}/{key}: {message}")]
    S3 { bucket: String, key: String, message: String },
    /// S3 could not be reached.
    #[error("cannot reach S3 for s3://{bucket}/{key}: {message}; check network, region, endpoint and credentials")]
    Connect { bucket: String, key: String, message: String },
    /// A conditional write lost: someone else wrote the object since it was read.
    #[error("{0} changed while this run held it (another run wrote it)")]
    Conflict(String),
}

impl SinkError {
    /// True when the store was unreachable rather than refusing.
    pub fn is_connect(&self) -> bool {
        matches!(self, SinkError::Connect { .. })
    }
}

impl Sink {
    /// Where keys go, for messages: `s3://bucket` or the directory.
    pub fn location(&self) -> String {
        match self {
            Sink::Dir(root) => root.display().to_string(),
            Sink::S3 { bucket, .. } => format!("s3://{bucket}"),
        }
    }

    /// Creates `key` unless it exists (`If-None-Match: *`), so a retry never overwrites.
    pub async fn put_new(&self, key: &str, body: Vec<u8>) -> Result<Stored, SinkError> {
        match self {
            Sink::Dir(root) => {
                let path = root.join(key);
                blocking(move || dir_put_new(&path, &body)).await
            }
            Sink::S3 { client, bucket } => {
                let req = client.put_object().bucket(bucket).key(key).if_none_match("*");
                match req.body(ByteStream::from(body)).send().await {
                    Ok(_) => Ok(Stored::Created),
                    Err(e) if is_precondition_failed(&e) => Ok(Stored::AlreadyThere),
                    Err(e) => Err(s3_error(bucket, key, e)),
                }
            }
        }
    }

    /// [`Sink::put_new`] on the calling thread, for a directory (`None` for S3): the encoding
    /// thread stores its own page instead of handing it to another one.
    pub fn put_new_here(&self, key: &str, body: &[u8]) -> Option<Result<Stored, SinkError>> {
        match self {
            Sink::Dir(root) => Some(dir_put_new(&root.join(key), body)),
            Sink::S3 { .. } => None,
        }
    }

    /// Reads `key` with its version tag; `None` when absent.
    pub async fn get(&self, key: &str) -> Result<Option<Versioned>, SinkError> {
        match self {
            Sink::Dir(root) => {
                let path = root.join(key);
                blocking(move || dir_get(&path)).await
            }
            Sink::S3 { client, bucket } => {
                let out = match client.get_object().bucket(bucket).key(key).send().await {
                    Ok(out) => out,
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
                    Err(e) => return Err(s3_error(bucket, key, e)),
                };
                let version = out.e_tag.clone().unwrap_or_default();
                let body = out.body.collect().await.map_err(|e| SinkError::S3 {
                    bucket: bucket.clone(),
                    key: key.to_string(),
                    message: format!("reading the body failed: {e}"),
                })?;
                Ok(Some(Versioned { body: body.to_vec(), version }))
            }
        }
    }

    /// Writes `key` only if it is still at `expected` (`None`: only if it does not exist yet) and
    /// returns the new version tag, so a run can write the same object again without re-reading it.
    pub async fn put_if(&self, key: &str, body: Vec<u8>, expected: Option<&str>) -> Result<String, SinkError> {
        match self {
            Sink::Dir(root) => {
                let path = root.join(key);
                let expected = expected.map(str::to_string);
                blocking(move || dir_put_if(&path, &body, expected.as_deref())).await
            }
            Sink::S3 { client, bucket } => s3_put_if(client, bucket, key, body, expected).await,
        }
    }

    /// Keys under `prefix` with their last-modified time (Unix seconds), in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, SinkError> {
        match self {
            Sink::Dir(root) => {
                let (root, prefix) = (root.clone(), prefix.to_string());
                blocking(move || dir_list(&root, &prefix)).await
            }
            Sink::S3 { client, bucket } => {
                let mut pages = client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
                let mut keys = Vec::new();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| s3_error(bucket, prefix, e))?;
                    for object in page.contents() {
                        let modified = object.last_modified().map_or(0, |t| t.secs());
                        keys.extend(object.key().map(|k| (k.to_string(), modified)));
                    }
                }
                Ok(keys)
            }
        }
    }
}

/// A conditional PUT as S3 answers it: 412 or a vanished key (`If-Match` answers 404 `NoSuchKey`)
/// mean someone else wrote first; 409 `ConditionalRequestConflict` is a race S3 asks the caller to
/// retry (the SDK does not), and the retry then gets 412 or succeeds.
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>
async fn s3_put_if(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    expected: Option<&str>,
) -> Result<String, SinkError> {
    let mut conflicts = 0;
    loop {
        let req = client.put_object().bucket(bucket).key(key).body(ByteStream::from(body.clone()));
        let req = match expected {
            Some(etag) => req.if_match(etag),
            None => req.if_none_match("*"),
        };
        match req.send().await {
            Ok(out) => return Ok(out.e_tag.unwrap_or_default()),
            Err(e) if e.code() == Some("ConditionalRequestConflict") && conflicts < 3 => {
                conflicts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100 * conflicts)).await;
            }
            Err(e) if is_precondition_failed(&e) || is_lost_race(&e, expected) => {
                return Err(SinkError::Conflict(format!("s3://{bucket}/{key}")));
            }
            Err(e) => return Err(s3_error(bucket, key, e)),
        }
    }
}

/// 409 after the retries, or a 404 `NoSuchKey` to an `If-Match` write: the object moved under us.
fn is_lost_race<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>, expected: Option<&str>) -> bool {
    e.code() == Some("ConditionalRequestConflict") || (expected.is_some() && e.code() == Some("NoSuchKey"))
}

fn is_precondition_failed<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    let status = e.raw_response().map(|r| r.status().as_u16());
    e.code() == Some("PreconditionFailed") || status == Some(412)
}

fn s3_error<E>(bucket: &str, key: &str, e: SdkError<E, HttpResponse>) -> SinkError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let (bucket, key) = (bucket.to_string(), key.to_string());
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            SinkError::Connect { bucket, key, message: DisplayErrorContext(&e).to_string() }
        }
        _ => {
            let message = match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                // A HEAD/GET error has no body, so no code: say the HTTP status, not a debug dump.
                _ => match e.raw_response().map(|r| r.status().as_u16()) {
                    Some(403) => "HTTP 403: access denied (the bucket policy or the credentials refuse it)".to_string(),
                    Some(status) => format!("HTTP {status}"),
                    None => DisplayErrorContext(&e).to_string(),
                },
            };
            SinkError::S3 { bucket, key, message }
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, SinkError> {
    tokio::task::spawn_blocking(f).await.expect("storage task panicked")
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SinkError + 'a {
    move |source| SinkError::Io { op, path: path.to_path_buf(), source }
}

/// Writes a sibling temp file; readers only pick names ending `.parquet`/`.json`, never these.
fn write_temp(path: &Path, body: &[u8]) -> Result<PathBuf, SinkError> {
    let dir = path.parent().expect("keys have a directory");
    std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("object");
    let tmp = dir.join(format!(".{name}.tmp-{:016x}", fastrand::u64(..)));
    let mut file = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    file.write_all(body).map_err(io("write", &tmp))?;
    Ok(tmp)
}

fn dir_put_new(path: &Path, body: &[u8]) -> Result<Stored, SinkError> {
    #[cfg(target_os = "linux")]
    if let Some(stored) = put_new_unnamed(path, body) {
        return stored;
    }
    put_new_named(path, body)
}

/// Any platform: a named temp file, hard-linked to the key's name, then removed.
fn put_new_named(path: &Path, body: &[u8]) -> Result<Stored, SinkError> {
    let tmp = write_temp(path, body)?;
    // A hard link fails if the name exists: an atomic create-if-absent that never shows a partial file.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(Stored::Created),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Stored::AlreadyThere),
        Err(e) => Err(SinkError::Io { op: "create", path: path.to_path_buf(), source: e }),
    }
}

/// Linux: writes an unnamed file (O_TMPFILE) and links it to its name, which fails if the name
/// exists. One inode and one name per page, and nothing to clean up after a crash. `None` where
/// the filesystem or a missing /proc cannot do this.
#[cfg(target_os = "linux")]
fn put_new_unnamed(path: &Path, body: &[u8]) -> Option<Result<Stored, SinkError>> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let dir = path.parent().expect("keys have a directory");
    let open = || std::fs::OpenOptions::new().write(true).mode(0o666).custom_flags(libc::O_TMPFILE).open(dir);
    // The directory usually exists already: create it only when the first open says it does not.
    let opened = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir_all(dir) {
            Ok(()) => open(),
            Err(e) => return Some(Err(io("create directory", dir)(e))),
        },
        opened => opened,
    };
    let Ok(mut file) = opened else { return None };
    if let Err(e) = file.write_all(body) {
        return Some(Err(io("write", path)(e)));
    }
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("no NUL");
    let to = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc =
        unsafe { libc::linkat(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::AT_SYMLINK_FOLLOW) };
    if rc == 0 {
        return Some(Ok(Stored::Created));
    }
    match std::io::Error::last_os_error().kind() {
        std::io::ErrorKind::AlreadyExists => Some(Ok(Stored::AlreadyThere)),
        // No /proc, say: the named temp file below reports any real error itself.
        _ => None,
    }
}

fn dir_get(path: &Path) -> Result<Option<Versioned>, SinkError> {
    match std::fs::read(path) {
        Ok(body) => {
            let version = content_version(&body);
            Ok(Some(Versioned { body, version }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SinkError::Io { op: "read", path: path.to_path_buf(), source: e }),
    }
}

fn content_version(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Compare-and-swap on disk: an exclusive lock file, a version check, then an atomic rename.
fn dir_put_if(path: &Path, body: &[u8], expected: Option<&str>) -> Result<String, SinkError> {
    let dir = path.parent().expect("keys have a directory");
    std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    let lock = path.with_extension("lock");
    let _guard = LockFile::acquire(&lock)?;
    let current = dir_get(path)?.map(|v| v.version);
    if current.as_deref() != expected {
        return Err(SinkError::Conflict(path.display().to_string()));
    }
    let tmp = write_temp(path, body)?;
    std::fs::rename(&tmp, path).map_err(io("replace", path))?;
    Ok(content_version(body))
}

/// Files whose key starts with `prefix` (keys relative to `root`, `/`-separated); temp files
/// (names starting with `.`) are not objects.
fn dir_list(root: &Path, prefix: &str) -> Result<Vec<(String, i64)>, SinkError> {
    let start = prefix.rsplit_once('/').map_or(root.to_path_buf(), |(dir, _)| root.join(dir));
    let mut keys = Vec::new();
    let mut stack = vec![start];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            entries => entries.map_err(io("list", &dir))?,
        };
        for entry in entries {
            let path = entry.map_err(io("list", &dir))?.path();
            let key = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            let meta = std::fs::metadata(&path).map_err(io("list", &path))?;
            if hidden || !(key.starts_with(prefix) || meta.is_dir() && prefix.starts_with(&format!("{key}/"))) {
                continue;
            }
            if meta.is_dir() {
                stack.push(path);
            } else {
                let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                keys.push((key, modified.map_or(0, |d| d.as_secs() as i64)));
            }
        }
    }
    keys.sort();
    Ok(keys)
}

/// A lock held by creating a file exclusively; removed on drop. A lock older than a minute is stale.
struct LockFile(PathBuf);

impl LockFile {
    fn acquire(path: &Path) -> Result<Self, SinkError> {
        for _ in 0..200 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(_) => return Ok(Self(path.to_path_buf())),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
                    if age.is_some_and(|a| a.as_secs() > 60) {
                        let _ = std::fs::remove_file(path);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(SinkError::Io { op: "lock", path: path.to_path_buf(), source: e }),
            }
        }
        Err(SinkError::Conflict(format!("{} (lock held too long)", path.display())))
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_page_is_created_once_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Sink::Dir(dir.path().to_path_buf());
        assert_eq!(sink.put_new("p/tweets/a.parquet", b"first".to_vec()).await.unwrap(), Stored::Created);
        assert_eq!(sink.put_new("p/tweets/a.parquet", b"second".to_vec()).await.unwrap(), Stored::AlreadyThere);
        assert_eq!(std::fs::read(dir.path().join("p/tweets/a.parquet")).unwrap(), b"first");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("p/tweets")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp files must not stay behind");
    }

    fn assert_created_once(put: impl Fn(&Path, &[u8]) -> Result<Stored, SinkError>) {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("p/tweets/dt=2026-11-24/a.parquet");
        assert_eq!(put(&page, b"first").unwrap(), Stored::Created);
        assert_eq!(put(&page, b"second").unwrap(), Stored::AlreadyThere);
        assert_eq!(std::fs::read(&page).unwrap(), b"first");
        let names: Vec<_> =
            std::fs::read_dir(page.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a.parquet"], "only the page, no temp file");
    }

    #[test]
    fn a_named_temp_file_creates_a_page_once() {
        assert_created_once(put_new_named);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_unnamed_file_creates_a_page_once() {
        assert_created_once(|path, body| put_new_unnamed(path, body).expect("O_TMPFILE and /proc work here"));
    }

    #[tokio::test]
    async fn checkpoint_write_is_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Sink::Dir(dir.path().to_path_buf());
        sink.put_if("s/extract.json", b"v1".to_vec(), None).await.unwrap();
        assert!(matches!(sink.put_if("s/extract.json", b"x".to_vec(), None).await, Err(SinkError::Conflict(_))));
        let v1 = sink.get("s/extract.json").await.unwrap().unwrap();
        sink.put_if("s/extract.json", b"v2".to_vec(), Some(&v1.version)).await.unwrap();
        let stale = sink.put_if("s/extract.json", b"v3".to_vec(), Some(&v1.version)).await;
        assert!(matches!(stale, Err(SinkError::Conflict(_))), "a stale version must not win");
        assert_eq!(sink.get("s/extract.json").await.unwrap().unwrap().body, b"v2");
    }
}
