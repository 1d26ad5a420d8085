//! The database backend on MySQL/MariaDB: the conformance suite, Django's
//! culling cases, races, time zones and outages. Needs `MYSQL_URL`
//! (`./scripts/test` starts a private MariaDB and sets it).
#![cfg(feature = "mysql")]

mod support;

use tower_cache::{Cache, Timeout};

// MariaDB takes offsets from -12:59 to +13:00.
crate::server_database_suite!(
    var: "MYSQL_URL",
    name: "MySQL/MariaDB",
    time_zones: "timezone" = ["+13:00", "-12:00"],
    unreachable: "mysql://u@127.0.0.1:{port}/db",
);

#[tokio::test]
async fn the_mariadb_scheme_is_mysql() {
    let Some(url) = url() else { return };
    let url = url.replacen("mysql://", "mariadb://", 1);
    let table = support::database::unique_table();
    let url = support::database::with_query(&url, "table", &table);
    let cache = Cache::from_url(&url).await.unwrap();
    cache.set("k", &1, Timeout::Default).await.unwrap();
    assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(1));
    assert_eq!(cache.backend().name(), "mysql");
}
