//! The layers' metrics, through the [`metrics`] facade: the application
//! installs the recorder (Prometheus, StatsD, ...) it wants.
//!
//! The table is in [the module docs](super#metrics).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram, Label, SharedString};

use super::outcome::{Answer, MissBecause, StaleBecause};
use crate::http::policy::Bypass;

/// The handles a layer's hits and misses touch, registered at first use.
#[derive(Debug)]
pub(crate) struct Metrics {
    labels: [Label; 2],
    hits: Counter,
    coalesced: Counter,
    revalidating: Counter,
    origin_failed: Counter,
    misses: [Counter; MISS_REASONS.len()],
    lookup_seconds: Histogram,
}

const MISS_REASONS: [MissBecause; 8] = [
    MissBecause::Url,
    MissBecause::Vary,
    MissBecause::Stale,
    MissBecause::Coding,
    MissBecause::Backend,
    MissBecause::Authorization,
    MissBecause::Invalidated,
    MissBecause::Request,
];

/// A miss reason as a label value (Cache-Status's `fwd` words where it has
/// one).
fn miss_label(because: MissBecause) -> &'static str {
    match because {
        MissBecause::Url => "uri-miss",
        MissBecause::Vary => "vary-miss",
        MissBecause::Stale => "stale",
        MissBecause::Coding => "coding",
        MissBecause::Backend => "backend",
        MissBecause::Authorization => "authorization",
        MissBecause::Invalidated => "invalidated",
        MissBecause::Request => "request",
    }
}

/// A bypass or not-stored reason as a label value.
pub(crate) fn bypass_label(bypass: Bypass) -> &'static str {
    match bypass {
        Bypass::Method => "method",
        Bypass::RequestBody => "request-body",
        Bypass::NoHost => "no-host",
        Bypass::HostNotAllowed => "host-not-allowed",
        Bypass::Authorization => "authorization",
        Bypass::Status(_) => "status",
        Bypass::TooLarge => "too-large",
        Bypass::SetCookie => "set-cookie",
        Bypass::SetCookieVaryCookie => "set-cookie-vary-cookie",
        Bypass::CacheControl("private") => "private",
        Bypass::CacheControl("no-store") => "no-store",
        Bypass::CacheControl(_) => "no-cache",
        Bypass::VaryStar => "vary-star",
        Bypass::Unreadable("Vary") => "unreadable-vary",
        Bypass::Unreadable(_) => "unreadable-cache-control",
        Bypass::ZeroMaxAge => "max-age-0",
        Bypass::ZeroSharedMaxAge => "s-maxage-0",
        Bypass::NotFetched => "not-fetched",
        Bypass::Tags => "tags",
        Bypass::Stale => "stale",
        Bypass::RequestNoStore => "request-no-store",
    }
}

/// A layer's name and kind, and its handles once registered.
#[derive(Debug, Clone)]
pub(crate) struct LayerMetrics {
    name: SharedString,
    layer: &'static str,
    handles: std::sync::Arc<OnceLock<Metrics>>,
}

impl LayerMetrics {
    pub(crate) fn new(layer: &'static str) -> LayerMetrics {
        LayerMetrics {
            name: SharedString::const_str("tower-cache"),
            layer,
            handles: std::sync::Arc::default(),
        }
    }

    /// Renamed (before the layer serves: the handles are made once).
    pub(crate) fn named(&mut self, name: &str) {
        self.name = SharedString::from_shared(std::sync::Arc::from(name));
        self.handles = std::sync::Arc::default();
    }

    fn labels(&self) -> [Label; 2] {
        [
            Label::new("cache", self.name.clone()),
            Label::from_static_parts("layer", self.layer),
        ]
    }

    fn handles(&self) -> &Metrics {
        self.handles.get_or_init(|| {
            let labels = self.labels();
            let with = |key: &'static str, value: &'static str| {
                let mut all = labels.to_vec();
                all.push(Label::from_static_parts(key, value));
                all
            };
            Metrics {
                hits: metrics::counter!("tower_cache_hits_total", labels.to_vec()),
                coalesced: metrics::counter!("tower_cache_coalesced_total", labels.to_vec()),
                revalidating: metrics::counter!(
                    "tower_cache_stale_total",
                    with("reason", "stale-while-revalidate")
                ),
                origin_failed: metrics::counter!(
                    "tower_cache_stale_total",
                    with("reason", "stale-if-error")
                ),
                misses: MISS_REASONS.map(|because| {
                    metrics::counter!(
                        "tower_cache_misses_total",
                        with("reason", miss_label(because))
                    )
                }),
                lookup_seconds: metrics::histogram!(
                    "tower_cache_backend_seconds",
                    with("operation", "lookup")
                ),
                labels,
            }
        })
    }

    /// A request answered (or passed by) as `answer`.
    pub(crate) fn answered(&self, answer: Answer) {
        let handles = self.handles();
        match answer {
            Answer::Hit => handles.hits.increment(1),
            Answer::Coalesced => handles.coalesced.increment(1),
            Answer::Stale(StaleBecause::Revalidating) => handles.revalidating.increment(1),
            Answer::Stale(StaleBecause::OriginFailed) => handles.origin_failed.increment(1),
            Answer::Miss(because) => {
                let index = MISS_REASONS.iter().position(|b| *b == because);
                if let Some(counter) = index.and_then(|i| handles.misses.get(i)) {
                    counter.increment(1);
                }
            }
            Answer::Bypass(bypass) => {
                self.count("tower_cache_bypasses_total", "reason", bypass_label(bypass))
            }
        }
    }

    /// Time spent looking a request up in the backend.
    pub(crate) fn looked_up(&self, took: Duration) {
        self.handles().lookup_seconds.record(took.as_secs_f64());
    }

    /// A response stored, after `took` in the backend.
    pub(crate) fn stored(&self, took: Duration) {
        let mut labels = self.handles().labels.to_vec();
        metrics::counter!("tower_cache_stores_total", labels.clone()).increment(1);
        labels.push(Label::from_static_parts("operation", "store"));
        metrics::histogram!("tower_cache_backend_seconds", labels).record(took.as_secs_f64());
    }

    /// A response the rules kept out of the cache.
    pub(crate) fn not_stored(&self, bypass: Bypass) {
        self.count(
            "tower_cache_not_stored_total",
            "reason",
            bypass_label(bypass),
        );
    }

    /// A backend failure during `operation` that the client did not see.
    pub(crate) fn backend_error(&self, operation: &'static str) {
        self.count("tower_cache_backend_errors_total", "operation", operation);
    }

    /// Tags or URLs purged.
    pub(crate) fn purged(&self, kind: &'static str, how_many: usize) {
        let labels = vec![
            Label::new("cache", self.name.clone()),
            Label::from_static_parts("kind", kind),
        ];
        metrics::counter!("tower_cache_purges_total", labels).increment(how_many as u64);
    }

    fn count(&self, name: &'static str, key: &'static str, value: &'static str) {
        let mut labels = self.handles().labels.to_vec();
        labels.push(Label::from_static_parts(key, value));
        metrics::counter!(name, labels).increment(1);
    }
}
