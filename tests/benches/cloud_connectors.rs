//! The cloud-directory connectors (`entra`, `google`, `okta`) against their stateful fakes
//! (`fake_graph`, `fake_google`, `fake_okta`), in one process: each plugin's overhead against a native client
//! sending the same requests, and a reconciliation of a whole tenant.
//!
//! Run: `plugins/build.sh && cargo bench -p tenure-tests --bench cloud_connectors`
//! (`BENCH_RUNS`, default 5; `BENCH_USERS`, default 200 users per side and run;
//! `BENCH_PEOPLE`, default 10,000 people for the reconciliation; `BENCH_ONLY=entra|google|okta`;
//! `BENCH_LATENCIES`, default `0,2`: the fake's answer delays in milliseconds).
//!
//! - **Overhead.** One unit of work is a user's life: create (enabled), look up (the user,
//!   its groups, for Okta its apps, for Entra its manager and licences), change the department,
//!   disable, delete: five operations; seven round trips for Entra (a lookup's manager, groups
//!   and licences go in one JSON batch; a disable also revokes the sessions), seven for Google
//!   (its arrays are replaced whole, so an update reads first) and eleven for Okta
//!   (activation after a staged create, a status read before each lifecycle move, deactivate
//!   before delete). In each run the plugin and a native client (reqwest, same requests,
//!   same credential kind) take turns user by user, each going first every other user, so
//!   both meet the same state of the machine and the fake (whole rounds one after the other
//!   let a noisy neighbour or a busy moment land on one side: per-run ratios spread
//!   1.04-1.54 that way, 1.29-1.34 interleaved). The figure is operations per second for
//!   each and the plugin's time over the native time in the same
//!   run (target: overhead at most 20 %), and each side's CPU per operation (the whole
//!   process's, the fake's share included: the difference is the plugin's own cost, which wall
//!   time blurs when threads park and wake between requests). Twice: with the fake answering
//!   at once (the plugin's fixed cost laid bare) and after 2 ms (still far quicker than a cloud API's tens to
//!   hundreds of milliseconds). Prism is not in front here: it would add the same Node.js cost
//!   to both sides.
//! - **Reconciliation.** `BENCH_PEOPLE` hires go through the pipeline into the fake (each a
//!   user with a group); then each run times a dry-run reconciliation of everyone (target
//!   < 60 s). Neither API offers a batch read of users by id, so each person costs a user
//!   read plus a group read (and for Okta an app-link read).
//!
//! Printed: min / median / max over the runs, and the load average at the start.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenure_pipeline::QueueConfig;
use tenure_plugin_test::Harness;
use tenure_runtime::wit;
use tenure_tests::bench_stats::{Spread, env_usize, load_average, process_cpu_seconds};
use tenure_tests::fake_google::{API, FakeGoogle};
use tenure_tests::fake_graph::FakeGraph;
use tenure_tests::fake_okta::{self, FakeOkta};
use tenure_tests::host::{HostSpec, SOURCE_TOKEN, TestHost, joiner, pipeline_toml, tenant_toml};

/// The same allocator as the `tenure` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RSA_KEY: &str = include_str!("../../host/capabilities/testdata/rsa-test-key.pem");

/// Which cloud directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vendor {
    Entra,
    Google,
    Okta,
}

/// A running fake of one vendor.
enum Fake {
    Entra(FakeGraph),
    Google(FakeGoogle),
    Okta(FakeOkta),
}

