//! The SQL each database speaks: the schema (Django's `createcachetable`)
//! and every statement the backend runs, with the table name quoted once.
//!
//! Statements are written with `?` placeholders, each used once and bound in
//! order; PostgreSQL's are renumbered to `$1, $2, ...`.

/// Which database a [`DatabaseBackend`](super::DatabaseBackend) talks to.
#[cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    /// The backend's name in errors and logs.
    pub(super) fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
        }
    }

    /// `ident` as a quoted identifier (a table name may hold spaces, as
    /// Django's tests' `"test cache table"` does).
    fn quote(self, ident: &str) -> String {
        let mark = match self {
            Dialect::MySql => '`',
            Dialect::Sqlite | Dialect::Postgres => '"',
        };
        let mut quoted = String::with_capacity(ident.len() + 2);
        quoted.push(mark);
        for c in ident.chars() {
            if c == mark {
                quoted.push(mark);
            }
            quoted.push(c);
        }
        quoted.push(mark);
        quoted
    }

    /// `sql` with this dialect's placeholders.
    fn placeholders(self, sql: &str) -> String {
        if self != Dialect::Postgres {
            return sql.to_owned();
        }
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The statement that opens a transaction which will write: SQLite's
    /// `BEGIN IMMEDIATE` takes the write lock at once, so a read-then-write
    /// transaction cannot fail half way on a lock upgrade.
    fn begin(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres | Dialect::MySql => "BEGIN",
        }
    }

    /// The driver options a URL may carry for this database (the rest of the
    /// query is the backend's own options); `None` lets the driver judge.
    pub(super) fn is_driver_option(self, name: &str) -> Option<bool> {
        match self {
            // sqlx rejects unknown SQLite options itself.
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(
                matches!(
                    name,
                    "sslmode"
                        | "ssl-mode"
                        | "sslrootcert"
                        | "ssl-root-cert"
                        | "ssl-ca"
                        | "sslcert"
                        | "ssl-cert"
                        | "sslkey"
                        | "ssl-key"
                        | "statement-cache-capacity"
                        | "host"
                        | "hostaddr"
                        | "port"
                        | "dbname"
                        | "user"
                        | "password"
                        | "application_name"
                        | "options"
                ) || name.starts_with("options["),
            ),
            Dialect::MySql => Some(matches!(
                name,
                "sslmode"
                    | "ssl-mode"
                    | "sslca"
                    | "ssl-ca"
                    | "charset"
                    | "collation"
                    | "sslcert"
                    | "ssl-cert"
                    | "sslkey"
                    | "ssl-key"
                    | "statement-cache-capacity"
                    | "socket"
                    | "timezone"
                    | "time-zone"
            )),
        }
    }
}

/// Every statement the backend runs on one table.
#[derive(Debug)]
pub(super) struct Statements {
    pub(super) dialect: Dialect,
    table: String,
    key_text: &'static str,
    /// `BEGIN` for transactions that write.
    pub(super) begin: &'static str,
    /// The schema, in order.
    pub(super) create: Vec<String>,
    /// (table name) -> a row when the table exists.
    pub(super) table_exists: String,
    /// (key) -> value, expires.
    pub(super) get: String,
    /// (key, value, expires): insert or replace.
    pub(super) set: String,
    /// PostgreSQL and SQLite: (key, value, expires, now), one row affected
    /// when stored. MySQL: (key, value, expires) after `purge_key`.
    pub(super) add: String,
    /// (key, now): removes the key's row if it has expired.
    pub(super) purge_key: String,
    /// (expires, key, now): one row affected when the key was live.
    pub(super) touch: String,
    /// (key, now): removes the key's row if it is live.
    pub(super) delete_live: String,
    /// (key): removes the key's row.
    pub(super) delete: String,
    /// (key, value, now): removes the key's row if it is live and holds
    /// exactly that value; one row affected when it did.
    pub(super) delete_if_equal: String,
    /// (key, now) -> value of a live row, locked for update.
    pub(super) select_for_update: String,
    /// (value, key).
    pub(super) update_value: String,
    /// () -> the number of rows.
    pub(super) count: String,
    /// (now): removes every expired row.
    pub(super) purge_expired: String,
    /// (offset) -> the key at that offset in key order.
    pub(super) key_at: String,
    /// (key): removes every row whose key sorts before it.
    pub(super) delete_below: String,
    /// (): removes every row.
    pub(super) clear: String,
    /// (prefix length in characters, prefix).
    pub(super) clear_prefix: String,
}

