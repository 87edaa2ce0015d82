//! Built-in services on the stack: echo, sink, forward (stack → OS TCP backend) and
//! local-forward (OS TCP listener → stack connection), each an ordinary user of
//! the async stream API.
//!
//! The two relays bound what a connection may hold on to ([`RelayTimeouts`]): a
//! backend (or, for local-forward, the stack's peer) that does not accept within the
//! connect timeout is given up and the client reset; a relayed connection on which
//! no byte moved either way for the idle timeout is reset on both sides.

use crate::chunk::Chunk;
use crate::relay::{next_chunk, relay, reset_os, End, IN_PLACE};
use crate::relays::Relays;
use crate::shards::Mesh;
use crate::socket::{Handle, StackListener, StackStream};
use sha2::{Digest, Sha256};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

/// Limits of the relays (--connect-timeout, --idle-timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayTimeouts {
    /// How long opening the far side of a relayed connection may take.
    pub connect: Duration,
    /// How long a relayed connection may stay without a byte moving either way;
    /// `None`: forever.
    pub idle: Option<Duration>,
}

impl Default for RelayTimeouts {
    fn default() -> Self {
        RelayTimeouts {
            connect: Duration::from_secs(10),
            idle: Some(Duration::from_secs(600)),
        }
    }
}

/// Counters of one service, shown by `mptun status`.
#[derive(Debug, Default)]
pub struct ServiceStats {
    pub kind: &'static str,
    pub port: u16,
    pub connections: AtomicU64,
    pub bytes: AtomicU64,
    /// SHA-256 of the last completed sink connection's bytes (sink only).
    pub last_sha256: Mutex<Option<String>>,
    /// When it was set, in [`COMPLETIONS`]' order: several threads run a
    /// service, each with its own stats, and `status` shows the latest.
    pub last_sha256_seq: AtomicU64,
}

/// Sink connections completed, in the process.
static COMPLETIONS: AtomicU64 = AtomicU64::new(0);

impl ServiceStats {
    pub(crate) fn new(kind: &'static str, port: u16) -> Arc<Self> {
        Arc::new(ServiceStats {
            kind,
            port,
            ..ServiceStats::default()
        })
    }
}

/// The error of a connection refused at `--max-relays`.
pub(crate) fn refused() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionRefused,
        "refused: relayed connections at --max-relays",
    )
}

/// Serve `accept`ed connections of `listener` with `serve`, one task each.
pub(crate) fn spawn_accept_loop<F, Fut>(listener: StackListener, stats: Arc<ServiceStats>, serve: F)
where
    F: Fn(StackStream, Arc<ServiceStats>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = io::Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    debug!(on = ?listener.on(), "{} stops accepting: {e}", stats.kind);
                    return;
                }
            };
            stats.connections.fetch_add(1, Ordering::Relaxed);
            let fut = serve(stream, stats.clone());
            let kind = stats.kind;
            tokio::spawn(async move {
                match fut.await {
                    Ok(()) => debug!(%remote, "{kind} connection done"),
                    Err(e) => info!(%remote, "{kind} connection ended: {e}"),
                }
            });
        }
    });
}

/// Listen backlog of the host-socket services. tokio's `bind` asks for 1,024;
/// a burst of that many connects then overflows the accept queue while the
/// loop catches up, the kernel falls back to SYN cookies, and clients whose
/// cookie ACK found the queue still full are reset when they send (seen as
/// `SyncookiesFailed` and `ListenOverflows` in t_time_wait's 1,000 connects).
/// The kernel clamps it to `net.core.somaxconn` (4,096 by default).
const HOST_LISTEN_BACKLOG: u32 = 4096;

/// A listening host socket on `addr`, as `TcpListener::bind` makes it
/// (`SO_REUSEADDR`), with [`HOST_LISTEN_BACKLOG`].
pub(crate) fn bind_host_listener(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(HOST_LISTEN_BACKLOG)
}

/// [`spawn_accept_loop`] for a host socket's listener (`--local-forward`,
/// `--socks5-listen`): `serve` gets each connection and its client's address.
pub(crate) fn spawn_os_accept_loop<F, Fut>(
    listener: tokio::net::TcpListener,
    stats: Arc<ServiceStats>,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr, Arc<ServiceStats>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = io::Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let (os, remote) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    warn!(
                        "{} on {:?}: accept failed: {e}",
                        stats.kind,
                        listener.local_addr()
                    );
                    // Out of descriptors or the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            stats.connections.fetch_add(1, Ordering::Relaxed);
            let fut = serve(os, remote, stats.clone());
            let kind = stats.kind;
            tokio::spawn(async move {
                match fut.await {
                    Ok(()) => debug!(%remote, "{kind} connection done"),
                    Err(e) => info!(%remote, "{kind} connection ended: {e}"),
                }
            });
        }
    });
}

