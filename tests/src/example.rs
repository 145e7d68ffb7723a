//! Example configs (`examples/<name>/tenure.toml`) loaded the way the test host
//! runs them, so end-to-end tests exercise the files the README documents.

use std::collections::HashMap;
use tenure_capabilities::TenantConfig;
use tenure_pipeline::TenantPipeline;

fn interpolate(value: &mut toml::Value, lookup: &dyn Fn(&str) -> Option<String>) {
    match value {
        toml::Value::String(s) => {
            *s = tenure_capabilities::config::interpolate_with("example", s, lookup)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| interpolate(v, lookup)),
        toml::Value::Array(a) => a.iter_mut().for_each(|v| interpolate(v, lookup)),
        _ => {}
    }
}

/// One tenant of an example: `${VAR}` (and `${secret:NAME}` as `secret:NAME`) filled from
/// `vars`, `@file` rule sets read from the example's folder. Returns the runtime part and the
/// pipeline part.
pub fn load(example: &str, tenant: &str, vars: &HashMap<String, String>) -> (TenantConfig, TenantPipeline) {
    let dir = tenure_plugin_test::workspace_root()
        .join("examples")
        .join(example);
    let path = dir.join("tenure.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Each string value is interpolated on its own, as `tenure` does (a key with newlines
    // stays one value).
    interpolate(&mut value, &|n: &str| vars.get(n).cloned());
    let mut t = value
        .get("tenants")
        .and_then(|t| t.get(tenant))
        .and_then(|t| t.as_table())
        .cloned()
        .unwrap_or_else(|| panic!("{} has no tenant {tenant}", path.display()));
    if let Some(toml::Value::Table(plugins)) = t.get_mut("plugins") {
        let names: Vec<String> = plugins.keys().cloned().collect();
        for name in names {
            let file = plugins
                .get(&name)
                .and_then(|g| g.get("rule_set"))
                .and_then(|r| r.as_str())
                .and_then(|r| r.strip_prefix('@'))
                .map(str::to_string);
            if let (Some(file), Some(toml::Value::Table(grant))) = (file, plugins.get_mut(&name)) {
                let text = std::fs::read_to_string(dir.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
                grant.insert("rule_set".into(), toml::Value::String(text));
            }
        }
    }
    let mut runtime = toml::Table::new();
    for key in ["connections", "plugins"] {
        if let Some(v) = t.remove(key) {
            runtime.insert(key.into(), v);
        }
    }
    let runtime: TenantConfig = toml::Value::Table(runtime)
        .try_into()
        .unwrap_or_else(|e| panic!("{}: tenants.{tenant}: {e}", path.display()));
    let pipeline: TenantPipeline = toml::Value::Table(t)
        .try_into()
        .unwrap_or_else(|e| panic!("{}: tenants.{tenant}: {e}", path.display()));
    (runtime, pipeline)
}
