//! The planner: desired state against the current account, into the fewest
//! operations, in dependency order (an account before its memberships; a
//! disable before anything else on the way out; an enable last on the way in).

use crate::config::Deprovision;
use serde::Serialize;
use tenure_runtime::AccessField;
use tenure_runtime::wit::{self, connector::OperationKind as Supported};
use tenure_store::{Link, OperationKind};

/// The placeholder anchor of operations that follow a create in the same plan.
pub const CREATED: &str = "$created";

/// One planned change.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlannedOp {
    /// Stable within a job: the same change has the same key on every attempt.
    pub key: String,
    pub kind: OperationKind,
    pub target: Option<String>,
    /// Disable, delete, move or group removal: counted by the mass-change guard.
    pub destructive: bool,
    #[serde(skip)]
    pub op: wit::Operation,
}

/// The plan for one destination.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub operations: Vec<PlannedOp>,
    /// Changes the connector cannot make (it does not list the operation).
    pub unsupported: Vec<String>,
}

fn value_eq(a: &wit::Value, b: &wit::Value) -> bool {
    match (a, b) {
        (wit::Value::Many(x), wit::Value::Many(y)) => {
            let (mut x, mut y) = (x.clone(), y.clone());
            x.sort();
            y.sort();
            x == y
        }
        (wit::Value::Text(t), wit::Value::Many(m)) | (wit::Value::Many(m), wit::Value::Text(t)) => {
            m.len() == 1 && m[0] == *t
        }
        (wit::Value::Number(n), wit::Value::Text(t)) | (wit::Value::Text(t), wit::Value::Number(n)) => {
            t == &n.to_string()
        }
        _ => a == b,
    }
}

/// What an operation is, in the connector's terms and in the store's.
fn op_kind(op: &wit::Operation) -> (Supported, OperationKind) {
    match op {
        wit::Operation::Create(_) => (Supported::Create, OperationKind::Create),
        wit::Operation::Update(_) => (Supported::Update, OperationKind::Update),
        wit::Operation::Enable(_) => (Supported::Enable, OperationKind::Enable),
        wit::Operation::Disable(_) => (Supported::Disable, OperationKind::Disable),
        wit::Operation::Move(_) => (Supported::Move, OperationKind::Move),
        wit::Operation::AddMember(_) => (Supported::AddMember, OperationKind::AddMember),
        wit::Operation::RemoveMember(_) => (Supported::RemoveMember, OperationKind::RemoveMember),
        wit::Operation::Delete(_) => (Supported::Delete, OperationKind::Delete),
        wit::Operation::OpenTicket(_) => (Supported::OpenTicket, OperationKind::OpenTicket),
    }
}

/// What a connector can do: its own `describe` answer, and the access fields its manifest says
/// the destination keeps.
#[derive(Debug, Clone)]
pub struct ConnectorCaps {
    pub described: wit::connector::Capabilities,
    pub keeps: Vec<AccessField>,
}

impl std::ops::Deref for ConnectorCaps {
    type Target = wit::connector::Capabilities;
    fn deref(&self) -> &Self::Target {
        &self.described
    }
}

/// What a destination can take: the operations its connector supports and the access fields it
/// keeps.
#[derive(Debug, Clone, Copy)]
pub struct Can<'a> {
    pub operations: &'a [Supported],
    pub keeps: &'a [AccessField],
}

impl Can<'_> {
    /// A ticket desk (ServiceNow, Freshservice): the connector only opens tickets, so the
    /// destination holds no account to look up, create or deprovision.
    pub fn tickets_only(&self) -> bool {
        !self.operations.is_empty() && self.operations.iter().all(|o| *o == Supported::OpenTicket)
    }
}

impl ConnectorCaps {
    /// What the destination can take.
    pub fn can(&self) -> Can<'_> {
        Can {
            operations: &self.described.operations,
            keeps: &self.keeps,
        }
    }
}

struct Builder<'a> {
    destination: &'a str,
    supported: &'a [Supported],
    keeps: &'a [AccessField],
    plan: Plan,
}

