//! What the ITSM fakes share: a request budget per window (the desk's rate limit), a check of
//! Basic credentials, and an answer to lose on purpose (the request is carried out, the
//! answer never reaches the caller), as a dropped connection would.

use axum::http::HeaderMap;
use base64::Engine;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A request budget per window.
#[derive(Debug, Default)]
pub struct Budget {
    limit: Option<(u64, Duration)>,
    window: Option<(Instant, u64)>,
    /// Requests answered 429.
    pub throttled: usize,
}

/// What the budget says of one request.
#[derive(Debug, Clone, Copy)]
pub struct Spent {
    pub limit: u64,
    pub remaining: u64,
    /// Whole seconds until the window resets (at least 1).
    pub reset_in_s: u64,
    /// The request is over the limit.
    pub over: bool,
}

impl Spent {
    /// The window's reset as UNIX seconds.
    pub fn reset_at(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            + self.reset_in_s
    }
}

impl Budget {
    /// At most `limit` requests per `window`.
    pub fn set(&mut self, limit: u64, window: Duration) {
        self.limit = Some((limit, window));
        self.window = None;
    }

    /// Counts a request; none when no limit is set.
    pub fn spend(&mut self) -> Option<Spent> {
        let (limit, window) = self.limit?;
        let now = Instant::now();
        let (start, used) = match self.window {
            Some((start, used)) if now.duration_since(start) < window => (start, used + 1),
            _ => (now, 1),
        };
        self.window = Some((start, used));
        let left = window.saturating_sub(now.duration_since(start));
        let over = used > limit;
        if over {
            self.throttled += 1;
        }
        Some(Spent {
            limit,
            remaining: limit.saturating_sub(used),
            reset_in_s: left.as_secs_f64().ceil().max(1.0) as u64,
            over,
        })
    }
}

/// The `(user, password)` of a Basic `Authorization` header.
pub fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Answers to lose: each is the start of a `METHOD path` whose next answer is replaced by a
/// 502 after the request was carried out.
#[derive(Debug, Default)]
pub struct Losses {
    pending: Vec<String>,
    /// Answers lost so far.
    pub lost: usize,
}

impl Losses {
    pub fn add(&mut self, request_start: &str) {
        self.pending.push(request_start.to_string());
    }

    /// Whether the answer to `request` (`METHOD path`) is to be lost (once per entry).
    pub fn take(&mut self, request: &str) -> bool {
        match self.pending.iter().position(|p| request.starts_with(p.as_str())) {
            Some(at) => {
                self.pending.remove(at);
                self.lost += 1;
                true
            }
            None => false,
        }
    }
}
