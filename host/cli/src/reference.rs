//! The configuration reference (`docs/configuration.md`), generated from the
//! config types' JSON Schema: every key, its type, default and doc comment.
//! `tenure config reference` prints it; a test keeps the committed file current.

use crate::config::HostConfig;
use serde_json::{Map, Value as Json};
use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write as _;

/// The JSON Schema of `tenure.toml`.
pub fn schema() -> Json {
    serde_json::to_value(schemars::schema_for!(HostConfig)).unwrap_or(Json::Null)
}

/// The reference as Markdown.
pub fn markdown() -> String {
    let schema = schema();
    let empty = Map::new();
    let defs = schema.get("$defs").and_then(Json::as_object).unwrap_or(&empty);
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the config types (`tenure config reference`; a test keeps this file current). \
         Every string value may use `${ENV_VAR}` and `${secret:NAME}`; unknown keys are refused, \
         naming the key.\n\n",
    );
    let mut queue: VecDeque<(String, &Json)> = VecDeque::from([("tenure.toml".to_string(), &schema)]);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some((title, node)) = queue.pop_front() {
        section(&mut out, &title, node, &mut |name: &str| {
            if seen.insert(name.to_string())
                && let Some(def) = defs.get(name)
            {
                queue.push_back((name.to_string(), def));
            }
        });
    }
    out
}

/// One type's section: its description, then its keys (or its variants).
fn section(out: &mut String, title: &str, node: &Json, refer: &mut dyn FnMut(&str)) {
    let _ = writeln!(out, "## {title}\n");
    if let Some(text) = node.get("description").and_then(Json::as_str) {
        let _ = writeln!(out, "{}\n", one_line(text));
    }
    if node.get("properties").is_some() {
        table(out, node, refer);
        return;
    }
    let variants = node
        .get("oneOf")
        .or_else(|| node.get("anyOf"))
        .and_then(Json::as_array);
    match variants {
        Some(variants) => {
            for variant in variants {
                if variant.get("properties").is_some() {
                    let _ = writeln!(out, "**{}**\n", variant_label(variant));
                    if let Some(text) = variant.get("description").and_then(Json::as_str) {
                        let _ = writeln!(out, "{}\n", one_line(text));
                    }
                    table(out, variant, refer);
                } else {
                    let text = variant.get("description").and_then(Json::as_str).map(one_line);
                    let _ = writeln!(
                        out,
                        "- {}{}",
                        type_of(variant, refer),
                        text.map(|t| format!(": {t}")).unwrap_or_default()
                    );
                }
            }
            out.push('\n');
        }
        None => {
            let _ = writeln!(out, "Type: {}\n", type_of(node, refer));
        }
    }
}

/// A tagged variant's name: its constant tag (`kind = "http"`).
fn variant_label(variant: &Json) -> String {
    let props = variant.get("properties").and_then(Json::as_object);
    props
        .and_then(|p| {
            p.iter().find_map(|(key, v)| {
                v.get("const").map(|c| format!("`{key} = {c}`")).or_else(|| {
                    let only = v.get("enum").and_then(Json::as_array).filter(|e| e.len() == 1)?;
                    Some(format!("`{key} = {}`", only[0]))
                })
            })
        })
        .unwrap_or_else(|| "variant".into())
}

fn table(out: &mut String, node: &Json, refer: &mut dyn FnMut(&str)) {
    let required: BTreeSet<&str> = node
        .get("required")
        .and_then(Json::as_array)
        .map(|r| r.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    out.push_str("| key | type | default | description |\n|---|---|---|---|\n");
    if let Some(props) = node.get("properties").and_then(Json::as_object) {
        for (key, prop) in props {
            let default = match prop.get("default") {
                Some(d) => format!("`{}`", d),
                None if required.contains(key.as_str()) => "required".into(),
                None => String::new(),
            };
            let text = prop
                .get("description")
                .and_then(Json::as_str)
                .map(one_line)
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| `{key}` | {} | {} | {} |",
                type_of(prop, refer),
                cell(&default),
                cell(&text)
            );
        }
    }
    out.push('\n');
}

/// A short type: `string`, `list of string`, a link to a section, `"a" \| "b"`.
fn type_of(node: &Json, refer: &mut dyn FnMut(&str)) -> String {
    if let Some(target) = node.get("$ref").and_then(Json::as_str) {
        let name = target.rsplit('/').next().unwrap_or(target);
        refer(name);
        return format!("[{name}](#{})", name.to_lowercase());
    }
    if let Some(c) = node.get("const") {
        return format!("`{c}`");
    }
    if let Some(values) = node.get("enum").and_then(Json::as_array) {
        let names: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        return names.join(" \\| ");
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = node.get(key).and_then(Json::as_array) {
            let names: Vec<String> = options
                .iter()
                .filter(|o| o.get("type").and_then(Json::as_str) != Some("null"))
                .map(|o| type_of(o, refer))
                .collect();
            return names.join(" \\| ");
        }
    }
    if let Some(all) = node.get("allOf").and_then(Json::as_array)
        && let Some(first) = all.first()
    {
        return type_of(first, refer);
    }
    let kinds: Vec<&str> = match node.get("type") {
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => ts
            .iter()
            .filter_map(Json::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => Vec::new(),
    };
    match kinds.first().copied() {
        Some("array") => {
            let item = node
                .get("items")
                .map(|i| type_of(i, refer))
                .unwrap_or_else(|| "any".into());
            format!("list of {item}")
        }
        Some("object") => match node.get("additionalProperties") {
            Some(value) if value.is_object() => format!("map of name → {}", type_of(value, refer)),
            _ => "table".into(),
        },
        Some(kind) => kind.to_string(),
        None => "any".into(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// `docs/configuration.md` is what the types say today; `TENURE_UPDATE_DOCS=1` rewrites it.
    #[test]
    fn the_configuration_reference_is_current() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        let generated = super::markdown();
        if std::env::var_os("TENURE_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &generated).expect("write docs/configuration.md");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/configuration.md is out of date: run `TENURE_UPDATE_DOCS=1 cargo test -p tenure \
             the_configuration_reference_is_current`"
        );
    }

    #[test]
    fn every_section_the_reference_links_to_exists() {
        let text = super::markdown();
        for link in text.split("](#").skip(1) {
            let anchor = link.split(')').next().unwrap_or_default();
            let heading = format!("\n## {anchor}");
            assert!(
                text.to_lowercase().contains(&heading),
                "the reference links to #{anchor}, which has no section"
            );
        }
        for key in [
            "plugins_dir",
            "api_tokens",
            "delete_after",
            "signature_tokens",
            "deadline_ms",
        ] {
            assert!(text.contains(&format!("`{key}`")), "the reference lacks {key}");
        }
    }

    /// Every key says what it is for (a variant's tag, such as `kind = "http"`, says it by its value).
    #[test]
    fn every_key_has_a_description() {
        let text = super::markdown();
        let undocumented: Vec<&str> = text
            .lines()
            .filter(|row| row.starts_with("| `"))
            .filter(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                let is_tag = cells.get(2).is_some_and(|t| t.starts_with("`\""));
                cells.get(4).is_some_and(|d| d.is_empty()) && !is_tag
            })
            .collect();
        assert!(
            undocumented.is_empty(),
            "keys without a doc comment: {undocumented:#?}"
        );
    }
}