impl Builder<'_> {
    fn push(&mut self, key: String, target: Option<String>, op: wit::Operation) {
        let (needed, kind) = op_kind(&op);
        if !self.supported.contains(&needed) {
            self.plan.unsupported.push(
                format!("{kind} {}", target.as_deref().unwrap_or(""))
                    .trim()
                    .to_string(),
            );
            return;
        }
        self.plan.operations.push(PlannedOp {
            key: format!("{}/{key}", self.destination),
            kind,
            target,
            destructive: kind.is_destructive(),
            op,
        });
    }

    /// Whether the destination keeps `field`; if not, a wanted value is reported unsupported.
    fn keeps(&mut self, field: AccessField, wanted: &[String]) -> bool {
        if self.keeps.contains(&field) {
            return true;
        }
        if !wanted.is_empty() {
            self.plan
                .unsupported
                .push(format!("{} {}", field.as_str(), wanted.join(",")));
        }
        false
    }

    /// A create without the access fields the destination does not keep (reported instead).
    fn creatable(&mut self, want: &wit::DesiredAccount) -> wit::DesiredAccount {
        let mut create = want.clone();
        create.groups.clear();
        create.tickets.clear();
        if !self.keeps(AccessField::Licenses, &want.licenses) {
            create.licenses.clear();
        }
        if !self.keeps(AccessField::AppAssignments, &want.app_assignments) {
            create.app_assignments.clear();
        }
        let expiry: Vec<String> = want.expires_at.iter().cloned().collect();
        if !self.keeps(AccessField::Expiry, &expiry) {
            create.expires_at = None;
        }
        create
    }

    fn tickets(&mut self, desired: &wit::DesiredAccount) {
        for (i, t) in desired.tickets.iter().enumerate() {
            self.push(
                format!("ticket/{}/{i}", t.template),
                Some(t.template.clone()),
                wit::Operation::OpenTicket(t.clone()),
            );
        }
    }
}