impl Vendor {
    fn plugin(self) -> &'static str {
        match self {
            Vendor::Entra => "entra",
            Vendor::Google => "google",
            Vendor::Okta => "okta",
        }
    }

    fn requests_per_life(self) -> usize {
        match self {
            Vendor::Entra => 7,
            Vendor::Google => 7,
            Vendor::Okta => 11,
        }
    }

    async fn fake(self) -> Fake {
        let signer = tenure_capabilities::oauth::jwt::Signer::from_pem(RSA_KEY).expect("key");
        match self {
            Vendor::Entra => Fake::Entra(FakeGraph::start(signer.public_key(), "").await),
            Vendor::Google => Fake::Google(FakeGoogle::start(signer.public_key()).await),
            Vendor::Okta => Fake::Okta(FakeOkta::start(signer.public_key()).await),
        }
    }

    /// Rule-set attributes for a user of this vendor.
    fn desired(self, user: &str) -> wit::DesiredAccount {
        let email = format!("{user}@example.test");
        let pairs: Vec<(&str, &str)> = match self {
            Vendor::Entra => vec![
                ("userPrincipalName", &email),
                ("displayName", "Bench User"),
                ("mailNickname", user),
                ("employeeId", user),
                ("department", "Engineering"),
            ],
            Vendor::Google => vec![
                ("primaryEmail", &email),
                ("givenName", "Bench"),
                ("familyName", user),
                ("employeeId", user),
                ("department", "Engineering"),
            ],
            Vendor::Okta => vec![
                ("login", &email),
                ("email", &email),
                ("firstName", "Bench"),
                ("lastName", user),
                ("employeeNumber", user),
                ("department", "Engineering"),
            ],
        };
        wit::DesiredAccount {
            destination: self.plugin().into(),
            attributes: pairs.iter().map(|(n, v)| text(n, v)).collect(),
            container: (self == Vendor::Google).then(|| "/".to_string()),
            groups: vec![],
            licenses: vec![],
            app_assignments: vec![],
            enabled: true,
            expires_at: None,
            tickets: vec![],
        }
    }

    fn key(self, user: &str) -> wit::MatchKey {
        wit::MatchKey {
            attribute: match self {
                Vendor::Entra => "userPrincipalName",
                Vendor::Google => "primaryEmail",
                Vendor::Okta => "login",
            }
            .into(),
            value: format!("{user}@example.test"),
        }
    }
}

impl Fake {
    fn url(&self) -> &str {
        match self {
            Fake::Entra(f) => &f.url,
            Fake::Google(f) => &f.url,
            Fake::Okta(f) => &f.url,
        }
    }

    fn set_latency(&self, d: Duration) {
        match self {
            Fake::Entra(f) => f.set_latency(d),
            Fake::Google(f) => f.set_latency(d),
            Fake::Okta(f) => f.set_latency(d),
        }
    }

    fn users(&self) -> usize {
        match self {
            Fake::Entra(f) => f.state().users.len(),
            Fake::Google(f) => f.state().users.len(),
            Fake::Okta(f) => f.state().users.len(),
        }
    }

    /// The tenant's connection and grant for the plugin.
    fn connection(&self) -> String {
        match self {
            Fake::Entra(f) => {
                let key = RSA_KEY.replace('\n', "\\n");
                format!(
                    "[connections.graph]\nkind = \"http\"\nallow_private_network = true\nurl = \"{0}/v1.0\"\n\
                     auth = {{ type = \"oauth2-jwt\", token_url = \"{0}/bench/oauth2/v2.0/token\", \
                     client_id = \"bench-app\", scopes = [\"https://graph.microsoft.com/.default\"], \
                     private_key = \"{key}\" }}\n[plugins.entra.grants]\nhttp = [\"graph\"]\n",
                    f.url
                )
            }
            Fake::Google(f) => {
                let key_file = json!({
                    "type": "service_account", "private_key_id": "k-1", "private_key": RSA_KEY,
                    "client_email": "tenure@bench.iam.gserviceaccount.com",
                    "token_uri": format!("{}/token", f.url),
                });
                format!(
                    "[connections.google]\nkind = \"http\"\nallow_private_network = true\nurl = \"{}{API}\"\n\
                     auth = {{ type = \"google-service-account\", subject = \"admin@example.test\", \
                     key = '''{key_file}''', \
                     scopes = [\"https://www.googleapis.com/auth/admin.directory.user\"] }}\n\
                     [plugins.google.grants]\nhttp = [\"google\"]\n",
                    f.url
                )
            }
            Fake::Okta(f) => format!(
                "[connections.okta]\nkind = \"http\"\nallow_private_network = true\nurl = \"{}\"\n\
                 auth = {{ type = \"ssws\", token = \"{}\" }}\n[plugins.okta.grants]\nhttp = [\"okta\"]\n",
                f.url,
                fake_okta::API_TOKEN
            ),
        }
    }
}

