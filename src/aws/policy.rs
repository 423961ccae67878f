//! IAM and bucket policy documents: rendered from `templates/` (handlebars, strict, no HTML escaping)
//! and compared semantically, because AWS hands documents back URL-encoded, reordered and with
//! one-element lists collapsed to strings.

use serde_json::{Map, Value};

/// Renders a policy template (`templates/iam/NAME.json.hbs`) as compact JSON, in the form the
/// template writes (what is sent to AWS); compare with [`canonical`]. Values go in as JSON strings
/// (the `json` helper), so no name can break out of its string.
pub fn render(template: &str, data: &Value) -> String {
    let text = crate::templates::render(&format!("iam/{template}"), data)
        .unwrap_or_else(|e| panic!("policy template {template} is missing a value (a bug): {e}"));
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("policy template {template} renders invalid JSON (a bug): {e}"));
    value.to_string()
}

/// A document in canonical form: keys sorted, single values as lists, lists of names sorted,
/// statements sorted. Accepts the URL-encoded form IAM's Get* calls return.
pub fn canonical(document: &str) -> Result<String, serde_json::Error> {
    let value: Value = match serde_json::from_str(document) {
        Ok(value) => value,
        Err(_) => serde_json::from_str(&percent_encoding::percent_decode_str(document).decode_utf8_lossy())?,
    };
    Ok(normalize(value, "").to_string())
}

/// Keys whose value may be a string or a list of strings with the same meaning.
const LIST_KEYS: &[&str] =
    &["Action", "NotAction", "Resource", "NotResource", "AWS", "Service", "Federated", "CanonicalUser"];

fn normalize(value: Value, key: &str) -> Value {
    match value {
        Value::Object(map) if key == "Statement" => Value::Array(vec![normalize(Value::Object(map), "")]),
        Value::Object(map) => {
            let mut keys: Vec<String> = map.keys().cloned().collect();
            keys.sort();
            let mut map = map;
            let mut out = Map::new();
            for k in keys {
                let v = map.remove(&k).unwrap_or(Value::Null);
                let v = if key == "Condition" { normalize_condition(v) } else { normalize(v, &k) };
                out.insert(k, v);
            }
            Value::Object(out)
        }
        Value::Array(items) => sorted_list(items.into_iter().map(|v| normalize(v, "")).collect()),
        Value::String(s) if LIST_KEYS.contains(&key) => Value::Array(vec![Value::String(s)]),
        other => other,
    }
}

/// A condition operator's block: every condition key's value as a sorted list.
fn normalize_condition(block: Value) -> Value {
    match block {
        Value::Object(map) => {
            let mut out = Map::new();
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, v) in entries {
                let list = match v {
                    Value::Array(items) => items,
                    single => vec![single],
                };
                out.insert(k, sorted_list(list));
            }
            Value::Object(out)
        }
        other => other,
    }
}

fn sorted_list(mut items: Vec<Value>) -> Value {
    items.sort_by_key(|v| v.to_string());
    items.dedup();
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn data() -> Value {
        json!({
            "bucket": "acme-prod-tweets", "prefix": "flixops", "account": "123456789012",
            "region": "eu-west-1", "secret_name": "flixops/acme/prod/x-bearer-token",
            "function": "acme-prod-extract",
            "function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:acme-prod-extract",
            "schedule_arn": "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/acme-prod-extract",
            "snowflake_role": "acme-prod-snowflake", "extract_role": "acme-prod-extract",
            "scheduler_role": "acme-prod-scheduler",
            "boundary_arn": "arn:aws:iam::123456789012:policy/acme-prod-flixops-boundary",
            "log_group_arn": "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/acme-prod-extract",
            "principal": "arn:aws:iam::999999999999:user/abc", "external_id": "flixops-acme-prod"
        })
    }

    #[test]
    fn every_template_renders_valid_json_without_wildcard_actions_beyond_the_deny() {
        for name in crate::templates::names("iam/") {
            let name = name.trim_start_matches("iam/");
            let doc: Value = serde_json::from_str(&canonical(&render(name, &data())).unwrap()).unwrap();
            for statement in doc["Statement"].as_array().unwrap() {
                for action in statement["Action"].as_array().unwrap() {
                    let action = action.as_str().unwrap();
                    let wildcard = action.contains('*');
                    assert!(!wildcard || statement["Effect"] == "Deny", "{name}: {action}");
                }
            }
        }
    }

    #[test]
    fn lists_stay_flat_and_a_single_statement_object_is_a_list() {
        let one = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:B","s3:A"],"Resource":"arn:aws:s3:::b"}}"#;
        let doc: Value = serde_json::from_str(&canonical(one).unwrap()).unwrap();
        assert_eq!(doc["Statement"][0]["Action"], json!(["s3:A", "s3:B"]));
        assert_eq!(doc["Statement"][0]["Resource"], json!(["arn:aws:s3:::b"]));
    }

    #[test]
    fn a_url_encoded_reordered_document_with_collapsed_lists_is_the_same() {
        let ours = canonical(&render("snowflake-trust", &data())).unwrap();
        let from_iam = "%7B%22Statement%22%3A%5B%7B%22Condition%22%3A%7B%22StringEquals%22%3A%7B%22sts%3AExternalId%22%3A%22flixops-acme-prod%22%7D%7D%2C%22Action%22%3A%5B%22sts%3AAssumeRole%22%5D%2C%22Principal%22%3A%7B%22AWS%22%3A%22arn%3Aaws%3Aiam%3A%3A999999999999%3Auser%2Fabc%22%7D%2C%22Effect%22%3A%22Allow%22%2C%22Sid%22%3A%22SnowflakeStorageIntegration%22%7D%5D%2C%22Version%22%3A%222012-10-17%22%7D";
        assert_eq!(canonical(from_iam).unwrap(), ours);
        let other_id = ours.replace("flixops-acme-prod", "someone-else");
        assert_ne!(canonical(&other_id).unwrap(), ours);
    }

    #[test]
    fn values_cannot_break_out_of_their_strings() {
        let mut d = data();
        d["principal"] = json!("x\"}, \"Effect\": \"Allow");
        let doc: Value = serde_json::from_str(&render("snowflake-trust", &d)).unwrap();
        assert_eq!(doc["Statement"][0]["Principal"]["AWS"], "x\"}, \"Effect\": \"Allow");
    }
}
