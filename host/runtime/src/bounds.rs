//! Caps on what a plugin returns, applied at the host boundary before anything
//! is stored, audited or logged. A plugin's memory limit bounds what it can
//! return only to that limit (128 MiB by default); these caps keep one bad or
//! hostile plugin from filling the audit, the operation rows, a job's last error
//! or the log. Text over its cap is cut at a character boundary and marked;
//! lists over theirs are cut; every cut is counted ([`truncations`]). What the
//! host relies on to find an account (an anchor) is refused instead of cut.

use crate::wit;
use std::sync::atomic::{AtomicU64, Ordering};

/// Summaries, error messages and trace reasons.
pub const MAX_MESSAGE: usize = 4 * 1024;
/// Attribute values and person fields.
pub const MAX_VALUE: usize = 64 * 1024;
/// Anchors: longer is refused (a cut anchor would name another account or none).
pub const MAX_ANCHOR: usize = 1024;
/// Items of any returned list (accounts, attributes, groups, events, trace entries).
pub const MAX_ITEMS: usize = 10_000;

static TRUNCATIONS: AtomicU64 = AtomicU64::new(0);

/// How many plugin-returned values this process has cut to their caps.
pub fn truncations() -> u64 {
    TRUNCATIONS.load(Ordering::Relaxed)
}

fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let removed = text.len() - max;
    let mut at = max;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.truncate(at);
    text.push_str(&format!("…[truncated by the host: {removed} bytes]"));
    TRUNCATIONS.fetch_add(1, Ordering::Relaxed);
}

