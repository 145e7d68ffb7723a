//! Operations an earlier attempt of a job started but never recorded: the intent
//! was written before the destination was called, and the process died before
//! the answer was written. On the next attempt each is compared with the live
//! account: what took effect is recorded as applied (a group granted becomes a
//! group Tenure manages, so a move or a leaver takes it away again) and audited;
//! what did not is marked abandoned, and the new plan does it again.

use super::JobRun;
use crate::Failure;
use crate::audit_events::OpRecovered;
use tenure_runtime::wit;
use tenure_store::{
    FinishedOp, Link, LinkUpdate, OpResult, OperationKind as Kind, OperationRow, OperationStatus,
};

/// Whether an interrupted operation took effect, judged from the live account.
fn took_effect(op: &OperationRow, current: Option<&wit::Account>) -> Option<bool> {
    let target = op.target.as_deref().unwrap_or_default();
    let has_group = |g: &str| current.is_some_and(|a| a.groups.iter().any(|x| x == g));
    Some(match op.kind {
        Kind::Create => current.is_some(),
        Kind::AddMember => has_group(target),
        Kind::RemoveMember => current.is_some() && !has_group(target),
        Kind::Delete => current.is_none(),
        Kind::Disable => current.is_some_and(|a| !a.enabled),
        Kind::Enable => current.is_some_and(|a| a.enabled),
        Kind::Move => current.is_some_and(|a| a.container.as_deref() == Some(target)),
        // An update's or a ticket's effect cannot be read back: it is planned again.
        Kind::Update | Kind::OpenTicket => return None,
    })
}

/// The link once an operation that took effect is counted.
fn counted(link: Option<Link>, op: &OperationRow) -> Option<Link> {
    let target = op.target.clone().unwrap_or_default();
    match op.kind {
        Kind::Delete => None,
        Kind::AddMember => link.map(|mut l| {
            if !l.managed_groups.contains(&target) {
                l.managed_groups.push(target);
            }
            l
        }),
        Kind::RemoveMember => link.map(|mut l| {
            l.managed_groups.retain(|g| *g != target);
            l
        }),
        _ => link,
    }
}

impl JobRun<'_> {
    /// The operations earlier attempts left started (read once per attempt, only
    /// on a retry: a first attempt has none).
    async fn interrupted(&mut self) -> Result<&mut Vec<OperationRow>, Failure> {
        if self.interrupted.is_none() {
            let ops = if self.job.attempt > 1 {
                self.p
                    .store
                    .operations(self.job.id)
                    .await?
                    .into_iter()
                    .filter(|o| o.status == OperationStatus::Started)
                    .collect()
            } else {
                Vec::new()
            };
            self.interrupted = Some(ops);
        }
        Ok(self.interrupted.get_or_insert_with(Vec::new))
    }

    /// Records what the interrupted operations of `destination` did to the live
    /// account, and returns the link corrected for them.
    pub(super) async fn recover_interrupted(
        &mut self,
        destination: &str,
        current: Option<&wit::Account>,
        mut link: Option<Link>,
    ) -> Result<Option<Link>, Failure> {
        let ops: Vec<OperationRow> = {
            let all = self.interrupted().await?;
            let (mine, rest) = std::mem::take(all)
                .into_iter()
                .partition(|o| o.destination == destination);
            *all = rest;
            mine
        };
        for op in ops {
            let effect = took_effect(&op, current);
            let before = link.clone();
            if effect == Some(true) {
                link = counted(link, &op);
            }
            let status = match effect {
                Some(true) => OperationStatus::Done,
                Some(false) | None => OperationStatus::Abandoned,
            };
            let note = match effect {
                Some(true) => "recovered: it took effect before the previous attempt could record it",
                Some(false) => "recovered: it did not take effect; planned again",
                None => "recovered: its effect cannot be read back; planned again against the live account",
            };
            let rec = self.record(
                Some(destination),
                &OpRecovered {
                    effect,
                    op: op.kind,
                    key: &op.op_key,
                    target: &op.target,
                    status,
                    recovered: true,
                    note,
                },
            );
            let update = (link != before).then(|| LinkUpdate {
                tenant: self.job.tenant.clone(),
                destination: destination.to_string(),
                person_key: self.job.person_key.clone(),
                link: link.clone(),
            });
            // Written with the job's next write (the new plan's intents, or the attempt's end).
            self.unwritten_ops.push(FinishedOp {
                op_id: op.id,
                result: OpResult {
                    status,
                    detail: note.into(),
                    anchor: None,
                    now_ms: self.p.now(),
                },
                link: update,
                audit: vec![rec],
            });
        }
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: &str, target: &str) -> OperationRow {
        OperationRow {
            id: 1,
            job_id: 1,
            destination: "d".into(),
            op_key: format!("{kind}/{target}"),
            kind: kind.parse().expect("a kind"),
            target: Some(target.into()),
            status: OperationStatus::Started,
            detail: None,
            anchor: None,
            started_ms: 0,
            finished_ms: None,
        }
    }

    fn account(groups: &[&str], enabled: bool) -> wit::Account {
        wit::Account {
            anchor: "a".into(),
            attributes: vec![],
            container: Some("OU=Sales".into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            licenses: vec![],
            app_assignments: vec![],
            enabled,
            expires_at: None,
        }
    }

    #[test]
    fn a_grant_that_reached_the_destination_becomes_tenures_to_remove() {
        let acc = account(&["Sales"], true);
        let link = Some(Link {
            anchor: "a".into(),
            managed_groups: vec!["Eng".into()],
        });
        assert_eq!(took_effect(&op("add-member", "Sales"), Some(&acc)), Some(true));
        let after = counted(link.clone(), &op("add-member", "Sales")).unwrap();
        assert_eq!(after.managed_groups, ["Eng", "Sales"]);
        // A removal that landed is no longer Tenure's; one that did not stays.
        assert_eq!(took_effect(&op("remove-member", "Eng"), Some(&acc)), Some(true));
        assert_eq!(
            counted(link, &op("remove-member", "Eng")).unwrap().managed_groups,
            Vec::<String>::new()
        );
        assert_eq!(
            took_effect(&op("remove-member", "Sales"), Some(&acc)),
            Some(false)
        );
        assert_eq!(took_effect(&op("add-member", "Eng"), Some(&acc)), Some(false));
        assert_eq!(took_effect(&op("disable", "a"), Some(&acc)), Some(false));
        assert_eq!(took_effect(&op("move", "OU=Sales"), Some(&acc)), Some(true));
        assert_eq!(took_effect(&op("delete", "a"), None), Some(true));
        assert_eq!(took_effect(&op("update", "title"), Some(&acc)), None);
    }
}
