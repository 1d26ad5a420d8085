//! Template fragment caching: the Rust API and the minijinja tag.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tower_cache::backends::MemoryBackend;
use tower_cache::fragment::make_template_fragment_key;
use tower_cache::testing::FailingBackend;
use tower_cache::{Cache, Timeout};

fn memory() -> Cache {
    Cache::new(Arc::new(MemoryBackend::new()))
}

async fn render_counted(cache: &Cache, vary_on: &[&str], renders: &AtomicUsize) -> String {
    cache
        .fragment("object_list", vary_on)
        .timeout(Duration::from_secs(500))
        .get_or_render(|| async {
            let n = renders.fetch_add(1, Ordering::SeqCst) + 1;
            format!("<ul>render {n}</ul>")
        })
        .await
}

#[tokio::test]
async fn renders_once_then_serves_from_the_cache() {
    let cache = memory();
    let renders = AtomicUsize::new(0);
    assert_eq!(
        render_counted(&cache, &["1"], &renders).await,
        "<ul>render 1</ul>"
    );
    assert_eq!(
        render_counted(&cache, &["1"], &renders).await,
        "<ul>render 1</ul>"
    );
    assert_eq!(renders.load(Ordering::SeqCst), 1);
    // Stored under Django's key, made by the cache (":1:template.cache....").
    let key = make_template_fragment_key("object_list", ["1"]);
    assert_eq!(
        cache.get_bytes(&key).await.unwrap().as_deref(),
        Some(&b"<ul>render 1</ul>"[..])
    );
}

