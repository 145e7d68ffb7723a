//! Notifications (issue 20): email through a real SMTP server (aiosmtpd, started by the test
//! command) over STARTTLS and over TLS with authentication, with names in other scripts intact,
//! Slack and Teams posts against fakes
//! of their webhooks, and the pipeline raising them: a hire emails the hiring manager once the
//! accounts exist (with the accounts, never a password), and a tripped mass-change guard
//! posts to Teams; a contractor's notice opens a Freshservice ticket for the manager and posts
//! to Slack; the audit records each message without its body.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenure_capabilities::ShiftedClock;
use tenure_capabilities::notify::{ChannelConfig, Message, Notifier, SendError};
use tenure_pipeline::event::rfc3339_ms;
use tenure_tests::fake_chat::FakeChat;
use tenure_tests::fake_freshservice::{self, FakeFreshservice};
use tenure_tests::host::{HostSpec, TestHost, pipeline_toml, rules, tenant_toml};
use tenure_tests::mock_destination::MockDestination;
use tenure_tests::{eventually, mailbox, testbeds};

fn email_channel(env: &HashMap<String, String>, security: &str, password: &str, ca: bool) -> ChannelConfig {
    let port = match security {
        "tls" => &env["TENURE_TEST_SMTP_TLS_PORT"],
        _ => &env["TENURE_TEST_SMTP_STARTTLS_PORT"],
    };
    let ca_file = if ca {
        format!("ca_file = \"{}\"\n", env["TENURE_TEST_SMTP_CA"])
    } else {
        String::new()
    };
    toml::from_str(&format!(
        "kind = \"email\"\nhost = \"{}\"\nport = {port}\nsecurity = \"{security}\"\nusername = \"{}\"\n\
         password = \"{password}\"\nfrom = \"Tenure <tenure@example.test>\"\n{ca_file}",
        env["TENURE_TEST_SMTP_HOST"], env["TENURE_TEST_SMTP_USER"]
    ))
    .expect("email channel")
}

fn message(id: &str, to: &str) -> Message {
    Message {
        id: id.into(),
        to: vec![to.into()],
        subject: "Accounts ready for Ada Lovelace".into(),
        body: "Ada Lovelace's accounts are ready:\n- entra: u-1\n".into(),
    }
}

/// STARTTLS and TLS, each authenticated: the server saw an encrypted session, the login, the
/// envelope, the headers and the body; a wrong password or an unknown CA is a permanent error.
#[tokio::test]
async fn email_reaches_a_real_smtp_server_over_starttls_and_tls() {
    let env = testbeds::start("smtp.sh");
    let run = testbeds::run_id();
    let notifier = Notifier::new().expect("notifier");
    for security in ["starttls", "tls"] {
        let to = format!("manager-{security}-{run}@example.test");
        let channel = email_channel(&env, security, &env["TENURE_TEST_SMTP_PASSWORD"], true);
        let summary = notifier
            .send(&channel, &message(&format!("t-{run}-{security}"), &to))
            .await
            .unwrap_or_else(|e| panic!("{security}: {e}"));
        assert!(summary.contains("accepted by localhost"), "{summary}");
        let got = mailbox::wait_for(&env, &to, 1).await;
        let m = &got[0];
        assert_eq!(m["listener"], security);
        assert_eq!(m["tls"], true, "{m}");
        assert_eq!(m["login"], env["TENURE_TEST_SMTP_USER"].as_str());
        assert_eq!(m["mail_from"], "tenure@example.test");
        let data = m["data"].as_str().unwrap_or_default();
        for header in [
            "Subject: Accounts ready for Ada Lovelace",
            "From: Tenure <tenure@example.test>",
            &format!("To: {to}"),
            &format!("Message-ID: <t-{run}-{security}@tenure>"),
            "Content-Type: text/plain",
        ] {
            assert!(data.contains(header), "{header} in {data}");
        }
        assert!(data.contains("- entra: u-1"), "{data}");
    }
    let to = format!("nobody-{run}@example.test");
    let wrong = email_channel(&env, "starttls", "not-the-password", true);
    match notifier.send(&wrong, &message("w", &to)).await {
        Err(SendError::Permanent(e)) => assert!(e.contains("535") || e.contains("uthentication"), "{e}"),
        other => panic!("a wrong password: {other:?}"),
    }
    let unknown_ca = email_channel(&env, "tls", &env["TENURE_TEST_SMTP_PASSWORD"], false);
    let refused = notifier.send(&unknown_ca, &message("c", &to)).await;
    assert!(
        matches!(&refused, Err(SendError::Permanent(e)) if e.contains("certificate")),
        "a certificate from an unknown CA is refused: {refused:?}"
    );
    assert!(mailbox::messages_to(&env, &to).is_empty());
}

