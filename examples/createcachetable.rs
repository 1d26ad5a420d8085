//! Creates the database cache table: Django's `manage.py createcachetable`.
//!
//! Run with
//!
//! ```text
//! cargo run --example createcachetable --features sqlite -- sqlite://cache.db
//! cargo run --example createcachetable --features sqlite,postgres -- postgres://user@localhost/app
//! cargo run --example createcachetable --features sqlite,mysql -- 'mysql://user@localhost/app?table=my_cache'
//! cargo run --example createcachetable --features sqlite -- --dry-run sqlite://cache.db
//! ```
//!
//! With no URL argument it reads `CACHE_URL`. The URL takes the cache's own
//! options, `table` among them (default `tower_cache`). Running it again is
//! harmless: an existing table is left alone.

use std::process::ExitCode;

use tower_cache::backends::DatabaseBackend;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let dry_run = args.iter().any(|a| a == "--dry-run");
    args.retain(|a| a != "--dry-run");
    let Some(url) = args
        .pop()
        .or_else(|| std::env::var(tower_cache::CACHE_URL_ENV).ok())
    else {
        eprintln!("usage: createcachetable [--dry-run] DATABASE_URL (or set CACHE_URL)");
        return ExitCode::FAILURE;
    };

    let backend = match DatabaseBackend::from_cache_url(&url).await {
        Ok(backend) => backend,
        Err(err) => {
            eprintln!("{}", report(&err));
            return ExitCode::FAILURE;
        }
    };
    if dry_run {
        for statement in backend.create_table_sql() {
            println!("{statement};");
        }
        return ExitCode::SUCCESS;
    }
    match backend.create_table().await {
        Ok(true) => println!("Cache table '{}' created.", backend.table()),
        Ok(false) => println!("Cache table '{}' already exists.", backend.table()),
        Err(err) => {
            eprintln!(
                "Cache table '{}' could not be created.\nThe error was: {}.",
                backend.table(),
                report(&err)
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// The error and its sources, one line.
fn report(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