/// Plans one destination. `current` is the account the person is (or will be) linked to.
/// `person_left`: the person is terminated, so a missing account is never created for them
/// (never provisioned, or deleted after the grace period).
pub fn plan(
    destination: &str,
    desired: Option<&wit::DesiredAccount>,
    current: Option<&wit::Account>,
    link: Option<&Link>,
    can: Can<'_>,
    deprovision: Deprovision,
    person_left: bool,
) -> Plan {
    let mut b = Builder {
        destination,
        supported: can.operations,
        keeps: can.keeps,
        plan: Plan::default(),
    };
    if can.tickets_only() {
        if let Some(want) = desired {
            b.tickets(want);
        }
        return b.plan;
    }
    match (desired, current) {
        (None, None) => {}
        (None, Some(acc)) => {
            // Only accounts Tenure manages are ever deprovisioned.
            if link.is_some_and(|l| l.anchor == acc.anchor) {
                match deprovision {
                    Deprovision::Disable if acc.enabled => b.push(
                        "disable".into(),
                        Some(acc.anchor.clone()),
                        wit::Operation::Disable(acc.anchor.clone()),
                    ),
                    Deprovision::Delete => b.push(
                        "delete".into(),
                        Some(acc.anchor.clone()),
                        wit::Operation::Delete(acc.anchor.clone()),
                    ),
                    _ => {}
                }
            }
        }
        (Some(want), None) if person_left && !want.enabled => {}
        (Some(want), None) => {
            let create = b.creatable(want);
            b.push("create".into(), None, wit::Operation::Create(create));
            for g in &want.groups {
                b.push(
                    format!("add/{g}"),
                    Some(g.clone()),
                    wit::Operation::AddMember(wit::MemberChange {
                        anchor: CREATED.into(),
                        group: g.clone(),
                    }),
                );
            }
            b.tickets(want);
        }
        (Some(want), Some(acc)) => {
            let anchor = acc.anchor.clone();
            if !want.enabled && acc.enabled {
                b.push(
                    "disable".into(),
                    Some(anchor.clone()),
                    wit::Operation::Disable(anchor.clone()),
                );
            }
            let changes: Vec<wit::Attribute> = want
                .attributes
                .iter()
                .filter(|w| {
                    let have = acc.attributes.iter().find(|a| a.name == w.name).map(|a| &a.value);
                    match (&w.value, have) {
                        // An empty text is no value: LDAP cannot even store one.
                        (wit::Value::Absent, None | Some(wit::Value::Absent)) => false,
                        (wit::Value::Text(t), None | Some(wit::Value::Absent)) if t.is_empty() => false,
                        (_, None) => true,
                        (want, Some(have)) => !value_eq(want, have),
                    }
                })
                .cloned()
                .collect();
            let mut changes = changes;
            changes.extend(access_changes(&mut b, want, acc));
            if !changes.is_empty() {
                let names = changes
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",");
                b.push(
                    "update".into(),
                    Some(names),
                    wit::Operation::Update(wit::AttributeChange {
                        anchor: anchor.clone(),
                        changes,
                    }),
                );
            }
            if let Some(container) = &want.container
                && acc.container.as_ref() != Some(container)
            {
                b.push(
                    "move".into(),
                    Some(container.clone()),
                    wit::Operation::Move(wit::MoveRequest {
                        anchor: anchor.clone(),
                        container: container.clone(),
                    }),
                );
            }
            for g in want.groups.iter().filter(|g| !acc.groups.contains(g)) {
                b.push(
                    format!("add/{g}"),
                    Some(g.clone()),
                    wit::Operation::AddMember(wit::MemberChange {
                        anchor: anchor.clone(),
                        group: g.clone(),
                    }),
                );
            }
            // Groups granted outside Tenure are never removed.
            let managed = link.map(|l| l.managed_groups.as_slice()).unwrap_or_default();
            for g in acc
                .groups
                .iter()
                .filter(|g| !want.groups.contains(g) && managed.contains(g))
            {
                b.push(
                    format!("remove/{g}"),
                    Some(g.clone()),
                    wit::Operation::RemoveMember(wit::MemberChange {
                        anchor: anchor.clone(),
                        group: g.clone(),
                    }),
                );
            }
            if want.enabled && !acc.enabled {
                b.push(
                    "enable".into(),
                    Some(anchor.clone()),
                    wit::Operation::Enable(anchor),
                );
            }
            b.tickets(want);
        }
    }
    b.plan
}

/// The ticket field the host adds to every ticket it asks a connector to open: a key that is
/// the same on every attempt of the job (the SDK's `reserved::TICKET_KEY`), so a connector can
/// find a ticket whose answer was lost instead of opening a second one.
pub const TICKET_KEY: &str = "tenure-ticket-key";

/// The key a followed ticket is looked up by at its desk (the SDK's `reserved::TICKET_NUMBER`):
/// the answer is the ticket as an account, `enabled` while it is open.
pub const TICKET_NUMBER: &str = "tenure-ticket-number";
/// The attribute that carries the desk's word for a followed ticket's state.
pub const TICKET_STATE: &str = "ticket-state";
/// The key a desk checks a rule set's ticket template by at publish (the SDK's
/// `reserved::TICKET_CHECK`): the template as JSON, answered by no account or the field's error.
pub const TICKET_CHECK: &str = "tenure-ticket-check";

/// Reserved attributes for the fields that have no operation of their own
/// (the SDK's `reserved` module): expiry, licenses and app assignments.
pub const EXPIRES_AT: &str = "expires-at";
pub const LICENSES: &str = "licenses";
pub const APP_ASSIGNMENTS: &str = "app-assignments";

fn same_set(a: &[String], b: &[String]) -> bool {
    let (mut x, mut y) = (a.to_vec(), b.to_vec());
    x.sort();
    x.dedup();
    y.sort();
    y.dedup();
    x == y
}

