//! Typed settings: the tenant's `settings` table deserialised into your own type.
//!
//! The host hands a plugin its settings as `(name, text)` pairs. [`from_pairs`]
//! reads them into any `serde::Deserialize` type, parsing each text by the
//! field's type: numbers, `true`/`false`, enums by variant name (use
//! `#[serde(rename_all = "kebab-case")]` and friends), `Option` (present or not),
//! and lists as comma-separated items (blank items dropped). Every error is
//! `invalid-input` naming the setting (`settings.<name>`) and the reason.
//!
//! ```
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     base_dn: String,
//!     page_size: Option<u32>,
//!     #[serde(default)]
//!     match_attributes: Vec<String>,
//! }
//! let pairs = vec![("base_dn".to_string(), "dc=example,dc=org".to_string())];
//! let settings: Settings = tenure_sdk::settings::from_pairs(pairs).unwrap();
//! assert_eq!((settings.base_dn.as_str(), settings.page_size), ("dc=example,dc=org", None));
//! ```

use crate::types::{InvalidInput, PluginError};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use std::fmt;

/// Reads `pairs` into `T`; the error names the setting and the reason.
pub fn from_pairs<T: DeserializeOwned>(pairs: Vec<(String, String)>) -> Result<T, PluginError> {
    T::deserialize(Pairs {
        pairs: pairs.into_iter(),
        current: None,
    })
    .map_err(|e| {
        PluginError::InvalidInput(InvalidInput {
            field: match e.setting {
                Some(name) => format!("settings.{name}"),
                None => "settings".to_string(),
            },
            reason: e.reason,
        })
    })
}

/// A settings error: which setting (when known) and why.
#[derive(Debug)]
pub struct SettingError {
    setting: Option<String>,
    reason: String,
}

