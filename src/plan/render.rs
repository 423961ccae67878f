//! Terraform-style plan text: `+` create, `~` update, `-/+` replace, `-` delete, a line per field.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::{Action, Address, FieldChange, Note, Plan};

/// A plan as a verb shows it: the command's result, on stdout as `terraform plan` prints it (and
/// as `deploy`/`destroy` show it before asking); `--output json` prints the plan itself.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Shown<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// `plan`, `deploy` or `destroy`.
    #[serde(skip)]
    pub verb: &'a str,
    /// Where `plan --out` saved it.
    #[serde(skip)]
    pub saved_to: Option<&'a Path>,
    /// What `destroy` keeps (existing data resources).
    #[serde(skip)]
    pub kept: Vec<Address>,
}

impl crate::output::Render for Shown<'_> {
    fn write_human(&self, w: &mut dyn Write) -> std::io::Result<()> {
        render_plan(w, self.plan, self.verb)?;
        for address in &self.kept {
            writeln!(w, "  kept: {address} and its data (pass --purge-data to delete them too)")?;
        }
        match self.saved_to {
            Some(path) => writeln!(
                w,
                "\nSaved the plan to {0}. Nothing was changed. Apply exactly this plan with `flixops deploy {0}`.",
                path.display()
            ),
            None if self.verb == "plan" && !self.plan.is_empty() => {
                writeln!(w, "\nNothing was changed. Run `flixops deploy` to apply this plan.")
            }
            None => Ok(()),
        }
    }

    fn is_result(&self) -> bool {
        true
    }
}

/// Writes the plan for humans; no-op resources are left out, as terraform does. Notes follow.
pub fn render_plan(w: &mut dyn Write, plan: &Plan, verb: &str) -> std::io::Result<()> {
    write_changes(w, plan, verb)?;
    render_notes(w, &plan.notes, "Note")?;
    if let Some(spend) = &plan.x_spend {
        writeln!(w, "\nX API spend: {}", spend.line())?;
    }
    Ok(())
}

/// Writes each note as `{label}: {address}: {message}`, after a blank line.
pub fn render_notes(w: &mut dyn Write, notes: &[Note], label: &str) -> std::io::Result<()> {
    notes.iter().try_for_each(|n| writeln!(w, "\n{label}: {}: {}", n.address, n.message))
}

fn write_changes(w: &mut dyn Write, plan: &Plan, verb: &str) -> std::io::Result<()> {
    if plan.is_empty() && verb == "destroy" {
        return writeln!(w, "Nothing to destroy.");
    }
    if plan.is_empty() {
        return writeln!(w, "No changes. The infrastructure matches the configuration.");
    }
    for item in plan.resources.iter().filter(|r| r.change.action != Action::NoOp) {
        let change = &item.change;
        let (sign, says) = match change.action {
            Action::Create => ("+", "will be created"),
            Action::Update => ("~", "will be updated in place"),
            Action::Replace => ("-/+", "must be replaced"),
            Action::Delete => ("-", "will be destroyed"),
            Action::NoOp => continue,
        };
        writeln!(w, "  # {} {says}", item.address)?;
        if let Some(reason) = &change.reason {
            writeln!(w, "  # ({reason})")?;
        }
        writeln!(w, "  {sign} {}", item.address)?;
        let width = change.fields.iter().map(|f| f.field.len()).max().unwrap_or(0);
        for f in &change.fields {
            write_field(w, f, width, change.action)?;
        }
        writeln!(w)?;
    }
    writeln!(w, "Plan: {} to add, {} to change, {} to destroy.", plan.add, plan.change, plan.destroy)
}

/// One field line; JSON documents are shown pretty, and on update as a line diff.
fn write_field(w: &mut dyn Write, f: &FieldChange, width: usize, action: Action) -> std::io::Result<()> {
    let name = &f.field;
    let (before, after) = (f.before.as_deref(), f.after.as_deref());
    let (before, after) = if action == Action::Create { (None, after) } else { (before, after) };
    match (before.and_then(pretty_json), after.and_then(pretty_json)) {
        (Some(old), Some(new)) => {
            writeln!(w, "      ~ {name:<width$} = (JSON)")?;
            for (sign, line) in line_diff(&old.lines().collect::<Vec<_>>(), &new.lines().collect::<Vec<_>>()) {
                writeln!(w, "          {sign} {line}")?;
            }
            Ok(())
        }
        (None, Some(new)) if before.is_none() => {
            writeln!(w, "      + {name:<width$} = (JSON)")?;
            new.lines().try_for_each(|line| writeln!(w, "            {line}"))
        }
        _ => match (before, after) {
            (None, Some(after)) => writeln!(w, "      + {name:<width$} = {}", quote(after)),
            (Some(before), Some(after)) => {
                writeln!(w, "      ~ {name:<width$} = {} -> {}", quote(before), quote(after))
            }
            (Some(before), None) => writeln!(w, "      - {name:<width$} = {}", quote(before)),
            (None, None) => Ok(()),
        },
    }
}

fn pretty_json(value: &str) -> Option<String> {
    if !value.starts_with('{') {
        return None;
    }
    let parsed: serde_json::Value = serde_json::from_str(value).ok()?;
    serde_json::to_string_pretty(&parsed).ok()
}

/// A longest-common-subsequence line diff: ' ' kept, '-' removed, '+' added.
fn line_diff<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(char, &'a str)> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(n + m));
    while i < n && j < m {
        if a[i] == b[j] {
            out.push((' ', a[i]));
            (i, j) = (i + 1, j + 1);
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            out.push(('-', a[i]));
            i += 1;
        } else {
            out.push(('+', b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|l| ('-', *l)));
    out.extend(b[j..].iter().map(|l| ('+', *l)));
    out
}

fn quote(value: &str) -> String {
    if value == super::UNKNOWN { value.to_string() } else { format!("{value:?}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Address, Change, PlannedChange};

    #[test]
    fn renders_like_terraform() {
        let field = |name: &str, before: Option<&str>, after: Option<&str>| FieldChange {
            field: name.into(),
            before: before.map(Into::into),
            after: after.map(Into::into),
        };
        let plan = Plan::new(vec![
            PlannedChange {
                address: Address("aws_s3_bucket.lake".into()),
                change: Change {
                    action: Action::Create,
                    fields: vec![field("versioning", None, Some("Enabled"))],
                    reason: None,
                },
            },
            PlannedChange {
                address: Address("aws_iam_role.extract".into()),
                change: Change {
                    action: Action::Update,
                    fields: vec![
                        field("policy", Some("a"), Some(crate::plan::UNKNOWN)),
                        field("doc", Some(r#"{"a":1}"#), Some(r#"{"a":2}"#)),
                    ],
                    reason: None,
                },
            },
            PlannedChange {
                address: Address("aws_lambda_function.extract".into()),
                change: Change { action: Action::NoOp, fields: vec![], reason: None },
            },
        ]);
        let mut out = Vec::new();
        render_plan(&mut out, &plan, "plan").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("  + aws_s3_bucket.lake\n      + versioning = \"Enabled\"\n"), "{text}");
        assert!(text.contains("      ~ policy = \"a\" -> (known after apply)\n"), "{text}");
        assert!(!text.contains("aws_lambda_function"), "no-ops are not listed: {text}");
        assert!(text.contains("      ~ doc    = (JSON)\n            {\n          -   \"a\": 1\n          +   \"a\": 2\n            }\n"), "{text}");
        assert!(text.contains("Plan: 1 to add, 1 to change, 0 to destroy."), "{text}");
    }
}