/// Expiry, license and app-assignment differences, as reserved attribute changes (for the
/// fields the destination keeps; the others are reported unsupported).
fn access_changes(
    b: &mut Builder<'_>,
    want: &wit::DesiredAccount,
    acc: &wit::Account,
) -> Vec<wit::Attribute> {
    let mut out = Vec::new();
    let expiry: Vec<String> = want.expires_at.iter().cloned().collect();
    if want.expires_at != acc.expires_at && b.keeps(AccessField::Expiry, &expiry) {
        out.push(wit::Attribute {
            name: EXPIRES_AT.into(),
            value: want
                .expires_at
                .clone()
                .map_or(wit::Value::Absent, wit::Value::Text),
        });
    }
    if !same_set(&want.licenses, &acc.licenses) && b.keeps(AccessField::Licenses, &want.licenses) {
        out.push(wit::Attribute {
            name: LICENSES.into(),
            value: wit::Value::Many(want.licenses.clone()),
        });
    }
    if !same_set(&want.app_assignments, &acc.app_assignments)
        && b.keeps(AccessField::AppAssignments, &want.app_assignments)
    {
        out.push(wit::Attribute {
            name: APP_ASSIGNMENTS.into(),
            value: wit::Value::Many(want.app_assignments.clone()),
        });
    }
    out
}

/// What an operation would change, for the report (attribute changes with their values).
pub fn describe(op: &PlannedOp) -> String {
    match &op.op {
        wit::Operation::Update(c) => {
            let changes: Vec<String> = c
                .changes
                .iter()
                .map(|a| {
                    format!(
                        "{} -> {}",
                        a.name,
                        serde_json::to_string(&a.value).unwrap_or_default()
                    )
                })
                .collect();
            format!("update {}", changes.join(", "))
        }
        _ => format!("{} {}", op.kind, op.target.as_deref().unwrap_or(""))
            .trim()
            .to_string(),
    }
}

/// A plan of one deletion (a grace period that ran out).
pub fn delete(destination: &str, anchor: &str, supported: &[Supported]) -> Plan {
    let mut b = Builder {
        destination,
        supported,
        keeps: &[],
        plan: Plan::default(),
    };
    b.push(
        "delete".into(),
        Some(anchor.to_string()),
        wit::Operation::Delete(anchor.to_string()),
    );
    b.plan
}

/// The link after an operation succeeded.
pub fn next_link(link: Option<Link>, op: &wit::Operation, created_anchor: Option<&str>) -> Option<Link> {
    match op {
        wit::Operation::Create(_) => created_anchor.map(|a| Link {
            anchor: a.to_string(),
            managed_groups: vec![],
        }),
        wit::Operation::Delete(_) => None,
        wit::Operation::AddMember(m) => link.map(|mut l| {
            if !l.managed_groups.contains(&m.group) {
                l.managed_groups.push(m.group.clone());
            }
            l
        }),
        wit::Operation::RemoveMember(m) => link.map(|mut l| {
            l.managed_groups.retain(|g| *g != m.group);
            l
        }),
        _ => link,
    }
}

