//! Faults under load: a route behind `cache_page`, served over TCP to eight
//! clients looping over twenty URLs, keeps answering every request with 200
//! and the origin's page within [`BOUND`] while its cache fails:
//!
//! * Redis, memcached or PostgreSQL stopped for three seconds, then started
//!   again on the same port: hits resume within [`RECOVERY`];
//! * a server that accepts connections and never answers, and a Redis
//!   frozen with SIGSTOP: a request costs at most the configured timeouts;
//! * a full memcached (`-m 1 -M`) and a full Redis (`--maxmemory 1mb`,
//!   `noeviction`), a read-only or full cache directory, a SQLite database
//!   another connection holds with `BEGIN EXCLUSIVE`: stores fail, pages are
//!   still served.
//!
//! After each fault the runtime's alive tasks return to near where they
//! were before the load: nothing piles up. Each test starts its own servers
//! (`./scripts/test` installs the programs) and stops them by pid.
#![cfg(any(
    feature = "redis",
    feature = "memcached",
    feature = "postgres",
    feature = "sqlite",
    feature = "file"
))]

mod common;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::response::Response;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinHandle;
use tower::util::MapResponseLayer;
use tower_cache::Cache;
use tower_cache::middleware::{Answer, Outcome};

use common::site::{BOUND, RECOVERY, Site};

/// Clients requesting at the same time.
const CLIENTS: usize = 8;

/// Distinct URLs, `/page0` to `/page19`.
const URLS: usize = 20;

/// Between two requests of a client: a steady load, not a flood that would
/// starve a small machine shared with builds.
const PAUSE: Duration = Duration::from_millis(5);

/// How long a server stays down.
const OUTAGE: Duration = Duration::from_secs(3);

/// How long the load runs against a server that never answers.
const HANG: Duration = Duration::from_secs(2);

/// Tasks the runtime may keep after the load over those it had before:
/// pooled backend connections run a task each.
const TASK_SLACK: usize = 24;

/// Tasks the runtime may have during the load over those it had before:
/// per client its own, its connection's on both sides, and a store or a
/// lock release in flight.
const PEAK_SLACK: usize = 8 * CLIENTS;

/// The most one backend operation may take in the tests of servers that
/// hang: Redis and memcached get half as `connect_timeout` and half as
/// `command_timeout` (a connection, then an answer), the databases all of
/// it as `command_timeout`.
const PER_OPERATION: Duration = Duration::from_millis(300);

/// What a loaded machine may add to a request over its backend timeouts.
const SCHEDULING: Duration = Duration::from_millis(400);

/// The most a request may take when every backend operation times out: a
/// miss makes `operations` of them on its way (the lookup, the lock that
/// coalesces across instances on Redis and memcached, the store, which
/// ends before the body does).
fn at_most(operations: u32) -> Duration {
    PER_OPERATION * operations + SCHEDULING
}

/// The query of a Redis or memcached URL that bounds each operation by
/// [`PER_OPERATION`].
fn network_timeouts() -> String {
    let half = PER_OPERATION.as_millis() / 2;
    format!("connect_timeout={half}ms&command_timeout={half}ms")
}

/// The query of a database URL that bounds each operation by
/// [`PER_OPERATION`].
fn database_timeout() -> String {
    format!("command_timeout={}ms", PER_OPERATION.as_millis())
}

/// The page of `/{name}`.
fn page(name: &str) -> Bytes {
    Bytes::from(format!("the page {name}\n").repeat(8))
}

/// The page of `/{name}`, about 100 KiB: twenty do not fit in a server
/// with a megabyte of memory.
fn big_page(name: &str) -> Bytes {
    let line = format!("{name} is a page of a hundred kibibytes\n");
    Bytes::from(line.repeat(100 * 1024 / line.len()))
}

/// Requests and origin calls during a stretch of the load.
#[derive(Debug, Clone, Copy)]
struct Window {
    requests: usize,
    calls: usize,
    hits: usize,
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    hits: AtomicUsize,
    /// The first wrong answers (failures, wrong pages, late ones).
    wrong: Mutex<Vec<String>>,
    wrong_count: AtomicUsize,
    /// The slowest answer since [`Load::slowest`] last read it.
    slowest: Mutex<Duration>,
    peak_tasks: AtomicUsize,
}

