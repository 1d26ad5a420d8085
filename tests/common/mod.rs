//! Helpers shared by the Redis and memcached tests: server URLs from the
//! environment, and private servers that a test may stop and start again.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The URL in `var`; without it the test fails, saying how to run it.
pub fn server_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run the whole suite with ./scripts/test (it starts the servers), \
             or point {var} at a running server"
        )
    })
}

/// `url` with `option` added to its query.
pub fn with_option(url: &str, option: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{option}")
}

/// The node URLs (`redis://host:port`) of a `redis+cluster://a,b,c` URL.
pub fn cluster_nodes(url: &str) -> Vec<String> {
    let hosts = url.split("://").nth(1).unwrap();
    hosts
        .split(['/', '?'])
        .next()
        .unwrap()
        .split(',')
        .map(|node| format!("redis://{node}"))
        .collect()
}

/// The backend of the cache URL in `var` (see [`server_url`]).
pub async fn backend_from_env(var: &str) -> tower_cache::DynBackend {
    let url = server_url(var);
    tower_cache::Cache::from_url(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot build a cache from {url}: {e}"))
        .backend()
        .clone()
}

/// Sends one text-protocol command to the memcached server of
/// MEMCACHED_URL (its first, if it lists several) and returns the first line
/// of the answer: what the server itself holds, whatever the client says.
pub fn memcached_command(command: &str) -> String {
    let url = server_url("MEMCACHED_URL");
    let address = url
        .trim_start_matches("memcached://")
        .split(',')
        .next()
        .unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(command.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

/// A name no other test or run uses.
pub fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos:x}", std::process::id())
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server process of the test's own, stopped by its pid.
pub struct Server {
    child: Option<Child>,
    kind: Kind,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

#[derive(Clone, Copy)]
enum Kind {
    Redis,
    Memcached,
}

fn spawn(kind: Kind, port: u16, dir: &Path) -> Child {
    let (program, package) = match kind {
        Kind::Redis => ("redis-server", "redis-server"),
        Kind::Memcached => ("memcached", "memcached"),
    };
    let mut command = Command::new(program);
    match kind {
        Kind::Redis => command.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.to_str().unwrap(),
        ]),
        Kind::Memcached => command.args([
            "-u",
            "nobody",
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-m",
            "64",
        ]),
    };
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {program} ({e}): install the {package} package (./scripts/test does)"
            )
        })
}

impl Server {
    fn start(kind: Kind, port: u16) -> Server {
        let dir = std::env::temp_dir().join(unique("tower-cache-server"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = spawn(kind, port, &dir);
        wait_until_listening(port, "server");
        Server {
            child: Some(child),
            kind,
            port,
            dir,
        }
    }

    /// A private redis-server on a free port.
    pub fn redis() -> Server {
        Server::start(Kind::Redis, free_port())
    }

    /// A private memcached on a free port.
    pub fn memcached() -> Server {
        Server::start(Kind::Memcached, free_port())
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the process by its pid and waits for it to go.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts the server again on the same port (empty).
    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(spawn(self.kind, self.port, &self.dir));
        wait_until_listening(self.port, "restarted server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Retries `attempt` for up to `within`, returning the first success.
pub async fn eventually<T, E: std::fmt::Debug, F, Fut>(within: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + within;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(err) if Instant::now() >= deadline => {
                panic!("still failing after {within:?}: {err:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A memcached backend over `servers` with short timeouts (so that a stopped
/// server fails fast), and a `Cache` over it.
#[cfg(feature = "memcached")]
pub async fn memcached_over(
    servers: &[&Server],
) -> (tower_cache::backends::MemcachedBackend, tower_cache::Cache) {
    let backend =
        tower_cache::backends::MemcachedBackend::builder(servers.iter().map(|s| s.address()))
            .connect_timeout(Duration::from_millis(300))
            .command_timeout(Duration::from_millis(300))
            .build()
            .await
            .unwrap();
    let cache = tower_cache::Cache::new(std::sync::Arc::new(backend.clone()));
    (backend, cache)
}

/// A TCP proxy on loopback in front of `upstream`, which a test can cut
/// (every connection through it closed, new ones refused) and resume on
/// the same port: a network loss between one client and a server that
/// stays up for the others.
pub struct Proxy {
    pub port: u16,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
    frozen: Option<tokio::sync::watch::Sender<bool>>,
}

impl Proxy {
    /// A proxy to `upstream` (`host:port`) on a free port.
    pub async fn start(upstream: &str) -> Proxy {
        let mut proxy = Proxy {
            port: free_port(),
            upstream: upstream.to_owned(),
            task: None,
            frozen: None,
        };
        proxy.resume().await;
        proxy
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Closes every connection through the proxy and stops accepting.
    pub fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Stops passing bytes on every connection, keeping them open: a
    /// network that fails without a word (no FIN, no RST), until [`cut`].
    pub fn freeze(&mut self) {
        if let Some(frozen) = &self.frozen {
            let _ = frozen.send(true);
        }
    }

    /// Accepts connections again, on the same port.
    pub async fn resume(&mut self) {
        self.cut();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let upstream = self.upstream.clone();
        let (frozen, thawed) = tokio::sync::watch::channel(false);
        self.frozen = Some(frozen);
        self.task = Some(tokio::spawn(async move {
            // Dropped with the task, the set aborts every connection's copy.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let mut frozen = thawed.clone();
                connections.spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let freeze = async {
                        let _ = frozen.wait_for(|&frozen| frozen).await;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        // Frozen: the sockets stay open, nothing moves.
                        () = freeze => std::future::pending::<()>().await,
                    }
                });
            }
        }));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}
