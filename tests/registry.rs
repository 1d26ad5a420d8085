//! `Caches` and `CacheConfig`: URLs, configuration, and the errors that name
//! what is wrong.

use std::time::Duration;

use tower_cache::{Cache, CacheConfig, CacheError, Caches, CachesConfig, ConfigError, Timeout};

fn config_error(result: tower_cache::Result<impl std::fmt::Debug>) -> ConfigError {
    match result {
        Err(CacheError::Config(err)) => err,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn memory_url_with_options() {
    let cache = Cache::from_url("memory://?max_capacity=10&timeout=60&key_prefix=site&version=3")
        .await
        .unwrap();
    assert_eq!(cache.key_prefix(), "site");
    assert_eq!(cache.version(), 3);
    assert_eq!(cache.default_timeout(), Some(Duration::from_secs(60)));
    assert_eq!(cache.make_key("k").unwrap(), "site:3:k");
    Cache::from_url("memory://?max_bytes=64MiB").await.unwrap();
    Cache::from_url("memory://?max_bytes=1048576")
        .await
        .unwrap();
}

#[tokio::test]
async fn defaults_are_djangos() {
    let cache = Cache::from_url("memory://").await.unwrap();
    assert_eq!(cache.default_timeout(), Some(Duration::from_secs(300)));
    assert_eq!(cache.make_key("k").unwrap(), ":1:k");
    let forever = Cache::from_url("memory://?timeout=none").await.unwrap();
    assert_eq!(forever.default_timeout(), None);
}

#[tokio::test]
async fn ttl_jitter_is_a_cache_level_option() {
    let cache = Cache::from_url("memory://?ttl_jitter=10").await.unwrap();
    assert_eq!(cache.ttl_jitter().percentage(), 10);
    let config: CacheConfig =
        serde_json::from_str(r#"{"url": "memory://", "options": {"ttl_jitter": 5}}"#).unwrap();
    assert_eq!(config.build().await.unwrap().ttl_jitter().percentage(), 5);
    assert_eq!(
        Cache::from_url("memory://")
            .await
            .unwrap()
            .ttl_jitter()
            .percentage(),
        0
    );
    for bad in ["60", "-1", "lots"] {
        let err = config_error(Cache::from_url(&format!("memory://?ttl_jitter={bad}")).await);
        assert!(
            matches!(err, ConfigError::InvalidOption { ref option, .. } if option == "ttl_jitter"),
            "{bad}: {err}"
        );
    }
}

#[tokio::test]
async fn unknown_scheme_is_named() {
    let err = config_error(Cache::from_url("nosuch://host").await);
    assert!(matches!(err, ConfigError::UnknownScheme { ref scheme } if scheme == "nosuch"));
    assert!(err.to_string().contains("\"nosuch\""), "{err}");
}

#[tokio::test]
async fn bad_url_is_named() {
    let err = config_error(Cache::from_url("not a url").await);
    assert!(matches!(err, ConfigError::InvalidUrl { .. }), "{err}");
    assert!(err.to_string().contains("not a url"), "{err}");
}

#[tokio::test]
async fn unknown_option_is_named_with_the_known_ones() {
    let err = config_error(Cache::from_url("memory://?max_entries=5").await);
    let message = err.to_string();
    assert!(message.contains("\"max_entries\""), "{message}");
    assert!(message.contains("max_capacity, max_bytes"), "{message}");
    let err = config_error(Cache::from_url("dummy://?anything=1").await);
    assert!(
        matches!(
            err,
            ConfigError::UnknownOption {
                backend: "dummy",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn bad_option_value_is_named() {
    let err = config_error(Cache::from_url("memory://?max_capacity=lots").await);
    assert!(
        matches!(err, ConfigError::InvalidOption { ref option, ref value, .. } if option == "max_capacity" && value == "lots"),
        "{err}"
    );
    let err = config_error(Cache::from_url("memory://?max_bytes=64 parsecs").await);
    assert!(err.to_string().contains("max_bytes"), "{err}");
    let err = config_error(Cache::from_url("memory://?timeout=soon").await);
    assert!(err.to_string().contains("timeout"), "{err}");
    let err = config_error(Cache::from_url("memory://?max_capacity=1&max_bytes=1MiB").await);
    assert!(err.to_string().contains("not both"), "{err}");
}

#[tokio::test]
async fn schemes_of_disabled_features_name_the_feature() {
    let cases = [
        ("redis://127.0.0.1:6379", "redis"),
        ("memcached://127.0.0.1:11211", "memcached"),
        ("sqlite://cache.db", "sqlite"),
        ("postgres://localhost/db", "postgres"),
        ("mysql://localhost/db", "mysql"),
        ("file:///tmp/cache", "file"),
    ];
    for (url, feature) in cases {
        match Cache::from_url(url).await {
            // The feature is on in this build: the scheme is known.
            Ok(_) | Err(CacheError::Backend { .. }) => {}
            Err(CacheError::Config(ConfigError::FeatureDisabled { feature: f, .. })) => {
                assert_eq!(f, feature, "{url}");
                let message = Cache::from_url(url).await.unwrap_err().to_string();
                assert!(
                    message.contains(&format!("`{feature}` feature")),
                    "{message}"
                );
            }
            Err(other) => {
                // A backend that needs a server may fail to connect here; it
                // must still not call the scheme unknown.
                assert!(
                    !matches!(other, CacheError::Config(ConfigError::UnknownScheme { .. })),
                    "{url}: {other}"
                );
            }
        }
    }
}

#[tokio::test]
async fn caches_from_config_like_djangos_caches() {
    let config: CachesConfig = serde_json::from_str(
        r#"{
            "default": {"url": "memory://", "timeout": 60},
            "forever": {"url": "memory://", "timeout": null, "key_prefix": "f", "version": 2,
                        "options": {"max_capacity": 100}},
            "off": {"url": "dummy://"}
        }"#,
    )
    .unwrap();
    let caches = Caches::from_config(&config).await.unwrap();
    assert_eq!(
        caches.default().default_timeout(),
        Some(Duration::from_secs(60))
    );
    let forever = caches.get("forever").unwrap();
    assert_eq!(forever.default_timeout(), None);
    assert_eq!(forever.make_key("k").unwrap(), "f:2:k");
    caches
        .get("off")
        .unwrap()
        .set("k", "v", Timeout::Default)
        .await
        .unwrap();
    assert_eq!(
        caches.get("off").unwrap().get::<String>("k").await.unwrap(),
        None
    );
    assert_eq!(caches.iter().count(), 3);
    caches.close_all().await.unwrap();
}

#[tokio::test]
async fn unknown_alias_has_djangos_message() {
    let caches = Caches::from_url("memory://").await.unwrap();
    let err = config_error(caches.get("nonexistent"));
    assert_eq!(
        err.to_string(),
        "The connection \"nonexistent\" doesn't exist."
    );
}

#[tokio::test]
async fn config_without_default_is_an_error() {
    let config = CachesConfig::from([("other".to_owned(), CacheConfig::from_url("memory://"))]);
    let err = config_error(Caches::from_config(&config).await);
    assert!(err.to_string().contains("default"), "{err}");
}

#[tokio::test]
async fn setting_given_in_config_and_url_is_an_error() {
    let config: CacheConfig =
        serde_json::from_str(r#"{"url": "memory://?timeout=5", "timeout": 10}"#).unwrap();
    let err = config_error(config.build().await);
    assert!(err.to_string().contains("timeout"), "{err}");
}

#[tokio::test]
async fn unknown_config_fields_are_rejected() {
    let err = serde_json::from_str::<CacheConfig>(r#"{"url": "memory://", "LOCATION": "x"}"#)
        .unwrap_err();
    assert!(err.to_string().contains("LOCATION"), "{err}");
}

#[tokio::test]
async fn from_env_builds_the_default_cache() {
    // Whatever CACHE_URL says (memory:// when unset), the default cache works.
    // The environment is not changed here: tests run in parallel threads.
    let caches = Caches::from_env().await.unwrap();
    caches
        .default()
        .set("k", &1, Timeout::Default)
        .await
        .unwrap();
    assert_eq!(caches.default().get::<i64>("k").await.unwrap(), Some(1));
}

#[tokio::test]
async fn unknown_option_error_lists_every_known_option() {
    let err = config_error(Cache::from_url("memory://?max_entries=5").await);
    assert!(
        matches!(
            err,
            ConfigError::UnknownOption { backend: "memory", ref option, ref known }
                if option == "max_entries" && *known == ["max_capacity", "max_bytes"]
        ),
        "{err:?}"
    );
    let err = config_error(Cache::from_url("dummy://?anything=1").await);
    assert!(err.to_string().contains("known options: (none)"), "{err}");
    // An option from the configuration's `options` is checked the same way.
    let config: CacheConfig =
        serde_json::from_str(r#"{"url": "memory://", "options": {"max_size": 5}}"#).unwrap();
    let err = config_error(config.build().await);
    assert!(err.to_string().contains("\"max_size\""), "{err}");
}

#[tokio::test]
async fn option_values_from_config_parse_as_in_urls() {
    let config: CacheConfig = serde_json::from_str(
        r#"{"url": "memory://", "options": {"max_capacity": 10}, "key_prefix": "p"}"#,
    )
    .unwrap();
    assert_eq!(config.build().await.unwrap().key_prefix(), "p");
    let config: CacheConfig =
        serde_json::from_str(r#"{"url": "memory://", "options": {"max_bytes": "64MiB"}}"#).unwrap();
    config.build().await.unwrap();
    let config: CacheConfig =
        serde_json::from_str(r#"{"url": "memory://", "options": {"max_capacity": -1}}"#).unwrap();
    let err = config_error(config.build().await);
    assert!(
        matches!(
            err,
            ConfigError::InvalidOption { backend: "memory", ref option, ref value, .. }
                if option == "max_capacity" && value == "-1"
        ),
        "{err:?}"
    );
}

/// A URL's password never appears in an error, whichever part is wrong and
/// whichever backends this build has.
#[tokio::test]
async fn errors_never_show_the_urls_password() {
    let urls = [
        "redis://:s3cret@127.0.0.1:1/0?pool_sise=3",
        "redis://:s3cret@127.0.0.1:1/notanumber",
        "redis://:s3cret@127.0.0.1:1/0?command_timeout=soon",
        "redis://:s3cret@h1:1,:x@/0",
        "memcached://user:s3cret@127.0.0.1:11211",
        "postgres://user:s3cret@[::1/db",
        "postgres://user:s3cret@127.0.0.1:1/db?max_entries=lots",
        "postgres://user:s3cret@127.0.0.1:1/db?query_timeout=5s",
        "mysql://user:s3cret@127.0.0.1:1/db?pool_size=many",
        "dummy://user:s3cret@host?anything=1",
        "nosuch://user:s3cret@host",
        "file://user:s3cret@a,b/dir",
    ];
    for url in urls {
        let err = match Cache::from_url(url).await {
            Err(err) => err,
            Ok(_) => panic!("{url} should not build"),
        };
        let mut shown = format!("{err} {err:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            shown.push_str(&format!(" {cause} {cause:?}"));
            source = cause.source();
        }
        assert!(!shown.contains("s3cret"), "{url}: {shown}");
    }
}

/// No `Debug` output of a configuration or a builder shows a URL's password,
/// for any scheme.
#[test]
fn debug_output_never_shows_the_urls_password() {
    let urls = [
        "redis://:s3cret@127.0.0.1:1/0",
        "rediss://user:s3cret@127.0.0.1:1/0",
        "redis+cluster://:s3cret@h1:1,:s3cret@h2:2",
        "memcached://user:s3cret@127.0.0.1:11211",
        "postgres://user:s3cret@127.0.0.1:1/db",
        "mysql://user:s3cret@127.0.0.1:1/db",
        "sqlite://user:s3cret@host/cache.db",
        "file://user:s3cret@host/dir",
        "memory://user:s3cret@host",
    ];
    for url in urls {
        let shown = format!("{:?}", tower_cache::CacheConfig::from_url(url));
        assert!(
            !shown.contains("s3cret") && shown.contains("***"),
            "{shown}"
        );
    }
    let builders: Vec<String> = vec![
        #[cfg(feature = "redis")]
        format!(
            "{:?}",
            tower_cache::backends::RedisBackend::builder(["redis://:s3cret@h:1/0"])
        ),
        #[cfg(feature = "memcached")]
        format!(
            "{:?}",
            tower_cache::backends::MemcachedBackend::builder(["memcached://u:s3cret@h:1"])
        ),
        #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
        format!(
            "{:?}",
            tower_cache::backends::DatabaseBackend::builder("postgres://u:s3cret@h/db")
        ),
    ];
    for shown in builders {
        assert!(
            !shown.contains("s3cret") && shown.contains("***"),
            "{shown}"
        );
    }
}

/// `l1_*` options put an L1 in front of a shared backend, from a URL or a
/// configuration's options; they are refused where the cache is already in
/// process, and listed among the known options.
#[cfg(all(feature = "sqlite", feature = "memcached", feature = "redis"))]
#[tokio::test]
async fn l1_options_make_a_tiered_backend() {
    let cache = Cache::from_url("sqlite::memory:?l1_max_bytes=1MiB&l1_ttl=250ms&max_entries=10")
        .await
        .unwrap();
    let debug = format!("{:?}", cache.backend());
    assert!(debug.starts_with("TieredBackend"), "{debug}");
    assert!(
        debug.contains("l1_max_bytes: 1048576") && debug.contains("l1_ttl: 250ms"),
        "{debug}"
    );
    assert_eq!(cache.backend().name(), "sqlite");
    cache.set("k", &1, Timeout::Default).await.unwrap();
    assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(1));

    let config: CacheConfig = serde_json::from_str(
        r#"{"url": "sqlite::memory:", "options": {"l1_max_bytes": "2MiB", "l1_ttl": 0.5}}"#,
    )
    .unwrap();
    let debug = format!("{:?}", config.build().await.unwrap().backend());
    assert!(debug.contains("l1_ttl: 500ms"), "{debug}");
    // Off by default.
    let plain = Cache::from_url("sqlite::memory:").await.unwrap();
    assert!(format!("{:?}", plain.backend()).starts_with("DatabaseBackend"));

    for url in ["memory://?l1_max_bytes=1MiB", "dummy://?l1_ttl=1s"] {
        let err = config_error(Cache::from_url(url).await);
        assert!(
            err.to_string().contains("already in process"),
            "{url}: {err}"
        );
    }
    let err = config_error(Cache::from_url("sqlite::memory:?l1_ttl=1s&l1_channel=x").await);
    assert!(err.to_string().contains("l1_channel"), "{err}");
    let err = config_error(Cache::from_url("sqlite::memory:?l1_ttl=soon").await);
    assert!(err.to_string().contains("l1_ttl"), "{err}");
    let err = config_error(Cache::from_url("memcached://127.0.0.1:1?pool_sise=1").await);
    assert!(
        err.to_string().contains(
            "known options: pool_size, connect_timeout, command_timeout, \
             l1_max_bytes, l1_ttl, l1_channel"
        ),
        "{err}"
    );
}

/// A tiered Redis builds while Redis is down (its L1 stays unused until
/// the subscriber gets through), quickly.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_tiered_redis_builds_while_redis_is_down() {
    let started = std::time::Instant::now();
    let cache = Cache::from_url("redis://127.0.0.1:1/0?l1_max_bytes=1MiB&l1_channel=mine")
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let debug = format!("{:?}", cache.backend());
    assert!(
        debug.contains("\"mine\"") && debug.contains("live: false"),
        "{debug}"
    );
    assert!(cache.get::<i64>("k").await.is_err());
}
