//! The demo flow: sample people -> rules plugin -> connector plugin, printed.
//! It shows the plugin runtime end to end with no server.

use crate::config::HostConfig;
use anyhow::{Context, Result};
use std::path::Path;
use tenure_runtime::wit::{self, rules::Context as RulesContext};
use tenure_runtime::{PluginHandle, RuntimeOptions};

#[derive(serde::Deserialize)]
struct Sample {
    event: wit::EventKind,
    person: serde_json::Value,
}

pub async fn run(config_path: &Path) -> Result<()> {
    let config = HostConfig::load(config_path)?;
    let services = tenure_runtime::Services::new(
        std::sync::Arc::new(tenure_capabilities::MemoryKv::default()),
        std::sync::Arc::new(tenure_capabilities::SystemClock),
    )?;
    let runtime = tenure_runtime::Runtime::new(
        RuntimeOptions {
            cache_dir: Some(config.cache_dir.clone()),
            ..RuntimeOptions::default()
        },
        services,
    )?;
    for file in ["rules-basic", "connector-js"] {
        let path = config.plugins_dir.join(format!("{file}.wasm"));
        runtime
            .register_file(&path)
            .with_context(|| format!("loading {} (run plugins/build.sh first)", path.display()))?;
    }
    for (name, tenant) in config.tenants {
        runtime.set_tenant(&name, tenant);
    }
    let rules = runtime.plugin("demo", "rules-basic")?;
    let sandbox = runtime.plugin("demo", "connector-js")?;
    let samples_path = config_path.parent().unwrap_or(Path::new(".")).join("events.json");
    let samples: Vec<Sample> = serde_json::from_str(&std::fs::read_to_string(&samples_path)?)
        .with_context(|| format!("{} is not a list of sample events", samples_path.display()))?;
    for (i, sample) in samples.into_iter().enumerate() {
        let mut person_json =
            serde_json::json!({"ids": [], "emails": [], "phones": [], "custom": [], "status": "Active"});
        if let (Some(base), serde_json::Value::Object(extra)) = (person_json.as_object_mut(), sample.person) {
            base.extend(extra);
        }
        let person: wit::Person =
            serde_json::from_value(person_json).with_context(|| format!("sample {i}: invalid person"))?;
        let context = RulesContext {
            event: sample.event,
            destinations: vec!["ad".into()],
            now_ms: 0,
            trace: wit::rules::TraceLevel::Matched,
        };
        let evaluation = rules.evaluate(&person, &context).await?;
        let fired: Vec<_> = evaluation
            .trace
            .iter()
            .filter(|t| t.matched)
            .map(|t| t.rule.as_str())
            .collect();
        println!(
            "{:?} {} {}: rules fired {:?}",
            sample.event,
            person.given_name.as_deref().unwrap_or("?"),
            person.family_name.as_deref().unwrap_or(""),
            fired
        );
        for desired in evaluation.accounts {
            apply(&sandbox, &person, desired).await?;
        }
    }
    Ok(())
}

/// Looks the person up by employee id and creates or updates the sandbox account.
async fn apply(sandbox: &PluginHandle, person: &wit::Person, mut desired: wit::DesiredAccount) -> Result<()> {
    let employee_id = person.ids.first().map(|i| i.id.clone()).unwrap_or_default();
    desired.attributes.push(wit::Attribute {
        name: "employeeId".into(),
        value: wit::Value::Text(employee_id.clone()),
    });
    let key = wit::MatchKey {
        attribute: "employeeId".into(),
        value: employee_id,
    };
    let existing = sandbox.lookup(&[key]).await?;
    let anchor = match existing.first() {
        None => {
            let outcome = sandbox.apply(&wit::Operation::Create(desired.clone())).await?;
            println!("  create -> {}", outcome.summary);
            outcome.anchor.unwrap_or_default()
        }
        Some(current) => current.anchor.clone(),
    };
    let current = existing.first();
    let have: Vec<String> = current.map(|c| c.groups.clone()).unwrap_or_default();
    for g in desired.groups.iter().filter(|g| !have.contains(g)) {
        let o = sandbox
            .apply(&wit::Operation::AddMember(wit::MemberChange {
                anchor: anchor.clone(),
                group: g.clone(),
            }))
            .await?;
        println!("  {}", o.summary);
    }
    for g in have.iter().filter(|g| !desired.groups.contains(g)) {
        let o = sandbox
            .apply(&wit::Operation::RemoveMember(wit::MemberChange {
                anchor: anchor.clone(),
                group: g.clone(),
            }))
            .await?;
        println!("  {}", o.summary);
    }
    if let (Some(c), Some(want)) = (current, desired.container.as_ref())
        && c.container.as_ref() != Some(want)
    {
        let o = sandbox
            .apply(&wit::Operation::Move(wit::MoveRequest {
                anchor: anchor.clone(),
                container: want.clone(),
            }))
            .await?;
        println!("  {}", o.summary);
    }
    if current.is_some_and(|c| c.enabled != desired.enabled) {
        let op = if desired.enabled {
            wit::Operation::Enable(anchor.clone())
        } else {
            wit::Operation::Disable(anchor.clone())
        };
        println!("  {}", sandbox.apply(&op).await?.summary);
    }
    Ok(())
}