fn text(name: &str, value: &str) -> wit::Attribute {
    wit::Attribute {
        name: name.into(),
        value: wit::Value::Text(value.into()),
    }
}

/// One user's life through the plugin.
async fn plugin_life(vendor: Vendor, plugin: &tenure_runtime::PluginHandle, user: &str) {
    let id = plugin
        .apply(&wit::Operation::Create(vendor.desired(user)))
        .await
        .expect("create")
        .anchor
        .expect("id");
    assert_eq!(plugin.lookup(&[vendor.key(user)]).await.expect("lookup").len(), 1);
    let change = wit::AttributeChange {
        anchor: id.clone(),
        changes: vec![text("department", "Sales")],
    };
    plugin
        .apply(&wit::Operation::Update(change))
        .await
        .expect("update");
    plugin
        .apply(&wit::Operation::Disable(id.clone()))
        .await
        .expect("disable");
    plugin.apply(&wit::Operation::Delete(id)).await.expect("delete");
}

/// One round's wall time and the CPU time the whole process spent in it (the fake's share
/// is the same for both sides, so the difference is what one side costs more).
#[derive(Debug, Clone, Copy, Default)]
struct Round {
    wall: Duration,
    cpu_seconds: f64,
}

impl std::ops::AddAssign for Round {
    fn add_assign(&mut self, other: Round) {
        self.wall += other.wall;
        self.cpu_seconds += other.cpu_seconds;
    }
}

/// Times `work` to its end on the wall and process CPU clocks.
async fn timed(work: impl std::future::Future<Output = ()>) -> Round {
    let (wall, cpu_seconds) = (Instant::now(), process_cpu_seconds());
    work.await;
    Round {
        wall: wall.elapsed(),
        cpu_seconds: process_cpu_seconds() - cpu_seconds,
    }
}

/// One request from the native client; its JSON answer (null when empty).
async fn send(req: reqwest::RequestBuilder) -> Value {
    let resp = req.send().await.expect("request");
    assert!(resp.status().is_success(), "{}", resp.status());
    let body = resp.bytes().await.expect("body");
    serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null)
}

