//! [`Source`]: person events from an HR system.

use crate::source::{Payload, PollResult};
use crate::types::{PersonEvent, PluginError};
use serde::de::DeserializeOwned;

/// A source: parse what the system pushes, poll what it serves, or both.
pub trait Source: Sized + 'static {
    /// The settings, read with [`settings::from_pairs`](crate::settings::from_pairs).
    type Settings: DeserializeOwned;

    /// Builds the source from its settings (called by `configure`).
    fn new(settings: Self::Settings) -> Result<Self, PluginError>;

    /// Turns a pushed payload (webhook body, uploaded file) into events.
    fn parse(&mut self, payload: Payload) -> Result<Vec<PersonEvent>, PluginError> {
        let _ = payload;
        Err(PluginError::Permanent(
            "this source takes no pushed payloads; it is polled".into(),
        ))
    }

    /// Fetches changes since `cursor`; the default polls nothing.
    fn poll(&mut self, cursor: Option<String>) -> Result<PollResult, PluginError> {
        Ok(PollResult {
            events: Vec::new(),
            next_cursor: cursor,
            has_more: false,
        })
    }
}

/// Exports a [`Source`] as the plugin's `source` world.
#[macro_export]
macro_rules! source_plugin {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static PLUGIN: $crate::plugin::Slot<$plugin> = const { $crate::plugin::Slot::new() };
            }
            struct Export;
            impl $crate::source::Guest for Export {
                fn configure(settings: $crate::types::Settings) -> Result<(), $crate::types::PluginError> {
                    $crate::init();
                    let settings = $crate::settings::from_pairs(settings)?;
                    let plugin = <$plugin as $crate::plugin::Source>::new(settings)?;
                    PLUGIN.with(|slot| slot.set(plugin));
                    Ok(())
                }
                fn parse(
                    payload: $crate::source::Payload,
                ) -> Result<Vec<$crate::types::PersonEvent>, $crate::types::PluginError> {
                    PLUGIN.with(|slot| slot.with(|p| $crate::plugin::Source::parse(p, payload)))
                }
                fn poll(
                    cursor: Option<String>,
                ) -> Result<$crate::source::PollResult, $crate::types::PluginError> {
                    PLUGIN.with(|slot| slot.with(|p| $crate::plugin::Source::poll(p, cursor)))
                }
            }
            $crate::export_source!(Export);
        };
    };
}
