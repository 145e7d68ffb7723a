//! [`Rules`]: a person to the desired accounts.

use crate::rules::{Context, Evaluation};
use crate::types::{Person, PluginError};
use serde::de::DeserializeOwned;

/// A rules engine: load a rule set once, then evaluate people against it.
pub trait Rules: Sized + 'static {
    /// The settings, read with [`settings::from_pairs`](crate::settings::from_pairs).
    type Settings: DeserializeOwned;
    /// Whether calls allocate from the per-call arena ([`call_arena`](crate::call_arena)):
    /// the export macro then builds the engine with it off and turns it on after.
    const CALL_ARENA: bool = false;

    /// Loads `rule_set` (the document's text); called once per instance.
    fn new(rule_set: String, settings: Self::Settings) -> Result<Self, PluginError>;

    /// The desired account in each of `context.destinations`, with a trace.
    fn evaluate(&mut self, person: Person, context: Context) -> Result<Evaluation, PluginError>;
}

/// Exports a [`Rules`] engine as the plugin's `rules` world.
#[macro_export]
macro_rules! rules_plugin {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static PLUGIN: $crate::plugin::Slot<$plugin> = const { $crate::plugin::Slot::new() };
            }
            struct Export;
            impl $crate::rules::Guest for Export {
                fn configure(
                    rule_set: String,
                    settings: $crate::types::Settings,
                ) -> Result<(), $crate::types::PluginError> {
                    $crate::init();
                    let arena = <$plugin as $crate::plugin::Rules>::CALL_ARENA;
                    $crate::plugin::configure_outside_arena(arena, || {
                        let settings = $crate::settings::from_pairs(settings)?;
                        let plugin = <$plugin as $crate::plugin::Rules>::new(rule_set, settings)?;
                        PLUGIN.with(|slot| slot.set(plugin));
                        Ok(())
                    })
                }
                fn evaluate(
                    person: $crate::types::Person,
                    context: $crate::rules::Context,
                ) -> Result<$crate::rules::Evaluation, $crate::types::PluginError> {
                    PLUGIN.with(|slot| slot.with(|p| $crate::plugin::Rules::evaluate(p, person, context)))
                }
            }
            $crate::export_rules!(Export);
        };
    };
}