/// The same requests for one user's life as the plugin sends, by reqwest.
async fn native_life(fake: &Fake, client: &reqwest::Client, auth: &str, user: &str) {
    let call = |method: reqwest::Method, path: String| {
        client
            .request(method, format!("{}{path}", fake.url()))
            .header("authorization", auth)
    };
    use reqwest::Method as M;
    let email = format!("{user}@example.test");
    match fake {
        Fake::Entra(_) => {
            let created = send(call(M::POST, "/v1.0/users".into()).json(&json!({
                "userPrincipalName": email, "displayName": "Bench User", "mailNickname": user,
                "employeeId": user, "department": "Engineering", "accountEnabled": true,
                "passwordProfile":
                    {"forceChangePasswordNextSignIn": true, "password": "Bench-password-1234!"},
            })))
            .await;
            let id = created["id"].as_str().expect("id").to_string();
            let select = "id,accountEnabled,userPrincipalName,displayName,mailNickname,employeeId,department";
            send(call(
                M::GET,
                format!("/v1.0/users/{}?$select={select}", email.replace('@', "%40")),
            ))
            .await;
            let parts = json!({"requests": [
                {"id": "groups", "method": "GET", "url": format!("/users/{id}/memberOf")},
                {"id": "licenses", "method": "GET",
                    "url": format!("/users/{id}/licenseDetails?$select=skuId,skuPartNumber")},
                {"id": "manager", "method": "GET", "url": format!("/users/{id}/manager")},
            ]});
            let answers = send(call(M::POST, "/v1.0/$batch".into()).json(&parts)).await;
            assert_eq!(answers["responses"].as_array().map(Vec::len), Some(3));
            send(call(M::PATCH, format!("/v1.0/users/{id}")).json(&json!({"department": "Sales"}))).await;
            send(call(M::PATCH, format!("/v1.0/users/{id}")).json(&json!({"accountEnabled": false}))).await;
            send(call(M::POST, format!("/v1.0/users/{id}/revokeSignInSessions"))).await;
            send(call(M::DELETE, format!("/v1.0/users/{id}"))).await;
        }
        Fake::Google(_) => {
            let base = API;
            let created = send(call(M::POST, format!("{base}/users")).json(&json!({
                "primaryEmail": email, "name": {"givenName": "Bench", "familyName": user},
                "externalIds": [{"type": "organization", "value": user}],
                "organizations": [{"primary": true, "department": "Engineering"}],
                "orgUnitPath": "/", "suspended": false, "changePasswordAtNextLogin": true,
                "password": "Bench-password-1234!",
            })))
            .await;
            let id = created["id"].as_str().expect("id").to_string();
            send(call(
                M::GET,
                format!("{base}/users/{}", email.replace('@', "%40")),
            ))
            .await;
            send(call(M::GET, format!("{base}/groups?userKey={id}&maxResults=200"))).await;
            let current = send(call(M::GET, format!("{base}/users/{id}"))).await;
            let mut orgs = current["organizations"].clone();
            orgs[0]["department"] = json!("Sales");
            send(call(M::PUT, format!("{base}/users/{id}")).json(&json!({ "organizations": orgs }))).await;
            send(call(M::PUT, format!("{base}/users/{id}")).json(&json!({ "suspended": true }))).await;
            send(call(M::DELETE, format!("{base}/users/{id}"))).await;
        }
        Fake::Okta(_) => {
            let created = send(call(M::POST, "/api/v1/users?activate=false".into()).json(&json!({
                "profile": {"login": email, "email": email, "firstName": "Bench", "lastName": user,
                    "employeeNumber": user, "department": "Engineering"},
                "credentials": {"password": {"value": "Bench-password-1234!"}},
            })))
            .await;
            let id = created["id"].as_str().expect("id").to_string();
            let user_path = format!("/api/v1/users/{id}");
            send(call(
                M::POST,
                format!("{user_path}/lifecycle/activate?sendEmail=false"),
            ))
            .await;
            send(call(
                M::GET,
                format!("/api/v1/users/{}", email.replace('@', "%40")),
            ))
            .await;
            send(call(M::GET, format!("{user_path}/groups"))).await;
            send(call(M::GET, format!("{user_path}/appLinks"))).await;
            send(call(M::POST, user_path.clone()).json(&json!({"profile": {"department": "Sales"}}))).await;
            send(call(M::GET, user_path.clone())).await;
            send(call(M::POST, format!("{user_path}/lifecycle/suspend"))).await;
            send(call(M::GET, user_path.clone())).await;
            send(call(
                M::POST,
                format!("{user_path}/lifecycle/deactivate?sendEmail=false"),
            ))
            .await;
            send(call(M::DELETE, format!("{user_path}?sendEmail=false"))).await;
        }
    }
}

