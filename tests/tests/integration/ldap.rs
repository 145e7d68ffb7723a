//! The LDAP capability against a real OpenLDAP server (started by
//! `scripts/testbeds/openldap.sh`): binds with stored credentials over LDAPS and
//! StartTLS, add/search/modify/move/delete and paged search from a plugin,
//! generated passwords that the plugin never sees, and result codes passed through.

use std::collections::HashMap;
use std::sync::Arc;
use tenure_capabilities::{LdapCapability, MemoryKv, SystemClock};
use tenure_plugin_test::Harness;
use tenure_runtime::{RuntimeOptions, Services};
use tenure_tests::testbeds::{self, CapturePasswords};

struct Bed {
    harness: Harness,
    passwords: Arc<CapturePasswords>,
    env: HashMap<String, String>,
    /// A suffix unique to this run, so repeated runs against one server do not collide.
    run: String,
}

fn setup(connection_toml: &str) -> Bed {
    let env = testbeds::start("openldap.sh");
    let passwords = Arc::new(CapturePasswords::default());
    let mut services = Services::new(Arc::new(MemoryKv::default()), Arc::new(SystemClock)).unwrap();
    services.ldap = LdapCapability::new(passwords.clone());
    let harness = Harness::with_services(RuntimeOptions::default(), services).unwrap();
    harness.load("chaos").unwrap();
    let mut config = connection_toml.to_string();
    for (k, v) in &env {
        config = config.replace(&format!("${k}"), v);
    }
    config.push_str("\n[plugins.chaos.grants]\nldap = [\"dir\"]\n");
    harness.tenant("acme", &config).unwrap();
    let run = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    );
    Bed {
        harness,
        passwords,
        env,
        run,
    }
}

const LDAPS: &str = r#"
[connections.dir]
kind = "ldap"
url = "$TENURE_TEST_LDAPS_URL"
bind_dn = "$TENURE_TEST_LDAP_BIND_DN"
password = "$TENURE_TEST_LDAP_PASSWORD"
ca_file = "$TENURE_TEST_LDAP_CA"
"#;

impl Bed {
    async fn call(&self, args: &[(&str, &str)]) -> HashMap<String, String> {
        let mut all = vec![("connection", "dir")];
        all.extend_from_slice(args);
        tenure_tests::call_chaos(&self.harness, "acme", &all).await
    }

    fn base(&self) -> &str {
        &self.env["TENURE_TEST_LDAP_BASE"]
    }

    async fn add(&self, uid: &str, password: &str) -> HashMap<String, String> {
        let dn = format!("uid={uid},ou=People,{}", self.base());
        self.call(&[
            ("mode", "ldap-add"),
            ("dn", &dn),
            ("cn", uid),
            ("sn", "Test"),
            ("uid", uid),
            ("password", password),
        ])
        .await
    }
}

#[tokio::test]
async fn add_with_a_generated_password_the_plugin_never_sees() {
    let bed = setup(LDAPS);
    let uid = format!("ada-{}", bed.run);
    let r = bed.add(&uid, "generate").await;
    assert_eq!(r.get("result").map(String::as_str), Some("added"), "{r:?}");

    // The host generated the password and handed it to the policy, not to the plugin.
    let (dn, password) = bed
        .passwords
        .0
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("a password was generated");
    assert!(dn.starts_with(&format!("uid={uid},")));
    assert!(password.len() >= 20);
    // The password works: the new account can bind with it.
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&bed.env["TENURE_TEST_LDAP_URL"])
        .await
        .unwrap();
    ldap3::drive!(conn);
    let bind = ldap.simple_bind(&dn, &password).await.unwrap();
    assert_eq!(bind.rc, 0, "bind with the generated password: {}", bind.text);

    // Even when asked for, password attributes are not returned to the plugin.
    let r = bed
        .call(&[
            ("mode", "ldap-search"),
            ("base", bed.base()),
            ("filter", &format!("(uid={uid})")),
            ("attributes", "cn,userPassword"),
        ])
        .await;
    let found = r.get("result").cloned().unwrap_or_default();
    assert!(found.contains(&format!("cn={uid}")), "{r:?}");
    assert!(!found.to_lowercase().contains("userpassword"), "{found}");
    assert!(!found.contains(&password));

    // A second add of the same DN is entryAlreadyExists (68), passed through.
    let r = bed.add(&uid, "").await;
    assert_eq!(r.get("code").map(String::as_str), Some("68"), "{r:?}");
}

