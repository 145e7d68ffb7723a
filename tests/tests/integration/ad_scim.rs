//! End to end through the pipeline with `examples/ad-scim` as the README documents
//! it: a signed Lever hire (the fake Lever API enriches it) -> rules -> an account
//! in a real Samba AD (right OU, groups, password set, enabled) and a user in a real
//! SCIM server (groups); a department change -> OU move and group swap in both; a
//! termination -> disabled in both and out of every group in one job, then deleted
//! in both once the grace period has passed.

use super::directory::{admin_connection, admin_connection_raw};
use ldap3::{Scope, SearchEntry};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_store::prelude::*;
use tenure_tests::example;
use tenure_tests::fake_lever::{self, HIRED_CONTACT, HIRED_OPPORTUNITY};
use tenure_tests::host::{HostSpec, TENANT, TestHost};
use tenure_tests::testbeds::{self, ScimTenant};

const HIRED_TOKEN: &str = "e2e-hired-signature-token";
const OTHER_TOKEN: &str = "e2e-other-signature-token";

/// An admin connection to the domain, to set up and check with.
struct Ad {
    admin: ldap3::Ldap,
}

impl Ad {
    async fn entry(&mut self, filter: &str) -> Option<(String, HashMap<String, Vec<String>>)> {
        let (entries, _) = self
            .admin
            .search(
                "DC=example,DC=test",
                Scope::Subtree,
                filter,
                vec![
                    "userAccountControl",
                    "memberOf",
                    "pwdLastSet",
                    "department",
                    "sAMAccountName",
                    "title",
                ],
            )
            .await
            .unwrap()
            .success()
            .unwrap();
        entries.into_iter().map(SearchEntry::construct).next().map(|e| {
            let attrs = e.attrs.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect();
            (e.dn, attrs)
        })
    }
}

