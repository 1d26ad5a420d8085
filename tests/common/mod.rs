//! Helpers shared by the tests of shared caches: server URLs from the
//! environment, private servers (Redis, memcached, PostgreSQL) that a test
//! may stop, pause and start again, and a cached route ([`site`]).
#![allow(dead_code, unreachable_pub)]

pub mod site;

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
    backend_from_url(&server_url(var)).await
}

/// The backend of the cache `url`.
pub async fn backend_from_url(url: &str) -> tower_cache::DynBackend {
    tower_cache::Cache::from_url(url)
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
    /// Arguments given after the defaults (which they override).
    extra: Vec<String>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    paused: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Redis,
    Memcached,
    Postgres,
}

/// Whether this process runs as root (the owner of `/proc/self`), which
/// PostgreSQL refuses to run as, and for which permissions do not stop
/// writes.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `kill -SIGNAL pid`: the test suite forbids `unsafe`, so no `libc::kill`.
fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {}", child.id());
}

/// The programs of the newest PostgreSQL installed
/// (`/usr/lib/postgresql/<version>/bin`, where Debian puts them).
fn postgres_bin() -> PathBuf {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max();
    newest.map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL under /usr/lib/postgresql/*/bin: install the postgresql package \
             (./scripts/test does)"
        )
    })
}

/// `program` as the `postgres` user when this process is root. `setpriv`
/// execs, so the child's pid is the program's own (`runuser` would fork).
fn as_postgres(program: &Path) -> Command {
    if !is_root() {
        return Command::new(program);
    }
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
    command
}

/// A fresh PostgreSQL cluster in `dir/data`, whose superuser is `postgres`
/// with no password.
fn initdb(dir: &Path) {
    if is_root() {
        let chown = Command::new("chown").arg("postgres:").arg(dir).status();
        assert!(
            chown.unwrap().success(),
            "chown postgres: {}",
            dir.display()
        );
    }
    let output = as_postgres(&postgres_bin().join("initdb"))
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn spawn(kind: Kind, port: u16, dir: &Path, extra: &[String]) -> Child {
    let (program, package) = match kind {
        Kind::Redis => ("redis-server", "redis-server"),
        Kind::Memcached => ("memcached", "memcached"),
        Kind::Postgres => ("postgres", "postgresql"),
    };
    let mut command = match kind {
        Kind::Postgres => as_postgres(&postgres_bin().join(program)),
        _ => Command::new(program),
    };
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
        Kind::Postgres => command
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display())),
    };
    command
        .args(extra)
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
    fn start(kind: Kind, extra: &[&str]) -> Server {
        let dir = std::env::temp_dir().join(unique("tower-cache-server"));
        std::fs::create_dir_all(&dir).unwrap();
        // Made first, so that a panic below still stops the process and
        // removes the directory.
        let mut server = Server {
            child: None,
            kind,
            extra: extra.iter().map(|&arg| arg.to_owned()).collect(),
            port: free_port(),
            dir,
            paused: false,
        };
        if kind == Kind::Postgres {
            initdb(&server.dir);
        }
        server.child = Some(spawn(kind, server.port, &server.dir, &server.extra));
        wait_until_listening(server.port, "server");
        server
    }

    /// A private redis-server on a free port.
    pub fn redis() -> Server {
        Server::redis_with(&[])
    }

    /// A private redis-server on a free port, with these options too
    /// (`--maxmemory 1mb`).
    pub fn redis_with(extra: &[&str]) -> Server {
        Server::start(Kind::Redis, extra)
    }

    /// A private memcached on a free port.
    pub fn memcached() -> Server {
        Server::memcached_with(&[])
    }

    /// A private memcached on a free port, with these options too (`-m 1`).
    pub fn memcached_with(extra: &[&str]) -> Server {
        Server::start(Kind::Memcached, extra)
    }

    /// A private PostgreSQL on a free port, in a cluster made for it: the
    /// user `postgres`, with no password, and its database `postgres`.
    pub fn postgres() -> Server {
        Server::start(Kind::Postgres, &[])
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the process by its pid (PostgreSQL with SIGINT, its fast
    /// shutdown; the others with SIGKILL) and waits for it to go.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.paused {
            self.paused = false;
            signal(&child, "CONT");
        }
        match self.kind {
            Kind::Postgres => signal(&child, "INT"),
            _ => child.kill().unwrap(),
        }
        child.wait().unwrap();
    }

    /// Starts the server again on the same port (empty, but for PostgreSQL,
    /// which keeps its data).
    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(spawn(self.kind, self.port, &self.dir, &self.extra));
        wait_until_listening(self.port, "restarted server");
    }

    /// Freezes the process (SIGSTOP): its connections stay open and
    /// the kernel still accepts new ones, but nothing is answered.
    pub fn pause(&mut self) {
        signal(self.child.as_ref().unwrap(), "STOP");
        self.paused = true;
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&mut self) {
        signal(self.child.as_ref().unwrap(), "CONT");
        self.paused = false;
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
