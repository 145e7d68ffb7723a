//! The plugin registry.

use super::audited;
use crate::*;
use std::sync::Arc;

fn version(owner: Option<&str>, bytes: &[u8], sha: &str) -> NewPluginVersion {
    NewPluginVersion {
        name: "scim".into(),
        label: format!("0.1.0+{}", &sha[..8]),
        sha256: sha.into(),
        owner: owner.map(str::to_string),
        kind: StoredPluginKind::Connector,
        wit: "0.1.0".into(),
        manifest: "name = \"scim\"\nversion = \"0.1.0\"\nkind = \"connector\"\n".into(),
        component: bytes.to_vec(),
        signer: owner.map(|_| "acme".to_string()),
        uploaded_by: "it".into(),
        audit: vec![AuditRecord::new("t", AuditKind::PluginUploaded, "it")],
    }
}

pub async fn plugin_versions_are_kept_once_per_owner_and_activations_in_order(store: Arc<dyn Store>) {
    let everyone = version(None, b"\0asm-one", "aaaaaaaa11111111");
    assert!(store.put_plugin_version(everyone.clone()).await.unwrap());
    assert!(
        !store.put_plugin_version(everyone).await.unwrap(),
        "the same bytes again keep nothing and audit nothing"
    );
    let private = version(Some("t"), b"\0asm-two", "bbbbbbbb22222222");
    assert!(store.put_plugin_version(private).await.unwrap());
    assert_eq!(audited(&store, AuditKind::PluginUploaded).await.len(), 2);

    let versions = store.plugin_versions().await.unwrap();
    let seen: Vec<_> = versions
        .iter()
        .map(|v| {
            (
                v.label.as_str(),
                v.owner.as_deref(),
                v.kind,
                v.size_bytes,
                v.signer.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("0.1.0+aaaaaaaa", None, StoredPluginKind::Connector, 8, None),
            (
                "0.1.0+bbbbbbbb",
                Some("t"),
                StoredPluginKind::Connector,
                8,
                Some("acme")
            ),
        ]
    );
    assert!(versions[0].manifest.contains("kind = \"connector\""));
    assert_eq!(
        store
            .plugin_component("scim", "bbbbbbbb22222222")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"\0asm-two"[..])
    );
    assert_eq!(store.plugin_component("scim", "cccc").await.unwrap(), None);

    for (label, reason) in [("0.1.0+bbbbbbbb", None), ("0.1.0+aaaaaaaa", Some("rollback"))] {
        store
            .activate_plugin(NewActivation {
                tenant: "t".into(),
                name: "scim".into(),
                label: label.into(),
                activated_by: "it".into(),
                reason: reason.map(str::to_string),
                audit: vec![AuditRecord::new("t", AuditKind::PluginActivated, "it")],
            })
            .await
            .unwrap();
    }
    let activations = store.plugin_activations().await.unwrap();
    let seen: Vec<_> = activations
        .iter()
        .map(|a| (a.tenant.as_str(), a.label.as_str(), a.reason.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("t", "0.1.0+bbbbbbbb", None),
            ("t", "0.1.0+aaaaaaaa", Some("rollback"))
        ]
    );
    assert!(activations[0].id < activations[1].id);
    assert_eq!(audited(&store, AuditKind::PluginActivated).await.len(), 2);
}