#[tokio::test]
async fn modify_move_and_delete() {
    let bed = setup(LDAPS);
    let uid = format!("lee-{}", bed.run);
    let dn = format!("uid={uid},ou=People,{}", bed.base());
    assert_eq!(
        bed.add(&uid, "").await.get("result").map(String::as_str),
        Some("added")
    );

    let r = bed
        .call(&[
            ("mode", "ldap-modify"),
            ("dn", &dn),
            ("attribute", "title"),
            ("value", "Engineer"),
        ])
        .await;
    assert_eq!(r.get("result").map(String::as_str), Some("modified"), "{r:?}");

    let leavers = format!("ou=Leavers,{}", bed.base());
    let r = bed
        .call(&[
            ("mode", "ldap-move"),
            ("dn", &dn),
            ("new_rdn", &format!("uid={uid}")),
            ("new_superior", &leavers),
        ])
        .await;
    assert_eq!(r.get("result").map(String::as_str), Some("moved"), "{r:?}");
    let r = bed
        .call(&[
            ("mode", "ldap-search"),
            ("base", &leavers),
            ("filter", &format!("(uid={uid})")),
            ("attributes", "title"),
        ])
        .await;
    assert!(r["result"].contains("title=Engineer"), "{r:?}");

    let moved = format!("uid={uid},{leavers}");
    let r = bed.call(&[("mode", "ldap-delete"), ("dn", &moved)]).await;
    assert_eq!(r.get("result").map(String::as_str), Some("deleted"), "{r:?}");
    let r = bed.call(&[("mode", "ldap-delete"), ("dn", &moved)]).await;
    assert_eq!(
        r.get("code").map(String::as_str),
        Some("32"),
        "noSuchObject passes through: {r:?}"
    );
}

#[tokio::test]
async fn paged_search_returns_every_page() {
    let bed = setup(LDAPS);
    for i in 0..25 {
        let r = bed.add(&format!("page{i}-{}", bed.run), "").await;
        assert_eq!(r.get("result").map(String::as_str), Some("added"), "{r:?}");
    }
    let filter = format!("(uid=page*-{})", bed.run);
    let r = bed
        .call(&[
            ("mode", "ldap-search"),
            ("base", bed.base()),
            ("filter", &filter),
            ("attributes", "uid"),
            ("page_size", "10"),
        ])
        .await;
    assert_eq!(r["result"].lines().count(), 25, "{r:?}");
    // A limit below the number of matches is an error, not a silent truncation.
    let r = bed
        .call(&[
            ("mode", "ldap-search"),
            ("base", bed.base()),
            ("filter", &filter),
            ("page_size", "10"),
            ("limit", "5"),
        ])
        .await;
    assert!(
        r.get("error").is_some_and(|e| e.contains("more than 5 entries")),
        "{r:?}"
    );
}

#[tokio::test]
async fn starttls_binds_and_plaintext_is_refused() {
    let starttls = LDAPS
        .replace("$TENURE_TEST_LDAPS_URL", "$TENURE_TEST_LDAP_URL")
        .replace(
            "ca_file = \"$TENURE_TEST_LDAP_CA\"",
            "ca_file = \"$TENURE_TEST_LDAP_CA\"\nstarttls = true",
        );
    let bed = setup(&starttls);
    let r = bed
        .call(&[
            ("mode", "ldap-search"),
            ("base", bed.base()),
            ("filter", "(ou=People)"),
            ("attributes", "ou"),
        ])
        .await;
    assert!(r.get("result").is_some_and(|v| v.contains("ou=People")), "{r:?}");

    let plain = LDAPS.replace("$TENURE_TEST_LDAPS_URL", "$TENURE_TEST_LDAP_URL");
    let bed = setup(&plain);
    let r = bed
        .call(&[
            ("mode", "ldap-search"),
            ("base", bed.base()),
            ("filter", "(ou=People)"),
        ])
        .await;
    let e = r.get("error").cloned().unwrap_or_default();
    assert!(e.contains("would send its bind password unencrypted"), "{r:?}");
}

#[tokio::test]
async fn a_wrong_bind_password_is_reported_without_the_password() {
    let bed = setup(&LDAPS.replace("$TENURE_TEST_LDAP_PASSWORD", "not-the-password"));
    let r = bed
        .call(&[
            ("mode", "ldap-search"),
            ("base", bed.base()),
            ("filter", "(ou=People)"),
        ])
        .await;
    assert_eq!(
        r.get("code").map(String::as_str),
        Some("49"),
        "invalidCredentials: {r:?}"
    );
    assert!(r["error"].contains("bind as cn=admin"), "{r:?}");
    assert!(!r["error"].contains("not-the-password"));
}
