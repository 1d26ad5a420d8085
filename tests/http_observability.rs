//! The layers' metrics, read back from `metrics-util`'s debugging recorder,
//! and their tracing spans, read back from a subscriber layer (both
//! installed for the test's thread: the current-thread runtime polls every
//! request and store there).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Method, Request, header};
use http_body_util::BodyExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower::ServiceExt;
use tower_cache::Cache;
use tower_cache::middleware::{SiteCache, cache_page};
use tower_cache::testing::FailingBackend;
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};

async fn send(app: &Router, method: Method, path: &str) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "example.com")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();
}

/// Every counter and histogram, by name and its labels (`k=v` sorted,
/// comma-joined): counters as their value, histograms as their count.
fn read(snapshotter: &Snapshotter) -> HashMap<(String, String), u64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let value = match value {
                DebugValue::Counter(n) => n,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(_) => 0,
            };
            ((key.name().to_owned(), labels.join(",")), value)
        })
        .collect()
}

fn value(all: &HashMap<(String, String), u64>, name: &str, labels: &str) -> u64 {
    all.get(&(name.to_owned(), labels.to_owned()))
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn each_outcome_is_counted_with_the_caches_name_and_layer() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let cache = Cache::from_url("memory://").await.unwrap();
    let layer = cache_page(Duration::from_secs(60))
        .cache(cache.clone())
        .name("edge");
    let invalidator = layer.invalidator();
    let app = Router::new()
        .route("/", get(|| async { ([("cache-tag", "home")], "home") }))
        .route(
            "/private",
            get(|| async { ([(header::CACHE_CONTROL, "private")], "mine") }),
        )
        .route_layer(layer);
    send(&app, Method::GET, "/").await; // miss, stored
    send(&app, Method::GET, "/").await; // hit
    send(&app, Method::HEAD, "/").await; // hit
    send(&app, Method::POST, "/").await; // bypass: method
    send(&app, Method::GET, "/private").await; // miss, not stored
    invalidator.invalidate_tags(["home"]).await.unwrap();
    invalidator
        .invalidate_url("http://example.com/private")
        .await
        .unwrap();
    send(&app, Method::GET, "/").await; // miss: invalidated, stored

    let all = read(&snapshotter);
    let at = "cache=edge,layer=cache_page";
    assert_eq!(value(&all, "tower_cache_hits_total", at), 2, "{all:?}");
    assert_eq!(
        value(
            &all,
            "tower_cache_misses_total",
            &format!("{at},reason=uri-miss")
        ),
        2
    );
    assert_eq!(
        value(
            &all,
            "tower_cache_misses_total",
            &format!("{at},reason=invalidated")
        ),
        1
    );
    assert_eq!(
        value(
            &all,
            "tower_cache_bypasses_total",
            &format!("{at},reason=method")
        ),
        1
    );
    assert_eq!(value(&all, "tower_cache_stores_total", at), 2);
    assert_eq!(
        value(
            &all,
            "tower_cache_not_stored_total",
            &format!("{at},reason=private")
        ),
        1
    );
    assert_eq!(
        value(&all, "tower_cache_purges_total", "cache=edge,kind=tag"),
        1
    );
    assert_eq!(
        value(&all, "tower_cache_purges_total", "cache=edge,kind=url"),
        1
    );
    // Every lookup and every store is timed.
    assert_eq!(
        value(
            &all,
            "tower_cache_backend_seconds",
            &format!("{at},operation=lookup")
        ),
        5
    );
    assert_eq!(
        value(
            &all,
            "tower_cache_backend_seconds",
            &format!("{at},operation=store")
        ),
        2
    );
    assert_eq!(
        value(
            &all,
            "tower_cache_backend_errors_total",
            &format!("{at},operation=lookup")
        ),
        0
    );
}

#[tokio::test]
async fn a_failing_backend_is_counted_not_seen() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let cache = Cache::new(Arc::new(FailingBackend));
    let (update, fetch) = SiteCache::new().cache(cache).layers();
    let app = Router::new()
        .route("/", get(|| async { "page" }))
        .layer(fetch)
        .layer(update);
    send(&app, Method::GET, "/").await;

    let all = read(&snapshotter);
    let at = "cache=tower-cache,layer=site";
    assert_eq!(
        value(
            &all,
            "tower_cache_misses_total",
            &format!("{at},reason=backend")
        ),
        1,
        "{all:?}"
    );
    assert_eq!(
        value(
            &all,
            "tower_cache_backend_errors_total",
            &format!("{at},operation=lookup")
        ),
        1
    );
    assert_eq!(
        value(
            &all,
            "tower_cache_backend_errors_total",
            &format!("{at},operation=store")
        ),
        1
    );
}

/// A span opened: its id, name and fields (as recorded, `Debug`).
type Opened = (Id, &'static str, HashMap<String, String>);

/// The spans opened, in order.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Opened>>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let name = attrs.metadata().name();
        self.0.lock().unwrap().push((id.clone(), name, fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, _, fields)) = spans.iter_mut().rev().find(|(i, _, _)| i == id) {
            values.record(&mut Fields(fields));
        }
    }
}

impl Spans {
    fn take(&self) -> Vec<(&'static str, HashMap<String, String>)> {
        let spans = std::mem::take(&mut *self.0.lock().unwrap());
        spans
            .into_iter()
            .map(|(_, name, fields)| (name, fields))
            .collect()
    }
}

#[tokio::test]
async fn lookup_inner_call_and_store_are_spans_with_key_and_outcome() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let cache = Cache::from_url("memory://").await.unwrap();
    let app = Router::new()
        .route("/", get(|| async { "home" }))
        .route_layer(cache_page(Duration::from_secs(60)).cache(cache));
    send(&app, Method::GET, "/").await;
    let miss = spans.take();
    let names: Vec<&str> = miss.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        ["cache_lookup", "cache_inner_call", "cache_store"],
        "{miss:?}"
    );
    let (lookup, store) = (&miss[0].1, &miss[2].1);
    assert_eq!(lookup["method"], "GET");
    assert!(lookup["outcome"].starts_with("miss"), "{lookup:?}");
    assert!(
        store["key"].starts_with("views.decorators.cache.cache_page.."),
        "{store:?}"
    );
    assert_eq!(store["outcome"], "stored");

    send(&app, Method::GET, "/").await;
    let hit = spans.take();
    assert_eq!(hit.len(), 1, "{hit:?}");
    assert_eq!(hit[0].0, "cache_lookup");
    assert_eq!(hit[0].1["outcome"], "hit");
    assert_eq!(hit[0].1["key"], store["key"]);
}