impl Seen {
    fn wrong(&self, what: String) {
        self.wrong_count.fetch_add(1, Ordering::SeqCst);
        let mut wrong = self.wrong.lock().unwrap();
        if wrong.len() < 10 {
            wrong.push(what);
        }
    }
}

/// [`Site`] served on a loopback port to [`CLIENTS`] clients, each
/// requesting the [`URLS`] pages in turn until [`finish`](Load::finish).
struct Load {
    name: &'static str,
    site: Arc<Site>,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<()>>,
    server: JoinHandle<()>,
    sampler: JoinHandle<()>,
    /// The runtime's alive tasks before the load.
    baseline: usize,
    started: Instant,
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

impl Load {
    async fn start(name: &'static str, cache: Cache, page: fn(&str) -> Bytes) -> Load {
        let baseline = alive_tasks();
        let site = Arc::new(Site::new(cache, 1024 * 1024, page));
        let seen = Arc::new(Seen::default());
        let stop = Arc::new(AtomicBool::new(false));

        let counted = seen.clone();
        let app = site
            .app
            .clone()
            .layer(MapResponseLayer::new(move |response: Response| {
                if response
                    .extensions()
                    .get::<Outcome>()
                    .is_some_and(|o| o.answer == Answer::Hit)
                {
                    counted.hits.fetch_add(1, Ordering::SeqCst);
                }
                response
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).into_future().await.unwrap();
        });

        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let clients = (0..CLIENTS)
            .map(|n| {
                let (site, seen, stop, client) =
                    (site.clone(), seen.clone(), stop.clone(), client.clone());
                // Each client starts at another URL, so they do not all
                // ask for the same page at the same time.
                tokio::spawn(async move {
                    let mut i = n * URLS / CLIENTS;
                    while !stop.load(Ordering::SeqCst) {
                        let name = format!("page{}", i % URLS);
                        request(&client, addr, &site, &seen, &name).await;
                        i += 1;
                        tokio::time::sleep(PAUSE).await;
                    }
                })
            })
            .collect();

        let sampled = seen.clone();
        let sampler = tokio::spawn(async move {
            loop {
                sampled
                    .peak_tasks
                    .fetch_max(alive_tasks(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Load {
            name,
            site,
            seen,
            stop,
            clients,
            server,
            sampler,
            baseline,
            started: Instant::now(),
        }
    }

    /// Lets the load run for `length`; what happened meanwhile.
    async fn window(&self, length: Duration) -> Window {
        let (requests, calls, hits) = self.counts();
        tokio::time::sleep(length).await;
        let (requests_after, calls_after, hits_after) = self.counts();
        Window {
            requests: requests_after - requests,
            calls: calls_after - calls,
            hits: hits_after - hits,
        }
    }

    fn counts(&self) -> (usize, usize, usize) {
        (
            self.seen.requests.load(Ordering::SeqCst),
            self.site.calls(),
            self.seen.hits.load(Ordering::SeqCst),
        )
    }

    /// Waits until the origin's calls stop growing (every page is cached
    /// and hits) for half a second, for up to `within`; how long it took.
    async fn until_hits(&self, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let window = self.window(Duration::from_millis(500)).await;
            if window.calls == 0 && window.requests > 0 {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "{}: the origin is still called ({window:?}) {within:?} on",
                self.name
            );
        }
    }

    /// The hits so far.
    fn hits(&self) -> usize {
        self.seen.hits.load(Ordering::SeqCst)
    }

    /// The slowest answer since the last call.
    fn slowest(&self) -> Duration {
        std::mem::take(&mut *self.seen.slowest.lock().unwrap())
    }

    /// Stops the load; checks that every answer was right and on time, and
    /// that the runtime's tasks come back to near where they were.
    async fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        for client in self.clients {
            client.await.unwrap();
        }
        self.server.abort();
        let _ = self.server.await;
        let requests = self.seen.requests.load(Ordering::SeqCst);
        let wrong = self.seen.wrong_count.load(Ordering::SeqCst);
        assert!(
            wrong == 0,
            "{}: {wrong} of {requests} answers were wrong; the first: {:#?}",
            self.name,
            self.seen.wrong.lock().unwrap()
        );
        self.sampler.abort();
        let _ = self.sampler.await;
        // Connections closing, stores and lock releases ending: their
        // tasks go within the backends' timeouts.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut alive = alive_tasks();
        while alive > self.baseline + TASK_SLACK && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            alive = alive_tasks();
        }
        let peak = self.seen.peak_tasks.load(Ordering::SeqCst);
        eprintln!(
            "{}: {requests} requests in {:.1?}, {} origin calls; tasks: {} before, peak {peak}, {alive} after",
            self.name,
            self.started.elapsed(),
            self.site.calls(),
            self.baseline
        );
        assert!(
            peak <= self.baseline + PEAK_SLACK,
            "{}: {peak} tasks alive during the load, {} before",
            self.name,
            self.baseline
        );
        assert!(
            alive <= self.baseline + TASK_SLACK,
            "{}: {alive} tasks alive after the load, {} before",
            self.name,
            self.baseline
        );
    }
}

/// One GET over TCP, checked: 200, the right page, within [`BOUND`].
async fn request(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    site: &Site,
    seen: &Seen,
    name: &str,
) {
    let uri: http::Uri = format!("http://{addr}/{name}").parse().unwrap();
    let started = Instant::now();
    let answer = async {
        let response = client.get(uri).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        site.check(name, status, &body)
    };
    let result = match tokio::time::timeout(BOUND, answer).await {
        Ok(result) => result,
        Err(_) => Err(format!("GET /{name}: no answer within {BOUND:?}")),
    };
    let took = started.elapsed();
    seen.requests.fetch_add(1, Ordering::SeqCst);
    {
        let mut slowest = seen.slowest.lock().unwrap();
        *slowest = (*slowest).max(took);
    }
    if let Err(wrong) = result {
        seen.wrong(format!("{wrong} (after {took:.1?})"));
    }
}

/// `server`, behind the cache at `url(&server)`, stops for [`OUTAGE`]
/// under load and starts again on its port: every answer is right and on
/// time, and hits resume.
async fn restart_under_load(
    name: &'static str,
    mut server: common::Server,
    url: impl Fn(&common::Server) -> String,
) {
    let cache = Cache::from_url(&url(&server)).await.unwrap();
    let load = Load::start(name, cache, page).await;
    load.until_hits(RECOVERY).await;
    server.stop();
    let down = load.window(OUTAGE).await;
    assert!(down.calls > 0, "{name}: misses while the server is down");
    server.restart();
    let back = load.until_hits(RECOVERY).await;
    eprintln!("{name}: {down:?} while down; hits again {back:.1?} after the restart");
    load.finish().await;
}

/// Load on the cache at `url(address)`, where a listener accepts
/// connections and never answers: each request costs at most
/// [`at_most`]`(operations)`.
async fn silent_under_load(
    name: &'static str,
    url: impl Fn(SocketAddr) -> String,
    operations: u32,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let cache = Cache::from_url(&url(addr)).await.unwrap();
    let load = Load::start(name, cache, page).await;
    let window = load.window(HANG).await;
    let slowest = load.slowest();
    let most = at_most(operations);
    eprintln!("{name}: {window:?}, slowest {slowest:.1?} (at most {most:?})");
    assert!(
        window.requests > 0 && window.hits == 0,
        "{name}: {window:?}"
    );
    assert!(slowest <= most, "{name}: a request took {slowest:?}");
    load.finish().await;
    held.abort();
}

/// While the load runs on `cache`, which refuses stores (a full server, a
/// read-only directory, a locked database): the origin keeps being called
/// for the pages that could not be stored, every answer is still right,
/// and a store fails with an error whose `Debug` mentions one of `says`. What the
/// second of load after the first brought.
async fn stores_fail(load: &Load, cache: &Cache, says: &[&str]) -> Window {
    // Whatever fits is stored within this second; the rest never is.
    load.window(Duration::from_secs(1)).await;
    let window = load.window(Duration::from_secs(1)).await;
    eprintln!("{}: {window:?}", load.name);
    assert!(
        window.calls > 0,
        "{}: stores keep failing: {window:?}",
        load.name
    );
    let error = cache
        .set_bytes("probe", big_page("probe"), Duration::from_secs(60))
        .await
        .unwrap_err();
    // Debug shows the sources too.
    let error = format!("{error:?}");
    assert!(
        says.iter().any(|s| error.contains(s)),
        "{}: {error}",
        load.name
    );
    window
}

/// [`stores_fail`] on a server that is full: the pages that fitted hit.
async fn full_under_load(name: &'static str, cache: Cache, says: &str) {
    let load = Load::start(name, cache.clone(), big_page).await;
    stores_fail(&load, &cache, &[says]).await;
    load.finish().await;
}

#[cfg(feature = "redis")]
mod redis {
    use super::common::Server;
    use super::*;

    fn url(address: impl std::fmt::Display) -> String {
        format!("redis://{address}/0?{}", network_timeouts())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_redis_under_load() {
        restart_under_load("redis restart", Server::redis(), |s| url(s.address())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_redis_costs_at_most_its_timeouts() {
        silent_under_load("redis silent", url, 3).await;
    }

    /// A frozen server keeps its connections open: the pool's idle ones
    /// all hang. With many of them a request still costs its timeouts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_redis_costs_at_most_its_timeouts() {
        const POOL: usize = 64;
        let mut server = Server::redis();
        let url = format!("{}&pool_size={POOL}", url(server.address()));
        let cache = Cache::from_url(&url).await.unwrap();
        // Open every connection of the pool (writes take them; reads go
        // over the read lane); they stay, idle.
        let opened = (0..POOL).map(|i| {
            let cache = cache.clone();
            async move {
                cache
                    .set(&format!("warm{i}"), "warm", tower_cache::Timeout::Default)
                    .await
            }
        });
        for result in futures_util::future::join_all(opened).await {
            result.unwrap();
        }
        let load = Load::start("redis paused", cache, page).await;
        load.until_hits(RECOVERY).await;
        load.slowest();
        server.pause();
        // Requests answered before the pause may still be counted.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let paused = load.window(HANG).await;
        let slowest = load.slowest();
        server.resume();
        let back = load.until_hits(RECOVERY).await;
        eprintln!("redis paused: {paused:?}, slowest {slowest:.1?}; hits again {back:.1?} after");
        assert!(paused.hits == 0, "{paused:?}");
        assert!(slowest <= at_most(3), "a request took {slowest:?}");
        load.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_redis_refuses_stores_and_pages_are_served() {
        let server =
            Server::redis_with(&["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"]);
        let cache = Cache::from_url(&url(server.address())).await.unwrap();
        full_under_load("redis full", cache, "OOM").await;
    }
}

#[cfg(feature = "memcached")]
mod memcached {
    use super::common::Server;
    use super::*;

    fn url(address: impl std::fmt::Display) -> String {
        format!("memcached://{address}?{}", network_timeouts())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_memcached_under_load() {
        restart_under_load("memcached restart", Server::memcached(), |s| {
            url(s.address())
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_memcached_costs_at_most_its_timeouts() {
        silent_under_load("memcached silent", url, 3).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_memcached_refuses_stores_and_pages_are_served() {
        // A megabyte, which refuses stores when full (-M) instead of
        // evicting; items may be at most half of it (-I).
        let server = Server::memcached_with(&["-m", "1", "-M", "-I", "512k"]);
        let cache = Cache::from_url(&url(server.address())).await.unwrap();
        full_under_load("memcached full", cache, "out of memory").await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::common::Server;
    use super::*;

    fn url(address: impl std::fmt::Display) -> String {
        format!(
            "postgres://postgres@{address}/postgres?{}",
            database_timeout()
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_postgres_under_load() {
        restart_under_load("postgres restart", Server::postgres(), |s| url(s.address())).await;
    }

    /// No lock across instances on databases: a lookup and a store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_postgres_costs_at_most_its_timeout() {
        silent_under_load("postgres silent", url, 2).await;
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use sqlx::Connection;
    use sqlx::sqlite::SqliteConnection;

    use super::*;

    /// Another connection holds the write lock (`BEGIN EXCLUSIVE`): reads
    /// go on (WAL), stores wait out the timeout and fail; once the lock is
    /// released, pages are stored and hit again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_locked_sqlite_database_serves_pages() {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("sqlite://{}", dir.path().join("cache.db").display());
        let cache = Cache::from_url(&format!("{file}?{}", database_timeout()))
            .await
            .unwrap();
        // The table exists and the database is in WAL mode before the lock.
        cache
            .set_bytes("ready", Bytes::new(), Duration::from_secs(60))
            .await
            .unwrap();
        let mut holder = SqliteConnection::connect(&file).await.unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut holder)
            .await
            .unwrap();

        let load = Load::start("sqlite locked", cache.clone(), page).await;
        stores_fail(&load, &cache, &["database is locked", "Timeout"]).await;
        assert_eq!(load.hits(), 0, "nothing was stored, so nothing hits");

        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
        let back = load.until_hits(RECOVERY).await;
        eprintln!("sqlite locked: hits again {back:.1?} after the lock is released");
        load.finish().await;
    }
}

#[cfg(feature = "file")]
mod file {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::common::is_root;
    use super::*;

    /// A tmpfs mounted for a test, unmounted when dropped.
    struct Tmpfs(PathBuf);

    impl Tmpfs {
        /// Mounts a tmpfs with `options` on `dir`; why not, when it cannot.
        fn mount(dir: &Path, options: &str) -> Result<Tmpfs, String> {
            if !is_root() {
                return Err("mounting a tmpfs needs root".into());
            }
            let output = Command::new("mount")
                .args(["-t", "tmpfs", "-o", options, "tmpfs"])
                .arg(dir)
                .output()
                .map_err(|e| format!("cannot run mount: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "mount -t tmpfs refused: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
            Ok(Tmpfs(dir.to_owned()))
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }

    fn skipped(case: &str, reason: &str) {
        eprintln!("\n*** SKIPPED: {case}: {reason}. ***\n");
    }

    /// The cache directory under load while it refuses writes: nothing is
    /// stored (every read misses), every page is served, and no file is
    /// left behind.
    async fn refused(name: &'static str, dir: &Path, says: &[&str]) {
        let before = std::fs::read_dir(dir).unwrap().count();
        let cache = Cache::from_url(&format!("file://{}", dir.display()))
            .await
            .unwrap();
        let load = Load::start(name, cache.clone(), page).await;
        stores_fail(&load, &cache, says).await;
        assert_eq!(
            load.hits(),
            0,
            "{name}: nothing was stored, so nothing hits"
        );
        load.finish().await;
        let after = std::fs::read_dir(dir).unwrap().count();
        assert_eq!(after, before, "{name}: files left behind");
    }

    /// chmod 555; root, whom permissions do not stop, gets a read-only
    /// tmpfs instead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_only_directory_serves_pages() {
        use std::os::unix::fs::PermissionsExt;
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("cache");
        std::fs::create_dir(&dir).unwrap();
        let _mount = if is_root() {
            match Tmpfs::mount(&dir, "ro,size=64k") {
                Ok(mount) => Some(mount),
                Err(reason) => return skipped("a read-only cache directory", &reason),
            }
        } else {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
            None
        };
        refused(
            "file read-only",
            &dir,
            &["Read-only file system", "Permission denied"],
        )
        .await;
    }

    /// A 64 KiB tmpfs, filled up first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_filesystem_serves_pages() {
        use std::io::Write;
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("cache");
        std::fs::create_dir(&dir).unwrap();
        let _mount = match Tmpfs::mount(&dir, "size=64k") {
            Ok(mount) => mount,
            Err(reason) => return skipped("a full cache filesystem", &reason),
        };
        let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
        let block = [0u8; 4096];
        while filler.write_all(&block).is_ok() {}
        drop(filler);
        refused("file full", &dir, &["No space left on device"]).await;
    }
}
