//! Django's `{% cache %}` tag as a minijinja function.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};
use tokio::runtime::Handle;

use super::render::{lookup, store};
use crate::Cache;
use crate::registry::Caches;
use crate::timeout::Timeout;

/// The alias Django's tag prefers when it is configured.
const FRAGMENT_ALIAS: &str = "template_fragments";

/// Django's `{% cache %}` template tag for [minijinja](https://docs.rs/minijinja),
/// registered as a function used with `{% call %}`:
///
/// ```text
/// {% call cache(500, "object_list", user.id) %} ...expensive... {% endcall %}
/// {% call cache(none, "footer") %} ...kept forever... {% endcall %}
/// {% call cache(60, "sidebar", request.path, using="local") %} ... {% endcall %}
/// ```
///
/// * `timeout`: seconds (an integer, a float, or text holding one), or `none`
///   to keep the fragment forever. As in Django, the cache's default timeout
///   never applies: the template always says.
/// * `name`: the fragment's name (any expression; `"object_list"`, quotes
///   not included in the key).
/// * vary-on values: any expressions; their text goes into the key.
/// * `using="alias"`: a cache of the [`Caches`] registry; without it, the
///   `"template_fragments"` alias when configured, else `"default"`.
///
/// The body is rendered only on a miss. A cache failure (outage, timeout,
/// corrupt entry) renders the body: a fragment cache never fails a page.
/// Template mistakes (fewer than two arguments, an unknown alias, a timeout
/// that is not a number) are template errors, as in Django.
///
/// # Rendering from async code
///
/// minijinja renders synchronously, and each cached fragment waits for a
/// cache round trip, which for a remote backend is I/O. Render on a blocking
/// thread, never on a runtime worker: [`render_template`] does it with
/// `spawn_blocking`. The tag runs each cache operation as a task on the
/// runtime it was given and waits for it at most [`wait`](Self::wait)
/// (default 2 s), so that even a template rendered on the wrong thread ends
/// by rendering without the cache instead of hanging.
///
/// ```
/// use std::sync::Arc;
/// use minijinja::{Environment, context};
/// use tower_cache::Caches;
/// use tower_cache::fragment::{CacheTag, render_template};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let caches = Caches::from_url("memory://").await?;
/// let mut env = Environment::new();
/// CacheTag::new(caches, tokio::runtime::Handle::current()).register(&mut env);
/// env.add_template("page", r#"{% call cache(500, "greeting", name) %}Hello {{ name }}!{% endcall %}"#)?;
/// let env = Arc::new(env);
///
/// let html = render_template(env.clone(), "page", context! { name => "Ada" }).await?;
/// assert_eq!(html, "Hello Ada!");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CacheTag {
    caches: Caches,
    runtime: Handle,
    wait: Duration,
}

impl CacheTag {
    /// The tag over `caches`, running cache operations on `runtime`
    /// (usually `tokio::runtime::Handle::current()`).
    pub fn new(caches: Caches, runtime: Handle) -> CacheTag {
        CacheTag {
            caches,
            runtime,
            wait: Duration::from_secs(2),
        }
    }

    /// The longest a lookup or a store may take before the fragment is
    /// rendered without the cache (default 2 s).
    #[must_use]
    pub fn wait(mut self, wait: Duration) -> CacheTag {
        self.wait = wait;
        self
    }

    /// Registers the tag on `env` as the function `cache`.
    pub fn register(self, env: &mut Environment<'_>) {
        self.register_as(env, "cache");
    }

    /// Registers the tag on `env` under another name.
    pub fn register_as(self, env: &mut Environment<'_>, name: &'static str) {
        env.add_function(
            name,
            move |state: &mut State, args: Rest<Value>, kwargs: Kwargs| {
                self.call(state, args, kwargs)
            },
        );
    }

