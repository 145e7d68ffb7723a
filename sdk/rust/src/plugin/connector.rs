//! [`Connector`]: a destination's accounts.

use crate::connector::{Capabilities, OperationKind};
use crate::reserved::TicketState;
use crate::types::{
    Account, Attribute, AttributeChange, DesiredAccount, MatchKey, MemberChange, MoveRequest, Operation,
    Outcome, PluginError, Ticket,
};
use serde::de::DeserializeOwned;

/// A connector: look accounts up, and apply the operations it declares in
/// [`OPERATIONS`](Connector::OPERATIONS).
///
/// Only `new`, `lookup` and the methods for the declared operations need
/// writing; the others answer `permanent` (the planner never asks for an
/// undeclared operation, so that answer means a host or config bug).
pub trait Connector: Sized + 'static {
    /// The settings, read with [`settings::from_pairs`](crate::settings::from_pairs).
    type Settings: DeserializeOwned;
    /// What this connector can do; the planner asks for nothing else.
    const OPERATIONS: &'static [OperationKind];
    /// Attributes accounts can be looked up by, in preferred order (when they
    /// do not depend on the settings; otherwise override `matching_keys`).
    const MATCHING_KEYS: &'static [&'static str] = &[];
    /// Whether calls allocate from the per-call arena ([`call_arena`](crate::call_arena)):
    /// the export macro then builds the connector with it off and turns it on after.
    const CALL_ARENA: bool = false;

    /// Builds the connector from its settings (called by `configure`).
    fn new(settings: Self::Settings) -> Result<Self, PluginError>;

    /// Attributes accounts can be looked up by, in preferred order.
    fn matching_keys(&self) -> Vec<String> {
        Self::MATCHING_KEYS.iter().map(|k| k.to_string()).collect()
    }

    /// Attributes whose values must be unique here (the matching keys unless overridden; a
    /// ticket number is no account attribute).
    fn unique_attributes(&self) -> Vec<String> {
        let mut keys = self.matching_keys();
        keys.retain(|k| !crate::reserved::is_ticket_key(k));
        keys
    }

    /// The capabilities reported to the host.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            operations: Self::OPERATIONS.to_vec(),
            matching_keys: self.matching_keys(),
            unique_attributes: self.unique_attributes(),
        }
    }

    /// Accounts matching any of `keys`, tried in order (the first key with hits wins).
    fn lookup(&mut self, keys: Vec<MatchKey>) -> Result<Vec<Account>, PluginError>;

    /// Creates an account; the outcome carries its anchor.
    fn create(&mut self, account: DesiredAccount) -> Result<Outcome, PluginError> {
        unsupported(OperationKind::Create, &account.destination)
    }

    /// Changes attributes (`absent` clears one).
    fn update(&mut self, anchor: String, changes: Vec<Attribute>) -> Result<Outcome, PluginError> {
        let _ = changes;
        unsupported(OperationKind::Update, &anchor)
    }

    /// Enables an account.
    fn enable(&mut self, anchor: String) -> Result<Outcome, PluginError> {
        unsupported(OperationKind::Enable, &anchor)
    }

    /// Disables an account.
    fn disable(&mut self, anchor: String) -> Result<Outcome, PluginError> {
        unsupported(OperationKind::Disable, &anchor)
    }

    /// Moves an account to another container.
    fn move_to(&mut self, anchor: String, container: String) -> Result<Outcome, PluginError> {
        let _ = container;
        unsupported(OperationKind::Move, &anchor)
    }

    /// Adds an account to a group (already a member is success).
    fn add_member(&mut self, anchor: String, group: String) -> Result<Outcome, PluginError> {
        let _ = group;
        unsupported(OperationKind::AddMember, &anchor)
    }

    /// Removes an account from a group (not a member is success).
    fn remove_member(&mut self, anchor: String, group: String) -> Result<Outcome, PluginError> {
        let _ = group;
        unsupported(OperationKind::RemoveMember, &anchor)
    }

    /// Deletes an account.
    fn delete(&mut self, anchor: String) -> Result<Outcome, PluginError> {
        unsupported(OperationKind::Delete, &anchor)
    }

    /// Opens a ticket; the outcome's anchor is the ticket's id.
    fn open_ticket(&mut self, ticket: Ticket) -> Result<Outcome, PluginError> {
        unsupported(OperationKind::OpenTicket, &ticket.template)
    }

    /// Where the ticket numbered `number` stands (`None`: the desk has no such ticket), for a
    /// desk that lists [`reserved::TICKET_NUMBER`](crate::reserved::TICKET_NUMBER) among its
    /// matching keys: the host follows its tickets through it.
    fn ticket_state(&mut self, number: String) -> Result<Option<TicketState>, PluginError> {
        Err(PluginError::Permanent(format!(
            "this connector does not follow tickets ({number})"
        )))
    }

    /// Checks a rule set's ticket template when it is published, for a desk that lists
    /// [`reserved::TICKET_CHECK`](crate::reserved::TICKET_CHECK) among its matching keys: an
    /// `invalid-input` error naming the field refuses the publish. Values that are expressions
    /// ([`reserved::is_expression`](crate::reserved::is_expression)) are known only per person.
    fn check_ticket(&mut self, ticket: Ticket) -> Result<(), PluginError> {
        let _ = ticket;
        Ok(())
    }

    /// Routes one operation to its method.
    fn apply(&mut self, op: Operation) -> Result<Outcome, PluginError> {
        match op {
            Operation::Create(account) => self.create(account),
            Operation::Update(AttributeChange { anchor, changes }) => self.update(anchor, changes),
            Operation::Enable(anchor) => self.enable(anchor),
            Operation::Disable(anchor) => self.disable(anchor),
            Operation::Move(MoveRequest { anchor, container }) => self.move_to(anchor, container),
            Operation::AddMember(MemberChange { anchor, group }) => self.add_member(anchor, group),
            Operation::RemoveMember(MemberChange { anchor, group }) => self.remove_member(anchor, group),
            Operation::Delete(anchor) => self.delete(anchor),
            Operation::OpenTicket(ticket) => self.open_ticket(ticket),
        }
    }
}

