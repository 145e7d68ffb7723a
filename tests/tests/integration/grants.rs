//! Capabilities: a plugin reaches only what its manifest requests and its
//! tenant grants; denials name the config key; credentials stay in the host;
//! tenants' key-value data and connections are isolated.

use std::collections::HashMap;
use tenure_plugin_test::Harness;

const TOKEN: &str = "s3cret-token";

async fn setup() -> Harness {
    let addr = tenure_tests::start_auth_echo("Bearer s3cret-token").await;
    let h = Harness::new().unwrap();
    h.load("chaos").unwrap();
    h.tenant(
        "acme",
        &format!(
            r#"
            [connections.crm]
            kind = "http"
            allow_private_network = true
            url = "http://{addr}/api"
            auth = {{ type = "bearer", token = "{TOKEN}" }}
            [connections.other-crm]
            kind = "http"
            allow_private_network = true
            url = "http://{addr}/other"
            [connections.dir]
            kind = "ldap"
            url = "ldaps://127.0.0.1:1"
            bind_dn = "cn=admin,dc=example,dc=test"
            password = "ldap-secret"
            [plugins.chaos.grants]
            http = ["crm"]
            kv = true
            "#
        ),
    )
    .unwrap();
    h.tenant("globex", "[plugins.chaos.grants]\nkv = true\nhttp = [\"crm\"]\n")
        .unwrap();
    h.tenant("initech", "[plugins.chaos.grants]\n").unwrap();
    h
}

async fn call(h: &Harness, tenant: &str, args: &[(&str, &str)]) -> HashMap<String, String> {
    tenure_tests::call_chaos(h, tenant, args).await
}

fn get(attrs: &HashMap<String, String>, name: &str) -> String {
    attrs.get(name).cloned().unwrap_or_default()
}

#[tokio::test]
async fn granted_http_gets_credentials_the_plugin_never_sees() {
    let h = setup().await;
    let r = call(&h, "acme", &[("mode", "http"), ("connection", "crm")]).await;
    assert_eq!(get(&r, "status"), "200");
    assert_eq!(
        get(&r, "body"),
        "path=/api/echo auth=ok",
        "host attached the bearer token"
    );
    assert!(!format!("{r:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_guest_set_authorization_header_is_refused() {
    let h = setup().await;
    let r = call(&h, "acme", &[("mode", "http-auth"), ("connection", "crm")]).await;
    let e = get(&r, "error");
    assert!(e.starts_with("HttpError::InvalidRequest"), "{e}");
    assert!(
        e.contains("\\\"Authorization\\\" may not be set by a plugin"),
        "{e}"
    );
}

#[tokio::test]
async fn http_not_granted_by_the_tenant_names_the_grant_key() {
    let h = setup().await;
    let r = call(&h, "acme", &[("mode", "http"), ("connection", "other-crm")]).await;
    let e = get(&r, "error");
    assert!(e.starts_with("HttpError::Denied"), "{e}");
    assert!(e.contains("tenants.acme.plugins.chaos.grants.http"), "{e}");
}

#[tokio::test]
async fn http_not_requested_by_the_manifest_names_the_manifest() {
    let h = setup().await;
    let r = call(&h, "acme", &[("mode", "http"), ("connection", "billing")]).await;
    let e = get(&r, "error");
    assert!(
        e.contains("does not request http connection \\\"billing\\\""),
        "{e}"
    );
    assert!(e.contains("[capabilities] in its manifest (chaos.toml)"), "{e}");
}

#[tokio::test]
async fn ldap_not_granted_is_denied_before_any_connection() {
    let h = setup().await;
    let r = call(&h, "acme", &[("mode", "ldap"), ("connection", "dir")]).await;
    let e = get(&r, "error");
    assert!(e.starts_with("LdapError::Denied"), "{e}");
    assert!(e.contains("tenants.acme.plugins.chaos.grants.ldap"), "{e}");
    assert!(!e.contains("ldap-secret"));
}

#[tokio::test]
async fn another_tenants_connection_is_out_of_reach() {
    let h = setup().await;
    // globex grants "crm" but defines no such connection: acme's credentials are not visible to it.
    let r = call(&h, "globex", &[("mode", "http"), ("connection", "crm")]).await;
    let e = get(&r, "error");
    assert!(
        e.contains("tenant \\\"globex\\\" defines no connection \\\"crm\\\""),
        "{e}"
    );
}

#[tokio::test]
async fn key_value_data_is_private_to_each_tenant() {
    let h = setup().await;
    let r = call(
        &h,
        "acme",
        &[("mode", "kv-set"), ("key", "payroll"), ("value", "acme-data")],
    )
    .await;
    assert_eq!(get(&r, "stored"), "payroll");
    let r = call(&h, "acme", &[("mode", "kv-get"), ("key", "payroll")]).await;
    assert_eq!(get(&r, "value"), "acme-data");
    let r = call(&h, "globex", &[("mode", "kv-get"), ("key", "payroll")]).await;
    assert_eq!(get(&r, "value"), "<none>", "globex must not read acme's data");
    let r = call(&h, "initech", &[("mode", "kv-get"), ("key", "payroll")]).await;
    let e = get(&r, "error");
    assert!(
        e.contains("tenants.initech.plugins.chaos.grants.kv = true"),
        "{e}"
    );
}