/// Per run: operations per second of each side, the plugin's time over the native time, and
/// each side's CPU microseconds per operation (the whole process: the fake's share included).
async fn overhead(vendor: Vendor, runs: usize, users: usize, latency: Duration) -> [Vec<f64>; 5] {
    let fake = vendor.fake().await;
    fake.set_latency(latency);
    let harness = Harness::new().expect("harness");
    harness
        .load(vendor.plugin())
        .expect("the plugin (run plugins/build.sh)");
    harness.tenant("bench", &fake.connection()).expect("tenant");
    let client = reqwest::Client::new();
    let auth = match &fake {
        Fake::Entra(f) => format!("Bearer {}", f.issue_token()),
        Fake::Google(f) => format!("Bearer {}", f.issue_token()),
        Fake::Okta(_) => format!("SSWS {}", fake_okta::API_TOKEN),
    };
    let plugin = harness
        .runtime()
        .plugin("bench", vendor.plugin())
        .expect("plugin");
    for i in 0..10 {
        plugin_life(vendor, &plugin, &format!("warm-p-{i}")).await;
        native_life(&fake, &client, &auth, &format!("warm-n-{i}")).await;
    }
    let ops = (users * 5) as f64;
    let [
        mut plugin_ops,
        mut native_ops,
        mut ratio,
        mut plugin_cpu,
        mut native_cpu,
    ] = [vec![], vec![], vec![], vec![], vec![]];
    for run in 0..runs {
        // The two sides take turns user by user (each going first every other time), so
        // both meet the same state of the machine and the fake.
        let (mut p, mut n) = (Round::default(), Round::default());
        for i in 0..users {
            let (pu, nu) = (format!("p{run}-{i}"), format!("n{run}-{i}"));
            if i % 2 == 0 {
                p += timed(plugin_life(vendor, &plugin, &pu)).await;
                n += timed(native_life(&fake, &client, &auth, &nu)).await;
            } else {
                n += timed(native_life(&fake, &client, &auth, &nu)).await;
                p += timed(plugin_life(vendor, &plugin, &pu)).await;
            }
        }
        plugin_ops.push(ops / p.wall.as_secs_f64());
        native_ops.push(ops / n.wall.as_secs_f64());
        ratio.push(p.wall.as_secs_f64() / n.wall.as_secs_f64());
        plugin_cpu.push(p.cpu_seconds * 1e6 / ops);
        native_cpu.push(n.cpu_seconds * 1e6 / ops);
    }
    [plugin_ops, native_ops, ratio, plugin_cpu, native_cpu]
}

