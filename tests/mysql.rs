//! The database backend on MySQL/MariaDB: the conformance suite, Django's
//! culling cases, races, time zones and outages. Needs `MYSQL_URL`
//! (`./scripts/test` starts a private MariaDB and sets it).
#![cfg(feature = "mysql")]

mod support;

use std::sync::Arc;

use support::database::{fresh, required_url, server_url, with_query};
use tower_cache::{Cache, DynBackend, Timeout};

const VAR: &str = "MYSQL_URL";

fn url() -> Option<String> {
    server_url(VAR, "MySQL/MariaDB")
}

async fn backend() -> DynBackend {
    Arc::new(fresh(&required_url(VAR, "MySQL/MariaDB"), |b| b).await)
}

tower_cache::conformance_suite!(backend);

crate::database_tests!(
    cull,
    zero_cull,
    cull_delete_when_store_empty,
    cull_removes_expired_rows_then_the_smallest_keys,
    incr_race,
    add_race,
    add_replaces_only_expired_entries,
    expired_rows_are_misses,
    incr_keeps_the_expiry,
    create_table,
    clear_is_limited_to_the_prefix,
    many_keys,
    garbage_values_are_codec_errors,
);

#[tokio::test]
async fn session_time_zones_do_not_matter() {
    let Some(url) = url() else { return };
    support::database::time_zones_do_not_matter(
        &with_query(&url, "timezone", "+13:00"),
        &with_query(&url, "timezone", "-12:00"),
    )
    .await;
}

#[tokio::test]
async fn the_mariadb_scheme_is_mysql() {
    let Some(url) = url() else { return };
    let url = url.replacen("mysql://", "mariadb://", 1);
    let table = support::database::unique_table();
    let cache = Cache::from_url(&with_query(&url, "table", &table))
        .await
        .unwrap();
    cache.set("k", &1, Timeout::Default).await.unwrap();
    assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(1));
    assert_eq!(cache.backend().name(), "mysql");
}

#[tokio::test]
async fn an_unreachable_server_fails_in_bounded_time() {
    support::database::unreachable_server_fails_in_bounded_time("mysql://u@127.0.0.1:{port}/db")
        .await;
}