/// A header's value from raw message text, unfolded, with RFC 2047 encoded words decoded.
fn header(data: &str, name: &str) -> String {
    let mut lines = data.split("\r\n").flat_map(|l| l.split('\n'));
    let prefix = format!("{name}: ");
    let Some(first) = lines.find(|l| l.starts_with(&prefix)) else {
        return String::new();
    };
    let mut value = first[prefix.len()..].to_string();
    for folded in lines.take_while(|l| l.starts_with(' ') || l.starts_with('\t')) {
        value.push_str(folded);
    }
    let mut out = String::new();
    for word in value.split_whitespace() {
        match word.strip_prefix("=?").and_then(|w| w.strip_suffix("?=")) {
            Some(encoded) => {
                let parts: Vec<&str> = encoded.splitn(3, '?').collect();
                assert!(parts[0].eq_ignore_ascii_case("utf-8"), "charset of {word}");
                let bytes = match parts[1] {
                    "b" | "B" => base64::Engine::decode(&base64::engine::general_purpose::STANDARD, parts[2])
                        .expect("base64 word"),
                    _ => quoted_printable(&parts[2].replace('_', " ")),
                };
                out.push_str(&String::from_utf8(bytes).expect("UTF-8 word"));
            }
            None => {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(word);
            }
        }
    }
    out
}

fn quoted_printable(text: &str) -> Vec<u8> {
    quoted_printable::decode(text, quoted_printable::ParseMode::Strict).expect("quoted-printable")
}

/// The text body of a single-part message, decoded by its transfer encoding.
fn text_body(data: &str) -> String {
    let (head, body) = data
        .split_once("\r\n\r\n")
        .or_else(|| data.split_once("\n\n"))
        .expect("headers and body");
    let encoding = header(head, "Content-Transfer-Encoding").to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "base64" => base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            body.split_whitespace().collect::<String>(),
        )
        .expect("base64 body"),
        "quoted-printable" => quoted_printable(body),
        _ => body.as_bytes().to_vec(),
    };
    String::from_utf8(bytes).expect("UTF-8 body")
}

/// Names in other scripts reach the inbox intact: the subject as RFC 2047 encoded words, the
/// body in UTF-8 with a transfer encoding a 7-bit server takes.
#[tokio::test]
async fn a_message_in_other_scripts_arrives_intact() {
    let env = testbeds::start("smtp.sh");
    let run = testbeds::run_id();
    let notifier = Notifier::new().expect("notifier");
    let to = format!("manager-scripts-{run}@example.test");
    let subject = "Учётные записи готовы: 山田 太郎, Zoë Łukasiewicz, محمد";
    let body = "Аккаунты 山田 太郎 готовы:\n- entra: yamada@example.test\n- Zoë: ✓\n";
    let channel = email_channel(&env, "starttls", &env["TENURE_TEST_SMTP_PASSWORD"], true);
    let message = Message {
        id: format!("scripts-{run}"),
        to: vec![to.clone()],
        subject: subject.into(),
        body: body.into(),
    };
    notifier.send(&channel, &message).await.expect("sent");
    let got = mailbox::wait_for(&env, &to, 1).await;
    let data = got[0]["data"].as_str().unwrap_or_default();
    let raw_subject = data
        .lines()
        .find(|l| l.starts_with("Subject: "))
        .unwrap_or_default();
    assert!(
        raw_subject.is_ascii(),
        "the Subject header is 7-bit: {raw_subject}"
    );
    assert_eq!(header(data, "Subject"), subject, "{data}");
    assert!(header(data, "Content-Type").contains("charset=utf-8"), "{data}");
    assert_eq!(text_body(data).replace("\r\n", "\n"), body, "{data}");
}