pub fn echo(handle: &Handle, port: u16) -> io::Result<Arc<ServiceStats>> {
    let listener = handle.listen(port)?;
    let stats = ServiceStats::new("echo", port);
    spawn_accept_loop(listener, stats.clone(), |mut stream, stats| async move {
        let mut data = Chunk::new();
        loop {
            next_chunk(&stream, &mut data).await?;
            if data.is_empty() {
                break;
            }
            stream.write_all(data.bytes()).await?;
            stats.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        stream.shutdown().await
    });
    Ok(stats)
}

pub fn sink(handle: &Handle, port: u16, sha256: bool) -> io::Result<Arc<ServiceStats>> {
    let listener = handle.listen(port)?;
    let stats = ServiceStats::new("sink", port);
    spawn_accept_loop(
        listener,
        stats.clone(),
        move |mut stream, stats| async move {
            // The bytes are hashed (or dropped) where the engine holds them:
            // as they arrive, straight from the packet (a direct reader),
            // and what waits in the buffer meanwhile in place (a read). A
            // discard service needs no copy of its own.
            let state = Arc::new(Mutex::new(SinkState {
                hash: sha256.then(Sha256::new),
                total: 0,
            }));
            let direct = {
                let (state, stats) = (state.clone(), stats.clone());
                move |part: &[u8]| {
                    lock(&state).take(part);
                    stats.bytes.fetch_add(part.len() as u64, Ordering::Relaxed);
                    part.len()
                }
            };
            stream.set_direct_reader(Some(Box::new(direct)));
            loop {
                // A chunk at a time: the engine is locked meanwhile.
                let n = std::future::poll_fn(|cx| {
                    stream.poll_read_with(cx, IN_PLACE, |part| {
                        lock(&state).take(part);
                        part.len()
                    })
                })
                .await?;
                if n == 0 {
                    break;
                }
                stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            stream.set_direct_reader(None);
            let SinkState { hash, total } = std::mem::take(&mut *lock(&state));
            match hash {
                Some(h) => {
                    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
                    info!(port = stats.port, bytes = total, sha256 = %digest, "sink connection complete");
                    *lock(&stats.last_sha256) = Some(digest);
                    let seq = COMPLETIONS.fetch_add(1, Ordering::Relaxed) + 1;
                    stats.last_sha256_seq.store(seq, Ordering::Relaxed);
                }
                None => info!(port = stats.port, bytes = total, "sink connection complete"),
            }
            stream.shutdown().await
        },
    );
    Ok(stats)
}

/// What a sink connection has taken so far (by its reads and by its direct
/// reader).
#[derive(Default)]
struct SinkState {
    hash: Option<Sha256>,
    total: u64,
}

impl SinkState {
    fn take(&mut self, part: &[u8]) {
        if let Some(h) = &mut self.hash {
            h.update(part);
        }
        self.total += part.len() as u64;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Relay each connection accepted on `port` to `host:host_port` through the OS.
pub fn forward(
    handle: &Handle,
    port: u16,
    host: String,
    host_port: u16,
    timeouts: RelayTimeouts,
    relays: &Arc<Relays>,
) -> io::Result<Arc<ServiceStats>> {
    let listener = handle.listen(port)?;
    let stats = ServiceStats::new("forward", port);
    let relays = relays.clone();
    spawn_accept_loop(listener, stats.clone(), move |stream, stats| {
        let host = host.clone();
        let relays = relays.clone();
        async move {
            let client = stream.peer_addr()?;
            let Some(rec) = relays.admit("forward", client, format!("{host}:{host_port}")) else {
                stream.abort();
                return Err(refused());
            };
            let connect = TcpStream::connect((host.as_str(), host_port));
            let backend = match tokio::time::timeout(timeouts.connect, connect).await {
                Ok(Ok(backend)) => backend,
                // The client gets a reset, as from a host that refuses it.
                Ok(Err(e)) => {
                    stream.abort();
                    return Err(io::Error::new(
                        e.kind(),
                        format!("backend {host}:{host_port}: {e}; client reset"),
                    ));
                }
                Err(_) => {
                    stream.abort();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "backend {host}:{host_port} did not answer within {:.1}s; client reset",
                            timeouts.connect.as_secs_f64()
                        ),
                    ));
                }
            };
            relay(
                End::Stack(stream),
                End::Os(backend),
                timeouts.idle,
                &stats,
                &rec,
            )
            .await
        }
    });
    Ok(stats)
}

/// Accept OS TCP connections on `listen` and relay each through a new stack
/// connection to `remote` (like `ssh -L`), opened by each shard in turn.
pub async fn local_forward(
    shards: &Arc<Mesh>,
    listen: SocketAddr,
    remote: SocketAddr,
    timeouts: RelayTimeouts,
    relays: &Arc<Relays>,
) -> io::Result<Arc<ServiceStats>> {
    let listener = bind_host_listener(listen)?;
    let stats = ServiceStats::new("local-forward", listen.port());
    let (shards, relays) = (shards.clone(), relays.clone());
    spawn_os_accept_loop(listener, stats.clone(), move |os, peer, stats| {
        let (handle, relays) = (shards.pick().clone(), relays.clone());
        async move {
            let Some(rec) = relays.admit("local-forward", peer, remote.to_string()) else {
                reset_os(os);
                return Err(refused());
            };
            match handle.connect_timeout(remote, timeouts.connect).await {
                Ok(stream) => {
                    if let Ok(local) = stream.local_addr() {
                        rec.set_upstream(local);
                    }
                    relay(End::Os(os), End::Stack(stream), timeouts.idle, &stats, &rec).await
                }
                Err(e) => {
                    reset_os(os);
                    Err(io::Error::new(e.kind(), format!("{remote}: {e}")))
                }
            }
        }
    });
    Ok(stats)
}
