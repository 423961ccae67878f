//! Who answers the questions: a person on the terminal (dialoguer), or the defaults
//! (`--no-interactive`). The wizard asks both the same way, so both modes share one flow.

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Input, Select};

use super::InitError;

/// Checks a typed answer; the message says what is wrong and what is accepted.
pub(crate) type Check<'a> = &'a dyn Fn(&str) -> Result<(), String>;

/// One question as the wizard poses it: the prompt, and the flag that answers it in scripts.
pub(crate) struct Question<'a> {
    /// What the terminal shows.
    pub prompt: &'a str,
    /// The flag that pre-answers it (named in errors of non-interactive runs).
    pub flag: &'static str,
}

/// Answers questions.
pub(crate) trait Ask {
    /// True when a person answers, so a failed live check can be retried.
    fn interactive(&self) -> bool;
    /// Picks one of `items`.
    fn select(&mut self, q: &Question, items: &[String], default: usize) -> Result<usize, InitError>;
    /// Reads a line of text that passes `check`.
    fn text(&mut self, q: &Question, default: Option<&str>, check: Check) -> Result<String, InitError>;
    /// Tells the person something (a check passed, what happens next); silent without one.
    fn say(&mut self, line: &str);
}

/// A person on the terminal; prompts and notes go to stderr.
pub(crate) struct Terminal {
    theme: ColorfulTheme,
}

impl Terminal {
    /// A terminal asker with the colorful theme.
    pub fn new() -> Self {
        Self { theme: ColorfulTheme::default() }
    }
}

fn prompt_error(e: dialoguer::Error) -> InitError {
    InitError::Prompt(e.to_string())
}

impl Ask for Terminal {
    fn interactive(&self) -> bool {
        true
    }

    fn select(&mut self, q: &Question, items: &[String], default: usize) -> Result<usize, InitError> {
        let select = Select::with_theme(&self.theme).with_prompt(q.prompt).items(items).default(default);
        select.interact().map_err(prompt_error)
    }

    fn text(&mut self, q: &Question, default: Option<&str>, check: Check) -> Result<String, InitError> {
        let mut input = Input::<String>::with_theme(&self.theme).with_prompt(q.prompt);
        if let Some(default) = default {
            input = input.default(default.to_string());
        }
        let answer = input.validate_with(|s: &String| check(s.trim())).interact_text().map_err(prompt_error)?;
        Ok(answer.trim().to_string())
    }

    fn say(&mut self, line: &str) {
        eprintln!("  {line}");
    }
}

/// `--no-interactive`: every question takes its default; one without a default names its flag.
pub(crate) struct Defaults;

impl Ask for Defaults {
    fn interactive(&self) -> bool {
        false
    }

    fn select(&mut self, _q: &Question, _items: &[String], default: usize) -> Result<usize, InitError> {
        Ok(default)
    }

    fn text(&mut self, q: &Question, default: Option<&str>, check: Check) -> Result<String, InitError> {
        let value = default.ok_or_else(|| InitError::Missing { flag: q.flag, prompt: q.prompt.to_string() })?;
        check(value).map_err(|message| InitError::Invalid { flag: q.flag, message })?;
        Ok(value.to_string())
    }

    fn say(&mut self, _line: &str) {}
}
