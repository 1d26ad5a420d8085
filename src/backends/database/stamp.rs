//! Expiry times as each database stores them, always in UTC.
//!
//! * PostgreSQL: `TIMESTAMPTZ`, sent as a UTC instant.
//! * MySQL/MariaDB: `DATETIME(6)` holding UTC wall time, sent as a plain
//!   `DATETIME` (never `TIMESTAMP`, which the server converts through the
//!   session's time zone).
//! * SQLite: text `YYYY-MM-DD HH:MM:SS.ffffff`, always six fraction digits, so
//!   that comparing the text compares the times.
//!
//! Every time is taken on the client (never the server's `now()`), so the
//! server's time zone and clock do not matter.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Database, Decode, Encode, Type, encode::IsNull, error::BoxDynError};

/// A UTC instant with microsecond precision, the precision every supported
/// database keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Stamp(DateTime<Utc>);

/// The SQLite text layout: fixed width, so text order is time order.
#[cfg(feature = "sqlite")]
const SQLITE_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

impl Stamp {
    /// "Never expires": the last microsecond MySQL's `DATETIME` can hold
    /// (Django stores `datetime.max`, the same instant).
    pub(super) fn forever() -> Stamp {
        let last = NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|day| day.and_hms_micro_opt(23, 59, 59, 999_999));
        Stamp(last.map_or(DateTime::<Utc>::MAX_UTC, |t| t.and_utc()))
    }

    /// The instant `since_epoch` after 1970, or [`Stamp::forever`] when that is
    /// later (or `None`).
    pub(super) fn from_epoch(since_epoch: Option<Duration>) -> Stamp {
        let forever = Stamp::forever();
        let Some(since_epoch) = since_epoch else {
            return forever;
        };
        i64::try_from(since_epoch.as_micros())
            .ok()
            .and_then(DateTime::<Utc>::from_timestamp_micros)
            .map_or(forever, |t| Stamp(t).min(forever))
    }

    /// Now, to the microsecond.
    pub(super) fn now() -> Stamp {
        Stamp::from_epoch(Some(crate::clock::since_epoch()))
    }

    /// Whether the entry expires at `self` is still live at `now`.
    pub(super) fn is_live(self, now: Stamp) -> bool {
        self > now
    }

    /// How long the entry that expires at `self` has left at `now`; `None`
    /// when it never expires.
    pub(super) fn remaining(self, now: Stamp) -> Option<Duration> {
        if self == Stamp::forever() {
            return None;
        }
        Some((self.0 - now.0).to_std().unwrap_or(Duration::ZERO))
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use chrono::NaiveDateTime;
    use sqlx::sqlite::{Sqlite, SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};

    impl Type<Sqlite> for Stamp {
        fn type_info() -> SqliteTypeInfo {
            <str as Type<Sqlite>>::type_info()
        }

        fn compatible(ty: &SqliteTypeInfo) -> bool {
            // Text or a declared DATETIME; anything else is a corrupt row.
            <NaiveDateTime as Type<Sqlite>>::compatible(ty)
        }
    }

    impl<'q> Encode<'q, Sqlite> for Stamp {
        fn encode_by_ref(
            &self,
            buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>,
        ) -> Result<IsNull, BoxDynError> {
            let text = self.0.format(SQLITE_FORMAT).to_string();
            buf.push(SqliteArgumentValue::Text(text.into()));
            Ok(IsNull::No)
        }
    }

    impl<'r> Decode<'r, Sqlite> for Stamp {
        fn decode(value: SqliteValueRef<'r>) -> Result<Stamp, BoxDynError> {
            let text = <&str as Decode<Sqlite>>::decode(value)?;
            let naive = NaiveDateTime::parse_from_str(text, SQLITE_FORMAT)?;
            Ok(Stamp(naive.and_utc()))
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use sqlx::postgres::{PgTypeInfo, PgValueRef, Postgres};

    impl Type<Postgres> for Stamp {
        fn type_info() -> PgTypeInfo {
            <DateTime<Utc> as Type<Postgres>>::type_info()
        }
    }

    impl<'q> Encode<'q, Postgres> for Stamp {
        fn encode_by_ref(
            &self,
            buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
        ) -> Result<IsNull, BoxDynError> {
            <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
        }
    }

    impl<'r> Decode<'r, Postgres> for Stamp {
        fn decode(value: PgValueRef<'r>) -> Result<Stamp, BoxDynError> {
            <DateTime<Utc> as Decode<Postgres>>::decode(value).map(Stamp)
        }
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use chrono::NaiveDateTime;
    use sqlx::mysql::{MySql, MySqlTypeInfo, MySqlValueRef};

    impl Type<MySql> for Stamp {
        fn type_info() -> MySqlTypeInfo {
            <NaiveDateTime as Type<MySql>>::type_info()
        }

        fn compatible(ty: &MySqlTypeInfo) -> bool {
            <NaiveDateTime as Type<MySql>>::compatible(ty)
        }
    }

    impl<'q> Encode<'q, MySql> for Stamp {
        fn encode_by_ref(
            &self,
            buf: &mut <MySql as Database>::ArgumentBuffer<'q>,
        ) -> Result<IsNull, BoxDynError> {
            <NaiveDateTime as Encode<MySql>>::encode_by_ref(&self.0.naive_utc(), buf)
        }
    }

    impl<'r> Decode<'r, MySql> for Stamp {
        fn decode(value: MySqlValueRef<'r>) -> Result<Stamp, BoxDynError> {
            <NaiveDateTime as Decode<MySql>>::decode(value).map(|naive| Stamp(naive.and_utc()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forever_is_the_end_of_year_9999() {
        let forever = Stamp::forever();
        assert_eq!(forever.0.to_rfc3339(), "9999-12-31T23:59:59.999999+00:00");
        assert_eq!(Stamp::from_epoch(None), forever);
        assert_eq!(Stamp::from_epoch(Some(Duration::MAX)), forever);
    }

    #[test]
    fn stamps_keep_microseconds() {
        let t = Stamp::from_epoch(Some(Duration::from_nanos(1_500_000_123_456_789)));
        assert_eq!(t.0.timestamp_micros(), 1_500_000_123_456_789 / 1000);
        assert!(t.is_live(Stamp::from_epoch(Some(Duration::from_secs(1)))));
        assert!(!t.is_live(t));
    }

    #[test]
    fn remaining_lifetimes() {
        let now = Stamp::from_epoch(Some(Duration::from_secs(100)));
        let later = Stamp::from_epoch(Some(Duration::from_millis(101_500)));
        assert_eq!(later.remaining(now), Some(Duration::from_millis(1500)));
        assert_eq!(now.remaining(later), Some(Duration::ZERO));
        assert_eq!(Stamp::forever().remaining(now), None);
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_text_sorts_as_time() {
        let a = Stamp::from_epoch(Some(Duration::from_micros(1_000_000)));
        let b = Stamp::from_epoch(Some(Duration::from_micros(1_000_001)));
        let text = |s: Stamp| s.0.format(SQLITE_FORMAT).to_string();
        assert_eq!(text(a), "1970-01-01 00:00:01.000000");
        assert!(text(a) < text(b));
        assert!(text(b) < text(Stamp::forever()));
    }
}