impl Statements {
    pub(super) fn new(dialect: Dialect, table: &str) -> Statements {
        let t = dialect.quote(table);
        let index = dialect.quote(&format!("{table}_expires"));
        let sql = |text: String| dialect.placeholders(&text);
        let create = match dialect {
            Dialect::Sqlite => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (cache_key VARCHAR(255) NOT NULL PRIMARY KEY, \
                     value BLOB NOT NULL, expires DATETIME NOT NULL)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {index} ON {t} (expires)"),
            ],
            // "C" collation: keys compare byte by byte, as on the other two.
            Dialect::Postgres => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (cache_key VARCHAR(255) COLLATE \"C\" NOT NULL \
                     PRIMARY KEY, value BYTEA NOT NULL, expires TIMESTAMPTZ NOT NULL)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {index} ON {t} (expires)"),
            ],
            // A binary collation: the default ones fold case, so `A` and `a`
            // would be one key.
            Dialect::MySql => vec![format!(
                "CREATE TABLE IF NOT EXISTS {t} (cache_key VARCHAR(255) CHARACTER SET utf8mb4 \
                 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, value LONGBLOB NOT NULL, \
                 expires DATETIME(6) NOT NULL, INDEX {index} (expires))"
            )],
        };
        let table_exists = match dialect {
            Dialect::Sqlite => "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            Dialect::Postgres => {
                "SELECT 1 FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = ?"
            }
            Dialect::MySql => {
                "SELECT 1 FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = ?"
            }
        };
        let (set, add) = match dialect {
            Dialect::Sqlite | Dialect::Postgres => (
                format!(
                    "INSERT INTO {t} (cache_key, value, expires) VALUES (?, ?, ?) \
                     ON CONFLICT (cache_key) DO UPDATE SET value = excluded.value, expires = excluded.expires"
                ),
                format!(
                    "INSERT INTO {t} (cache_key, value, expires) VALUES (?, ?, ?) \
                     ON CONFLICT (cache_key) DO UPDATE SET value = excluded.value, expires = excluded.expires \
                     WHERE {t}.expires <= ?"
                ),
            ),
            // MySQL reports one affected row both for an insert and for an
            // unchanged duplicate (sqlx sets CLIENT_FOUND_ROWS), so `add`
            // removes an expired row first and then inserts or ignores.
            Dialect::MySql => (
                format!(
                    "INSERT INTO {t} (cache_key, value, expires) VALUES (?, ?, ?) \
                     ON DUPLICATE KEY UPDATE value = VALUES(value), expires = VALUES(expires)"
                ),
                format!("INSERT IGNORE INTO {t} (cache_key, value, expires) VALUES (?, ?, ?)"),
            ),
        };
        // MySQL reports a column with a binary collation as VARBINARY; keys
        // are read back through a conversion to text.
        let key_text = match dialect {
            Dialect::MySql => "CONVERT(cache_key USING utf8mb4)",
            Dialect::Sqlite | Dialect::Postgres => "cache_key",
        };
        let lock = match dialect {
            // BEGIN IMMEDIATE already holds the database's write lock.
            Dialect::Sqlite => "",
            Dialect::Postgres | Dialect::MySql => " FOR UPDATE",
        };
        Statements {
            dialect,
            begin: dialect.begin(),
            create,
            table_exists: sql(table_exists.to_owned()),
            get: sql(format!(
                "SELECT value, expires FROM {t} WHERE cache_key = ?"
            )),
            set: sql(set),
            add: sql(add),
            purge_key: sql(format!(
                "DELETE FROM {t} WHERE cache_key = ? AND expires <= ?"
            )),
            touch: sql(format!(
                "UPDATE {t} SET expires = ? WHERE cache_key = ? AND expires > ?"
            )),
            delete_live: sql(format!(
                "DELETE FROM {t} WHERE cache_key = ? AND expires > ?"
            )),
            delete: sql(format!("DELETE FROM {t} WHERE cache_key = ?")),
            delete_if_equal: sql(format!(
                "DELETE FROM {t} WHERE cache_key = ? AND value = ? AND expires > ?"
            )),
            select_for_update: sql(format!(
                "SELECT value FROM {t} WHERE cache_key = ? AND expires > ?{lock}"
            )),
            update_value: sql(format!("UPDATE {t} SET value = ? WHERE cache_key = ?")),
            count: format!("SELECT COUNT(*) FROM {t}"),
            purge_expired: sql(format!("DELETE FROM {t} WHERE expires <= ?")),
            key_at: sql(format!(
                "SELECT {key_text} FROM {t} ORDER BY cache_key LIMIT 1 OFFSET ?"
            )),
            delete_below: sql(format!("DELETE FROM {t} WHERE cache_key < ?")),
            clear: format!("DELETE FROM {t}"),
            clear_prefix: sql(format!("DELETE FROM {t} WHERE SUBSTR(cache_key, 1, ?) = ?")),
            key_text,
            table: t,
        }
    }

    /// `( ?, ?, ... )` for `n` values, numbered from `first` on PostgreSQL.
    fn list(&self, first: usize, n: usize) -> String {
        let mut out = String::with_capacity(n * 5 + 2);
        out.push('(');
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            match self.dialect {
                Dialect::Postgres => {
                    out.push('$');
                    out.push_str(&(first + i).to_string());
                }
                Dialect::Sqlite | Dialect::MySql => out.push('?'),
            }
        }
        out.push(')');
        out
    }

    /// (keys...) -> key, value, expires of each row found.
    pub(super) fn get_many(&self, n: usize) -> String {
        format!(
            "SELECT {}, value, expires FROM {} WHERE cache_key IN {}",
            self.key_text,
            self.table,
            self.list(1, n)
        )
    }

    /// (keys...): removes those rows.
    pub(super) fn delete_many(&self, n: usize) -> String {
        format!(
            "DELETE FROM {} WHERE cache_key IN {}",
            self.table,
            self.list(1, n)
        )
    }

    /// (now, keys...): removes those rows that have expired.
    pub(super) fn purge_many(&self, n: usize) -> String {
        format!(
            "DELETE FROM {} WHERE expires <= {} AND cache_key IN {}",
            self.table,
            self.dialect.placeholders("?"),
            self.list(2, n)
        )
    }

    /// (key, value, expires) x n: inserts or replaces every row.
    pub(super) fn set_many(&self, n: usize) -> String {
        let mut values = String::with_capacity(n * 12);
        for i in 0..n {
            if i > 0 {
                values.push_str(", ");
            }
            values.push_str(&self.list(3 * i + 1, 3));
        }
        let t = &self.table;
        match self.dialect {
            Dialect::Sqlite | Dialect::Postgres => format!(
                "INSERT INTO {t} (cache_key, value, expires) VALUES {values} \
                 ON CONFLICT (cache_key) DO UPDATE SET value = excluded.value, expires = excluded.expires"
            ),
            Dialect::MySql => format!(
                "INSERT INTO {t} (cache_key, value, expires) VALUES {values} \
                 ON DUPLICATE KEY UPDATE value = VALUES(value), expires = VALUES(expires)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_for_each_dialect() {
        assert_eq!(
            Dialect::Sqlite.quote("test cache table"),
            "\"test cache table\""
        );
        assert_eq!(Dialect::Postgres.quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(Dialect::MySql.quote("a`b"), "`a``b`");
    }

    #[test]
    fn postgres_placeholders_are_numbered() {
        let sql = Statements::new(Dialect::Postgres, "t");
        assert_eq!(
            sql.touch,
            "UPDATE \"t\" SET expires = $1 WHERE cache_key = $2 AND expires > $3"
        );
        assert_eq!(
            sql.delete_if_equal,
            "DELETE FROM \"t\" WHERE cache_key = $1 AND value = $2 AND expires > $3"
        );
        assert_eq!(
            sql.purge_many(2),
            "DELETE FROM \"t\" WHERE expires <= $1 AND cache_key IN ($2, $3)"
        );
        assert!(
            sql.set_many(2)
                .contains("VALUES ($1, $2, $3), ($4, $5, $6)")
        );
        let sqlite = Statements::new(Dialect::Sqlite, "t");
        assert_eq!(
            sqlite.get_many(2),
            "SELECT cache_key, value, expires FROM \"t\" WHERE cache_key IN (?, ?)"
        );
    }

    #[test]
    fn schema_mirrors_createcachetable() {
        let sql = Statements::new(Dialect::MySql, "tower_cache");
        assert_eq!(sql.create.len(), 1);
        assert!(sql.create[0].contains("cache_key VARCHAR(255)"));
        assert!(sql.create[0].contains("INDEX `tower_cache_expires` (expires)"));
        let sql = Statements::new(Dialect::Postgres, "tower_cache");
        assert!(sql.create[1].starts_with("CREATE INDEX IF NOT EXISTS \"tower_cache_expires\""));
    }
}