/// Shane's canonical record as the HR feed would send it.
fn hr_event(kind: &str, record: &str, department: &str, status: &str) -> Value {
    json!({
        "kind": kind, "source": "lever", "source_record_id": record,
        "person": {
            "ids": [{"source": "lever", "id": HIRED_CONTACT}],
            "given_name": "Shane Q", "family_name": "Smith", "department": department, "status": status,
            "title": "Back End Software Engineer",
            "emails": [{"value": "shane@example.test", "primary": true}]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lever_hire_to_ad_and_scim_then_move_then_leave_then_delete() {
    let ad_env = testbeds::start("samba-ad.sh");
    let lever = fake_lever::start().await;
    let run = testbeds::run_id();
    let base = ad_env["TENURE_TEST_AD_BASE"].clone();
    let users = format!("OU=People-{run},{base}");
    let groups = format!("OU=Groups-{run},{base}");
    let mut ad = Ad {
        admin: admin_connection(
            &ad_env["TENURE_TEST_AD_URL"],
            &ad_env["TENURE_TEST_AD_CA"],
            &ad_env["TENURE_TEST_AD_BIND_DN"],
            &ad_env["TENURE_TEST_AD_PASSWORD"],
        )
        .await,
    };
    // A person from an earlier, interrupted run would be an unmanaged match: remove it.
    while let Some((dn, _)) = ad.entry(&format!("(employeeNumber={HIRED_CONTACT})")).await {
        ad.admin.delete(&dn).await.unwrap().success().unwrap();
    }
    let ou = HashSet::from(["organizationalUnit"]);
    for dn in [users.clone(), groups.clone()]
        .into_iter()
        .chain(["Engineering", "Sales", "Staff", "Leavers"].map(|o| format!("OU={o},{users}")))
    {
        ad.admin
            .add(&dn, vec![("objectClass", ou.clone())])
            .await
            .unwrap()
            .success()
            .unwrap();
    }
    for g in ["Engineering", "Sales", "All-Staff", "Contractors"] {
        let sam = format!("{g}-{run}");
        ad.admin
            .add(
                &format!("CN={g},{groups}"),
                vec![
                    ("objectClass", HashSet::from(["group"])),
                    ("sAMAccountName", HashSet::from([sam.as_str()])),
                ],
            )
            .await
            .unwrap()
            .success()
            .unwrap();
    }
    let scim = ScimTenant::start("e2e");
    for g in ["Engineering", "Sales", "All-Staff"] {
        scim.group(g).await;
    }

    let vars: HashMap<String, String> = [
        ("TENURE_IT_TOKEN", "unused-in-this-test-0123456789".to_string()),
        ("LEVER_API_URL", format!("http://{}/v1", lever.addr)),
        ("LEVER_API_KEY", fake_lever::API_KEY.to_string()),
        ("LEVER_HIRED_TOKEN", HIRED_TOKEN.to_string()),
        ("LEVER_WEBHOOK_TOKEN", OTHER_TOKEN.to_string()),
        ("TENURE_AD_URL", ad_env["TENURE_TEST_AD_URL"].clone()),
        ("TENURE_AD_BIND_DN", ad_env["TENURE_TEST_AD_BIND_DN"].clone()),
        ("TENURE_AD_PASSWORD", ad_env["TENURE_TEST_AD_PASSWORD"].clone()),
        ("TENURE_AD_CA_FILE", ad_env["TENURE_TEST_AD_CA"].clone()),
        ("TENURE_AD_BASE_DN", base.clone()),
        ("TENURE_AD_USERS", users.clone()),
        ("TENURE_AD_GROUPS", groups.clone()),
        ("TENURE_SCIM_URL", scim.url.clone()),
        ("TENURE_SCIM_TOKEN", scim.token.clone()),
        ("TENURE_DELETE_AFTER", "8s".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (tenant, pipeline) = example::load("ad-scim", "acme", &vars);
    let host = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            poll_ms: 20,
            backoff_base_ms: 100,
            ..QueueConfig::default()
        },
        plugins: vec!["rules", "lever", "directory", "scim"],
    })
    .await;

    // 1. The signed hire.
    let token = format!("e2e-delivery-{run}");
    let data = json!({ "opportunityId": HIRED_OPPORTUNITY, "candidateId": HIRED_OPPORTUNITY,
        "contactId": "ignored" });
    let delivery = fake_lever::delivery("candidateHired", HIRED_TOKEN, &token, fake_lever::now_ms(), data);
    let (status, body) = host.post_lever_delivery(&delivery).await;
    assert_eq!(status, 200, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    let person = format!("lever:{HIRED_CONTACT}");
    let dead: Vec<Value> = host
        .audit(Some(&person))
        .await
        .into_iter()
        .filter(|e| e["kind"] == "op.failed")
        .collect();
    assert!(dead.is_empty(), "{dead:?}");

    let filter = format!("(employeeNumber={HIRED_CONTACT})");
    let (dn, attrs) = ad.entry(&filter).await.expect("an AD account for the hire");
    assert_eq!(dn, format!("CN=Shane Q Smith,OU=Engineering,{users}"));
    // Enabled, with a password (AD refuses 512 without one) that must be changed at first sign-in.
    assert_eq!(attrs["useraccountcontrol"], ["512"]);
    assert_eq!(attrs["pwdlastset"], ["0"]);
    assert_eq!(attrs["samaccountname"], ["shaneq.smith"]);
    assert_eq!(attrs["memberof"], [format!("CN=Engineering,{groups}")]);
    // The initial password, kept in the vault: revealed once to IT, then gone.
    let reveal = json!({ "dn": dn });
    let (status, body) = host.post("/api/v1/initial-passwords/reveal", &reveal).await;
    assert_eq!(status, 200, "{body}");
    let password = body["password"].as_str().unwrap().to_string();
    assert!(password.len() >= 20);
    let (status, _) = host.post("/api/v1/initial-passwords/reveal", &reveal).await;
    assert_eq!(status, 404, "revealed only once");
    // It is the account's password: a bind is refused only because it must be changed first (AD's 773).
    let mut person_bind =
        admin_connection_raw(&ad_env["TENURE_TEST_AD_URL"], &ad_env["TENURE_TEST_AD_CA"]).await;
    let bind = person_bind.simple_bind(&dn, &password).await.unwrap();
    assert!(
        bind.rc == 0 || bind.text.contains("data 773"),
        "{}: {}",
        bind.rc,
        bind.text
    );
    let wrong = person_bind.simple_bind(&dn, "Not-The-Password-1").await.unwrap();
    assert!(
        wrong.rc == 49 && !wrong.text.contains("data 773"),
        "{}: {}",
        wrong.rc,
        wrong.text
    );
    let (status, list) = scim
        .get("/Users?filter=userName%20eq%20%22shane%40example.test%22")
        .await;
    assert_eq!(status, 200);
    let user = list["Resources"][0].clone();
    let id = user["id"].as_str().expect("a SCIM user for the hire").to_string();
    assert_eq!(user["externalId"], HIRED_CONTACT);
    assert_eq!(user["active"], true);
    assert_eq!(scim.groups_of(&id).await, ["Engineering"]);

    // 2. A department change: OU move and group swap in both.
    let (status, body) = host
        .post_event(
            &hr_event("mover", "move-1", "Sales", "active"),
            &format!("move-{run}"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    let (dn, attrs) = ad.entry(&filter).await.unwrap();
    assert_eq!(dn, format!("CN=Shane Q Smith,OU=Sales,{users}"));
    assert_eq!(attrs["memberof"], [format!("CN=Sales,{groups}")]);
    assert_eq!(attrs["department"], ["Sales"]);
    assert_eq!(attrs["samaccountname"], ["shaneq.smith"], "the name stays");
    assert_eq!(scim.groups_of(&id).await, ["Sales"]);

    // 3. The termination: disabled in both and out of every group, in one job.
    let (status, body) = host
        .post_event(
            &hr_event("leaver", "leave-1", "Sales", "terminated"),
            &format!("leave-{run}"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    let (dn, attrs) = ad.entry(&filter).await.expect("kept through the grace period");
    assert_eq!(dn, format!("CN=Shane Q Smith,OU=Leavers,{users}"));
    assert_eq!(attrs["useraccountcontrol"], ["514"]);
    assert!(!attrs.contains_key("memberof"), "{attrs:?}");
    let (_, user) = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(user["active"], false);
    assert!(scim.groups_of(&id).await.is_empty());
    let audit = host.audit(Some(&person)).await;
    let leaver_job = audit
        .iter()
        .filter(|e| e["kind"] == "op.applied" && e["data"]["op"] == "disable")
        .map(|e| e["job_id"].clone())
        .collect::<Vec<_>>();
    assert_eq!(leaver_job.len(), 2, "disabled in both");
    assert_eq!(leaver_job[0], leaver_job[1], "in one job");

    // 4. The grace period passes: deleted in both.
    let started = std::time::Instant::now();
    while !host
        .store
        .scheduled_actions(TENANT, true)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the deletions never ran"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    host.wait_idle(Duration::from_secs(60)).await;
    let done = host.store.scheduled_actions(TENANT, false).await.unwrap();
    assert_eq!(
        done.iter()
            .filter(|a| a.state == tenure_store::ActionState::Done)
            .count(),
        2,
        "{done:?}"
    );
    let deletes: Vec<Value> = host
        .audit(Some(&person))
        .await
        .into_iter()
        .filter(|e| {
            e["data"]["op"] == "delete" || e["kind"].as_str().is_some_and(|k| k.starts_with("deprovision"))
        })
        .collect();
    assert!(ad.entry(&filter).await.is_none(), "deleted from AD: {deletes:#?}");
    let (status, _) = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(status, 404, "deleted from the SCIM app");
}

/// The rule set of the conflicts test: AD and the SCIM app, containers relative.
const CONFLICT_RULES: &str = r#"
destinations:
  ad:
    attributes:
      employeeNumber: { from: id, required: true }
      givenName: { from: given_name }
      sn: { from: family_name, required: true }
      title: { from: title }
    unique:
      sAMAccountName:
        candidates:
          - '${ToLower(person.given_name + "." + person.family_name)}'
          - '${ToLower(Left(person.given_name, 1) + "." + person.family_name)}'
    defaults: { container: OU=Staff }
  app:
    attributes:
      userName: { from: email, required: true }
      externalId: { from: id, required: true }
      title: { from: title }
"#;

fn person_event(id: &str, given: &str, family: &str, title: &str) -> Value {
    json!({
        "kind": "joiner", "source": "hr", "source_record_id": format!("hire-{id}"),
        "person": { "ids": [{"source": "hr", "id": id}], "given_name": given, "family_name": family,
            "title": title,
                    "emails": [{"value": format!("{}@example.test", given.to_lowercase()), "primary": true}] }
    })
}

struct Servers {
    ad: Ad,
    ad_env: HashMap<String, String>,
    users: String,
    scim: ScimTenant,
}

impl Servers {
    async fn start(run: &str) -> Servers {
        let ad_env = testbeds::start("samba-ad.sh");
        let base = ad_env["TENURE_TEST_AD_BASE"].clone();
        let users = format!("OU=Conflicts-{run},{base}");
        let mut ad = Ad {
            admin: admin_connection(
                &ad_env["TENURE_TEST_AD_URL"],
                &ad_env["TENURE_TEST_AD_CA"],
                &ad_env["TENURE_TEST_AD_BIND_DN"],
                &ad_env["TENURE_TEST_AD_PASSWORD"],
            )
            .await,
        };
        for dn in [users.clone(), format!("OU=Staff,{users}")] {
            let ou = HashSet::from(["organizationalUnit"]);
            ad.admin
                .add(&dn, vec![("objectClass", ou)])
                .await
                .unwrap()
                .success()
                .unwrap();
        }
        Servers {
            ad,
            users,
            scim: ScimTenant::start("conflicts"),
            ad_env,
        }
    }

    /// An account made outside Tenure.
    async fn unmanaged_ad(&mut self, cn: &str, sam: &str, employee_number: &str) -> String {
        let dn = format!("CN={cn},OU=Staff,{}", self.users);
        self.ad
            .admin
            .add(
                &dn,
                vec![
                    ("objectClass", HashSet::from(["user"])),
                    ("sAMAccountName", HashSet::from([sam])),
                    ("employeeNumber", HashSet::from([employee_number])),
                    ("sn", HashSet::from(["Existing"])),
                ],
            )
            .await
            .unwrap()
            .success()
            .unwrap_or_else(|e| panic!("add {dn}: {e}"));
        dn
    }

    async fn unmanaged_scim(&self, user_name: &str, external_id: &str) -> String {
        let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name,
                          "externalId": external_id});
        self.scim.create("/Users", user).await
    }

    async fn host(&self, ad_policy: &str, app_policy: &str) -> TestHost {
        let tenant = tenure_tests::host::tenant_toml(&testbeds::fill(
            &format!(
                r#"
[connections.directory]
kind = "ldap"
url = "$TENURE_TEST_AD_URL"
bind_dn = "$TENURE_TEST_AD_BIND_DN"
password = "$TENURE_TEST_AD_PASSWORD"
ca_file = "$TENURE_TEST_AD_CA"
[connections.scim]
kind = "http"
allow_private_network = true
url = "{}"
auth = {{ type = "bearer", token = "{}" }}
[plugins.rules]
rule_set = '''{CONFLICT_RULES}'''
[plugins.directory.grants]
ldap = ["directory"]
[plugins.directory.settings]
base_dn = "$TENURE_TEST_AD_BASE"
users_container = "{}"
groups_base = "{}"
containers = "relative"
attributes = "sAMAccountName,employeeNumber,givenName,sn,title"
[plugins.scim.grants]
http = ["scim"]
"#,
                self.scim.url, self.scim.token, self.users, self.users
            ),
            &self.ad_env,
        ));
        let pipeline = tenure_tests::host::pipeline_toml(&format!(
            r#"
rules = "rules"
[[destinations]]
name = "ad"
connector = "directory"
matching = ["employeeNumber"]
conflict = "{ad_policy}"
[[destinations]]
name = "app"
connector = "scim"
matching = ["externalId", "userName"]
conflict = "{app_policy}"
"#
        ));
        TestHost::start(HostSpec {
            tenant,
            pipeline,
            queue: QueueConfig {
                poll_ms: 20,
                backoff_base_ms: 100,
                ..QueueConfig::default()
            },
            plugins: vec!["rules", "directory", "scim"],
        })
        .await
    }
}

/// Accounts that already exist in the real servers, for each conflict policy: merge
/// (one unmanaged match is taken over), alert (held until a person decides, then
/// merged by that decision), skip (left alone), two candidates for one person
/// (always held), and a name already taken by someone else's unmanaged account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_accounts_in_ad_and_scim_under_each_conflict_policy() {
    let run = testbeds::run_id();
    let mut s = Servers::start(&run).await;
    let (merge_id, twin_id, name_id) = (format!("m{run}"), format!("t{run}"), format!("n{run}"));
    let merge_dn = s
        .unmanaged_ad(&format!("Mia Existing {run}"), &format!("mia{run}"), &merge_id)
        .await;
    s.unmanaged_ad(&format!("Twin One {run}"), &format!("t1{run}"), &twin_id)
        .await;
    s.unmanaged_ad(&format!("Twin Two {run}"), &format!("t2{run}"), &twin_id)
        .await;
    // Someone else already holds the name the convention gives first.
    let taken = format!("pat.lee{run}");
    s.unmanaged_ad(&format!("Other Pat {run}"), &taken, "someone-else")
        .await;
    let scim_existing = s
        .unmanaged_scim(&format!("mia{run}@example.test"), &merge_id)
        .await;

    let host = s.host("merge", "alert").await;
    let mia = person_event(&merge_id, &format!("Mia{run}"), "Existing", "Analyst");
    host.post_event(&mia, &format!("mia-{run}")).await;
    let twin = person_event(&twin_id, &format!("Twin{run}"), "Person", "Analyst");
    host.post_event(&twin, &format!("twin-{run}")).await;
    let pat = person_event(&name_id, "Pat", &format!("Lee{run}"), "Analyst");
    host.post_event(&pat, &format!("pat-{run}")).await;
    host.wait_idle(Duration::from_secs(60)).await;

    // merge: the one unmanaged AD account is linked and brought in line.
    let mia_key = format!("hr:{merge_id}");
    let kinds: Vec<String> = host
        .audit(Some(&mia_key))
        .await
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["kind"].as_str().unwrap_or(""),
                e["destination"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(kinds.contains(&"link.merged/ad".to_string()), "{kinds:?}");
    let (dn, attrs) = s.ad.entry(&format!("(employeeNumber={merge_id})")).await.unwrap();
    assert_eq!(dn, merge_dn, "the existing account, not a new one");
    assert_eq!(attrs["title"], ["Analyst"], "taken over and updated");
    assert_eq!(
        attrs["samaccountname"],
        [format!("mia{run}")],
        "its login name kept: {kinds:?}"
    );
    assert!(kinds.contains(&"name.kept/ad".to_string()), "{kinds:?}");
    // alert: the SCIM match waits for a person; two AD candidates wait whatever the policy.
    let conflicts = host.get("/api/v1/conflicts").await;
    let conflicts = conflicts.as_array().unwrap();
    let find = |person: &str, dest: &str| {
        conflicts
            .iter()
            .find(|c| c["person_key"] == person && c["destination"] == dest)
            .cloned()
            .unwrap_or_else(|| panic!("no conflict for {person} in {dest}: {conflicts:?}"))
    };
    let app = find(&mia_key, "app");
    assert_eq!(app["kind"], "unmanaged");
    assert_eq!(app["candidates"], json!([scim_existing]));
    let twins = find(&format!("hr:{twin_id}"), "ad");
    assert_eq!(twins["kind"], "ambiguous");
    assert_eq!(twins["candidates"].as_array().unwrap().len(), 2);
    // The name: the first candidate is someone else's, so the second is taken.
    let (_, attrs) =
        s.ad.entry(&format!("(employeeNumber={name_id})"))
            .await
            .expect("Pat's account");
    assert_eq!(attrs["samaccountname"], [format!("p.lee{run}")]);

    // A person decides: merge the SCIM account, skip AD for the twin.
    let id = app["id"].as_i64().unwrap();
    let (status, body) = host
        .post(
            &format!("/api/v1/conflicts/{id}/resolve"),
            &json!({"decision": "merge", "anchor": scim_existing}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = twins["id"].as_i64().unwrap();
    let (status, body) = host
        .post(
            &format!("/api/v1/conflicts/{id}/resolve"),
            &json!({"decision": "skip"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    let (_, user) = s.scim.get(&format!("/Users/{scim_existing}")).await;
    assert_eq!(
        user["title"], "Analyst",
        "the existing SCIM user was taken over and updated"
    );
    let users: Value = s.scim.get("/Users").await.1;
    assert_eq!(
        users["totalResults"], 3,
        "Mia's, the twin's and Pat's: no duplicate for Mia"
    );
    drop(host);

    // skip: an unmanaged match is left exactly as it is.
    let skip_id = format!("s{run}");
    let skip_dn = s
        .unmanaged_ad(&format!("Sam Skip {run}"), &format!("sam{run}"), &skip_id)
        .await;
    let host = s.host("skip", "skip").await;
    host.post_event(
        &person_event(&skip_id, &format!("Sam{run}"), "Skip", "Boss"),
        &format!("skip-{run}"),
    )
    .await;
    host.wait_idle(Duration::from_secs(60)).await;
    let skipped: Vec<Value> = host
        .audit(Some(&format!("hr:{skip_id}")))
        .await
        .into_iter()
        .filter(|e| e["kind"] == "destination.skipped")
        .collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    let (_, attrs) = s.ad.entry(&format!("(employeeNumber={skip_id})")).await.unwrap();
    assert!(!attrs.contains_key("title"), "left as it was: {attrs:?}");
    assert!(
        s.ad.entry(&format!("(distinguishedName={skip_dn})"))
            .await
            .is_some()
    );
}
