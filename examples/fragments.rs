//! The tutorial's template fragment cache, in an Axum app.
//!
//! Run with `cargo run --example fragments --features minijinja`, then
//!
//! ```text
//! curl 'http://127.0.0.1:8001/?user=ada@example.com'   # slow: the list is loaded
//! curl 'http://127.0.0.1:8001/?user=bob@example.com'   # fast: the list comes from the cache
//! curl -X POST 'http://127.0.0.1:8001/objects?name=third'   # changes the list, invalidates it
//! curl 'http://127.0.0.1:8001/?user=ada@example.com'   # slow once more, with the new object
//! ```
//!
//! The navigation bar shows each user's own address (never cached); the
//! object list is a cached fragment, `{% call cache(500, "object_list") %}`,
//! loaded from a slow data source only on a miss. Adding an object deletes
//! the fragment by its key, as the tutorial's `post_save` handler does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::{Router, http::StatusCode};
use minijinja::{Environment, context};
use serde::Deserialize;
use tower_cache::Caches;
use tower_cache::fragment::{CacheTag, make_template_fragment_key, render_template};

const PAGE: &str = r#"<!doctype html>
<html><body>
<nav>Signed in as {{ user }}</nav>
{% call cache(500, "object_list") %}
<ul>{% for object in load_objects() %}<li>{{ object }}</li>{% endfor %}</ul>
{% endcall %}
</body></html>
"#;

/// How long the "database" takes to list the objects.
const SLOW_QUERY: Duration = Duration::from_millis(500);

/// The slow query's duration, for the tests.
#[cfg(test)]
pub(crate) const SLOW_QUERY_FOR_TESTS: Duration = SLOW_QUERY;

#[derive(Clone)]
struct App {
    env: Arc<Environment<'static>>,
    caches: Caches,
    objects: Arc<Mutex<Vec<String>>>,
}

/// The router, shared by `main` and the tests (`tests/examples.rs`).
pub(crate) fn app(caches: Caches) -> Router {
    let objects = Arc::new(Mutex::new(vec!["first".to_owned(), "second".to_owned()]));
    let mut env = Environment::new();
    CacheTag::new(caches.clone(), tokio::runtime::Handle::current()).register(&mut env);
    let source = objects.clone();
    // The slow query; templates run on a blocking thread, so sleeping is fine.
    env.add_function("load_objects", move || {
        std::thread::sleep(SLOW_QUERY);
        source.lock().unwrap().clone()
    });
    env.add_template("page.html", PAGE).expect("valid template");
    let state = App {
        env: Arc::new(env),
        caches,
        objects,
    };
    Router::new()
        .route("/", get(page))
        .route("/objects", post(add_object))
        .with_state(state)
}

#[derive(Deserialize)]
struct Visitor {
    user: Option<String>,
}

async fn page(State(app): State<App>, Query(visitor): Query<Visitor>) -> impl IntoResponse {
    let started = Instant::now();
    let user = visitor.user.unwrap_or_else(|| "anonymous".to_owned());
    let rendered = render_template(app.env.clone(), "page.html", context! { user }).await;
    println!("Total time: {:.2}s", started.elapsed().as_secs_f64());
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct NewObject {
    name: String,
}

/// Saves an object and invalidates the cached list: the tutorial's
/// `post_save` signal handler.
async fn add_object(State(app): State<App>, Query(new): Query<NewObject>) -> impl IntoResponse {
    app.objects.lock().unwrap().push(new.name);
    let no_vary_on: [&str; 0] = [];
    let key = make_template_fragment_key("object_list", no_vary_on);
    match app.caches.default().delete(&key).await {
        Ok(_) => (
            StatusCode::CREATED,
            "saved; the object_list fragment was invalidated\n",
        )
            .into_response(),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("saved, but invalidation failed: {err}\n"),
        )
            .into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args()
        .skip_while(|arg| arg != "--listen")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8001".to_owned());
    // CACHE_URL picks the backend (memory:// when unset).
    let caches = Caches::from_env().await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("Listening on http://{listen}/");
    axum::serve(listener, app(caches)).await?;
    Ok(())
}
