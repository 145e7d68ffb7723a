//! What the replay servers ([`crate::replay`] for HTTP, [`crate::ldap_replay`] for LDAP) share:
//! recordings answered strictly in order, the requests that matched none, and the server task
//! that stops with its handle.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// Recordings answered in order, and the requests that matched none (described).
pub(crate) struct Tape<E> {
    pending: VecDeque<E>,
    unexpected: Vec<String>,
}

/// A tape shared between a server and the handle that reads its problems.
pub(crate) type SharedTape<E> = Arc<Mutex<Tape<E>>>;

impl<E> Tape<E> {
    pub fn shared(recordings: Vec<E>) -> SharedTape<E> {
        Arc::new(Mutex::new(Tape {
            pending: recordings.into(),
            unexpected: vec![],
        }))
    }

    pub fn lock(tape: &SharedTape<E>) -> MutexGuard<'_, Tape<E>> {
        tape.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next recording, taken when `matches` accepts the request; otherwise why not (`what`
    /// names the recordings when none is left). The caller reports a refusal with
    /// [`Tape::unexpected`].
    pub fn take(&mut self, what: &str, matches: impl FnOnce(&E) -> Result<(), String>) -> Result<E, String> {
        let next = self
            .pending
            .front()
            .ok_or_else(|| format!("no more recorded {what}"))?;
        matches(next)?;
        self.pending
            .pop_front()
            .ok_or_else(|| format!("no more recorded {what}"))
    }

    /// Notes a request that matched nothing.
    pub fn unexpected(&mut self, line: String) {
        self.unexpected.push(line);
    }

    /// What went wrong: requests that matched no recording, then each recording never
    /// requested (`never` describes it).
    pub fn problems(&self, never: impl Fn(&E) -> String) -> Vec<String> {
        let mut out = self.unexpected.clone();
        out.extend(self.pending.iter().map(never));
        out
    }
}

/// A replay server's task; it stops when dropped.
pub(crate) struct ServerTask(pub tokio::task::JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_are_taken_in_order_and_the_rest_reported() {
        let shared = Tape::shared(vec![1, 2, 3]);
        let mut tape = Tape::lock(&shared);
        assert_eq!(tape.take("numbers", |_| Ok(())), Ok(1));
        let refused = tape.take("numbers", |n| Err(format!("expected {n}")));
        assert_eq!(refused, Err("expected 2".to_string()), "a refusal leaves it next");
        tape.unexpected("sent 9".into());
        assert_eq!(tape.take("numbers", |_| Ok(())), Ok(2));
        assert_eq!(
            tape.problems(|n| format!("{n} never requested")),
            ["sent 9", "3 never requested"]
        );
        assert_eq!(tape.take("numbers", |_| Ok(())), Ok(3));
        assert_eq!(
            tape.take("numbers", |_| Ok(())),
            Err("no more recorded numbers".to_string())
        );
    }
}
