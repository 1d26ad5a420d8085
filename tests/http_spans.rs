//! The layers' tracing spans, read back from a subscriber layer. A test
//! binary of its own: tracing caches whether a call site is enabled, and a
//! test running beside this one on another thread, without a subscriber,
//! could record "never" for the layers' call sites.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_cache::Cache;
use tower_cache::middleware::cache_page;
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};

async fn send(app: &Router) {
    let request = Request::get("/")
        .header(header::HOST, "example.com")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();
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
    send(&app).await;
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

    send(&app).await;
    let hit = spans.take();
    assert_eq!(hit.len(), 1, "{hit:?}");
    assert_eq!(hit[0].0, "cache_lookup");
    assert_eq!(hit[0].1["outcome"], "hit");
    assert_eq!(hit[0].1["key"], store["key"]);
}
