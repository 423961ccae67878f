//! Terraform-style plan text: `+` create, `~` update, `-/+` replace, `-` delete, a line per field.

use std::io::Write;

use super::{Action, Plan};

/// Writes the plan for humans; no-op resources are left out, as terraform does.
pub fn render_plan(w: &mut dyn Write, plan: &Plan, verb: &str) -> std::io::Result<()> {
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
            match (&f.before, &f.after, change.action) {
                (_, Some(after), Action::Create) => writeln!(w, "      + {:<width$} = {}", f.field, quote(after))?,
                (None, Some(after), _) => writeln!(w, "      + {:<width$} = {}", f.field, quote(after))?,
                (Some(before), Some(after), _) => {
                    writeln!(w, "      ~ {:<width$} = {} -> {}", f.field, quote(before), quote(after))?
                }
                (Some(before), None, _) => writeln!(w, "      - {:<width$} = {}", f.field, quote(before))?,
                (None, None, _) => {}
            }
        }
        writeln!(w)?;
    }
    writeln!(w, "Plan: {} to add, {} to change, {} to destroy.", plan.add, plan.change, plan.destroy)?;
    if verb == "plan" {
        writeln!(w, "\nNothing was changed. Run `flixops deploy` to apply this plan.")?;
    }
    Ok(())
}

fn quote(value: &str) -> String {
    if value == super::UNKNOWN { value.to_string() } else { format!("{value:?}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Address, Change, FieldChange, PlannedChange};

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
                    fields: vec![field("policy", Some("a"), Some(crate::plan::UNKNOWN))],
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
        assert!(text.contains("  ~ aws_iam_role.extract\n      ~ policy = \"a\" -> (known after apply)\n"), "{text}");
        assert!(!text.contains("aws_lambda_function"), "no-ops are not listed: {text}");
        assert!(text.contains("Plan: 1 to add, 1 to change, 0 to destroy."), "{text}");
    }
}
