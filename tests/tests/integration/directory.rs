//! The `directory` connector against real servers: a Samba Active Directory
//! domain controller (profile `ad`) and OpenLDAP (profile `ldap`), both started
//! by `scripts/testbeds/`. Each test works in OUs and groups of its own.

use ldap3::{LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tenure_capabilities::{LdapCapability, MemoryKv, SystemClock};
use tenure_plugin_test::Harness;
use tenure_runtime::wit::{self, PluginError};
use tenure_runtime::{RuntimeOptions, Services};
use tenure_tests::testbeds::{self, CapturePasswords};

/// A directory server, the connector loaded against it, and an admin connection for checks.
pub struct Bed {
    pub harness: Harness,
    pub passwords: Arc<CapturePasswords>,
    pub env: HashMap<String, String>,
    pub admin: ldap3::Ldap,
    pub run: String,
    pub base: String,
}

/// An LDAPS connection trusting `ca`, not yet bound.
pub async fn admin_connection_raw(url: &str, ca: &str) -> ldap3::Ldap {
    tenure_capabilities::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let settings = LdapConnSettings::new().set_config(Arc::new(tls));
    let (conn, ldap) = LdapConnAsync::with_settings(settings, url).await.unwrap();
    ldap3::drive!(conn);
    ldap
}

/// An LDAPS connection bound as `bind_dn`.
pub async fn admin_connection(url: &str, ca: &str, bind_dn: &str, password: &str) -> ldap3::Ldap {
    let mut ldap = admin_connection_raw(url, ca).await;
    ldap.simple_bind(bind_dn, password)
        .await
        .unwrap()
        .success()
        .unwrap();
    ldap
}

/// Starts Samba AD and loads the connector with profile `ad`.
pub async fn samba(extra_settings: &str) -> Bed {
    let env = testbeds::start("samba-ad.sh");
    let base = env["TENURE_TEST_AD_BASE"].clone();
    let run = testbeds::run_id();
    let config = format!(
        r#"
[connections.directory]
kind = "ldap"
url = "$TENURE_TEST_AD_URL"
bind_dn = "$TENURE_TEST_AD_BIND_DN"
password = "$TENURE_TEST_AD_PASSWORD"
ca_file = "$TENURE_TEST_AD_CA"

[plugins.directory.grants]
ldap = ["directory"]

[plugins.directory.settings]
base_dn = "{base}"
users_container = "OU=People,{base}"
groups_base = "OU=Groups,{base}"
{extra_settings}
"#
    );
    let admin = admin_connection(
        &env["TENURE_TEST_AD_URL"],
        &env["TENURE_TEST_AD_CA"],
        &env["TENURE_TEST_AD_BIND_DN"],
        &env["TENURE_TEST_AD_PASSWORD"],
    )
    .await;
    bed(testbeds::fill(&config, &env), env, admin, run, base)
}

fn bed(config: String, env: HashMap<String, String>, admin: ldap3::Ldap, run: String, base: String) -> Bed {
    let passwords = Arc::new(CapturePasswords::default());
    let mut services = Services::new(Arc::new(MemoryKv::default()), Arc::new(SystemClock)).unwrap();
    services.ldap = LdapCapability::new(passwords.clone());
    let harness = Harness::with_services(RuntimeOptions::default(), services).unwrap();
    harness.load("directory").unwrap();
    harness.tenant("acme", &config).unwrap();
    Bed {
        harness,
        passwords,
        env,
        admin,
        run,
        base,
    }
}

/// Text attributes of a desired account.
pub fn attrs(pairs: &[(&str, &str)]) -> Vec<wit::Attribute> {
    pairs
        .iter()
        .map(|(n, v)| wit::Attribute {
            name: n.to_string(),
            value: wit::Value::Text(v.to_string()),
        })
        .collect()
}

pub fn desired(attributes: Vec<wit::Attribute>, container: &str, enabled: bool) -> wit::DesiredAccount {
    wit::DesiredAccount {
        destination: "ad".into(),
        attributes,
        container: Some(container.into()),
        groups: vec![],
        licenses: vec![],
        app_assignments: vec![],
        enabled,
        expires_at: None,
        tickets: vec![],
    }
}

impl Bed {
    pub async fn apply(&self, op: wit::Operation) -> Result<wit::Outcome, PluginError> {
        testbeds::apply(&self.harness, "acme", "directory", op).await
    }

    pub async fn lookup(&self, attribute: &str, value: &str) -> Vec<wit::Account> {
        testbeds::lookup(&self.harness, "acme", "directory", attribute, value)
            .await
            .unwrap_or_else(|e| panic!("lookup {attribute}={value}: {e:?}"))
    }

    pub async fn add(&mut self, dn: &str, attrs: Vec<(&str, HashSet<&str>)>) {
        self.admin
            .add(dn, attrs)
            .await
            .unwrap()
            .success()
            .unwrap_or_else(|e| panic!("add {dn}: {e}"));
    }

    /// One entry's attributes (names lowercased), or none.
    pub async fn read(&mut self, dn: &str, attrs: &[&str]) -> Option<HashMap<String, Vec<String>>> {
        let (entries, _) = self
            .admin
            .search(dn, Scope::Base, "(objectClass=*)", attrs.to_vec())
            .await
            .ok()?
            .success()
            .ok()?;
        entries.into_iter().next().map(|e| {
            SearchEntry::construct(e)
                .attrs
                .into_iter()
                .map(|(k, v)| (k.to_lowercase(), v))
                .collect()
        })
    }

    pub async fn first(&mut self, dn: &str, attr: &str) -> Option<String> {
        self.read(dn, &[attr])
            .await
            .and_then(|mut a| a.remove(&attr.to_lowercase()))
            .and_then(|v| v.into_iter().next())
    }
}

fn text<'a>(account: &'a wit::Account, name: &str) -> Option<&'a str> {
    account
        .attributes
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| match &a.value {
            wit::Value::Text(t) => Some(t.as_str()),
            _ => None,
        })
}

