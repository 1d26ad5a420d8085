//! What runs the cases: the `conformance_suite!` macro, the `cases!` macro
//! that defines cases and lists them for it, the per-case [`Harness`], and
//! helpers that run operations concurrently.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::backend::DynBackend;
use crate::{Cache, KeyFunction, Timeout};

#[doc(hidden)]
pub use tokio::sync::RwLock as __ClearLock;

/// Runs every conformance case against the backend that the given
/// `async fn() -> DynBackend` builds; see the [module docs](crate::testing).
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@cases $make, false);
    };
    ($make:path, global_clear) => {
        $crate::conformance_suite!(@cases $make, true);
    };
    (@cases $make:path, $global:expr) => {
        static CONFORMANCE_CLEAR_LOCK: $crate::testing::__ClearLock<()> =
            $crate::testing::__ClearLock::const_new(());
        // Generated from the case definitions (see `case_files!`): calls
        // `@expand` with the name of every case.
        $crate::__conformance_cases!($make, $global);
    };
    (@expand $make:path, $global:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let global_clear: bool = $global;
                let _guard = if global_clear && stringify!($case) == "test_clear" {
                    $crate::testing::ClearGuard::Exclusive(CONFORMANCE_CLEAR_LOCK.write().await)
                } else {
                    $crate::testing::ClearGuard::Shared(CONFORMANCE_CLEAR_LOCK.read().await)
                };
                let harness = $crate::testing::Harness::new($make().await, global_clear);
                $crate::testing::cases::$case(&harness).await;
                harness.clean_up().await;
            }
        )*
    };
}

