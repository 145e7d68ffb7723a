//! The API's OpenAPI description (issue 22): served at `/api/v1/openapi.json`, its roles
//! are the roles the routes allow, and Schemathesis, sending generated requests to every
//! route, finds no server error and no answer that breaks the description.

use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use tenure_pipeline::QueueConfig;
use tenure_server::Role;
use tenure_tests::host::{
    AUDITOR_TOKEN, HR_TOKEN, HostSpec, IT_TOKEN, SOURCE_TOKEN, TestHost, joiner, pipeline_toml, tenant_toml,
};

/// The rule set the test tenant runs (the YAML engine, so drafts, tests and impact work).
const RULES: &str = r#"
destinations:
  sandbox:
    attributes:
      employeeId: { from: id, required: true }
      mail: { from: email }
      sn: { from: family_name, required: true }
    rules:
      - name: eng
        when: person.department == "Engineering"
        then: { groups: [Engineering] }
    defaults: { groups: [All-Staff], container: OU=People }
tests:
  - name: engineer
    person: { ids: [{ source: hr, id: "t1" }], given_name: A, family_name: B, department: Engineering }
    expect: { sandbox: { groups: [Engineering], container: OU=People } }
"#;

async fn host() -> TestHost {
    let tenant = tenant_toml(&format!(
        "[plugins.rules]\nrule_set = '''{RULES}'''\n[plugins.sandbox.grants]\nkv = true\n"
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\n\
         matching = [\"employeeId\"]\n",
    );
    TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            poll_ms: 20,
            ..QueueConfig::default()
        },
        plugins: vec!["rules", "sandbox"],
    })
    .await
}

/// A request path with each `{parameter}` filled in.
fn filled(path: &str) -> String {
    path.replace("{id}", "1")
        .replace("{version}", "1")
        .replace("{source}", "api")
        .replace("{person}", "ada")
        .replace("{destination}", "sandbox")
        .replace("{name}", "sandbox")
}

#[tokio::test]
async fn the_description_is_served_and_its_roles_are_the_roles_the_routes_allow() {
    let h = host().await;
    let served: Value = reqwest::get(format!("{}{}", h.base, tenure_server::OPENAPI_PATH))
        .await
        .expect("GET the description")
        .json()
        .await
        .expect("JSON");
    assert_eq!(served, tenure_server::openapi());
    assert_eq!(served["openapi"], "3.1.0");

    // Machines by their tokens, and people signed in with one role each.
    let mut callers: Vec<(Role, Caller)> = vec![
        (Role::It, Caller::Token(IT_TOKEN.into())),
        (Role::Hr, Caller::Token(HR_TOKEN.into())),
        (Role::Auditor, Caller::Token(AUDITOR_TOKEN.into())),
        (Role::Source, Caller::Token(SOURCE_TOKEN.into())),
    ];
    for role in [
        Role::Owner,
        Role::HrAdmin,
        Role::ItAdmin,
        Role::Operator,
        Role::Auditor,
    ] {
        let login = format!("person-{role}");
        let user = tenure_store::NewUser {
            tenant: tenure_tests::host::TENANT.into(),
            login: login.clone(),
            display_name: login.clone(),
            roles: vec![role],
            password_hash: Some(tenure_server::passwords::hash_password(PASSWORD).expect("hash")),
        };
        tenure_store::AccessStore::create_user(h.store.as_ref(), user, vec![])
            .await
            .expect("account");
        callers.push((role, sign_in(&h, &login).await));
    }
    let client = reqwest::Client::new();
    let mut checked = 0;
    for op in tenure_server::operations() {
        let Some(roles) = tenure_server::roles_of(&op.doc) else {
            continue;
        };
        let documented: Vec<&str> =
            served["paths"][op.path][op.method.as_str().to_ascii_lowercase()]["x-tenure-roles"]
                .as_array()
                .expect("roles in the description")
                .iter()
                .filter_map(Value::as_str)
                .collect();
        assert_eq!(documented, roles.iter().map(|r| r.as_str()).collect::<Vec<_>>());
        for (role, caller) in &mut callers {
            let method = Method::from_bytes(op.method.as_str().as_bytes()).expect("method");
            let request = client
                .request(method, format!("{}{}", h.base, filled(op.path)))
                // A body no route accepts: only the role decides whether the call is refused as a 403.
                .json(&json!({ "not a field": true }));
            let resp = caller.authorize(request).send().await.expect("request");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            let refused_for_role = status == 403 && body["error"]["field"] == "Authorization";
            assert_eq!(
                refused_for_role,
                !roles.contains(role),
                "{} {} as {}: {status} {body}",
                op.method,
                op.path,
                role.as_str()
            );
            // Signing out ended the session: sign in again for the next route.
            if let Caller::Session { login, .. } = caller
                && op.path == "/api/v1/session"
                && op.method == reqwest::Method::DELETE
            {
                *caller = sign_in(&h, &login.clone()).await;
            }
            checked += 1;
        }
    }
    assert!(checked >= 45 * callers.len(), "{checked} calls checked");
    h.stop().await;
}

