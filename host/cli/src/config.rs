//! The host config file: plugin folder, cache, limits and tenants, with
//! `${ENV}` interpolation in every string value (errors name the field).

use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tenure_capabilities::TenantConfig;
use tenure_capabilities::config::interpolate_env;

/// `tenure.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Where built plugins (`*.wasm` + `*.toml`) are read from.
    #[serde(default = "default_plugins")]
    pub plugins_dir: PathBuf,
    /// Where compiled components are cached.
    #[serde(default = "default_cache")]
    pub cache_dir: PathBuf,
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantConfig>,
}

fn default_plugins() -> PathBuf {
    PathBuf::from("target/plugins")
}

fn default_cache() -> PathBuf {
    PathBuf::from("target/component-cache")
}

impl HostConfig {
    /// Reads and interpolates a config file; relative paths are taken from the file's folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut value: toml::Value =
            toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
        interpolate(&mut value, "")?;
        let mut config: HostConfig = value
            .try_into()
            .with_context(|| format!("invalid config in {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for dir in [&mut config.plugins_dir, &mut config.cache_dir] {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        for (tenant, t) in config.tenants.iter_mut() {
            for (name, grant) in t.plugins.iter_mut() {
                if let Some(rules) = grant.rule_set.as_mut()
                    && let Some(file) = rules.strip_prefix("@")
                {
                    let file = base.join(file);
                    *rules = std::fs::read_to_string(&file).with_context(|| {
                        format!(
                            "tenants.{tenant}.plugins.{name}.rule_set: cannot read {}",
                            file.display()
                        )
                    })?;
                }
            }
        }
        Ok(config)
    }
}

fn interpolate(value: &mut toml::Value, path: &str) -> Result<()> {
    match value {
        toml::Value::String(s) => *s = interpolate_env(path, s)?,
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                interpolate(v, &p)?;
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                interpolate(v, &format!("{path}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tenure-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn interpolates_env_reads_rule_files_and_resolves_paths() {
        let dir = temp_dir("ok");
        write(&dir, "rules.txt", "destination ad\n");
        // SAFETY: a variable only this test reads.
        unsafe { std::env::set_var("TENURE_CLI_TEST_TOKEN", "tok-123") };
        let path = write(
            &dir,
            "tenure.toml",
            r#"
            plugins_dir = "plugins"
            [tenants.acme.connections.crm]
            kind = "http"
            url = "https://crm.example.test"
            auth = { type = "bearer", token = "${TENURE_CLI_TEST_TOKEN}" }
            [tenants.acme.plugins.rules-basic]
            rule_set = "@rules.txt"
            "#,
        );
        let config = HostConfig::load(&path).unwrap();
        assert_eq!(config.plugins_dir, dir.join("plugins"));
        assert_eq!(config.cache_dir, dir.join("target/component-cache"));
        let acme = &config.tenants["acme"];
        assert_eq!(
            acme.plugins["rules-basic"].rule_set.as_deref(),
            Some("destination ad\n")
        );
        match &acme.connections["crm"] {
            tenure_capabilities::ConnectionConfig::Http(c) => match &c.auth {
                tenure_capabilities::HttpAuth::Bearer { token } => assert_eq!(token.expose(), "tok-123"),
                other => panic!("unexpected auth {other:?}"),
            },
            other => panic!("unexpected connection {other:?}"),
        }
        assert!(
            !format!("{config:?}").contains("tok-123"),
            "secrets are redacted in Debug"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let dir = temp_dir("err");
        let path = write(
            &dir,
            "tenure.toml",
            "[tenants.acme.connections.crm]\nkind = \"http\"\nurl = \"${TENURE_CLI_TEST_UNSET_VAR}\"\n",
        );
        let err = format!("{:#}", HostConfig::load(&path).unwrap_err());
        assert!(
            err.contains(
                "tenants.acme.connections.crm.url: environment variable TENURE_CLI_TEST_UNSET_VAR is not set"
            ),
            "{err}"
        );
        let path = write(
            &dir,
            "bad.toml",
            "[tenants.acme.plugins.p]\nrule_set = \"@missing.txt\"\n",
        );
        let err = format!("{:#}", HostConfig::load(&path).unwrap_err());
        assert!(
            err.contains("tenants.acme.plugins.p.rule_set: cannot read"),
            "{err}"
        );
        let path = write(&dir, "typo.toml", "plugin_dir = \"x\"\n");
        let err = format!("{:#}", HostConfig::load(&path).unwrap_err());
        assert!(err.contains("unknown field `plugin_dir`"), "{err}");
    }
}