/// Defines conformance cases, each written as a plain
/// `pub async fn test_x(h: &Harness) { ... }` with its doc, and a `names!`
/// macro through which [`case_files!`] adds their names to the suite. A case
/// defined here cannot be left out of `conformance_suite!`.
macro_rules! cases {
    ($($(#[$attr:meta])* pub async fn $case:ident($h:ident: &Harness) $body:block)*) => {
        $($(#[$attr])* pub async fn $case($h: &$crate::testing::Harness) $body)*

        $crate::testing::harness::cases!(@names ($) $($case)*);
    };
    // `$d` is a `$`, for the inner macro's own variables.
    (@names ($d:tt) $($case:ident)*) => {
        /// Appends this file's case names to those collected so far, then
        /// lets [`case_files!`] go on with the remaining files.
        macro_rules! names {
            ([$d($d collected:ident)*] $d($d rest:ident)*) => {
                $crate::testing::harness::case_files!(
                    @collect [$d($d collected)* $($case)*] $d($d rest)*
                );
            };
        }
        pub(super) use names;
    };
}
pub(crate) use cases;

/// Given every module of `cases/` (each a `cases!` invocation), collects
/// their case names in order into `__conformance_cases!`, which
/// `conformance_suite!` expands, and into `SUITE`, for the unit test below.
macro_rules! case_files {
    ($($file:ident),* $(,)?) => {
        $crate::testing::harness::case_files!(@collect [] $($file)*);
    };
    (@collect [$($case:ident)*] $file:ident $($rest:ident)*) => {
        $file::names!([$($case)*] $($rest)*);
    };
    (@collect [$($case:ident)*]) => {
        $crate::testing::harness::case_files!(@define ($) $($case)*);
    };
    (@define ($d:tt) $($case:ident)*) => {
        /// The name of every case that `conformance_suite!` runs, in order.
        #[cfg(test)]
        pub(crate) const SUITE: &[&str] = &[$(stringify!($case)),*];

        #[doc(hidden)]
        #[macro_export]
        macro_rules! __conformance_cases {
            ($d make:path, $d global:expr) => {
                $crate::conformance_suite!(@expand $d make, $d global; $($case),*);
            };
        }
    };
}
pub(crate) use case_files;

#[doc(hidden)]
pub enum ClearGuard<'a> {
    Shared(tokio::sync::RwLockReadGuard<'a, ()>),
    Exclusive(tokio::sync::RwLockWriteGuard<'a, ()>),
}

/// The caches one case works with: Django's test aliases over one backend.
#[derive(Debug)]
pub struct Harness {
    /// Unique prefix, version 1 (Django's `default`).
    pub default: Cache,
    /// Another unique prefix (Django's `prefix`).
    pub prefix: Cache,
    /// The default prefix, version 2 (Django's `v2`).
    pub v2: Cache,
    /// `CUSTOM-prefix-version-key` keys (Django's `custom_key`).
    pub custom_key: Cache,
    /// The backend under test.
    pub backend: DynBackend,
    pub(crate) global_clear: bool,
}

impl Harness {
    /// Caches over `backend` with a key prefix no other case or run uses.
    pub fn new(backend: DynBackend, global_clear: bool) -> Harness {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let unique = format!(
            "t{:x}{:x}n{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let build = |prefix: &str| Cache::builder(backend.clone()).key_prefix(prefix);
        Harness {
            default: build(&unique).build(),
            prefix: build(&format!("{unique}cacheprefix")).build(),
            v2: build(&unique).version(2).build(),
            custom_key: build(&unique)
                .key_function(KeyFunction::new(|key, prefix, version| {
                    format!("CUSTOM-{prefix}-{version}-{key}")
                }))
                .build(),
            backend,
            global_clear,
        }
    }

    /// A cache over this backend whose made key is the user's key as is, to
    /// test validation of exactly that key.
    pub fn identity_keys(&self) -> Cache {
        Cache::builder(self.backend.clone())
            .key_function(KeyFunction::new(|key, _, _| key.to_owned()))
            .build()
    }

    /// Removes what the case stored (Django's `tearDown`), unless clearing
    /// would wipe other cases' data too.
    pub async fn clean_up(&self) {
        if !self.global_clear {
            for cache in [&self.default, &self.prefix] {
                let _ = cache.clear().await;
            }
        }
    }
}

/// Runs `tasks` concurrent tasks that each `incr` `key` by one `per_task`
/// times, task `i` through `caches[i % caches.len()]` (several caches over
/// one store stand for several app servers), and returns the final value.
/// The key must hold an integer.
pub async fn concurrent_incr(caches: &[Cache], key: &str, tasks: usize, per_task: usize) -> i64 {
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let (cache, key) = (caches[i % caches.len()].clone(), key.to_owned());
            tokio::spawn(async move {
                for _ in 0..per_task {
                    cache.incr(&key, 1).await.expect("incr");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("incr task panicked");
    }
    caches[0]
        .get::<i64>(key)
        .await
        .expect("get")
        .expect("counter")
}

/// Runs `tasks` concurrent `add`s of `key`, task `i` through
/// `caches[i % caches.len()]`, and returns how many said they stored.
pub async fn concurrent_add(caches: &[Cache], key: &str, tasks: usize) -> usize {
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let (cache, key) = (caches[i % caches.len()].clone(), key.to_owned());
            tokio::spawn(async move { cache.add(&key, &i, Timeout::Default).await.expect("add") })
        })
        .collect();
    let mut winners = 0;
    for handle in handles {
        winners += usize::from(handle.await.expect("add task panicked"));
    }
    winners
}

/// Runs `tasks` concurrent `delete_if_equal`s of `key` with `expected`, task
/// `i` through `caches[i % caches.len()]`, and returns how many said they
/// deleted (one, if the key held `expected` and the backend is atomic).
pub async fn concurrent_delete_if_equal(
    caches: &[Cache],
    key: &str,
    expected: &[u8],
    tasks: usize,
) -> usize {
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let (cache, key) = (caches[i % caches.len()].clone(), key.to_owned());
            let expected = expected.to_vec();
            tokio::spawn(async move {
                cache
                    .delete_if_equal(&key, &expected)
                    .await
                    .expect("delete_if_equal")
            })
        })
        .collect();
    let mut winners = 0;
    for handle in handles {
        winners += usize::from(handle.await.expect("delete_if_equal task panicked"));
    }
    winners
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::testing::cases::SUITE;

    /// Every `pub async fn` in `cases/` is a case the suite runs: none was
    /// written outside `cases!` or in a file missing from `case_files!`.
    #[test]
    fn the_suite_runs_every_case_defined() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testing/cases");
        let mut defined = Vec::new();
        for entry in std::fs::read_dir(dir).expect("src/testing/cases") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
            defined.extend(text.lines().filter_map(|line| {
                let rest = line.trim_start().strip_prefix("pub async fn ")?;
                Some(rest.split('(').next()?.to_owned())
            }));
        }
        let mut run: Vec<String> = SUITE.iter().map(|&case| case.to_owned()).collect();
        assert_eq!(run.len(), defined.len(), "cases run vs cases defined");
        run.sort();
        defined.sort();
        assert_eq!(run, defined);
    }
}
