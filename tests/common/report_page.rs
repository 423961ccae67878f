//! Reads a `flixops report` page the way a test asserts on it: every value the page tags
//! (`data-col` numbers, `data-label` texts, in the `data-table` and `data-row` around them), and any
//! text with a digit that is not tagged. The page is polyglot markup (well-formed XML), so an XML
//! tokenizer parses it; a page that is not well-formed fails here.

use std::collections::BTreeMap;

/// `(table, row, name)` of a tagged value.
pub type Key = (String, String, String);

/// What a report page shows.
#[derive(Debug, Default)]
pub struct Page {
    /// Every tagged value, as displayed (trimmed).
    pub cells: BTreeMap<Key, String>,
    /// Text with a digit outside any tagged element, SVG and style: a number the tests cannot check.
    pub loose_digits: Vec<String>,
    /// The page says the marts are empty (`data-empty`).
    pub empty: bool,
    /// Inline SVG charts.
    pub charts: usize,
}

struct Open {
    name: String,
    attrs: BTreeMap<String, String>,
    text: Option<String>,
}

/// Parses a report page; panics with the position of the first markup error.
pub fn parse(html: &str) -> Page {
    let mut page = Page::default();
    let mut stack: Vec<Open> = Vec::new();
    let mut pending: Option<Open> = None;
    for token in xmlparser::Tokenizer::from(html) {
        let token = token.unwrap_or_else(|e| panic!("the report is not well-formed: {e}"));
        match token {
            xmlparser::Token::ElementStart { local, .. } => {
                pending = Some(Open { name: local.to_string(), attrs: BTreeMap::new(), text: None });
            }
            xmlparser::Token::Attribute { local, value, .. } => {
                let open = pending.as_mut().expect("an attribute follows an element start");
                open.attrs.insert(local.to_string(), unescape(value.as_str()));
            }
            xmlparser::Token::ElementEnd { end, .. } => match end {
                xmlparser::ElementEnd::Open => {
                    let mut open = pending.take().expect("an element end follows its start");
                    if open.attrs.contains_key("data-col") || open.attrs.contains_key("data-label") {
                        open.text = Some(String::new());
                    }
                    page.empty |= open.attrs.contains_key("data-empty");
                    page.charts += usize::from(open.name == "svg");
                    stack.push(open);
                }
                xmlparser::ElementEnd::Empty => {
                    let open = pending.take().expect("an element end follows its start");
                    page.charts += usize::from(open.name == "svg");
                }
                xmlparser::ElementEnd::Close(_, local) => {
                    let open = stack.pop().unwrap_or_else(|| panic!("</{local}> closes nothing"));
                    assert_eq!(open.name, local.as_str(), "</{}> closes <{}>", local.as_str(), open.name);
                    if let Some(text) = &open.text {
                        record(&mut page, &stack, &open, text.trim().to_string());
                    }
                }
            },
            xmlparser::Token::Text { text } => {
                let text = unescape(text.as_str());
                let hidden = stack.iter().any(|o| o.name == "svg" || o.name == "style");
                let mut tagged = false;
                for open in stack.iter_mut() {
                    if let Some(buffer) = &mut open.text {
                        buffer.push_str(&text);
                        tagged = true;
                    }
                }
                if !hidden && !tagged && text.chars().any(|c| c.is_ascii_digit()) {
                    page.loose_digits.push(text.trim().to_string());
                }
            }
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {:?}", stack.iter().map(|o| &o.name).collect::<Vec<_>>());
    page
}

fn record(page: &mut Page, stack: &[Open], open: &Open, text: String) {
    let around = |attr: &str| {
        std::iter::once(open)
            .chain(stack.iter().rev())
            .find_map(|o| o.attrs.get(attr).cloned())
            .unwrap_or_else(|| panic!("a tagged value without {attr} around it: {text}"))
    };
    let name = open.attrs.get("data-col").or(open.attrs.get("data-label")).cloned().unwrap_or_default();
    let key = (around("data-table"), around("data-row"), name);
    if let Some(before) = page.cells.insert(key.clone(), text) {
        panic!("{key:?} is on the page twice (first {before:?})");
    }
}

/// Replaces the character references handlebars and plotters write.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find(';') else { break };
        let entity = &rest[at + 1..at + end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        let decoded = decoded.unwrap_or_else(|| panic!("unknown character reference &{entity};"));
        out.push(decoded);
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    out
}

/// "12,345" → 12345; "–" (nothing) → None.
pub fn number(text: &str) -> Option<f64> {
    let digits: String = text.chars().filter(|c| *c != ',' && *c != '%').collect();
    (text != "–").then(|| digits.parse().unwrap_or_else(|_| panic!("`{text}` is not a number")))
}
