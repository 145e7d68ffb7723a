//! Where a poll stands. A sweep reads every page of opportunities updated since
//! `since`, following Lever's `next` offsets; only when it ends does `since` move
//! past the newest `updatedAt` it saw. Within a page, `after` is the last
//! opportunity already handled, so a page whose hires take longer than one call
//! is finished by the next call instead of being started again.
//!
//! Text form: `since` between sweeps, `since|offset|newest|after` within one
//! (cursors of the older three-part form still read).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sweep {
    pub since: i64,
    /// The page being read (none: the first).
    pub offset: Option<String>,
    /// The newest `updatedAt` seen in this sweep.
    pub newest: i64,
    /// The last opportunity of the current page already handled.
    pub after: Option<String>,
}

impl Sweep {
    pub fn parse(cursor: Option<&str>) -> Sweep {
        let mut parts = cursor.unwrap_or("0").splitn(4, '|');
        let since = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let offset = parts.next().filter(|o| !o.is_empty()).map(str::to_string);
        // Nothing seen yet is one before the start.
        let newest = parts.next().and_then(|p| p.parse().ok()).unwrap_or(since - 1);
        let after = parts.next().filter(|a| !a.is_empty()).map(str::to_string);
        Sweep {
            since,
            offset,
            newest,
            after,
        }
    }

    /// The cursor to store.
    pub fn text(&self) -> String {
        match (&self.offset, &self.after) {
            (None, None) if self.newest < self.since => self.since.to_string(),
            _ => format!(
                "{}|{}|{}|{}",
                self.since,
                self.offset.as_deref().unwrap_or(""),
                self.newest,
                self.after.as_deref().unwrap_or("")
            ),
        }
    }

    /// The cursor once the sweep has read its last page: past the newest update seen
    /// (where it started when nothing was new).
    pub fn finished(&self) -> String {
        self.since.max(self.newest.saturating_add(1)).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_old_ones_still_read() {
        let s = Sweep::parse(Some("100|page2|150|opp-7"));
        assert_eq!(s.after.as_deref(), Some("opp-7"));
        assert_eq!(Sweep::parse(Some(&s.text())), s);
        let old = Sweep::parse(Some("100|page2|150"));
        assert_eq!((old.offset.as_deref(), old.after), (Some("page2"), None));
        let fresh = Sweep::parse(None);
        assert_eq!((fresh.since, fresh.text()), (0, "0".to_string()));
        assert_eq!(Sweep::parse(Some("100|p|150|")).finished(), "151");
        assert_eq!(Sweep::parse(Some("100")).finished(), "100");
    }
}