/// Answers `lookup-accounts`: a followed ticket's state, or the connector's own lookup.
#[doc(hidden)]
pub fn lookup_accounts<C: Connector>(
    connector: &mut C,
    keys: Vec<MatchKey>,
) -> Result<Vec<Account>, PluginError> {
    if let Some(template) = crate::reserved::ticket_check(&keys) {
        return connector.check_ticket(template?).map(|()| vec![]);
    }
    match crate::reserved::ticket_number(&keys) {
        Some(number) => Ok(connector
            .ticket_state(number.to_string())?
            .map(|state| state.into_account(number))
            .into_iter()
            .collect()),
        None => connector.lookup(keys),
    }
}

/// What a connector reports before `configure`: its constants alone.
#[doc(hidden)]
pub fn connector_defaults<C: Connector>() -> Capabilities {
    let keys: Vec<String> = C::MATCHING_KEYS.iter().map(|k| k.to_string()).collect();
    let mut unique = keys.clone();
    unique.retain(|k| !crate::reserved::is_ticket_key(k));
    Capabilities {
        operations: C::OPERATIONS.to_vec(),
        matching_keys: keys,
        unique_attributes: unique,
    }
}

fn unsupported(kind: OperationKind, subject: &str) -> Result<Outcome, PluginError> {
    let name = match kind {
        OperationKind::Create => "create",
        OperationKind::Update => "update",
        OperationKind::Enable => "enable",
        OperationKind::Disable => "disable",
        OperationKind::Move => "move",
        OperationKind::AddMember => "add-member",
        OperationKind::RemoveMember => "remove-member",
        OperationKind::Delete => "delete",
        OperationKind::OpenTicket => "open-ticket",
    };
    Err(PluginError::Permanent(format!(
        "this connector does not support {name} ({subject})"
    )))
}

/// Exports a [`Connector`] as the plugin's `connector` world.
#[macro_export]
macro_rules! connector_plugin {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static PLUGIN: $crate::plugin::Slot<$plugin> = const { $crate::plugin::Slot::new() };
            }
            struct Export;
            impl $crate::connector::Guest for Export {
                fn configure(settings: $crate::types::Settings) -> Result<(), $crate::types::PluginError> {
                    $crate::init();
                    let arena = <$plugin as $crate::plugin::Connector>::CALL_ARENA;
                    $crate::plugin::configure_outside_arena(arena, || {
                        let settings = $crate::settings::from_pairs(settings)?;
                        let plugin = <$plugin as $crate::plugin::Connector>::new(settings)?;
                        PLUGIN.with(|slot| slot.set(plugin));
                        Ok(())
                    })
                }
                fn describe() -> $crate::connector::Capabilities {
                    PLUGIN.with(|slot| {
                        slot.peek(|plugin| match plugin {
                            Some(p) => $crate::plugin::Connector::capabilities(p),
                            None => $crate::plugin::connector_defaults::<$plugin>(),
                        })
                    })
                }
                fn lookup_accounts(
                    keys: Vec<$crate::types::MatchKey>,
                ) -> Result<Vec<$crate::types::Account>, $crate::types::PluginError> {
                    PLUGIN.with(|slot| slot.with(|p| $crate::plugin::lookup_accounts(p, keys)))
                }
                fn apply(
                    op: $crate::types::Operation,
                ) -> Result<$crate::types::Outcome, $crate::types::PluginError> {
                    PLUGIN.with(|slot| slot.with(|p| $crate::plugin::Connector::apply(p, op)))
                }
            }
            $crate::export_connector!(Export);
        };
    };
}