fn chat(kind: &str, url: &str) -> ChannelConfig {
    toml::from_str(&format!(
        "kind = \"{kind}\"\nwebhook_url = \"{url}\"\nallow_private_network = true\n"
    ))
    .expect("chat channel")
}

/// Slack gets `text`, Teams an Adaptive Card; a 429 says how long to wait; a removed webhook is
/// a permanent error.
#[tokio::test]
async fn slack_and_teams_get_their_documented_payloads() {
    let fake = FakeChat::start().await;
    let notifier = Notifier::new().expect("notifier");
    let slack = chat("slack", &fake.slack_url("it"));
    let teams = chat("teams", &fake.teams_url("it"));
    notifier.send(&slack, &message("s1", "")).await.expect("slack");
    notifier.send(&teams, &message("t1", "")).await.expect("teams");
    {
        let s = fake.state();
        let text = s.slack[0]["text"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("*Accounts ready for Ada Lovelace*") && text.contains("- entra: u-1"),
            "{text}"
        );
        let card = &s.teams[0]["attachments"][0]["content"];
        assert_eq!(card["body"][0]["text"], "Accounts ready for Ada Lovelace");
        assert!(
            card["body"][1]["text"]
                .as_str()
                .is_some_and(|t| t.contains("- entra: u-1"))
        );
    }
    fake.set_rate_limit(0, Duration::from_secs(5));
    match notifier.send(&slack, &message("s2", "")).await {
        Err(SendError::RateLimited { wait, .. }) => assert!(wait >= Duration::from_secs(1), "{wait:?}"),
        other => panic!("past the rate: {other:?}"),
    }
    fake.set_rate_limit(100, Duration::from_secs(5));
    fake.state().removed.push("/B0001/it".into());
    assert!(matches!(
        notifier.send(&slack, &message("s3", "")).await,
        Err(SendError::Permanent(e)) if e.contains("404")
    ));
}

fn person(id: &str, email: &str, manager: Option<&str>) -> Value {
    let mut p = json!({ "ids": [{"source": "hr", "id": id}], "given_name": "Ada",
        "family_name": format!("Lovelace {id}"),
        "department": "Engineering", "start_date": "2026-11-02",
        "emails": [{"value": email, "primary": true}] });
    if let Some(m) = manager {
        p["manager"] = json!({"source": "hr", "id": m});
    }
    p
}

