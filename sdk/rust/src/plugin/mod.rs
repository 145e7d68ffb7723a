//! The authoring layer: one trait per plugin kind, with default methods, and a
//! macro that exports it.
//!
//! Implement [`Connector`], [`Source`] or [`Rules`] on your own type, then call
//! [`connector_plugin!`](crate::connector_plugin), [`source_plugin!`](crate::source_plugin)
//! or [`rules_plugin!`](crate::rules_plugin) once. The macro keeps the configured
//! instance for you (no globals in your code), reads the settings into your
//! `Settings` type (see [`settings`](crate::settings)), routes `log` records and
//! panics to the host, and answers every call made before `configure` with a
//! clear error.

mod connector;
mod rules;
mod source;

pub use connector::Connector;
#[doc(hidden)]
pub use connector::{connector_defaults, lookup_accounts};
pub use rules::Rules;
pub use source::Source;

use crate::types::PluginError;
use std::cell::RefCell;

/// Runs `configure`'s `build` (settings read, instance made and kept) with the per-call arena
/// off, so the instance's long-lived state is outside it; then turns the arena on for calls when
/// `arena` says so. A failed build leaves it off.
#[doc(hidden)]
pub fn configure_outside_arena(
    arena: bool,
    build: impl FnOnce() -> Result<(), PluginError>,
) -> Result<(), PluginError> {
    crate::call_arena(false);
    build()?;
    crate::call_arena(arena);
    Ok(())
}

/// Where an export macro keeps the configured plugin.
#[doc(hidden)]
pub struct Slot<T>(RefCell<Option<T>>);

impl<T> Slot<T> {
    #[doc(hidden)]
    pub const fn new() -> Self {
        Slot(RefCell::new(None))
    }

    /// Replaces the instance.
    #[doc(hidden)]
    pub fn set(&self, value: T) {
        *self.0.borrow_mut() = Some(value);
    }

    /// Runs `f` on the configured instance.
    #[doc(hidden)]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> Result<R, PluginError>) -> Result<R, PluginError> {
        match self.0.borrow_mut().as_mut() {
            Some(plugin) => f(plugin),
            None => Err(not_configured()),
        }
    }

    /// Runs `f` on the instance, or `None` before `configure`.
    #[doc(hidden)]
    pub fn peek<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        f(self.0.borrow().as_ref())
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn not_configured() -> PluginError {
    PluginError::Permanent("the plugin was called before `configure` succeeded".into())
}