/// Fills a tenant with `people` hires through the pipeline, then times `runs` reconciliations.
async fn reconciliation(vendor: Vendor, runs: usize, people: usize) -> (Duration, Vec<f64>) {
    let fake = vendor.fake().await;
    let (rules, matching) = match &fake {
        Fake::Entra(f) => {
            f.group("Engineering");
            f.group("Sales");
            (
                "rule eng: department == \"Engineering\" => group:Engineering\n\
                 rule sales: department == \"Sales\" => group:Sales\n\
                 set userPrincipalName = \"{email}\"\nset displayName = \"{given_name} {family_name}\"\n\
                 set mailNickname = \"p{id}\"\nset employeeId = \"{id}\"\n\
                 set department = \"{department}\"\n",
                "[\"employeeId\", \"userPrincipalName\"]",
            )
        }
        Fake::Google(f) => {
            f.group("eng@example.test");
            f.group("sales@example.test");
            (
                "rule eng: department == \"Engineering\" => group:eng@example.test\n\
                 rule sales: department == \"Sales\" => group:sales@example.test\n\
                 set primaryEmail = \"{email}\"\nset givenName = \"{given_name}\"\n\
                 set familyName = \"{family_name}\"\nset employeeId = \"{id}\"\n\
                 set department = \"{department}\"\n",
                "[\"employeeId\", \"primaryEmail\"]",
            )
        }
        Fake::Okta(f) => {
            f.group("Engineering");
            f.group("Sales");
            (
                "rule eng: department == \"Engineering\" => group:Engineering\n\
                 rule sales: department == \"Sales\" => group:Sales\n\
                 set login = \"{email}\"\nset email = \"{email}\"\nset firstName = \"{given_name}\"\n\
                 set lastName = \"{family_name}\"\nset employeeNumber = \"{id}\"\n\
                 set department = \"{department}\"\n",
                "[\"employeeNumber\", \"login\"]",
            )
        }
    };
    let plugin = vendor.plugin();
    let tenant = tenant_toml(&format!(
        "{}\n[plugins.rules-basic]\nrule_set = '''\ndestination {plugin}\n{rules}'''\n",
        fake.connection()
    ));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"{plugin}\"\nconnector = \"{plugin}\"\n\
         matching = {matching}\nguard = {{ max_accounts = 1000000, max_percent = 100.0 }}\n"
    ));
    let host = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            poll_ms: 20,
            ..QueueConfig::default()
        },
        plugins: vec!["rules-basic", plugin],
    })
    .await;
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (c, base, next) = (host.client.clone(), host.base.clone(), next.clone());
        clients.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= people {
                    return;
                }
                let body = joiner(&format!("{i}"), if i % 2 == 0 { "Engineering" } else { "Sales" });
                let r = c
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(SOURCE_TOKEN)
                    .header("Idempotency-Key", format!("fill-{i}"))
                    .json(&body)
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status().as_u16(), 202);
            }
        });
    }
    while clients.join_next().await.is_some() {}
    host.wait_idle(Duration::from_secs(3600)).await;
    let fill = started.elapsed();
    assert_eq!(fake.users(), people, "every hire reached the fake");
    let mut times = vec![];
    for _ in 0..runs {
        let started = Instant::now();
        let (status, report) = host.post("/api/v1/reconcile", &json!({ "dry_run": true })).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(
            report["accounts"].as_u64(),
            Some(people as u64),
            "{}",
            report["accounts"]
        );
        let drift = report["drift"].as_array().map_or(0, Vec::len);
        assert_eq!(drift, 0, "no drift expected: {}", report["drift"][0]);
        times.push(started.elapsed().as_secs_f64());
    }
    // Stopped, not just dropped: its workers, store threads and runtime would otherwise
    // stay behind and take CPU from the next vendor's measurement.
    host.stop().await;
    (fill, times)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs = env_usize("BENCH_RUNS", 5);
    let users = env_usize("BENCH_USERS", 200);
    let people = env_usize("BENCH_PEOPLE", 10_000);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let latencies: Vec<u64> = std::env::var("BENCH_LATENCIES")
        .unwrap_or_else(|_| "0,2".into())
        .split(',')
        .map(|ms| {
            ms.trim()
                .parse()
                .expect("BENCH_LATENCIES: milliseconds, comma-separated")
        })
        .collect();
    println!(
        "cloud connectors benchmark: {runs} runs, load average at start {}; min / median / max",
        load_average()
    );
    for vendor in [Vendor::Entra, Vendor::Google, Vendor::Okta] {
        if !only.is_empty() && only != vendor.plugin() {
            continue;
        }
        println!("{}:", vendor.plugin());
        for &latency_ms in &latencies {
            let [plugin, native, ratio, plugin_cpu, native_cpu] =
                overhead(vendor, runs, users, Duration::from_millis(latency_ms)).await;
            println!(
                "  a user's life x {users} per side and run (5 operations, {} requests), {}:",
                vendor.requests_per_life(),
                format_args!("fake answering after {latency_ms} ms")
            );
            println!("    plugin ops/s            {:.1}", Spread::of(&plugin));
            println!("    native ops/s            {:.1}", Spread::of(&native));
            println!(
                "    plugin time / native    {:.3}   (target <= 1.20)",
                Spread::of(&ratio)
            );
            println!("    CPU us/op, plugin       {:.1}", Spread::of(&plugin_cpu));
            println!("    CPU us/op, native       {:.1}", Spread::of(&native_cpu));
        }
        let (fill, times) = reconciliation(vendor, runs, people).await;
        println!(
            "  reconciliation of {people} people (filled through the pipeline in {:.1} s, {:.0} hires/s):",
            fill.as_secs_f64(),
            people as f64 / fill.as_secs_f64()
        );
        println!(
            "    dry run, s              {:.2}   (target < 60)",
            Spread::of(&times)
        );
    }
}
