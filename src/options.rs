//! Backend options: the URL query and a configuration's `options`, as text,
//! deserialized into each backend's own `#[serde(deny_unknown_fields)]`
//! options struct.
//!
//! Every value is text here (`OptionValue`s are written out first), and is
//! parsed as the field asks: integers and booleans with [`FromStr`], sizes
//! with [`size`], durations with [`duration`], timeouts with [`timeout`].
//! Errors become [`ConfigError`]s naming the backend, the option and the
//! value; an unknown option's error lists the known ones, which serde knows
//! from the struct.

// Some helpers serve only backends behind features (durations, the
// connection options, the database's driver options); the unit tests below
// use them all.
#![cfg_attr(
    not(all(
        feature = "redis",
        feature = "memcached",
        any(feature = "sqlite", feature = "postgres", feature = "mysql")
    )),
    allow(dead_code)
)]

use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::{CacheError, ConfigError, Result};
use crate::timeout::Timeout;

/// The options given to one backend, by name, as text.
#[derive(Debug, Default)]
pub(crate) struct BackendOptions {
    values: BTreeMap<String, String>,
}

impl BackendOptions {
    /// Adds an option; a name given twice is an error.
    pub(crate) fn insert(&mut self, name: String, value: String) -> Result<()> {
        if self.values.contains_key(&name) {
            return Err(ConfigError::InvalidOption {
                backend: "cache",
                option: name,
                value,
                reason: "the option is given twice".into(),
            }
            .into());
        }
        self.values.insert(name, value);
        Ok(())
    }

    /// Moves the options whose names `take` accepts into a set of their own.
    pub(crate) fn split_off(&mut self, mut take: impl FnMut(&str) -> bool) -> BackendOptions {
        let (taken, kept) = std::mem::take(&mut self.values)
            .into_iter()
            .partition(|(name, _)| take(name));
        self.values = kept;
        BackendOptions { values: taken }
    }

    /// Moves the options that are fields of `T` into a set of their own.
    pub(crate) fn split_fields<T: DeserializeOwned>(&mut self) -> BackendOptions {
        let fields = fields_of::<T>();
        self.split_off(|name| fields.contains(&name))
    }

    /// Whether no option is given.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The options as name and value pairs.
    pub(crate) fn into_pairs(self) -> impl Iterator<Item = (String, String)> {
        self.values.into_iter()
    }

    /// Deserializes the options into `backend`'s options struct.
    pub(crate) fn parse<T: DeserializeOwned>(self, backend: &'static str) -> Result<T> {
        T::deserialize(Pairs {
            iter: self.values.into_iter(),
            current: None,
        })
        .map_err(|err| err.into_config(backend).into())
    }

