//! The database backend on PostgreSQL: the conformance suite, Django's
//! culling cases, races, time zones and outages. Needs `DATABASE_URL`
//! (`./scripts/test` starts a private server and sets it).
#![cfg(feature = "postgres")]

mod support;

use std::sync::Arc;

use support::database::{fresh, required_url, server_url, with_query};
use tower_cache::DynBackend;

const VAR: &str = "DATABASE_URL";

fn url() -> Option<String> {
    server_url(VAR, "PostgreSQL")
}

async fn backend() -> DynBackend {
    Arc::new(fresh(&required_url(VAR, "PostgreSQL"), |b| b).await)
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
        &with_query(&url, "options", "-c TimeZone=Pacific/Kiritimati"),
        &with_query(&url, "options", "-c TimeZone=America/Adak"),
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_server_fails_in_bounded_time() {
    support::database::unreachable_server_fails_in_bounded_time("postgres://u@127.0.0.1:{port}/db")
        .await;
}
