//! The database backend on PostgreSQL: the conformance suite, Django's
//! culling cases, races, time zones and outages. Needs `DATABASE_URL`
//! (`./scripts/test` starts a private server and sets it).
#![cfg(feature = "postgres")]

mod support;

crate::server_database_suite!(
    var: "DATABASE_URL",
    name: "PostgreSQL",
    time_zones: "options" = ["-c TimeZone=Pacific/Kiritimati", "-c TimeZone=America/Adak"],
    unreachable: "postgres://u@127.0.0.1:{port}/db",
);