    /// Deserializes the fields of `A` into an `A` and the other options into
    /// a `B`; an unknown option's error lists the fields of both.
    pub(crate) fn parse_both<A, B>(mut self, backend: &'static str) -> Result<(A, B)>
    where
        A: DeserializeOwned,
        B: DeserializeOwned,
    {
        let a = self.split_fields::<A>().parse(backend)?;
        let b = self
            .parse(backend)
            .map_err(|err| with_known(err, fields_of::<A>(), true))?;
        Ok((a, b))
    }
}

/// `err`, where it is an unknown option, with the fields of `T` listed
/// after the options it names as known: options that were taken off
/// before the backend parsed the rest.
pub(crate) fn also_known<T: DeserializeOwned>(err: CacheError) -> CacheError {
    with_known(err, fields_of::<T>(), false)
}

/// `err`, where it is an unknown option, with `fields` added to the known
/// options, `first` or last.
fn with_known(err: CacheError, fields: &[&'static str], first: bool) -> CacheError {
    match err {
        CacheError::Config(ConfigError::UnknownOption {
            backend,
            option,
            known,
        }) => {
            let known = if first {
                fields.iter().copied().chain(known).collect()
            } else {
                known.into_iter().chain(fields.iter().copied()).collect()
            };
            ConfigError::UnknownOption {
                backend,
                option,
                known,
            }
            .into()
        }
        other => other,
    }
}

/// The options of the backends that connect to servers, with the meaning
/// these names have on every backend.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectionOptions {
    /// The most connections per server (not the idle ones kept).
    #[serde(default)]
    pub(crate) pool_size: Option<usize>,
    /// The longest wait for a connection, connecting included.
    #[serde(default, deserialize_with = "duration")]
    pub(crate) connect_timeout: Option<Duration>,
    /// The longest wait for a command's answer.
    #[serde(default, deserialize_with = "duration")]
    pub(crate) command_timeout: Option<Duration>,
}

/// The field names of a struct that derives `Deserialize`, as serde sees
/// them (the names of its unknown-field errors).
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = OptionError;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, OptionError> {
            Err(de::Error::custom("only a struct's fields are probed"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, OptionError> {
            *self.0 = fields;
            Err(de::Error::custom("only a struct's fields are probed"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// What went wrong, before it is told which backend it is about.
#[derive(Debug)]
pub(crate) enum OptionError {
    Unknown {
        option: String,
        known: &'static [&'static str],
    },
    Invalid {
        option: String,
        value: String,
        reason: String,
    },
    Other(String),
}

impl OptionError {
    fn into_config(self, backend: &'static str) -> ConfigError {
        match self {
            OptionError::Unknown { option, known } => ConfigError::UnknownOption {
                backend,
                option,
                known: known.to_vec(),
            },
            OptionError::Invalid {
                option,
                value,
                reason,
            } => ConfigError::InvalidOption {
                backend,
                option,
                value,
                reason,
            },
            OptionError::Other(reason) => ConfigError::InvalidOption {
                backend,
                option: "(options)".into(),
                value: String::new(),
                reason,
            },
        }
    }
}

impl Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::Unknown { option, .. } => write!(f, "unknown option {option:?}"),
            OptionError::Invalid { reason, .. } | OptionError::Other(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for OptionError {}

impl de::Error for OptionError {
    fn custom<M: Display>(msg: M) -> Self {
        OptionError::Other(msg.to_string())
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        OptionError::Unknown {
            option: field.to_owned(),
            known: expected,
        }
    }
}

/// The options as a map, each value told its option's name for errors.
struct Pairs {
    iter: std::collections::btree_map::IntoIter<String, String>,
    current: Option<(String, String)>,
}

impl<'de> MapAccess<'de> for Pairs {
    type Error = OptionError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, OptionError> {
        let Some((name, value)) = self.iter.next() else {
            return Ok(None);
        };
        let key = seed.deserialize(name.as_str().into_deserializer())?;
        self.current = Some((name, value));
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, OptionError> {
        let (option, value) = self
            .current
            .take()
            .ok_or_else(|| de::Error::custom("an option value without its name"))?;
        seed.deserialize(Text(&value)).map_err(|err| match err {
            OptionError::Other(reason) => OptionError::Invalid {
                option,
                value,
                reason,
            },
            other => other,
        })
    }
}

impl<'de> Deserializer<'de> for Pairs {
    type Error = OptionError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// One option's text, parsed as the field's type asks.
struct Text<'a>(&'a str);

impl Text<'_> {
    fn parse<T>(&self) -> Result<T, OptionError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.0.parse().map_err(de::Error::custom)
    }
}

macro_rules! parse_with_from_str {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
            visitor.$visit(self.parse::<$ty>()?)
        }
    )*};
}

impl<'de> Deserializer<'de> for Text<'_> {
    type Error = OptionError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        visitor.visit_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        visitor.visit_some(self)
    }

    parse_with_from_str! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct
        newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// A size such as `67108864`, `64MiB` or `100 kB`, in bytes.
pub(crate) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse::<bytesize::ByteSize>()
        .map(|size| Some(size.as_u64()))
        .map_err(|e| de::Error::custom(format!("{e}; expected a size such as 67108864 or 64MiB")))
}

/// A duration such as `2` (seconds), `0.5`, `250ms` or `1m 30s`.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map(Some)
            .map_err(de::Error::custom);
    }
    humantime::parse_duration(&text).map(Some).map_err(|e| {
        de::Error::custom(format!(
            "{e}; expected seconds (2, 0.5) or a duration (250ms, 1m 30s)"
        ))
    })
}

