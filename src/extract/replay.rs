//! Recorded pages instead of the API: a JSON file per page, JSONL with a page per line, or a
//! directory of those. Read one page at a time so memory stays flat however long the recording.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A recorded page and where it came from (`file:line`), for messages.
pub struct RecordedPage {
    /// The response body.
    pub body: Vec<u8>,
    /// `path` or `path:line`.
    pub origin: String,
}

/// Reads recorded pages in order.
pub struct Replay {
    root: PathBuf,
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(String, Box<dyn BufRead + Send>, usize)>,
    line: Vec<u8>,
}

impl Replay {
    /// Opens a file or a directory (its `.json` and `.jsonl` files, by name).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let files = if path.is_dir() {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(path)? {
                let p = entry?.path();
                match p.extension().and_then(|e| e.to_str()) {
                    Some("json" | "jsonl") => files.push(p),
                    _ => tracing::warn!("--replay: ignoring {} (not .json or .jsonl)", p.display()),
                }
            }
            files.sort();
            files
        } else {
            File::open(path)?;
            vec![path.to_path_buf()]
        };
        Ok(Self { root: path.to_path_buf(), files: files.into_iter(), current: None, line: Vec::new() })
    }

    /// Pages compiled into the binary (JSONL), e.g. the demo recording.
    pub fn embedded(name: &str, jsonl: &'static [u8]) -> Self {
        let current = Some((name.to_string(), Box::new(jsonl) as Box<dyn BufRead + Send>, 0));
        Self { root: PathBuf::from(name), files: Vec::new().into_iter(), current, line: Vec::new() }
    }

    /// Nothing to replay (a placeholder while the pages are lent to workers).
    pub fn empty() -> Self {
        Self { root: PathBuf::new(), files: Vec::new().into_iter(), current: None, line: Vec::new() }
    }

    /// The file or directory being replayed.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The next page, or `None` at the end.
    pub fn next_page(&mut self) -> std::io::Result<Option<RecordedPage>> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.files.next() else { return Ok(None) };
                let mut reader = BufReader::with_capacity(256 * 1024, File::open(&path)?);
                if path.extension().is_some_and(|e| e == "json") {
                    let mut body = Vec::new();
                    reader.read_to_end(&mut body)?;
                    return Ok(Some(RecordedPage { body, origin: path.display().to_string() }));
                }
                self.current = Some((path.display().to_string(), Box::new(reader), 0));
            }
            let (path, reader, line_no) = self.current.as_mut().expect("set above");
            self.line.clear();
            if reader.read_until(b'\n', &mut self.line)? == 0 {
                self.current = None;
                continue;
            }
            *line_no += 1;
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            // The next page is about as long: reserve for it rather than grow by doubling.
            let next = Vec::with_capacity(self.line.len() + self.line.len() / 4);
            let body = std::mem::replace(&mut self.line, next);
            return Ok(Some(RecordedPage { body, origin: format!("{path}:{line_no}") }));
        }
    }
}

/// Refuses a recorded page that is not an X API search page (a single post, a saved error body,
/// other JSON), naming where it came from: replaying one would store nothing and report success.
/// A page without `data` is one when `meta.result_count` is 0 (a search that found nothing).
/// Only the top-level keys are read here; the page is parsed when it is encoded.
pub fn check(page: &RecordedPage) -> Result<(), super::ExtractError> {
    match not_a_page(&page.body) {
        None => Ok(()),
        Some(reason) => Err(super::ExtractError::NotAPage { origin: page.origin.clone(), reason }),
    }
}

/// Why `body` is not a search page, or None when it is one.
fn not_a_page(body: &[u8]) -> Option<String> {
    use sonic_rs::JsonValueTrait;
    let (mut data, mut meta, mut error, mut keys) = (None, None, Vec::new(), Vec::new());
    for entry in sonic_rs::to_object_iter(body) {
        let (key, value) = match entry {
            Ok(entry) => entry,
            Err(e) => return Some(format!("not a JSON object: {e}")),
        };
        match &*key {
            "data" => data = Some(value.is_array()),
            "meta" => meta = Some(value.get("result_count").and_then(|n| n.as_u64())),
            "title" | "detail" | "status" | "errors" => error.push((key.to_string(), value.as_raw_str().to_string())),
            _ => {}
        }
        if keys.len() < 5 {
            keys.push(key.to_string());
        }
    }
    match (data, meta) {
        (Some(true), _) | (None, Some(Some(0))) => None,
        (Some(false), _) => Some("`data` is not a list of posts".into()),
        (None, Some(count)) => Some(format!(
            "no `data` although meta.result_count is {}",
            count.map_or("missing".to_string(), |n| n.to_string())
        )),
        (None, None) if !error.is_empty() => Some(format!(
            "it is an X API error response ({}); record only answers with status 200",
            error_summary(&error)
        )),
        (None, None) if keys.iter().any(|k| k == "id") && keys.iter().any(|k| k == "text") => {
            Some("it is a single post; a page holds its posts in `data`, with `meta`".into())
        }
        (None, None) => Some(format!(
            "a JSON object without `data` or `meta` (keys: {})",
            if keys.is_empty() { "none".to_string() } else { keys.join(", ") }
        )),
    }
}

/// `status 401: Unauthorized: …` from an error body's raw fields.
fn error_summary(fields: &[(String, String)]) -> String {
    let text = |key: &str| {
        let raw = fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())?;
        Some(serde_json::from_str::<serde_json::Value>(raw).ok()?.as_str().map_or(raw.to_string(), str::to_string))
    };
    let parts: Vec<String> =
        [text("status").map(|s| format!("status {s}")), text("title"), text("detail")].into_iter().flatten().collect();
    if parts.is_empty() { "`errors` without `data`".to_string() } else { parts.join(": ") }
}

#[cfg(test)]
mod tests {
    use super::not_a_page;

    #[test]
    fn only_search_pages_pass() {
        for page in [
            r#"{"data":[{"id":"1","text":"a"}],"meta":{"result_count":1}}"#,
            r#"{"data":[{"id":"1","text":"a"}],"includes":{}}"#,
            r#"{"meta":{"result_count":0}}"#,
            r#"{"data":[],"errors":[{"detail":"a referenced post was deleted"}],"meta":{"result_count":0}}"#,
        ] {
            assert_eq!(not_a_page(page.as_bytes()), None, "{page}");
        }
        let cases = [
            (r#"{"id":"1","text":"one post"}"#, "a single post"),
            (
                r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#,
                "status 401: Unauthorized: Unauthorized",
            ),
            (r#"{"foo":1}"#, "without `data` or `meta` (keys: foo)"),
            (r#"{"meta":{"result_count":3}}"#, "no `data` although meta.result_count is 3"),
            (r#"{"data":{"id":"1"}}"#, "`data` is not a list"),
            ("[1,2]", "not a JSON object"),
            ("not json", "not a JSON object"),
        ];
        for (body, expected) in cases {
            let found = not_a_page(body.as_bytes()).unwrap_or_default();
            assert!(found.contains(expected), "{body}: {found}");
        }
    }
}
