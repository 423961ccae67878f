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