/// A generated password binds: the account is enabled and the password took.
async fn can_bind(bed: &Bed, url_key: &str, ca_key: &str, user: &str, password: &str) -> bool {
    let mut ldap = admin_connection_raw(&bed.env[url_key], &bed.env[ca_key]).await;
    ldap.simple_bind(user, password).await.is_ok_and(|r| r.rc == 0)
}

#[tokio::test]
async fn active_directory_account_lifecycle_on_samba() {
    let mut bed = samba("").await;
    let (run, base) = (bed.run.clone(), bed.base.clone());
    let people = format!("OU=People,{base}");
    let eng = format!("OU=Eng-{run},{people}");
    let sales = format!("OU=Sales-{run},{people}");
    for ou in [&eng, &sales] {
        bed.add(ou, vec![("objectClass", HashSet::from(["organizationalUnit"]))])
            .await;
    }
    let group = format!("Eng-{run}");
    let group_dn = format!("CN={group},OU=Groups,{base}");
    bed.add(
        &group_dn,
        vec![
            ("objectClass", HashSet::from(["group"])),
            ("sAMAccountName", HashSet::from([group.as_str()])),
        ],
    )
    .await;

    // The manager first, then a report whose name needs DN escaping.
    let manager_id = format!("M{run}");
    let m = bed
        .apply(wit::Operation::Create(desired(
            attrs(&[
                ("sAMAccountName", &format!("mgr{run}")),
                ("givenName", "Maria"),
                ("sn", "Boss"),
                ("displayName", &format!("Maria Boss {run}")),
                ("employeeID", &manager_id),
                ("userPrincipalName", &format!("mgr{run}@example.test")),
            ]),
            &eng,
            true,
        )))
        .await
        .expect("create the manager");
    assert!(m.anchor.is_some());

    let sam = format!("zob{run}");
    let employee_id = format!("E{run}");
    let upn = format!("{sam}@example.test");
    let mut want = desired(
        attrs(&[
            ("sAMAccountName", &sam),
            ("userPrincipalName", &upn),
            ("givenName", "Zoë"),
            ("sn", "O'Brien"),
            ("displayName", &format!("O'Brien, Zoë #{run}")),
            ("mail", &format!("zoe.{run}@example.test")),
            ("employeeID", &employee_id),
            ("department", "Engineering"),
            ("title", "Engineer"),
            ("company", "Example"),
            ("manager", &manager_id),
        ]),
        &eng,
        true,
    );
    want.expires_at = Some("2027-06-30".into());
    let created = bed
        .apply(wit::Operation::Create(want.clone()))
        .await
        .expect("create");
    let anchor = created.anchor.clone().expect("objectGUID anchor");
    assert!(
        created.summary.contains("initial password set"),
        "{}",
        created.summary
    );
    let dn = format!("CN=O'Brien\\, Zoë #{run},{eng}");

    // AD made it 546 (disabled, no password needed); the connector set a password and enabled it.
    assert_eq!(bed.first(&dn, "userAccountControl").await.as_deref(), Some("512"));
    // 2027-07-01T00:00:00Z as FILETIME: the account works through the last day.
    assert_eq!(
        bed.first(&dn, "accountExpires").await.as_deref(),
        Some("134588736000000000")
    );
    let manager_dn = format!("CN=Maria Boss {run},{eng}");
    assert_eq!(
        bed.first(&dn, "manager").await.as_deref(),
        Some(manager_dn.as_str())
    );
    // The host generated the password; the person can sign in with it.
    let password = bed
        .passwords
        .for_dn(&dn)
        .expect("a generated password for the account");
    assert!(can_bind(&bed, "TENURE_TEST_AD_URL", "TENURE_TEST_AD_CA", &upn, &password).await);

    // Found by each key, always as the same anchor, with the manager as rules give it.
    for (attr, value) in [
        ("employeeID", employee_id.as_str()),
        ("sAMAccountName", sam.as_str()),
        ("anchor", anchor.as_str()),
    ] {
        let found = bed.lookup(attr, value).await;
        assert_eq!(found.len(), 1, "lookup by {attr}");
        assert_eq!(found[0].anchor, anchor);
        assert_eq!(found[0].container.as_deref(), Some(eng.as_str()));
        assert!(found[0].enabled);
        assert_eq!(found[0].expires_at.as_deref(), Some("2027-06-30"));
        assert_eq!(text(&found[0], "manager"), Some(manager_id.as_str()));
        assert_eq!(
            text(&found[0], "displayName"),
            Some(format!("O'Brien, Zoë #{run}").as_str())
        );
    }
    // A filter value with special characters is escaped, not injected.
    assert!(bed.lookup("employeeID", "*").await.is_empty());

    // Disable and enable flip bit 2 only: a bit set by someone else survives.
    bed.admin
        .modify(
            &dn,
            vec![Mod::Replace("userAccountControl", HashSet::from(["66048"]))],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    bed.apply(wit::Operation::Disable(anchor.clone())).await.unwrap();
    assert_eq!(
        bed.first(&dn, "userAccountControl").await.as_deref(),
        Some("66050")
    );
    assert!(!can_bind(&bed, "TENURE_TEST_AD_URL", "TENURE_TEST_AD_CA", &upn, &password).await);
    bed.apply(wit::Operation::Enable(anchor.clone())).await.unwrap();
    assert_eq!(
        bed.first(&dn, "userAccountControl").await.as_deref(),
        Some("66048")
    );

    // Group membership: adding twice and removing twice both succeed.
    let member = |group: &str| wit::MemberChange {
        anchor: anchor.clone(),
        group: group.to_string(),
    };
    bed.apply(wit::Operation::AddMember(member(&group)))
        .await
        .unwrap();
    let again = bed
        .apply(wit::Operation::AddMember(member(&group)))
        .await
        .unwrap();
    assert!(again.summary.contains("already a member"), "{}", again.summary);
    assert_eq!(bed.lookup("anchor", &anchor).await[0].groups, vec![group.clone()]);

    // A move keeps the anchor and the membership (AD rewrites the group's member DN).
    bed.apply(wit::Operation::Move(wit::MoveRequest {
        anchor: anchor.clone(),
        container: sales.clone(),
    }))
    .await
    .unwrap();
    let moved = &bed.lookup("anchor", &anchor).await[0];
    assert_eq!(moved.container.as_deref(), Some(sales.as_str()));
    assert_eq!(moved.groups, vec![group.clone()]);

    bed.apply(wit::Operation::RemoveMember(member(&group)))
        .await
        .unwrap();
    let again = bed
        .apply(wit::Operation::RemoveMember(member(&group)))
        .await
        .unwrap();
    assert!(again.summary.contains("not a member"), "{}", again.summary);
    assert!(bed.lookup("anchor", &anchor).await[0].groups.is_empty());

    // Attribute changes, a rename, and an expiry moved.
    bed.apply(wit::Operation::Update(wit::AttributeChange {
        anchor: anchor.clone(),
        changes: vec![
            wit::Attribute {
                name: "title".into(),
                value: wit::Value::Text("Senior Engineer".into()),
            },
            wit::Attribute {
                name: "company".into(),
                value: wit::Value::Absent,
            },
            wit::Attribute {
                name: "cn".into(),
                value: wit::Value::Text(format!("Zoe OBrien {run}")),
            },
            wit::Attribute {
                name: "expires-at".into(),
                value: wit::Value::Text("2027-12-31".into()),
            },
        ],
    }))
    .await
    .unwrap();
    let renamed = &bed.lookup("anchor", &anchor).await[0];
    assert_eq!(text(renamed, "title"), Some("Senior Engineer"));
    assert_eq!(text(renamed, "company"), None);
    assert_eq!(text(renamed, "cn"), Some(format!("Zoe OBrien {run}").as_str()));
    assert_eq!(renamed.expires_at.as_deref(), Some("2027-12-31"));

    // Delete, and deleting again is success.
    bed.apply(wit::Operation::Delete(anchor.clone())).await.unwrap();
    assert!(bed.lookup("anchor", &anchor).await.is_empty());
    let again = bed.apply(wit::Operation::Delete(anchor.clone())).await.unwrap();
    assert!(again.summary.contains("already gone"), "{}", again.summary);
}

#[tokio::test]
async fn active_directory_errors_map_to_retry_classes() {
    let mut bed = samba("").await;
    let (run, base) = (bed.run.clone(), bed.base.clone());
    let ou = format!("OU=Err-{run},OU=People,{base}");
    bed.add(&ou, vec![("objectClass", HashSet::from(["organizationalUnit"]))])
        .await;
    let sam = format!("dup{run}");
    let one = |cn: &str, sam: &str, employee: &str| {
        desired(
            attrs(&[
                ("cn", cn),
                ("sAMAccountName", sam),
                ("sn", "Dup"),
                ("employeeID", employee),
            ]),
            &ou,
            true,
        )
    };
    bed.apply(wit::Operation::Create(one(&format!("Dup One {run}"), &sam, "D1")))
        .await
        .unwrap();

    // The same sAMAccountName under another CN: AD's 68 becomes a conflict.
    let e = bed
        .apply(wit::Operation::Create(one(&format!("Dup Two {run}"), &sam, "D2")))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::Conflict(m) if m.contains("already exists")),
        "{e:?}"
    );

    // Too long for AD: refused before it is sent, naming the attribute.
    let e = bed
        .apply(wit::Operation::Create(one(
            &format!("Long {run}"),
            "a-name-longer-than-20",
            "D3",
        )))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::InvalidInput(i) if i.field == "sAMAccountName"),
        "{e:?}"
    );

    // A value the server refuses (Samba: 21 invalidAttributeSyntax for employeeID's 16-character
    // limit): invalid-input naming the attribute the server names.
    let e = bed
        .apply(wit::Operation::Create(one(
            &format!("Long Id {run}"),
            &format!("lid{run}"),
            "an-employee-id-longer-than-sixteen",
        )))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::InvalidInput(i) if i.field == "employeeID" && i.reason.contains("LDAP 2")),
        "{e:?}"
    );

    // A group that does not exist, an unknown anchor, a container that does not exist.
    let anchor = bed.lookup("sAMAccountName", &sam).await[0].anchor.clone();
    let e = bed
        .apply(wit::Operation::AddMember(wit::MemberChange {
            anchor: anchor.clone(),
            group: format!("No-Such-{run}"),
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::NotFound(m) if m.contains("No-Such")),
        "{e:?}"
    );
    let e = bed
        .apply(wit::Operation::Disable(
            "00000000-0000-0000-0000-000000000000".into(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(e, PluginError::NotFound(_)), "{e:?}");
    let e = bed
        .apply(wit::Operation::Move(wit::MoveRequest {
            anchor,
            container: format!("OU=Nowhere-{run},{base}"),
        }))
        .await
        .unwrap_err();
    assert!(matches!(e, PluginError::NotFound(_)), "{e:?}");
}

/// OpenLDAP with the `ldap` profile: inetOrgPerson, groupOfNames, entryUUID, ppolicy lock.
#[tokio::test]
async fn ldap_profile_on_openldap() {
    let env = testbeds::start("openldap.sh");
    let base = env["TENURE_TEST_LDAP_BASE"].clone();
    let run = testbeds::run_id();
    let config = testbeds::fill(
        &format!(
            r#"
[connections.directory]
kind = "ldap"
url = "$TENURE_TEST_LDAPS_URL"
bind_dn = "$TENURE_TEST_LDAP_BIND_DN"
password = "$TENURE_TEST_LDAP_PASSWORD"
ca_file = "$TENURE_TEST_LDAP_CA"

[plugins.directory.grants]
ldap = ["directory"]

[plugins.directory.settings]
profile = "ldap"
base_dn = "{base}"
users_container = "ou=People,{base}"
groups_base = "ou=Groups,{base}"
"#
        ),
        &env,
    );
    let admin = admin_connection(
        &env["TENURE_TEST_LDAPS_URL"],
        &env["TENURE_TEST_LDAP_CA"],
        &env["TENURE_TEST_LDAP_BIND_DN"],
        &env["TENURE_TEST_LDAP_PASSWORD"],
    )
    .await;
    let admin_dn = env["TENURE_TEST_LDAP_BIND_DN"].clone();
    let mut bed = bed(config, env, admin, run.clone(), base.clone());
    let group = format!("staff-{run}");
    let group_dn = format!("cn={group},ou=Groups,{base}");
    // groupOfNames needs a member from the start.
    bed.add(
        &group_dn,
        vec![
            ("objectClass", HashSet::from(["groupOfNames"])),
            ("member", HashSet::from([admin_dn.as_str()])),
        ],
    )
    .await;

    let number = format!("N{run}");
    let created = bed
        .apply(wit::Operation::Create(desired(
            attrs(&[
                ("uid", &format!("kim{run}")),
                ("givenName", "Kim"),
                ("sn", "Lee"),
                ("displayName", &format!("Kim Lee {run}")),
                ("mail", &format!("kim.{run}@example.test")),
                ("employeeNumber", &number),
            ]),
            &format!("ou=People,{base}"),
            false,
        )))
        .await
        .expect("create");
    let anchor = created.anchor.expect("entryUUID anchor");
    let found = bed.lookup("employeeNumber", &number).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].anchor, anchor);
    assert!(!found[0].enabled, "created locked (pre-hire)");
    let dn = format!("CN=Kim Lee {run},ou=People,{base}");
    assert!(
        bed.passwords.for_dn(&dn).is_some(),
        "userPassword generated by the host"
    );

    bed.apply(wit::Operation::Enable(anchor.clone())).await.unwrap();
    assert!(bed.lookup("anchor", &anchor).await[0].enabled);
    bed.apply(wit::Operation::AddMember(wit::MemberChange {
        anchor: anchor.clone(),
        group: group.clone(),
    }))
    .await
    .unwrap();
    assert_eq!(bed.lookup("anchor", &anchor).await[0].groups, vec![group.clone()]);
    bed.apply(wit::Operation::Move(wit::MoveRequest {
        anchor: anchor.clone(),
        container: format!("ou=Leavers,{base}"),
    }))
    .await
    .unwrap();
    bed.apply(wit::Operation::Disable(anchor.clone())).await.unwrap();
    let moved = &bed.lookup("anchor", &anchor).await[0];
    assert_eq!(
        moved.container.as_deref(),
        Some(format!("ou=Leavers,{base}").as_str())
    );
    assert!(!moved.enabled);
    assert_eq!(
        bed.first(
            &format!("cn=Kim Lee {run},ou=Leavers,{base}"),
            "pwdAccountLockedTime"
        )
        .await
        .as_deref(),
        Some("000001010000Z")
    );
    bed.apply(wit::Operation::RemoveMember(wit::MemberChange {
        anchor: anchor.clone(),
        group: group.clone(),
    }))
    .await
    .unwrap();
    bed.apply(wit::Operation::Delete(anchor.clone())).await.unwrap();
    assert!(bed.lookup("anchor", &anchor).await.is_empty());
}