const PASSWORD: &str = "a long enough passphrase";

/// Who calls: a token, or a person's session (cookie and CSRF token).
enum Caller {
    Token(String),
    Session {
        login: String,
        cookie: String,
        csrf: String,
    },
}

impl Caller {
    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Caller::Token(token) => request.bearer_auth(token),
            Caller::Session { cookie, csrf, .. } => request
                .header(reqwest::header::COOKIE, cookie)
                .header(tenure_server::CSRF_HEADER, csrf),
        }
    }
}

async fn sign_in(h: &TestHost, login: &str) -> Caller {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/session", h.base))
        .json(&json!({ "tenant": tenure_tests::host::TENANT, "login": login, "password": PASSWORD }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(resp.status().as_u16(), 200, "sign in as {login}");
    let cookie = resp
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_string();
    let body: Value = resp.json().await.expect("JSON");
    Caller::Session {
        login: login.into(),
        cookie,
        csrf: body["csrf_token"].as_str().expect("csrf").into(),
    }
}

/// The Schemathesis command the test command installs (`scripts/testbeds/schemathesis.sh`).
fn schemathesis() -> PathBuf {
    std::env::var_os("TENURE_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| tenure_plugin_test::workspace_root().join("target/tools/schemathesis-venv/bin/st"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_description() {
    let st = schemathesis();
    assert!(
        st.exists(),
        "{} is missing: run scripts/testbeds/schemathesis.sh install (scripts/test.sh does)",
        st.display()
    );
    let h = host().await;
    // Some state for the generated requests to find: a person with a job and an account.
    let (status, _) = h.post_event(&joiner("e-1", "Engineering"), "k-1").await;
    assert_eq!(status, 202);
    h.wait_idle(std::time::Duration::from_secs(30)).await;
    let jobs = h.get("/api/v1/jobs").await;
    let person = jobs[0]["person_key"]
        .as_str()
        .expect("a job's person")
        .to_string();
    let (status, draft) = h
        .request(
            Method::POST,
            "/api/v1/rule-sets",
            HR_TOKEN,
            Some(&json!({ "document": RULES, "message": "the same rules, as a draft" })),
            None,
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let version = draft["version"]["version"].as_i64().expect("the draft's version");
    // Path parameters that name things that exist, so generated requests reach the handlers'
    // logic rather than stopping at 404 (bodies and query parameters are still generated).
    let config = tempfile::tempdir().expect("temp dir");
    let config_file = config.path().join("schemathesis.toml");
    let config_dir = config.path().to_path_buf();
    std::fs::write(
        &config_file,
        format!(
            "[parameters]\n\"path.id\" = 1\n\"path.version\" = {version}\n\"path.person\" = {person:?}\n\
             \"path.source\" = \"api\"\n\"path.destination\" = \"sandbox\"\n\"path.name\" = \"sandbox\"\n"
        ),
    )
    .expect("write the config");

    let url = format!("{}{}", h.base, tenure_server::OPENAPI_PATH);
    let base = h.base.clone();
    // More examples for a deeper local run; the test command's default keeps CI short.
    let examples = std::env::var("TENURE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "15".into());
    let checks = std::env::var("TENURE_SCHEMATHESIS_CHECKS").unwrap_or_else(|_| {
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
            .into()
    });
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&st)
            // Its cache of failures goes to the run's own folder, not the repository.
            .current_dir(config_dir)
            .arg("--config-file")
            .arg(&config_file)
            .args(["run", &url, "--url", &base])
            .args(["--header", &format!("Authorization: Bearer {IT_TOKEN}")])
            .args(["--checks", &checks])
            .args(["--phases", "examples,coverage,fuzzing"])
            // One worker: Python 3.11's parser is not thread-safe under Hypothesis (a "recursion
            // depth mismatch" error of the tool itself, seen with two).
            .args(["--max-examples", &examples, "--workers", "1", "--seed", "22"])
            .args(["--request-timeout", "30"])
            .env("NO_COLOR", "1")
            .output()
            .expect("run schemathesis")
    })
    .await
    .expect("join");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "schemathesis found problems:\n{report}");
    // It ran every operation (none skipped for a description it could not read).
    let tested = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested:"))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert!(
        tested.is_some_and(|n| n + 1 >= tenure_server::operations().len()),
        "{report}"
    );
    h.stop().await;
}