/// Through the pipeline: the hire's manager gets one email once the account exists (its
/// anchor listed, no password), and a guard that trips posts to Teams; the audit keeps the
/// channel and the recipient count, never a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hire_emails_the_manager_and_a_tripped_guard_posts_to_teams() {
    let env = testbeds::start("smtp.sh");
    let run = testbeds::run_id();
    let chat = FakeChat::start().await;
    let manager_email = format!("grace-{run}@example.test");
    let tenant = tenant_toml(&format!(
        "[plugins.rules-basic]\nrule_set = '''\n{}'''\n[plugins.sandbox.grants]\nkv = true\n",
        rules("sandbox")
    ));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules-basic\"\n\
         [[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\n\
         matching = [\"employeeId\", \"mail\"]\n\
         guard = {{ max_accounts = 2, max_percent = 100.0, window_secs = 3600 }}\n\
         [notifications]\nconsole_url = \"https://tenure.example.test\"\n\
         [notifications.channels.mail]\nkind = \"email\"\nhost = \"localhost\"\nport = {}\n\
         username = \"{}\"\npassword = \"{}\"\nfrom = \"Tenure <tenure@example.test>\"\nca_file = \"{}\"\n\
         [notifications.channels.it-teams]\nkind = \"teams\"\nwebhook_url = \"{}\"\n\
         allow_private_network = true\n\
         [[notifications.rules]]\non = \"account-ready\"\nchannel = \"mail\"\nto = [\"manager\"]\n\
         [[notifications.rules]]\non = \"guard-tripped\"\nchannel = \"it-teams\"\n",
        env["TENURE_TEST_SMTP_STARTTLS_PORT"],
        env["TENURE_TEST_SMTP_USER"],
        env["TENURE_TEST_SMTP_PASSWORD"],
        env["TENURE_TEST_SMTP_CA"],
        chat.teams_url("it")
    ));
    let host = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: tenure_pipeline::QueueConfig {
            backoff_base_ms: 50,
            poll_ms: 20,
            ..Default::default()
        },
        plugins: vec!["rules-basic", "sandbox"],
    })
    .await;
    let joiner = |id: &str, email: &str, manager: Option<&str>| {
        json!({ "kind": "joiner", "source": "hr", "source_record_id": format!("hire-{id}"),
            "person": person(id, email, manager) })
    };
    // The manager first (no manager of their own: no email), then the hire.
    host.post_event(&joiner("m1", &manager_email, None), "hire-m1")
        .await;
    host.wait_idle(Duration::from_secs(30)).await;
    host.post_event(
        &joiner("e1", &format!("ada-{run}@example.test"), Some("m1")),
        "hire-e1",
    )
    .await;
    host.wait_idle(Duration::from_secs(30)).await;

    let mails = mailbox::wait_for(&env, &manager_email, 1).await;
    assert_eq!(mails.len(), 1, "one email: {mails:?}");
    let data = mails[0]["data"].as_str().unwrap_or_default().replace("=\r\n", "");
    assert_eq!(mails[0]["tls"], true);
    assert!(
        data.contains("Subject: Accounts ready for Ada Lovelace e1"),
        "{data}"
    );
    assert!(data.contains("- sandbox: sbx-e1"), "the account's anchor: {data}");
    assert!(
        data.contains("https://tenure.example.test/people/hr:e1"),
        "{data}"
    );
    assert!(!data.to_lowercase().contains("password:"), "{data}");

    // Three leavers against a guard of two: the third trips it, and Teams hears of it once.
    for id in ["x1", "x2", "x3"] {
        host.post_event(
            &joiner(id, &format!("{id}-{run}@example.test"), None),
            &format!("hire-{id}"),
        )
        .await;
    }
    host.wait_idle(Duration::from_secs(30)).await;
    for id in ["m1", "e1", "x1", "x2", "x3"] {
        let mut leaver = joiner(id, &format!("{id}-{run}@example.test"), None);
        leaver["kind"] = json!("leaver");
        leaver["source_record_id"] = json!(format!("leave-{id}"));
        leaver["person"]["status"] = json!("terminated");
        host.post_event(&leaver, &format!("leave-{id}")).await;
    }
    host.wait_idle(Duration::from_secs(30)).await;
    eventually("the Teams post", || !chat.state().teams.is_empty()).await;
    let card = chat.state().teams[0]["attachments"][0]["content"].clone();
    assert_eq!(
        card["body"][0]["text"], "Mass-change guard tripped in sandbox",
        "{card}"
    );

    let audit = host.audit(None).await;
    let of = |kind: &str| {
        audit
            .iter()
            .filter(|e| e["kind"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let queued = of("notification.queued");
    assert!(
        queued
            .iter()
            .any(|e| e["data"]["event"] == "account-ready" && e["data"]["recipients"] == 1),
        "{queued:?}"
    );
    assert!(
        queued.iter().any(|e| e["data"]["event"] == "guard-tripped"),
        "{queued:?}"
    );
    let all = serde_json::to_string(&audit).unwrap_or_default();
    assert!(!all.contains("Day-1 checklist"), "no body in the audit");

    // Operators see the queue: both sent, subjects and recipients, no bodies.
    let started = Instant::now();
    let rows = loop {
        let rows = host.get("/api/v1/notifications").await;
        let sent = rows
            .as_array()
            .map_or(0, |r| r.iter().filter(|n| n["state"] == "sent").count());
        if sent == 2 {
            break rows;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{rows}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ready = rows
        .as_array()
        .and_then(|r| r.iter().find(|n| n["event"] == "account-ready"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ready["recipients"], json!([manager_email]), "{rows}");
    assert_eq!(ready["subject"], "Accounts ready for Ada Lovelace e1");
    assert!(!rows.to_string().contains("Day-1 checklist"), "{rows}");
}

/// A contractor's notice, 14 days before the contract ends: a Freshservice ticket for the
/// manager (the notice's fields shaped by `lifecycle.notice_fields`) and a Slack post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_notice_opens_a_freshservice_ticket_and_posts_to_slack() {
    let fs = FakeFreshservice::start().await;
    let chat = FakeChat::start().await;
    let clock = Arc::new(ShiftedClock::at(
        rfc3339_ms("2026-06-01T09:00:00Z").expect("time"),
    ));
    let tenant = tenant_toml(&format!(
        "[plugins.rules-basic]\nrule_set = '''\n{}'''\n[plugins.sandbox.grants]\nkv = true\n\
         [connections.freshservice]\nkind = \"http\"\nallow_private_network = true\nurl = \"{}\"\n\
         auth = {{ type = \"basic\", username = \"{}\", password = \"X\" }}\n\
         [plugins.freshservice.grants]\nhttp = [\"freshservice\"]\n",
        rules("sandbox"),
        fs.url,
        fake_freshservice::API_KEY
    ));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules-basic\"\n\
         [[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\n\
         matching = [\"employeeId\", \"mail\"]\n\
         [[destinations]]\nname = \"helpdesk\"\nconnector = \"freshservice\"\n\
         [lifecycle]\ncontract_notice_days = [14]\nnotify_destination = \"helpdesk\"\n\
         [lifecycle.notice_fields]\n\
         subject = \"Contract of {{{{ person.name }}}} ends on {{{{ end_date }}}}\"\n\
         description = \"{{{{ days_before }}}} days left; extend it in HR or let access end.\"\n\
         email = \"{{{{ manager_email }}}}\"\npriority = \"medium\"\n\
         {}",
        chat.slack_rule_toml("contract-ending")
    ));
    let host = TestHost::start_with_clock(
        HostSpec {
            tenant,
            pipeline,
            queue: tenure_pipeline::QueueConfig {
                backoff_base_ms: 50,
                poll_ms: 20,
                ..Default::default()
            },
            plugins: vec!["rules-basic", "sandbox", "freshservice"],
        },
        tempfile::tempdir().expect("temp dir"),
        clock.clone(),
    )
    .await;
    let mut boss = person("m1", "boss@example.test", None);
    boss["start_date"] = json!("2026-01-05");
    host.post_event(
        &json!({"kind": "joiner", "source": "hr", "source_record_id": "hire-m1", "person": boss}),
        "hire-m1",
    )
    .await;
    let mut contractor = person("c1", "c1@example.test", Some("m1"));
    contractor["start_date"] = json!("2026-05-04");
    contractor["employment_type"] = json!("contractor");
    contractor["end_date"] = json!("2026-06-30");
    host.post_event(
        &json!({"kind": "joiner", "source": "hr", "source_record_id": "hire-c1", "person": contractor}),
        "hire-c1",
    )
    .await;
    host.wait_idle(Duration::from_secs(30)).await;
    assert!(fs.state().tickets.is_empty(), "no notice before its day");

    clock.set(rfc3339_ms("2026-06-16T09:00:00Z").expect("time"));
    host.pipeline.fire_due_actions().await.expect("fire due actions");
    host.wait_idle(Duration::from_secs(30)).await;
    eventually("the Freshservice notice", || !fs.state().tickets.is_empty()).await;
    {
        let s = fs.state();
        assert_eq!(s.tickets.len(), 1, "{:?}", s.tickets);
        let t = &s.tickets[0];
        assert_eq!(t["subject"], "Contract of Ada Lovelace c1 ends on 2026-06-30");
        assert_eq!(t["priority"], 2);
        assert_eq!(
            s.requesters,
            ["boss@example.test"],
            "the manager is the requester"
        );
    }
    eventually("the Slack post", || !chat.state().slack.is_empty()).await;
    let text = chat.state().slack[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        text.contains("Ada Lovelace c1's contract ends on 2026-06-30"),
        "{text}"
    );
    assert!(text.contains("in 14 days"), "{text}");
}

/// A job that created an account, failed in another destination and completed on its retry
/// sends one account-ready message listing both accounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_ready_counts_accounts_created_before_a_retry() {
    let chat = FakeChat::start().await;
    let mock = MockDestination::start().await;
    // The first write to `dest` fails: the job retries after the sandbox account exists.
    mock.with(|s| s.script.push_back((503, None)));
    let tenant = tenant_toml(&format!(
        "[plugins.rules-basic]\nrule_set = '''\n{}{}'''\n[plugins.sandbox.grants]\nkv = true\n{}",
        rules("sandbox"),
        rules("dest"),
        mock.tenant_toml()
    ));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules-basic\"\n\
         [[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\n\
         matching = [\"employeeId\", \"mail\"]\n\
         [[destinations]]\nname = \"dest\"\nconnector = \"http-dest\"\n\
         {}",
        chat.slack_rule_toml("account-ready")
    ));
    let host = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: tenure_pipeline::QueueConfig {
            backoff_base_ms: 50,
            poll_ms: 20,
            ..Default::default()
        },
        plugins: vec!["rules-basic", "sandbox", "http-dest"],
    })
    .await;
    let hire = json!({ "kind": "joiner", "source": "hr", "source_record_id": "hire-r1",
        "person": person("r1", "r1@example.test", None) });
    host.post_event(&hire, "hire-r1").await;
    host.wait_idle(Duration::from_secs(30)).await;
    let retried = host
        .audit(Some("hr:r1"))
        .await
        .iter()
        .any(|e| e["kind"] == "job.retry");
    assert!(retried, "the job retried");
    eventually("the Slack post", || !chat.state().slack.is_empty()).await;
    let anchor = mock.with(|s| s.accounts[0].anchor.clone());
    let s = chat.state();
    assert_eq!(s.slack.len(), 1, "{:?}", s.slack);
    let text = s.slack[0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("- sandbox: sbx-r1"), "{text}");
    assert!(text.contains(&format!("- dest: {anchor}")), "{text}");
}