    fn call(&self, state: &mut State, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
        let caller: Option<Value> = kwargs.get("caller")?;
        let using: Option<String> = kwargs.get("using")?;
        kwargs.assert_all_used()?;
        let Some(caller) = caller else {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "cache() wraps a block: use it as {% call cache(timeout, name, ...) %}...{% endcall %}",
            ));
        };
        let [timeout, name, vary_on @ ..] = args.0.as_slice() else {
            return Err(Error::new(
                ErrorKind::MissingArgument,
                "'cache' tag requires at least 2 arguments (timeout and fragment name)",
            ));
        };
        let timeout = parse_timeout(timeout)?;
        let name = name
            .as_str()
            .map_or_else(|| name.to_string(), str::to_owned);
        let vary_on: Vec<String> = vary_on.iter().map(Value::to_string).collect();
        let cache = self.pick(using.as_deref())?.clone();
        let key = cache.fragment(&name, &vary_on).key();

        let lookup = {
            let (cache, key) = (cache.clone(), key.clone());
            async move { lookup(&cache, &key).await }
        };
        if let Some(Some(html)) = self.run(lookup) {
            return Ok(Value::from_safe_string(html));
        }
        let body = caller.call(state, &[])?;
        let html = body
            .as_str()
            .map_or_else(|| body.to_string(), str::to_owned);
        let store = {
            let html = html.clone();
            async move { store(&cache, &key, &html, timeout).await }
        };
        self.run(store);
        Ok(Value::from_safe_string(html))
    }

    fn pick(&self, using: Option<&str>) -> Result<&Cache, Error> {
        match using {
            Some(alias) => self.caches.get(alias).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("Invalid cache name specified for cache tag: {alias:?}"),
                )
            }),
            None => Ok(self
                .caches
                .get(FRAGMENT_ALIAS)
                .unwrap_or_else(|_| self.caches.default())),
        }
    }

    /// Runs a cache operation on the runtime and waits for it, at most
    /// `self.wait`; `None` when it did not finish in time.
    fn run<T: Send + 'static>(
        &self,
        operation: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (done, result) = mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = done.send(operation.await);
        });
        let outcome = result.recv_timeout(self.wait).ok();
        if outcome.is_none() {
            tracing::warn!(
                wait = ?self.wait,
                "fragment cache did not answer in time; rendering without it \
                 (render templates with tower_cache::fragment::render_template, off the runtime's workers)"
            );
        }
        outcome
    }
}

impl fmt::Debug for CacheTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheTag")
            .field("caches", &self.caches)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

fn parse_timeout(value: &Value) -> Result<Timeout, Error> {
    let not_a_number = || {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("\"cache\" tag got a non-integer timeout value: {value}"),
        )
    };
    match value.kind() {
        ValueKind::None => Ok(Timeout::Forever),
        ValueKind::Undefined => Err(Error::new(
            ErrorKind::UndefinedError,
            "\"cache\" tag got an unknown variable as its timeout",
        )),
        ValueKind::Number => f64::try_from(value.clone())
            .map(Timeout::from_secs_f64)
            .map_err(|_| not_a_number()),
        ValueKind::String => value
            .as_str()
            .and_then(|text| text.trim().parse::<f64>().ok())
            .map(Timeout::from_secs_f64)
            .ok_or_else(not_a_number),
        _ => Err(not_a_number()),
    }
}

/// Renders the template `name` of `env` with `context` on a blocking thread
/// (`spawn_blocking`), so that slow renders and the cache round trips of
/// [`CacheTag`] never hold a runtime worker.
///
/// # Errors
///
/// The template's error, or an error saying the rendering task panicked.
pub async fn render_template(
    env: Arc<Environment<'static>>,
    name: impl Into<String>,
    context: Value,
) -> Result<String, Error> {
    let name = name.into();
    tokio::task::spawn_blocking(move || env.get_template(&name)?.render(context))
        .await
        .map_err(|join| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("the template rendering task failed: {join}"),
            )
        })?
}