fn cut_list<T>(items: &mut Vec<T>) {
    if items.len() > MAX_ITEMS {
        items.truncate(MAX_ITEMS);
        TRUNCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

fn cut_all(items: &mut Vec<String>, max: usize) {
    cut_list(items);
    items.iter_mut().for_each(|s| cut(s, max));
}

fn value(v: &mut wit::Value) {
    match v {
        wit::Value::Text(t) => cut(t, MAX_VALUE),
        wit::Value::Many(m) => cut_all(m, MAX_VALUE),
        wit::Value::Absent | wit::Value::Number(_) | wit::Value::Flag(_) => {}
    }
}

fn attributes(attrs: &mut Vec<wit::Attribute>) {
    cut_list(attrs);
    for a in attrs {
        cut(&mut a.name, MAX_MESSAGE);
        value(&mut a.value);
    }
}

/// Why a plugin's answer was refused rather than cut.
pub(crate) type Refused = String;

/// Something a plugin returns, capped in place.
pub(crate) trait Bounded {
    fn bound(&mut self) -> Result<(), Refused>;
}

fn anchor(a: &str) -> Result<(), Refused> {
    if a.len() > MAX_ANCHOR {
        return Err(format!(
            "returned an anchor of {} bytes; anchors may be at most {MAX_ANCHOR}",
            a.len()
        ));
    }
    Ok(())
}

impl Bounded for wit::PluginError {
    fn bound(&mut self) -> Result<(), Refused> {
        match self {
            wit::PluginError::Transient(m)
            | wit::PluginError::Unauthorized(m)
            | wit::PluginError::Conflict(m)
            | wit::PluginError::NotFound(m)
            | wit::PluginError::Permanent(m) => cut(m, MAX_MESSAGE),
            wit::PluginError::InvalidInput(i) => {
                cut(&mut i.field, MAX_MESSAGE);
                cut(&mut i.reason, MAX_MESSAGE);
            }
            wit::PluginError::RateLimited(_) => {}
        }
        Ok(())
    }
}

impl Bounded for wit::Outcome {
    fn bound(&mut self) -> Result<(), Refused> {
        cut(&mut self.summary, MAX_MESSAGE);
        match &self.anchor {
            Some(a) => anchor(a),
            None => Ok(()),
        }
    }
}

impl Bounded for Vec<wit::Account> {
    fn bound(&mut self) -> Result<(), Refused> {
        cut_list(self);
        for acc in self.iter_mut() {
            anchor(&acc.anchor)?;
            attributes(&mut acc.attributes);
            if let Some(c) = &mut acc.container {
                cut(c, MAX_VALUE);
            }
            cut_all(&mut acc.groups, MAX_VALUE);
            cut_all(&mut acc.licenses, MAX_VALUE);
            cut_all(&mut acc.app_assignments, MAX_VALUE);
            if let Some(e) = &mut acc.expires_at {
                cut(e, MAX_MESSAGE);
            }
        }
        Ok(())
    }
}

impl Bounded for wit::rules::Evaluation {
    fn bound(&mut self) -> Result<(), Refused> {
        cut_list(&mut self.accounts);
        for d in &mut self.accounts {
            cut(&mut d.destination, MAX_MESSAGE);
            attributes(&mut d.attributes);
            if let Some(c) = &mut d.container {
                cut(c, MAX_VALUE);
            }
            cut_all(&mut d.groups, MAX_VALUE);
            cut_all(&mut d.licenses, MAX_VALUE);
            cut_all(&mut d.app_assignments, MAX_VALUE);
            cut_list(&mut d.tickets);
            for t in &mut d.tickets {
                cut(&mut t.template, MAX_MESSAGE);
                cut_list(&mut t.fields);
                for (k, v) in &mut t.fields {
                    cut(k, MAX_MESSAGE);
                    cut(v, MAX_VALUE);
                }
            }
        }
        cut_list(&mut self.trace);
        for t in &mut self.trace {
            cut(&mut t.rule, MAX_MESSAGE);
            cut(&mut t.reason, MAX_MESSAGE);
            cut_list(&mut t.inputs);
            t.inputs.iter_mut().for_each(|(_, v)| value(v));
            cut_all(&mut t.contributed, MAX_MESSAGE);
        }
        Ok(())
    }
}

impl Bounded for Vec<wit::PersonEvent> {
    fn bound(&mut self) -> Result<(), Refused> {
        // Events are validated field by field at intake (lengths included); here only
        // their number is capped, so one answer cannot flood the intake.
        if self.len() > MAX_ITEMS {
            return Err(format!(
                "returned {} events at once; at most {MAX_ITEMS} (use the cursor to page)",
                self.len()
            ));
        }
        Ok(())
    }
}

impl Bounded for wit::source::PollResult {
    fn bound(&mut self) -> Result<(), Refused> {
        if let Some(c) = &self.next_cursor
            && c.len() > MAX_VALUE
        {
            return Err(format!(
                "returned a cursor of {} bytes; at most {MAX_VALUE}",
                c.len()
            ));
        }
        self.events.bound()
    }
}

impl Bounded for wit::connector::Capabilities {
    fn bound(&mut self) -> Result<(), Refused> {
        cut_all(&mut self.matching_keys, MAX_MESSAGE);
        cut_all(&mut self.unique_attributes, MAX_MESSAGE);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_marked() {
        let before = truncations();
        let mut o = wit::Outcome {
            anchor: Some("a".into()),
            summary: "é".repeat(50 * 1024 * 1024 / 2),
        };
        o.bound().unwrap();
        assert!(o.summary.len() < MAX_MESSAGE + 64, "{}", o.summary.len());
        assert!(o.summary.ends_with("bytes]"));
        assert!(truncations() > before);
        let mut e = wit::PluginError::Permanent("x".repeat(10 * 1024 * 1024));
        e.bound().unwrap();
        let wit::PluginError::Permanent(m) = e else {
            unreachable!()
        };
        assert!(m.len() < MAX_MESSAGE + 64);
    }

    #[test]
    fn an_oversized_anchor_is_refused_not_cut() {
        let mut o = wit::Outcome {
            anchor: Some("a".repeat(MAX_ANCHOR + 1)),
            summary: String::new(),
        };
        assert!(o.bound().unwrap_err().contains("anchor"));
    }
}
