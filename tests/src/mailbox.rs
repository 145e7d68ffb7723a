//! The mailbox of the test SMTP server (`scripts/testbeds/smtp.sh`): one JSON line per message
//! received, with the listener, whether the session was encrypted, the login and the envelope.

use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The messages received for `recipient` so far.
pub fn messages_to(env: &HashMap<String, String>, recipient: &str) -> Vec<Value> {
    let path = &env["TENURE_TEST_SMTP_MAILBOX"];
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| {
            m["rcpt_tos"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r.as_str() == Some(recipient)))
        })
        .collect()
}

/// Seconds since 1970, as the mailbox stamps messages (to read only a test's own).
pub fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Waits (30 s at most) until a message for `recipient` received after `since_s` arrived; it.
pub async fn wait_for_after(env: &HashMap<String, String>, recipient: &str, since_s: f64) -> Value {
    let started = Instant::now();
    loop {
        if let Some(m) = messages_to(env, recipient)
            .into_iter()
            .find(|m| m["received"].as_f64().is_some_and(|r| r >= since_s))
        {
            return m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no message for {recipient} arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (30 s at most) until `count` messages for `recipient` arrived; them.
pub async fn wait_for(env: &HashMap<String, String>, recipient: &str, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let got = messages_to(env, recipient);
        if got.len() >= count {
            return got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{count} message(s) for {recipient} never arrived (got {})",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