/// A job whose destination keeps failing is dead-lettered on its last attempt, and says so: its
/// audit ends `job.dead` and IT hears of it once (the job-dead notification), not silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_runs_out_of_attempts_is_dead_lettered_and_reported() {
    let chat = FakeChat::start().await;
    let mock = MockDestination::start().await;
    mock.with(|s| {
        s.script
            .extend([(503, None), (503, None), (503, None), (503, None)])
    });
    let tenant = tenant_toml(&format!(
        "[plugins.rules-basic]\nrule_set = '''\n{}'''\n{}",
        rules("dest"),
        mock.tenant_toml()
    ));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules-basic\"\n\
         [[destinations]]\nname = \"dest\"\nconnector = \"http-dest\"\n\
         {}",
        chat.slack_rule_toml("job-dead")
    ));
    let host = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: tenure_pipeline::QueueConfig {
            backoff_base_ms: 50,
            poll_ms: 20,
            max_attempts: 2,
            ..Default::default()
        },
        plugins: vec!["rules-basic", "http-dest"],
    })
    .await;
    let hire = json!({ "kind": "joiner", "source": "hr", "source_record_id": "hire-d1",
        "person": person("d1", "d1@example.test", None) });
    host.post_event(&hire, "hire-d1").await;
    host.wait_idle(Duration::from_secs(30)).await;
    let kinds: Vec<String> = host
        .audit(Some("hr:d1"))
        .await
        .iter()
        .filter_map(|e| {
            e["kind"]
                .as_str()
                .filter(|k| k.starts_with("job."))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(kinds, ["job.retry", "job.dead"], "{kinds:?}");
    eventually("the Slack post", || !chat.state().slack.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = chat.state();
    assert_eq!(s.slack.len(), 1, "{:?}", s.slack);
    let text = s.slack[0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("gave up after 2 attempts"), "{text}");
}
