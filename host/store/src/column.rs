//! States and kinds kept in text columns: each is an enum with exactly one
//! spelling, used both ways (to the column, from the column, in JSON).

/// Declares a fieldless enum stored as text, with `as_str`, `parse`, `ALL`,
/// `Display`, `FromStr` and serde in the same spelling.
#[macro_export]
macro_rules! column_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[doc = $vdoc:literal])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[doc = $vdoc])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The spelling in the store, the API and the logs.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The value of a spelling, if it is one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::column::UnknownValue;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text).ok_or_else(|| $crate::column::UnknownValue {
                    kind: stringify!($name),
                    value: text.chars().take(64).collect(),
                    expected: Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl $crate::column::schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(
                _: &mut $crate::column::schemars::SchemaGenerator,
            ) -> $crate::column::schemars::Schema {
                // One entry per spelling, with its doc comment (as schemars writes documented
                // unit variants), so references and API descriptions say what each means.
                let entry = |text: &str, docs: &[&str]| {
                    let doc = docs.iter().map(|line| line.trim()).collect::<Vec<_>>().join(" ");
                    if doc.is_empty() {
                        serde_json::json!({ "type": "string", "const": text })
                    } else {
                        serde_json::json!({ "type": "string", "const": text, "description": doc })
                    }
                };
                let one_of = vec![$(entry($text, &[$($vdoc),*])),+];
                $crate::column::schemars::json_schema!({ "oneOf": one_of })
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// For the schemas `column_enum!` writes, wherever it is used.
#[doc(hidden)]
pub use schemars;

/// A column (or JSON field) held a spelling its enum does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {kind} (expected one of: {expected})")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    pub expected: String,
}

#[cfg(test)]
mod tests {
    crate::column_enum! {
        /// A test enum.
        pub enum Colour {
            Red = "red",
            DarkBlue = "dark-blue",
        }
    }

    #[test]
    fn one_spelling_both_ways() {
        for c in Colour::ALL {
            assert_eq!(Colour::parse(c.as_str()), Some(*c));
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(serde_json::from_str::<Colour>(&json).unwrap(), *c);
        }
        assert_eq!(Colour::DarkBlue.to_string(), "dark-blue");
        let e = "green".parse::<Colour>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"green\" is not a Colour (expected one of: red, dark-blue)"
        );
        assert!(serde_json::from_str::<Colour>("\"green\"").is_err());
    }
}