/// A cache timeout in seconds; `none`, `None` or `null` never expires.
pub(crate) fn timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timeout>, D::Error> {
    let text = String::deserialize(d)?;
    match text.as_str() {
        "none" | "None" | "null" => Ok(Some(Timeout::Forever)),
        _ => text
            .parse::<f64>()
            .map(|secs| Some(Timeout::from_secs_f64(secs)))
            .map_err(|_| de::Error::custom("expected seconds, or none to never expire")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Example {
        #[serde(default)]
        count: Option<u64>,
        #[serde(default)]
        flag: bool,
        #[serde(default, deserialize_with = "size")]
        bytes: Option<u64>,
        #[serde(default, deserialize_with = "duration")]
        wait: Option<Duration>,
        #[serde(default)]
        name: Option<String>,
    }

    fn options(pairs: &[(&str, &str)]) -> BackendOptions {
        let mut options = BackendOptions::default();
        for (name, value) in pairs {
            options.insert((*name).into(), (*value).into()).unwrap();
        }
        options
    }

    fn config_error(result: Result<Example>) -> ConfigError {
        match result {
            Err(crate::CacheError::Config(err)) => err,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn values_parse_as_before() {
        let parsed: Example = options(&[
            ("count", "+7"),
            ("flag", "true"),
            ("bytes", "64MiB"),
            ("wait", "1m 30s"),
            ("name", "x y"),
        ])
        .parse("test")
        .unwrap();
        assert_eq!(parsed.count, Some(7));
        assert!(parsed.flag);
        assert_eq!(parsed.bytes, Some(64 * 1024 * 1024));
        assert_eq!(parsed.wait, Some(Duration::from_secs(90)));
        assert_eq!(parsed.name.as_deref(), Some("x y"));
        for (text, expected) in [
            ("0.5", Duration::from_millis(500)),
            ("2", Duration::from_secs(2)),
            ("250ms", Duration::from_millis(250)),
        ] {
            let parsed: Example = options(&[("wait", text)]).parse("test").unwrap();
            assert_eq!(parsed.wait, Some(expected), "{text}");
        }
        let parsed: Example = options(&[("bytes", "100 kB")]).parse("test").unwrap();
        assert_eq!(parsed.bytes, Some(100_000));
        let empty: Example = options(&[]).parse("test").unwrap();
        assert_eq!((empty.count, empty.flag), (None, false));
    }

    #[test]
    fn unknown_option_lists_the_known_ones() {
        let err = config_error(options(&[("cuont", "1")]).parse("test"));
        assert!(
            matches!(
                err,
                ConfigError::UnknownOption { backend: "test", ref option, ref known }
                    if option == "cuont" && *known == ["count", "flag", "bytes", "wait", "name"]
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "unknown option \"cuont\" for the test cache backend; \
             known options: count, flag, bytes, wait, name"
        );
    }

    #[test]
    fn bad_values_name_backend_option_and_value() {
        for (option, value) in [
            ("count", "lots"),
            ("count", "-1"),
            ("flag", "yes"),
            ("bytes", "64 parsecs"),
            ("wait", "soon"),
        ] {
            let err = config_error(options(&[(option, value)]).parse("test"));
            assert!(
                matches!(
                    err,
                    ConfigError::InvalidOption { backend: "test", option: ref o, value: ref v, .. }
                        if o == option && v == value
                ),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(message.contains("test cache backend"), "{message}");
            assert!(message.contains(option), "{message}");
            assert!(message.contains(value), "{message}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Other {
        #[serde(default)]
        extra: bool,
    }

    #[test]
    fn two_structs_share_one_set_of_options() {
        let (example, other): (Example, Other) = options(&[("count", "3"), ("extra", "true")])
            .parse_both("test")
            .unwrap();
        assert_eq!((example.count, other.extra), (Some(3), true));
        let err = options(&[("xtra", "true")])
            .parse_both::<Example, Other>("test")
            .unwrap_err();
        assert!(
            matches!(
                err,
                crate::CacheError::Config(ConfigError::UnknownOption { ref known, .. })
                    if *known == ["count", "flag", "bytes", "wait", "name", "extra"]
            ),
            "{err:?}"
        );
    }

    #[test]
    fn fields_split_off_by_name() {
        let mut all = options(&[("count", "1"), ("other", "2")]);
        let known: Vec<_> = all.split_fields::<Example>().into_pairs().collect();
        assert_eq!(known, [("count".to_owned(), "1".to_owned())]);
        let rest: Vec<_> = all.into_pairs().collect();
        assert_eq!(rest, [("other".to_owned(), "2".to_owned())]);
    }
}
