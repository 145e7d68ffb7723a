//! Fakes of the two chat webhooks notifications post to, with their documented answers:
//!
//! - a Slack incoming webhook (`POST /services/T…/B…/…`): `{"text": …}` (or `blocks`) answered
//!   200 `ok`; a payload without text 400 `no_text`, one that is not JSON 400
//!   `invalid_payload`; a removed webhook 404 `no_service`; past the rate (about one message
//!   a second) 429 with `Retry-After`;
//! - a Microsoft Teams workflow webhook (`POST /workflows/…`): a `message` whose attachment is
//!   an Adaptive Card, answered 202; anything else 400 with a workflow error body; past the
//!   budget 429 with `Retry-After`.
//!
//! Every post is kept for the test to read.

use crate::fake_quota::Budget;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The fakes' state.
#[derive(Default)]
pub struct Chat {
    /// Accepted Slack payloads.
    pub slack: Vec<Json>,
    /// Accepted Teams payloads.
    pub teams: Vec<Json>,
    pub budget: Budget,
    /// Webhooks answered as removed.
    pub removed: Vec<String>,
}

type Shared = Arc<Mutex<Chat>>;

/// The running fakes (one server, both webhooks).
pub struct FakeChat {
    pub url: String,
    state: Shared,
}

impl FakeChat {
    pub async fn start() -> FakeChat {
        let state: Shared = Arc::default();
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        FakeChat {
            url: crate::serve_on_loopback(app).await,
            state,
        }
    }

    /// A Slack incoming webhook URL.
    pub fn slack_url(&self, name: &str) -> String {
        format!("{}/services/T0001/B0001/{name}", self.url)
    }

    /// A tenant pipeline's TOML for the Slack channel `it-slack` (this fake's `it` webhook)
    /// and a rule that posts `on` to it.
    pub fn slack_rule_toml(&self, on: &str) -> String {
        format!(
            "[notifications.channels.it-slack]\nkind = \"slack\"\nwebhook_url = \"{}\"\n\
             allow_private_network = true\n\
             [[notifications.rules]]\non = \"{on}\"\nchannel = \"it-slack\"\n",
            self.slack_url("it")
        )
    }

    /// A Teams workflow webhook URL.
    pub fn teams_url(&self, name: &str) -> String {
        format!("{}/workflows/{name}/triggers/manual/paths/invoke", self.url)
    }

    pub fn state(&self) -> MutexGuard<'_, Chat> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// At most `limit` posts per `window`; past it, 429 with `Retry-After`.
    pub fn set_rate_limit(&self, limit: u64, window: Duration) {
        self.state().budget.set(limit, window);
    }
}

async fn handle(State(state): State<Shared>, uri: Uri, body: Bytes) -> Response {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let path = uri.path().to_string();
    if s.removed.iter().any(|r| path.contains(r.as_str())) {
        return (StatusCode::NOT_FOUND, "no_service").into_response();
    }
    if let Some(b) = s.budget.spend().filter(|b| b.over) {
        let mut r = (StatusCode::TOO_MANY_REQUESTS, "rate_limited").into_response();
        r.headers_mut()
            .insert("retry-after", HeaderValue::from(b.reset_in_s));
        return r;
    }
    let Ok(payload) = serde_json::from_slice::<Json>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    if path.starts_with("/services/") {
        let has_text =
            payload["text"].as_str().is_some_and(|t| !t.is_empty()) || payload["blocks"].is_array();
        if !has_text {
            return (StatusCode::BAD_REQUEST, "no_text").into_response();
        }
        s.slack.push(payload);
        return (StatusCode::OK, "ok").into_response();
    }
    if path.starts_with("/workflows/") {
        let card = &payload["attachments"][0];
        let valid = payload["type"] == "message"
            && card["contentType"] == "application/vnd.microsoft.card.adaptive"
            && card["content"]["type"] == "AdaptiveCard"
            && card["content"]["body"].is_array();
        if !valid {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": {"code": "InvalidRequestContent",
                    "message": concat!("The input body for trigger 'manual' of type 'Request' ",
                        "did not match its schema")}})),
            )
                .into_response();
        }
        s.teams.push(payload);
        return StatusCode::ACCEPTED.into_response();
    }
    (StatusCode::NOT_FOUND, "no_service").into_response()
}