impl SettingError {
    fn at(mut self, setting: &str) -> Self {
        self.setting.get_or_insert_with(|| setting.to_string());
        self
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.setting {
            Some(s) => write!(f, "settings.{s}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for SettingError {}

impl de::Error for SettingError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        SettingError {
            setting: None,
            reason: msg.to_string(),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        SettingError {
            setting: Some(field.to_string()),
            reason: "required, but not set".into(),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        SettingError {
            setting: Some(field.to_string()),
            reason: format!("unknown setting; known: {}", expected.join(", ")),
        }
    }
}

/// The whole table, as a map from setting name to its text.
struct Pairs {
    pairs: std::vec::IntoIter<(String, String)>,
    current: Option<(String, String)>,
}

impl<'de> de::Deserializer<'de> for Pairs {
    type Error = SettingError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SettingError> {
        visitor.visit_map(self)
    }

    /// `()`: a plugin that takes no settings refuses any.
    fn deserialize_unit<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, SettingError> {
        match self.pairs.next() {
            None => visitor.visit_unit(),
            Some((name, _)) => Err(SettingError {
                setting: Some(name),
                reason: "unknown setting; this plugin takes none".into(),
            }),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> MapAccess<'de> for Pairs {
    type Error = SettingError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, SettingError> {
        let Some((name, text)) = self.pairs.next() else {
            return Ok(None);
        };
        let key = seed
            .deserialize(name.as_str().into_deserializer())
            .map_err(|e: SettingError| e.at(&name));
        self.current = Some((name, text));
        key.map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, SettingError> {
        let (name, text) = self
            .current
            .take()
            .ok_or_else(|| de::Error::custom("value without a name"))?;
        seed.deserialize(Text(text.trim())).map_err(|e| e.at(&name))
    }
}

/// One setting's text, parsed by the type asked for.
struct Text<'a>(&'a str);

impl Text<'_> {
    fn parse<T: std::str::FromStr>(&self, what: &str) -> Result<T, SettingError> {
        self.0
            .parse()
            .map_err(|_| de::Error::custom(format!("{:?} is not {what}", self.0)))
    }
}

macro_rules! parse_number {
    ($($method:ident $visit:ident $ty:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SettingError> {
            visitor.$visit(self.parse::<$ty>($what)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Text<'_> {
    type Error = SettingError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SettingError> {
        visitor.visit_str(self.0)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SettingError> {
        match self.0.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => visitor.visit_bool(true),
            "false" | "no" | "off" | "0" => visitor.visit_bool(false),
            _ => Err(de::Error::custom(format!("{:?} is not true or false", self.0))),
        }
    }

    parse_number! {
        deserialize_i8 visit_i8 i8, "a whole number from -128 to 127";
        deserialize_i16 visit_i16 i16, "a whole number from -32768 to 32767";
        deserialize_i32 visit_i32 i32, "a 32-bit whole number";
        deserialize_i64 visit_i64 i64, "a whole number";
        deserialize_u8 visit_u8 u8, "a whole number from 0 to 255";
        deserialize_u16 visit_u16 u16, "a whole number from 0 to 65535";
        deserialize_u32 visit_u32 u32, "a whole number from 0 to 4294967295";
        deserialize_u64 visit_u64 u64, "a non-negative whole number";
        deserialize_f32 visit_f32 f32, "a number";
        deserialize_f64 visit_f64 f64, "a number";
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SettingError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, SettingError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SettingError> {
        let items = self.0.split(',').map(str::trim).filter(|s| !s.is_empty());
        visitor.visit_seq(de::value::SeqDeserializer::new(items.map(Text)))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SettingError> {
        if !variants.contains(&self.0) {
            return Err(de::Error::custom(format!(
                "{:?} is not one of {}",
                self.0,
                variants.join(", ")
            )));
        }
        visitor.visit_enum(self.0.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct tuple tuple_struct map struct
        identifier ignored_any
    }
}

impl<'de, 'a> IntoDeserializer<'de, SettingError> for Text<'a> {
    type Deserializer = Text<'a>;

    fn into_deserializer(self) -> Self::Deserializer {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "kebab-case")]
    enum Profile {
        Ad,
        Ldap,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        base_dn: String,
        #[serde(default)]
        page_size: Option<u32>,
        #[serde(default)]
        must_change_password: bool,
        #[serde(default)]
        attributes: Vec<String>,
        profile: Profile,
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn invalid(result: Result<Settings, PluginError>) -> (String, String) {
        match result {
            Err(PluginError::InvalidInput(i)) => (i.field, i.reason),
            other => panic!("expected invalid-input, got {other:?}"),
        }
    }

    #[test]
    fn each_text_is_parsed_by_its_fields_type() {
        let s: Settings = from_pairs(pairs(&[
            ("base_dn", " dc=example,dc=org "),
            ("page_size", "200"),
            ("must_change_password", "yes"),
            ("attributes", "cn, mail,,sn"),
            ("profile", "ldap"),
        ]))
        .unwrap();
        assert_eq!(s.base_dn, "dc=example,dc=org");
        assert_eq!(s.page_size, Some(200));
        assert!(s.must_change_password);
        assert_eq!(s.attributes, ["cn", "mail", "sn"]);
        assert_eq!(s.profile, Profile::Ldap);
    }

    #[test]
    fn a_plugin_without_settings_refuses_any() {
        let () = from_pairs(Vec::new()).unwrap();
        match from_pairs::<()>(pairs(&[("colour", "red")])) {
            Err(PluginError::InvalidInput(i)) => assert_eq!(i.field, "settings.colour"),
            other => panic!("expected invalid-input, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_setting_and_the_reason() {
        let (field, reason) = invalid(from_pairs(pairs(&[
            ("base_dn", "x"),
            ("profile", "ad"),
            ("page_size", "lots"),
        ])));
        assert_eq!(field, "settings.page_size");
        assert!(reason.contains("\"lots\" is not a whole number"), "{reason}");

        let (field, reason) = invalid(from_pairs(pairs(&[("profile", "ad")])));
        assert_eq!(
            (field.as_str(), reason.as_str()),
            ("settings.base_dn", "required, but not set")
        );

        let (field, reason) = invalid(from_pairs(pairs(&[("base_dn", "x"), ("profile", "nds")])));
        assert_eq!(field, "settings.profile");
        assert!(reason.contains("\"nds\" is not one of ad, ldap"), "{reason}");

        let (field, reason) = invalid(from_pairs(pairs(&[
            ("base_dn", "x"),
            ("profile", "ad"),
            ("pagesize", "1"),
        ])));
        assert_eq!(field, "settings.pagesize");
        assert!(
            reason.starts_with("unknown setting; known: base_dn, page_size"),
            "{reason}"
        );

        let (field, _) = invalid(from_pairs(pairs(&[
            ("base_dn", "x"),
            ("profile", "ad"),
            ("must_change_password", "maybe"),
        ])));
        assert_eq!(field, "settings.must_change_password");
    }
}