/// Replaces the `$created` placeholder with the anchor a create returned.
pub fn bind_anchor(op: &mut wit::Operation, anchor: &str) {
    let slot = match op {
        wit::Operation::Update(c) => &mut c.anchor,
        wit::Operation::Enable(a) | wit::Operation::Disable(a) | wit::Operation::Delete(a) => a,
        wit::Operation::Move(m) => &mut m.anchor,
        wit::Operation::AddMember(m) | wit::Operation::RemoveMember(m) => &mut m.anchor,
        wit::Operation::Create(_) | wit::Operation::OpenTicket(_) => return,
    };
    if slot == CREATED {
        *slot = anchor.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Supported] = &[
        Supported::Create,
        Supported::Update,
        Supported::Enable,
        Supported::Disable,
        Supported::Move,
        Supported::AddMember,
        Supported::RemoveMember,
        Supported::Delete,
        Supported::OpenTicket,
    ];

    const KEEPS_ALL: &[AccessField] = &[
        AccessField::Licenses,
        AccessField::AppAssignments,
        AccessField::Expiry,
    ];
    const ALL_CAN: Can<'static> = Can {
        operations: ALL,
        keeps: KEEPS_ALL,
    };

    fn text(name: &str, v: &str) -> wit::Attribute {
        wit::Attribute {
            name: name.into(),
            value: wit::Value::Text(v.into()),
        }
    }

    fn desired(groups: &[&str], enabled: bool) -> wit::DesiredAccount {
        wit::DesiredAccount {
            destination: "ad".into(),
            attributes: vec![text("mail", "a@x.test"), text("title", "Engineer")],
            container: Some("OU=Eng".into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            licenses: vec![],
            app_assignments: vec![],
            enabled,
            expires_at: None,
            tickets: vec![],
        }
    }

    fn account(groups: &[&str], enabled: bool) -> wit::Account {
        wit::Account {
            anchor: "A1".into(),
            attributes: vec![text("mail", "a@x.test"), text("title", "Intern")],
            container: Some("OU=Eng".into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            licenses: vec![],
            app_assignments: vec![],
            enabled,
            expires_at: None,
        }
    }

    fn kinds(p: &Plan) -> Vec<String> {
        p.operations
            .iter()
            .map(|o| format!("{} {}", o.kind, o.target.as_deref().unwrap_or("")))
            .collect()
    }

    /// Issue 20: a ticket desk only opens the tickets the rules ask for: no account is created,
    /// updated or deprovisioned there, whatever the rest of the output says.
    #[test]
    fn a_ticket_desk_plans_only_tickets() {
        let desk = Can {
            operations: &[Supported::OpenTicket],
            keeps: &[],
        };
        assert!(desk.tickets_only() && !ALL_CAN.tickets_only());
        let mut d = desired(&["Staff"], true);
        d.tickets = vec![wit::Ticket {
            template: "laptop".into(),
            fields: vec![("model".into(), "14-inch".into())],
        }];
        let p = plan("itsm", Some(&d), None, None, desk, Deprovision::Disable, false);
        assert_eq!(kinds(&p), ["open-ticket laptop"]);
        assert!(p.unsupported.is_empty(), "{p:?}");
        d.tickets.clear();
        let p = plan("itsm", Some(&d), None, None, desk, Deprovision::Delete, true);
        assert!(p.operations.is_empty(), "{p:?}");
    }

    /// Issue 19: a licence or app the destination does not keep is reported, never sent to be
    /// ignored; one it keeps goes with the create and with later updates.
    #[test]
    fn access_a_destination_does_not_keep_is_reported_not_dropped() {
        let mut d = desired(&[], true);
        d.licenses = vec!["ENTERPRISEPACK".into()];
        d.app_assignments = vec!["slack".into()];
        d.expires_at = Some("2026-12-31".into());
        let keeps_expiry = &[AccessField::Expiry];
        let p = plan(
            "ad",
            Some(&d),
            None,
            None,
            Can {
                operations: ALL,
                keeps: keeps_expiry,
            },
            Deprovision::Disable,
            false,
        );
        assert_eq!(
            p.unsupported,
            ["licenses ENTERPRISEPACK", "app-assignments slack"]
        );
        let wit::Operation::Create(c) = &p.operations[0].op else {
            panic!("{p:?}")
        };
        assert!(c.licenses.is_empty() && c.app_assignments.is_empty());
        assert_eq!(
            c.expires_at.as_deref(),
            Some("2026-12-31"),
            "a kept field goes with the create"
        );

        let a = account(&[], true);
        let p = plan(
            "ad",
            Some(&d),
            Some(&a),
            None,
            Can {
                operations: ALL,
                keeps: keeps_expiry,
            },
            Deprovision::Disable,
            false,
        );
        assert_eq!(
            p.unsupported,
            ["licenses ENTERPRISEPACK", "app-assignments slack"]
        );
        let wit::Operation::Update(u) = &p.operations[0].op else {
            panic!("{p:?}")
        };
        let names: Vec<&str> = u.changes.iter().map(|c| c.name.as_str()).collect();
        assert!(
            names.contains(&EXPIRES_AT) && !names.contains(&LICENSES),
            "{names:?}"
        );

        let p = plan(
            "sbx",
            Some(&d),
            Some(&a),
            None,
            ALL_CAN,
            Deprovision::Disable,
            false,
        );
        assert!(p.unsupported.is_empty(), "{p:?}");
        let wit::Operation::Update(u) = &p.operations[0].op else {
            panic!("{p:?}")
        };
        let names: Vec<&str> = u.changes.iter().map(|c| c.name.as_str()).collect();
        assert!(
            names.contains(&LICENSES) && names.contains(&APP_ASSIGNMENTS),
            "{names:?}"
        );
    }

    #[test]
    fn create_then_memberships() {
        let d = desired(&["Eng", "All"], true);
        let p = plan("ad", Some(&d), None, None, ALL_CAN, Deprovision::Disable, false);
        assert_eq!(kinds(&p), ["create ", "add-member Eng", "add-member All"]);
        let wit::Operation::Create(c) = &p.operations[0].op else {
            panic!()
        };
        assert!(c.groups.is_empty(), "memberships follow the create");
    }

    #[test]
    fn update_only_what_changed_and_never_unmanaged_groups() {
        let d = desired(&["Eng"], true);
        let link = Link {
            anchor: "A1".into(),
            managed_groups: vec!["Sales".into()],
        };
        let a = account(&["Sales", "Hand-Made"], true);
        let p = plan(
            "ad",
            Some(&d),
            Some(&a),
            Some(&link),
            ALL_CAN,
            Deprovision::Disable,
            false,
        );
        assert_eq!(
            kinds(&p),
            ["update title", "add-member Eng", "remove-member Sales"]
        );
        assert!(p.operations[2].destructive);
        let in_sync = account(&["Eng"], true);
        let mut d2 = d.clone();
        d2.attributes[1] = text("title", "Intern");
        assert!(
            plan(
                "ad",
                Some(&d2),
                Some(&in_sync),
                Some(&link),
                ALL_CAN,
                Deprovision::Disable,
                false
            )
            .operations
            .is_empty()
        );
    }

    #[test]
    fn leaving_disables_first_and_unlinked_accounts_are_untouched() {
        let link = Link {
            anchor: "A1".into(),
            managed_groups: vec![],
        };
        let a = account(&[], true);
        let p = plan(
            "ad",
            Some(&desired(&[], false)),
            Some(&a),
            Some(&link),
            ALL_CAN,
            Deprovision::Disable,
            false,
        );
        assert_eq!(kinds(&p)[0], "disable A1");
        let gone = plan(
            "ad",
            None,
            Some(&a),
            Some(&link),
            ALL_CAN,
            Deprovision::Delete,
            false,
        );
        assert_eq!(kinds(&gone), ["delete A1"]);
        assert!(
            plan("ad", None, Some(&a), None, ALL_CAN, Deprovision::Delete, false)
                .operations
                .is_empty()
        );
    }

    #[test]
    fn no_account_is_created_for_someone_who_has_left() {
        let gone = desired(&[], false);
        assert!(
            plan("ad", Some(&gone), None, None, ALL_CAN, Deprovision::Disable, true)
                .operations
                .is_empty()
        );
        // A pre-hire (disabled, not terminated) still gets its account.
        let p = plan(
            "ad",
            Some(&gone),
            None,
            None,
            ALL_CAN,
            Deprovision::Disable,
            false,
        );
        assert_eq!(kinds(&p), ["create "]);
    }

    #[test]
    fn unsupported_operations_are_reported_not_sent() {
        let p = plan(
            "ad",
            Some(&desired(&["Eng"], true)),
            None,
            None,
            Can {
                operations: &[Supported::Create],
                keeps: KEEPS_ALL,
            },
            Deprovision::Disable,
            false,
        );
        assert_eq!(kinds(&p), ["create "]);
        assert_eq!(p.unsupported, ["add-member Eng"]);
    }
}
