//! Scale-out: three `tenure serve` hosts on one PostgreSQL database under a steady stream
//! of events, applied to the sandbox and to a real SCIM server (scim2-server). Hosts are
//! killed with SIGKILL at random moments (and restarted), and PostgreSQL itself is
//! restarted once mid-run. Clients send each event to any live host and retry it (same
//! idempotency key) on another until it is acknowledged. At the end every event was applied
//! exactly once (one job per event, one sandbox account, one SCIM user and one link per
//! destination and person), each person's events in order (the accounts carry the last),
//! and the audit chain the three hosts appended to verifies. The other tests here cut a
//! host off from the database, and follow a publish and an activation from host to host.

use serde_json::{Value, json};
use sqlx::Row;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenure_tests::serve::{free_port, get_json, start_serve, wait_ready};

const TOKEN: &str = "scale-out-token-0123456789";
const HOSTS: usize = 3;
/// The fault test's own PostgreSQL (`scripts/test.sh` stops it at the end).
const FAULTS_BED: tenure_tests::testbeds::PostgresBed = tenure_tests::testbeds::PostgresBed {
    own: Some(("/tmp/tenure-postgres-faults", 55433)),
};
const KILLS: usize = 24;

/// A host's config: PostgreSQL at `url`, the API on `port`, short leases so a dead host's jobs
/// pass on quickly, and `tenant` (the `[tenants.t]` tables); the built plugins unless `plugins`.
fn host_config(dir: &Path, url: &str, port: u16, tenant: &str, plugins: Option<&Path>) -> PathBuf {
    let config = format!(
        r#"plugins_dir = "{plugins}"
cache_dir = "{cache}"
[store]
url = "{url}"
max_connections = 8
[server]
listen = "127.0.0.1:{port}"
[queue]
concurrency = 4
lease_ms = 1000
max_attempts = 1000
backoff_base_ms = 20
backoff_max_ms = 200
poll_ms = 50
[[api_tokens]]
name = "scale-out"
role = "it"
tenant = "t"
token = "{TOKEN}"
{tenant}"#,
        plugins = plugins
            .map_or_else(tenure_plugin_test::plugin_dir, Path::to_path_buf)
            .display(),
        cache = tenure_plugin_test::workspace_root()
            .join("target/component-cache")
            .display(),
    );
    let path = dir.join("tenure.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The sandbox destination, run by rules-basic (`rules.txt`, which a test may change).
fn write_config(dir: &Path, url: &str, port: u16) -> PathBuf {
    let rules = "destination sandbox\n\
                 rule eng: department == \"Engineering\" => group:Engineering, ou:OU=Engineering\n\
                 rule sales: department == \"Sales\" => group:Sales, ou:OU=Sales\n\
                 default => ou:OU=People, group:All-Staff\n\
                 set employeeId = \"{id}\"\nset mail = \"{email}\"\nset title = \"{title}\"\n";
    std::fs::write(dir.join("rules.txt"), rules).unwrap();
    host_config(
        dir,
        url,
        port,
        r#"[tenants.t]
rules = "rules-basic"
[[tenants.t.destinations]]
name = "sandbox"
connector = "sandbox"
matching = ["employeeId", "mail"]
guard = { max_accounts = 1000000, max_percent = 100.0 }
[tenants.t.plugins.rules-basic]
rule_set = "@rules.txt"
[tenants.t.plugins.sandbox.grants]
kv = true
"#,
        None,
    )
}

/// The rules for a SCIM application `app` (and, with `sandbox`, the sandbox beside it).
fn yaml_rules(sandbox: bool) -> String {
    let sandbox = if sandbox {
        "  sandbox:\n    attributes:\n      employeeId: { from: id, required: true }\n      \
         mail: { from: email }\n      title: { from: title }\n"
    } else {
        ""
    };
    format!(
        "destinations:\n{sandbox}  app:\n    attributes:\n      \
         userName: {{ from: email, required: true }}\n      \
         externalId: {{ from: id, required: true }}\n      title: {{ from: title }}\n"
    )
}

/// A SCIM application `app` on a real SCIM server (and, with `sandbox`, the sandbox beside it).
fn write_scim_config(
    dir: &Path,
    url: &str,
    port: u16,
    scim: &tenure_tests::testbeds::ScimTenant,
    sandbox: bool,
) -> PathBuf {
    std::fs::write(dir.join("rules.yaml"), yaml_rules(sandbox)).unwrap();
    let sandbox = if sandbox {
        "[[tenants.t.destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\n\
         matching = [\"employeeId\", \"mail\"]\nguard = { max_accounts = 1000000, max_percent = 100.0 }\n\
         [tenants.t.plugins.sandbox.grants]\nkv = true\n"
    } else {
        ""
    };
    host_config(
        dir,
        url,
        port,
        &format!(
            r#"[tenants.t]
rules = "rules"
[[tenants.t.destinations]]
name = "app"
connector = "scim"
matching = ["externalId", "userName"]
guard = {{ max_accounts = 1000000, max_percent = 100.0 }}
[tenants.t.connections.scim]
kind = "http"
allow_private_network = true
url = "{}"
auth = {{ type = "bearer", token = "{}" }}
[tenants.t.plugins.rules]
rule_set = "@rules.yaml"
[tenants.t.plugins.scim.grants]
http = ["scim"]
{sandbox}"#,
            scim.url, scim.token
        ),
        None,
    )
}

fn event(person: usize, version: usize) -> Value {
    let department = ["Engineering", "Sales", "Marketing"][version % 3];
    json!({
        "kind": if version == 0 { "joiner" } else { "mover" },
        "source": "hr",
        "source_record_id": format!("p{person}-v{version}"),
        "person": {"ids": [{"source": "hr", "id": format!("{person}")}], "given_name": "P",
            "family_name": format!("{person}"), "department": department, "title": format!("v{version}"),
            "emails": [{"value": format!("p{person}@example.test"), "primary": true}]}
    })
}

/// One host of the deployment: its config folder, port and process (None while it is down).
struct Host {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Host {
    /// A host (not started) whose config `write` makes in its own folder for its port.
    fn new(write: impl FnOnce(&Path, u16) -> PathBuf) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = write(dir.path(), port);
        Host {
            dir,
            config,
            port,
            child: None,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let log = self.dir.path().join("serve.log");
        self.child = Some(start_serve(self.dir.path(), &self.config, &log));
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
        }
    }
}

/// Sends an event to the hosts in turn until one acknowledges it (a host may be down, or
/// PostgreSQL restarting); the same idempotency key every time.
async fn send(client: &reqwest::Client, bases: &[String], key: &str, body: &Value, first: usize) {
    let started = Instant::now();
    let mut i = first;
    loop {
        let base = &bases[i % bases.len()];
        if let Ok(r) = client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", key)
            .json(body)
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            let status = r.status().as_u16();
            if status == 200 || status == 202 {
                return;
            }
            assert!(status >= 500, "{key}: unexpected status {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{key} was never acknowledged"
        );
        i += 1;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Waits until `base` lists `expected` jobs, all completed (a host answering while its database
/// connections recover may answer an error meanwhile).
async fn settled(client: &reqwest::Client, base: &str, expected: usize, within: Duration) {
    let started = Instant::now();
    loop {
        let jobs = get_json(client, base, "/api/v1/jobs?limit=100000", TOKEN).await;
        match jobs.as_array() {
            Some(jobs) if jobs.len() == expected && jobs.iter().all(|j| j["state"] == "completed") => return,
            Some(jobs) => {
                let open = jobs.iter().filter(|j| j["state"] != "completed").count();
                assert!(
                    started.elapsed() < within,
                    "{} jobs for {expected} distinct events, {open} never completed",
                    jobs.len()
                );
            }
            None => println!("jobs: {jobs}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_survive_kills_and_a_database_restart_applying_each_event_once_in_order() {
    tenure_capabilities::install_crypto_provider();
    // A server of its own: restarting it must not cut the connections of the tests beside it.
    let url = FAULTS_BED.fresh_database("scale_out").await;
    let scim = tenure_tests::testbeds::ScimTenant::start("scale-out");
    let mut hosts: Vec<Host> = (0..HOSTS)
        .map(|_| Host::new(|dir, port| write_scim_config(dir, &url, port, &scim, true)))
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    // The first host makes the schema and publishes the rule set; the others join it.
    hosts[0].start();
    wait_ready(&client, &hosts[0].base()).await;
    for h in &mut hosts[1..] {
        h.start();
    }
    for h in &hosts[1..] {
        wait_ready(&client, &h.base()).await;
    }
    let bases: Arc<Vec<String>> = Arc::new(hosts.iter().map(Host::base).collect());

    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);
    println!("seed {seed}");
    let mut versions: Vec<usize> = Vec::new();
    let mut sent = 0;
    // Each person's last send: their next version waits for it (a source sends in order).
    let mut senders: std::collections::HashMap<usize, tokio::task::JoinHandle<()>> = Default::default();
    for trial in 0..KILLS {
        // The stream goes on: new people and changes to existing ones, to any host.
        let mut batch = Vec::new();
        for _ in 0..3 {
            versions.push(0);
            batch.push((versions.len() - 1, 0));
        }
        for _ in 0..3 {
            let p = rng.usize(..versions.len());
            versions[p] += 1;
            batch.push((p, versions[p]));
        }
        for (p, v) in batch {
            sent += 1;
            let (client, bases, first) = (client.clone(), bases.clone(), rng.usize(..HOSTS));
            let before = senders.remove(&p);
            senders.insert(
                p,
                tokio::spawn(async move {
                    if let Some(before) = before {
                        before.await.unwrap();
                    }
                    send(&client, &bases, &format!("p{p}-v{v}"), &event(p, v), first).await;
                }),
            );
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(0..150))).await;
        let victim = rng.usize(..HOSTS);
        hosts[victim].kill();
        if trial == KILLS / 2 {
            FAULTS_BED.run("restart");
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(50..300))).await;
        hosts[victim].start();
    }
    for (_, s) in senders {
        s.await.unwrap();
    }
    for h in &hosts {
        wait_ready(&client, &h.base()).await;
    }

    // Every job completes, on whichever hosts are left to run it: one job per distinct event.
    settled(&client, &bases[0], sent, Duration::from_secs(90)).await;
    let verify: Value = client
        .get(format!("{}/api/v1/audit/verify", bases[2]))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(verify["problem"].is_null(), "{verify}");
    for h in &mut hosts {
        h.kill();
    }

    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let accounts = sqlx::query(
        "SELECT key, value FROM kv WHERE tenant = 't' AND plugin = 'sandbox' AND key LIKE 'account/%'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(
        accounts.len(),
        versions.len(),
        "one account per person, none twice"
    );
    for row in &accounts {
        let key: String = row.get(0);
        let acc: Value = serde_json::from_slice(&row.get::<Vec<u8>, _>(1)).unwrap();
        let person = key.trim_start_matches("account/sbx-");
        let title = acc["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a[0] == "title")
            .map(|a| a[1]["Text"].clone());
        // The person's events were sent in order, so the last is the highest version.
        assert_eq!(
            title,
            Some(json!(format!("v{}", versions[person.parse::<usize>().unwrap()]))),
            "{key}: {acc}"
        );
    }
    // And one SCIM user per person, with their last version.
    let (status, users) = scim.get("/Users?count=10000").await;
    assert_eq!(status, 200, "{users}");
    let users = users["Resources"].as_array().unwrap();
    assert_eq!(
        users.len(),
        versions.len(),
        "one SCIM user per person, none twice"
    );
    for user in users {
        let person: usize = user["externalId"].as_str().unwrap().parse().unwrap();
        assert_eq!(user["title"], json!(format!("v{}", versions[person])), "{user}");
    }
    // Each person's jobs finished in the order they were received.
    let out_of_order: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs a JOIN jobs b ON a.tenant = b.tenant AND a.person_key = b.person_key
         WHERE a.id < b.id AND a.finished_ms > b.finished_ms",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(
        out_of_order, 0,
        "a person's later job finished before an earlier one"
    );
    let links: i64 = sqlx::query_scalar("SELECT count(*) FROM links")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(
        links as usize,
        2 * versions.len(),
        "one link per destination and person"
    );
    let resumed: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE attempts > 1")
        .fetch_one(&mut db)
        .await
        .unwrap();
    println!(
        "{sent} events to {} people over {KILLS} kills and a database restart; {resumed} jobs resumed \
         after a kill",
        versions.len()
    );
}

/// Two hosts on a fresh database, both ready.
async fn two_hosts(client: &reqwest::Client) -> (Vec<Host>, String) {
    let url = tenure_tests::testbeds::fresh_postgres_database("follow").await;
    let mut hosts: Vec<Host> = (0..2)
        .map(|_| Host::new(|dir, port| write_config(dir, &url, port)))
        .collect();
    for h in &mut hosts {
        h.start();
        wait_ready(client, &h.base()).await;
    }
    (hosts, url)
}

/// The hosts alive as host `base` last counted them (`tenure_hosts_alive`).
async fn hosts_alive(client: &reqwest::Client, base: &str) -> i64 {
    let metrics = client
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("tenure_hosts_alive "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no tenure_hosts_alive in {metrics}"))
}

/// The groups host `base` would give a Marketing person now (preview: nothing is written).
async fn previewed_groups(client: &reqwest::Client, base: &str) -> String {
    let preview: Value = client
        .post(format!("{base}/api/v1/preview"))
        .bearer_auth(TOKEN)
        .json(&json!({ "kind": "joiner", "source": "hr", "person": event(999, 2)["person"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    preview["destinations"][0]["desired"]["groups"].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_set_published_on_one_host_runs_on_the_other_within_a_second() {
    tenure_capabilities::install_crypto_provider();
    let client = reqwest::Client::new();
    let (mut hosts, _) = two_hosts(&client).await;
    let (a, b) = (hosts[0].base(), hosts[1].base());
    // Each host counts the other (the deployment's limits are split between them): the
    // second at its start, the first at its next renewal (every 10 s).
    for base in [&b, &a] {
        let started = std::time::Instant::now();
        while hosts_alive(&client, base).await != 2 {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{base} never counted 2 hosts"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(previewed_groups(&client, &b).await.contains("All-Staff"));
    let document = std::fs::read_to_string(hosts[0].dir.path().join("rules.txt"))
        .unwrap()
        .replace("All-Staff", "Everyone");
    let drafted = client
        .post(format!("{a}/api/v1/rule-sets"))
        .bearer_auth(TOKEN)
        .json(&json!({ "document": document, "message": "everyone in one group" }))
        .send()
        .await
        .unwrap();
    assert!(drafted.status().is_success(), "{}", drafted.text().await.unwrap());
    let published = client
        .post(format!("{a}/api/v1/rule-sets/2/publish"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        published.status().is_success(),
        "{}",
        published.text().await.unwrap()
    );
    let since = Instant::now();
    // The other host heard of it and runs it.
    loop {
        if previewed_groups(&client, &b).await.contains("Everyone") {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "host B still runs version 1 after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "host B ran the published version {:?} after the publish answered",
        since.elapsed()
    );
    // A hire sent to host B is applied under the new version.
    send(&client, std::slice::from_ref(&b), "p7-v2", &event(7, 2), 0).await;
    let started = Instant::now();
    let account = loop {
        let preview: Value = client
            .post(format!("{b}/api/v1/preview"))
            .bearer_auth(TOKEN)
            .json(&json!({ "source": "hr", "source_record_id": "p7-v2" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let current = preview["destinations"][0]["current"].clone();
        if !current.is_null() {
            break current;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the hire was never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(account["groups"].to_string().contains("Everyone"), "{account}");
    for h in &mut hosts {
        h.kill();
    }
}

/// A TCP proxy in front of PostgreSQL that can cut one host off: while it is paused, no
/// byte passes either way (connections stay open, as in a network partition); resumed,
/// what was held back flows again.
struct Partition {
    port: u16,
    paused: tokio::sync::watch::Sender<bool>,
}

impl Partition {
    async fn start(target: std::net::SocketAddr) -> Partition {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (paused, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pipe(ri, wo, watch.clone()));
                tokio::spawn(pipe(ro, wi, watch.clone()));
            }
        });
        Partition { port, paused }
    }

    fn cut(&self, cut: bool) {
        let _ = self.paused.send(cut);
    }
}

/// Copies one direction, holding everything while the partition is in place.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if paused.wait_for(|p| !*p).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Read just before the cut: held until it heals.
        if paused.wait_for(|p| !*p).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_off_from_the_database_loses_its_leases_and_nothing_is_applied_twice() {
    tenure_capabilities::install_crypto_provider();
    let client = reqwest::Client::new();
    let url = tenure_tests::testbeds::fresh_postgres_database("partition").await;
    // Host A reaches the database through the proxy; host B directly.
    let address = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let partition = Partition::start(address.parse().unwrap()).await;
    let url_a = url.replace(address, &format!("127.0.0.1:{}", partition.port));
    let scim = tenure_tests::testbeds::ScimTenant::start("partition");
    let mut hosts: Vec<Host> = [url_a.as_str(), url.as_str()]
        .iter()
        .map(|u| Host::new(|dir, port| write_scim_config(dir, u, port, &scim, false)))
        .collect();
    for h in &mut hosts {
        h.start();
        wait_ready(&client, &h.base()).await;
    }
    let bases: Arc<Vec<String>> = Arc::new(hosts.iter().map(Host::base).collect());
    // A slow application: each host holds jobs in flight (each waits on SCIM) when the cut comes.
    scim.latency(150).await;
    const PEOPLE: usize = 40;
    let sends: Vec<_> = (0..PEOPLE)
        .map(|p| {
            let (client, bases) = (client.clone(), bases.clone());
            tokio::spawn(async move { send(&client, &bases, &format!("p{p}-v0"), &event(p, 0), p % 2).await })
        })
        .collect();
    for s in sends {
        s.await.unwrap();
    }
    // Cut host A off while both hosts work through the hires, for longer than a lease.
    tokio::time::sleep(Duration::from_millis(400)).await;
    partition.cut(true);
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    partition.cut(false);
    settled(&client, &bases[1], PEOPLE, Duration::from_secs(60)).await;
    for h in &mut hosts {
        h.kill();
    }
    // One SCIM user per person: no job was applied by both hosts.
    let (status, users) = scim.get("/Users?count=1000").await;
    assert_eq!(status, 200, "{users}");
    let ids: Vec<&str> = users["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["externalId"].as_str().unwrap())
        .collect();
    let distinct: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(ids.len(), PEOPLE, "one user per person: {ids:?}");
    assert_eq!(distinct.len(), PEOPLE);
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let resumed: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE attempts > 1")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let links: i64 = sqlx::query_scalar("SELECT count(*) FROM links")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(links as usize, PEOPLE);
    println!("{resumed} jobs were taken over from the host cut off");
    assert!(resumed > 0, "the cut came when host A held no job");
}

/// The version of `swap` host `base` runs now (from its own runtime).
async fn active_swap(client: &reqwest::Client, base: &str) -> String {
    let plugins = get_json(client, base, "/api/v1/plugins", TOKEN).await;
    plugins["plugins"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "swap"))
        .map(|p| p["active"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_version_activated_on_one_host_runs_on_the_other_within_a_second() {
    tenure_capabilities::install_crypto_provider();
    let client = reqwest::Client::new();
    let url = tenure_tests::testbeds::fresh_postgres_database("activate").await;
    // The operator's plugins directory: version A of the rules plugin `swap`, and the sandbox.
    let shipped = tempfile::tempdir().unwrap();
    for (from, to) in [("swap-a", "swap"), ("sandbox", "sandbox")] {
        for ext in ["wasm", "toml"] {
            let source = tenure_plugin_test::plugin_dir().join(format!("{from}.{ext}"));
            std::fs::copy(source, shipped.path().join(format!("{to}.{ext}"))).unwrap();
        }
    }
    let tenant = r#"[tenants.t]
rules = "swap"
[[tenants.t.destinations]]
name = "swap"
connector = "sandbox"
matching = ["name"]
[tenants.t.plugins.swap]
[tenants.t.plugins.sandbox.grants]
kv = true
[tenants.t.plugin_trust]
allow_unsigned = true
"#;
    let mut hosts: Vec<Host> = (0..2)
        .map(|_| Host::new(|dir, port| host_config(dir, &url, port, tenant, Some(shipped.path()))))
        .collect();
    for h in &mut hosts {
        h.start();
        wait_ready(&client, &h.base()).await;
    }
    let (a, b) = (hosts[0].base(), hosts[1].base());
    assert!(active_swap(&client, &b).await.starts_with("0.1.0-a+"));
    // Version B uploaded and activated on host A.
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let wasm = tenure_plugin_test::plugin_dir().join("swap-b.wasm");
    let upload = json!({
        "manifest": std::fs::read_to_string(wasm.with_extension("toml")).unwrap(),
        "component": STANDARD.encode(std::fs::read(&wasm).unwrap()),
        "signature": null,
    });
    let uploaded: Value = client
        .post(format!("{a}/api/v1/plugins"))
        .bearer_auth(TOKEN)
        .json(&upload)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let label = uploaded["version"]["version"]
        .as_str()
        .expect("uploaded")
        .to_string();
    let activated = client
        .post(format!("{a}/api/v1/plugins/swap/activate"))
        .bearer_auth(TOKEN)
        .json(&json!({ "version": label }))
        .send()
        .await
        .unwrap();
    assert!(
        activated.status().is_success(),
        "{}",
        activated.text().await.unwrap()
    );
    let since = Instant::now();
    while active_swap(&client, &b).await != label {
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "host B still runs version A after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "host B ran {label} {:?} after the activation answered",
        since.elapsed()
    );
    for h in &mut hosts {
        h.kill();
    }
}