#[tokio::test]
async fn vary_on_values_get_their_own_entries() {
    let cache = memory();
    let renders = AtomicUsize::new(0);
    render_counted(&cache, &["alice"], &renders).await;
    render_counted(&cache, &["bob"], &renders).await;
    render_counted(&cache, &["a:b", "c"], &renders).await;
    render_counted(&cache, &["a", "b:c"], &renders).await;
    assert_eq!(renders.load(Ordering::SeqCst), 4);
    render_counted(&cache, &["alice"], &renders).await;
    assert_eq!(renders.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn invalidation_by_key_renders_again() {
    let cache = memory();
    let renders = AtomicUsize::new(0);
    render_counted(&cache, &[], &renders).await;
    let empty: [&str; 0] = [];
    assert!(
        cache
            .delete(&make_template_fragment_key("object_list", empty))
            .await
            .unwrap()
    );
    assert_eq!(
        render_counted(&cache, &[], &renders).await,
        "<ul>render 2</ul>"
    );
}

#[tokio::test]
async fn expiry_renders_again() {
    let cache = memory();
    let renders = AtomicUsize::new(0);
    let render = || async {
        cache
            .fragment("short", ["x"])
            .timeout(Duration::from_millis(300))
            .get_or_render(|| async { format!("{}", renders.fetch_add(1, Ordering::SeqCst)) })
            .await
    };
    assert_eq!(render().await, "0");
    assert_eq!(render().await, "0");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(render().await, "1");
}

#[tokio::test]
async fn a_render_error_is_returned_and_nothing_stored() {
    let cache = memory();
    let failed = cache
        .fragment("broken", ["x"])
        .try_get_or_render(|| async { Err::<String, _>("database down") })
        .await;
    assert_eq!(failed, Err("database down"));
    let key = make_template_fragment_key("broken", ["x"]);
    assert!(!cache.has_key(&key).await.unwrap());
}

#[tokio::test]
async fn a_failing_backend_still_renders() {
    let cache = Cache::new(Arc::new(FailingBackend));
    let renders = AtomicUsize::new(0);
    assert_eq!(
        render_counted(&cache, &["1"], &renders).await,
        "<ul>render 1</ul>"
    );
    assert_eq!(
        render_counted(&cache, &["1"], &renders).await,
        "<ul>render 2</ul>"
    );
}

#[tokio::test]
async fn a_corrupt_entry_is_a_miss() {
    let cache = memory();
    let key = make_template_fragment_key("object_list", ["1"]);
    cache
        .set_bytes(&key, vec![0xff, 0xfe], Timeout::Default)
        .await
        .unwrap();
    let renders = AtomicUsize::new(0);
    assert_eq!(
        render_counted(&cache, &["1"], &renders).await,
        "<ul>render 1</ul>"
    );
}

#[cfg(feature = "minijinja")]
mod minijinja_tag {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use minijinja::{Environment, context};
    use tower_cache::fragment::{CacheTag, make_template_fragment_key, render_template};
    use tower_cache::testing::FailingBackend;
    use tower_cache::{Cache, CacheConfig, Caches, CachesConfig};

    const PAGE: &str = r#"<nav>{{ user }}</nav>{% call cache(500, "object_list", user_id) %}<ul>{{ load() }}</ul>{% endcall %}"#;

    struct Fixture {
        env: Arc<Environment<'static>>,
        loads: Arc<AtomicUsize>,
        caches: Caches,
    }

    async fn fixture(caches: Caches, templates: &[(&'static str, &'static str)]) -> Fixture {
        let loads = Arc::new(AtomicUsize::new(0));
        let mut env = Environment::new();
        CacheTag::new(caches.clone(), tokio::runtime::Handle::current())
            .wait(Duration::from_millis(500))
            .register(&mut env);
        let counter = loads.clone();
        env.add_function("load", move || {
            // The slow data source the fragment saves us from.
            std::thread::sleep(Duration::from_millis(20));
            format!(
                "objects loaded {} times",
                counter.fetch_add(1, Ordering::SeqCst) + 1
            )
        });
        for (name, source) in templates {
            env.add_template(name, source).unwrap();
        }
        Fixture {
            env: Arc::new(env),
            loads,
            caches,
        }
    }

    async fn two_aliases() -> Caches {
        let config = CachesConfig::from([
            ("default".to_owned(), CacheConfig::from_url("memory://")),
            ("other".to_owned(), CacheConfig::from_url("memory://")),
        ]);
        Caches::from_config(&config).await.unwrap()
    }

    async fn render(f: &Fixture, name: &str, user: &str, user_id: u32) -> String {
        render_template(f.env.clone(), name, context! { user, user_id })
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_body_renders_once_and_the_rest_of_the_page_every_time() {
        let f = fixture(two_aliases().await, &[("page", PAGE)]).await;
        let first = render(&f, "page", "ada@example.com", 1).await;
        assert_eq!(
            first,
            "<nav>ada@example.com</nav><ul>objects loaded 1 times</ul>"
        );
        let second = render(&f, "page", "bob@example.com", 1).await;
        assert_eq!(
            second,
            "<nav>bob@example.com</nav><ul>objects loaded 1 times</ul>"
        );
        assert_eq!(f.loads.load(Ordering::SeqCst), 1);
        // Another vary-on value is another entry.
        render(&f, "page", "carol@example.com", 2).await;
        assert_eq!(f.loads.load(Ordering::SeqCst), 2);
        // Django's key, so the application can invalidate it.
        let key = make_template_fragment_key("object_list", [1]);
        assert!(f.caches.default().delete(&key).await.unwrap());
        render(&f, "page", "ada@example.com", 1).await;
        assert_eq!(f.loads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn using_picks_the_named_cache() {
        let template = r#"{% call cache(500, "f", using="other") %}{{ load() }}{% endcall %}"#;
        let f = fixture(two_aliases().await, &[("t", template)]).await;
        render(&f, "t", "", 0).await;
        let empty: [&str; 0] = [];
        let key = make_template_fragment_key("f", empty);
        assert!(f.caches.get("other").unwrap().has_key(&key).await.unwrap());
        assert!(!f.caches.default().has_key(&key).await.unwrap());
        let bad = r#"{% call cache(500, "f", using="nope") %}x{% endcall %}"#;
        let f = fixture(two_aliases().await, &[("bad", bad)]).await;
        let err = render_template(f.env.clone(), "bad", context! {})
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("Invalid cache name specified for cache tag"),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_template_fragments_alias_is_preferred() {
        let config = CachesConfig::from([
            ("default".to_owned(), CacheConfig::from_url("memory://")),
            (
                "template_fragments".to_owned(),
                CacheConfig::from_url("memory://"),
            ),
        ]);
        let f = fixture(
            Caches::from_config(&config).await.unwrap(),
            &[("page", PAGE)],
        )
        .await;
        render(&f, "page", "", 7).await;
        let key = make_template_fragment_key("object_list", [7]);
        assert!(
            f.caches
                .get("template_fragments")
                .unwrap()
                .has_key(&key)
                .await
                .unwrap()
        );
        assert!(!f.caches.default().has_key(&key).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timeouts_none_numbers_and_errors() {
        let templates = [
            (
                "forever",
                r#"{% call cache(none, "f") %}{{ load() }}{% endcall %}"#,
            ),
            (
                "short",
                r#"{% call cache(0.3, "s") %}{{ load() }}{% endcall %}"#,
            ),
            (
                "text",
                r#"{% call cache("60", "t") %}{{ load() }}{% endcall %}"#,
            ),
            ("bad", r#"{% call cache("soon", "b") %}x{% endcall %}"#),
            ("undefined", r#"{% call cache(nope, "u") %}x{% endcall %}"#),
            ("one_arg", r#"{% call cache(60) %}x{% endcall %}"#),
            ("no_call", r#"{{ cache(60, "x") }}"#),
        ];
        let f = fixture(two_aliases().await, &templates).await;
        render(&f, "forever", "", 0).await;
        let key = make_template_fragment_key("f", [""; 0]);
        assert!(f.caches.default().has_key(&key).await.unwrap());
        render(&f, "text", "", 0).await;
        assert_eq!(render(&f, "short", "", 0).await, "objects loaded 3 times");
        assert_eq!(render(&f, "short", "", 0).await, "objects loaded 3 times");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(render(&f, "short", "", 0).await, "objects loaded 4 times");
        for (name, message) in [
            ("bad", "non-integer timeout"),
            ("undefined", "unknown variable"),
            ("one_arg", "at least 2 arguments"),
            ("no_call", "{% call cache"),
        ] {
            let err = render_template(f.env.clone(), name, context! {})
                .await
                .unwrap_err();
            assert!(format!("{err:#}").contains(message), "{name}: {err:#}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_backend_still_renders_the_page() {
        let failing = Cache::new(Arc::new(FailingBackend));
        let caches = Caches::from_caches([("default".to_owned(), failing)]).unwrap();
        let f = fixture(caches, &[("page", PAGE)]).await;
        assert_eq!(
            render(&f, "page", "x", 1).await,
            "<nav>x</nav><ul>objects loaded 1 times</ul>"
        );
        assert_eq!(
            render(&f, "page", "x", 1).await,
            "<nav>x</nav><ul>objects loaded 2 times</ul>"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn rendering_on_a_runtime_worker_degrades_instead_of_hanging() {
        // The wrong way: rendering synchronously on the only worker thread.
        // The cache round trip cannot run, so after `wait` the body renders.
        let f = fixture(two_aliases().await, &[("page", PAGE)]).await;
        let template = f.env.get_template("page").unwrap();
        let html = template
            .render(context! { user => "x", user_id => 1 })
            .unwrap();
        assert_eq!(html, "<nav>x</nav><ul>objects loaded 1 times</ul>");
    }
}

#[cfg(feature = "redis")]
mod common;

/// The same guarantees on a shared, remote backend: two app servers (two
/// caches, two connection pools) share one rendered fragment.
#[cfg(feature = "redis")]
mod on_redis {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::common::{server_url, unique};
    use super::render_counted;
    use tower_cache::fragment::make_template_fragment_key;
    use tower_cache::{Cache, CacheConfig};

    async fn app_server(prefix: &str) -> Cache {
        let mut config = CacheConfig::from_url(server_url("REDIS_URL"));
        config.key_prefix = Some(prefix.to_owned());
        config.build().await.expect("a cache on REDIS_URL")
    }

    #[tokio::test]
    async fn app_servers_share_fragments_and_invalidation() {
        let prefix = unique("fragments");
        let (one, two) = (app_server(&prefix).await, app_server(&prefix).await);
        let renders = AtomicUsize::new(0);
        assert_eq!(
            render_counted(&one, &["7"], &renders).await,
            "<ul>render 1</ul>"
        );
        assert_eq!(
            render_counted(&two, &["7"], &renders).await,
            "<ul>render 1</ul>"
        );
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        render_counted(&two, &["8"], &renders).await;
        assert_eq!(renders.load(Ordering::SeqCst), 2);
        assert!(
            one.delete(&make_template_fragment_key("object_list", ["7"]))
                .await
                .unwrap()
        );
        assert_eq!(
            render_counted(&two, &["7"], &renders).await,
            "<ul>render 3</ul>"
        );
        one.clear().await.unwrap();
    }
}
