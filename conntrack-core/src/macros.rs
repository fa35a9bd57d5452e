//! The `kernel_enum!` macro: gimli-style newtypes for kernel constants.
//!
//! A kernel number is kept as it is (so an unknown value round-trips), and
//! known values get an associated constant, a name and a `Display`.
//! Serialisation writes the name when it is known and the number otherwise
//! (numbers only for non-human-readable formats); both forms deserialise.
//! With the `schema` feature, the JSON Schema says the same: one of the
//! known names, or a number.

macro_rules! kernel_enum {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($inner:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $value:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $inner);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($value); )+

            /// Every value this crate has a name for, in numeric order.
            pub const KNOWN: &'static [$name] = &[$($name::$konst),+];

            /// The name used by the kernel and the `conntrack` CLI, or `None`
            /// for a value this crate does not know.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($text), )+
                    _ => None,
                }
            }

            /// Looks a value up by its name (ASCII case-insensitive), or by
            /// its decimal number.
            pub fn from_name(s: &str) -> Option<Self> {
                $( if s.eq_ignore_ascii_case($text) { return Some($name::$konst); } )+
                s.parse::<$inner>().ok().map($name)
            }

            /// Whether this crate knows a name for the value.
            pub const fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                $name(v)
            }
        }

        impl From<$name> for $inner {
            fn from(v: $name) -> Self {
                v.0
            }
        }

        impl core::fmt::Display for $name {
            /// The name, or the number when the value is unknown.
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}", self.0),
                }
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}::{}", stringify!($name), n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self.name() {
                    Some(n) if s.is_human_readable() => s.serialize_str(n),
                    _ => s.serialize_u64(u64::from(self.0)),
                }
            }
        }

        /// A known value is written as its name, an unknown one as its
        /// number.
        #[cfg(feature = "schema")]
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn schema_id() -> std::borrow::Cow<'static, str> {
                concat!("conntrack_core::", stringify!($name)).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "description": concat!(
                        "`", stringify!($name), "`: the name of a known value, or the number \
                         of one without a name."
                    ),
                    "anyOf": [
                        { "type": "string", "enum": [$($text),+] },
                        { "type": "integer", "minimum": 0, "maximum": <$inner>::MAX }
                    ]
                })
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                        write!(f, "a {} name or number", stringify!($name))
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        <$inner>::try_from(v)
                            .map($name)
                            .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        <$inner>::try_from(v)
                            .map($name)
                            .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::from_name(v)
                            .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
                    }
                }
                if d.is_human_readable() {
                    d.deserialize_any(V)
                } else {
                    <$inner as serde::Deserialize>::deserialize(d).map($name)
                }
            }
        }
    };
}

pub(crate) use kernel_enum;
