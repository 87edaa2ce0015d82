//! Built-in services on the stack: echo, sink, forward (stack → OS TCP backend) and
//! local-forward (OS TCP listener → stack connection), each an ordinary user of
//! the async stream API.
//!
//! The two relays bound what a connection may hold on to ([`RelayTimeouts`]): a
//! backend (or, for local-forward, the stack's peer) that does not accept within the
//! connect timeout is given up and the client reset; a relayed connection on which
//! no byte moved either way for the idle timeout is reset on both sides.

use crate::socket::{Handle, StackListener, StackStream};
use sha2::{Digest, Sha256};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
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

/// Copy buffer per direction; large enough to keep a fast path busy.
const BUF: usize = 256 * 1024;

/// What the echo and the sink read into while they wait for data (inside the
/// connection's task: no allocation of its own).
const WAIT_BUF: usize = 64;

/// The next bytes of `stream` for a service that consumes them, holding no
/// buffer while the connection idles (issue 12: 10,000 idle connections must
/// not each keep a copy buffer). What the stack already holds is read into a
/// chunk of that size (at most [`BUF`]), allocated uninitialised for this read
/// and freed by the caller once used; with nothing held, the wait is a read into
/// `wait`. Empty at the end of the stream.
async fn next_chunk<'a>(
    stream: &StackStream,
    wait: &'a mut [u8; WAIT_BUF],
    chunk: &'a mut Vec<u8>,
) -> io::Result<&'a [u8]> {
    let mut rd = stream;
    let avail = stream.recv_available();
    if avail == 0 {
        let n = rd.read(wait).await?;
        return Ok(&wait[..n]);
    }
    *chunk = Vec::with_capacity(avail.min(BUF));
    rd.read_buf(chunk).await?;
    Ok(chunk)
}

/// The next bytes of an OS connection, as [`next_chunk`] for the stack's: no
/// buffer while it idles (the wait is `readable`), then a chunk of up to
/// [`BUF`] bytes allocated uninitialised for this read (only what arrived is
/// written). Empty at the end of the stream.
async fn next_os_chunk(os: &TcpStream, chunk: &mut Vec<u8>) -> io::Result<()> {
    loop {
        os.readable().await?;
        *chunk = Vec::with_capacity(BUF);
        match os.try_read_buf(chunk) {
            Ok(_) => return Ok(()),
            // A stale readiness: wait again, holding nothing.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => *chunk = Vec::new(),
            Err(e) => return Err(e),
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
}

impl ServiceStats {
    fn new(kind: &'static str, port: u16) -> Arc<Self> {
        Arc::new(ServiceStats {
            kind,
            port,
            ..ServiceStats::default()
        })
    }
}

/// Serve `accept`ed connections of `listener` with `serve`, one task each.
fn spawn_accept_loop<F, Fut>(listener: StackListener, stats: Arc<ServiceStats>, serve: F)
where
    F: Fn(StackStream, Arc<ServiceStats>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = io::Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    debug!(
                        port = listener.port(),
                        "{} stops accepting: {e}", stats.kind
                    );
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

pub fn echo(handle: &Handle, port: u16) -> io::Result<Arc<ServiceStats>> {
    let listener = handle.listen(port)?;
    let stats = ServiceStats::new("echo", port);
    spawn_accept_loop(listener, stats.clone(), |mut stream, stats| async move {
        let mut wait = [0u8; WAIT_BUF];
        loop {
            let mut chunk = Vec::new();
            let data = next_chunk(&stream, &mut wait, &mut chunk).await?;
            if data.is_empty() {
                break;
            }
            // `data` borrows `wait` or `chunk`, not the stream.
            stream.write_all(data).await?;
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
            let mut wait = [0u8; WAIT_BUF];
            let mut hash = sha256.then(Sha256::new);
            let mut total = 0u64;
            loop {
                let mut chunk = Vec::new();
                let data = next_chunk(&stream, &mut wait, &mut chunk).await?;
                if data.is_empty() {
                    break;
                }
                if let Some(h) = &mut hash {
                    h.update(data);
                }
                total += data.len() as u64;
                stats.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            match hash {
                Some(h) => {
                    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
                    info!(port = stats.port, bytes = total, sha256 = %digest, "sink connection complete");
                    *stats.last_sha256.lock().unwrap_or_else(|e| e.into_inner()) = Some(digest);
                }
                None => info!(port = stats.port, bytes = total, "sink connection complete"),
            }
            stream.shutdown().await
        },
    );
    Ok(stats)
}

/// Relay each connection accepted on `port` to `host:host_port` through the OS.
pub fn forward(
    handle: &Handle,
    port: u16,
    host: String,
    host_port: u16,
    timeouts: RelayTimeouts,
) -> io::Result<Arc<ServiceStats>> {
    let listener = handle.listen(port)?;
    let stats = ServiceStats::new("forward", port);
    spawn_accept_loop(listener, stats.clone(), move |stream, stats| {
        let host = host.clone();
        async move {
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
            relay(stream, backend, timeouts.idle, &stats).await
        }
    });
    Ok(stats)
}

/// Accept OS TCP connections on `listen` and relay each through a new stack
/// connection to `remote` (like `ssh -L`).
pub async fn local_forward(
    handle: &Handle,
    listen: SocketAddr,
    remote: SocketAddr,
    timeouts: RelayTimeouts,
) -> io::Result<Arc<ServiceStats>> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let stats = ServiceStats::new("local-forward", listen.port());
    let handle = handle.clone();
    let st = stats.clone();
    tokio::spawn(async move {
        loop {
            let (os, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    warn!("local-forward {listen}: accept failed: {e}");
                    // Out of descriptors or the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            st.connections.fetch_add(1, Ordering::Relaxed);
            let handle = handle.clone();
            let st = st.clone();
            tokio::spawn(async move {
                let r = match handle.connect_timeout(remote, timeouts.connect).await {
                    Ok(stream) => relay(stream, os, timeouts.idle, &st).await,
                    Err(e) => {
                        reset_os(os);
                        Err(e)
                    }
                };
                if let Err(e) = r {
                    info!(%peer, %remote, "local-forward connection ended: {e}");
                }
            });
        }
    });
    Ok(stats)
}

/// Closes an OS connection with a RST (`SO_LINGER` 0), not a FIN: the relay gives
/// up on it.
fn reset_os(os: TcpStream) {
    let _ = os.set_zero_linger();
    drop(os);
}

/// Copies both ways between a stack connection and an OS connection until both
/// directions are closed, counting the bytes into `stats`. With `idle`, once no
/// byte has moved either way for that long, both are reset and the error is
/// `TimedOut`.
///
/// Like `tokio::io::copy_bidirectional` (each direction shut down at the end of
/// its source, the first error ends both), but a relayed connection holds a copy
/// buffer only while bytes move: tokio's holds two zeroed buffers of [`BUF`]
/// for its whole life (issue 12: 512 KiB per idle relayed connection).
async fn relay(
    stack: StackStream,
    mut os: TcpStream,
    idle: Option<Duration>,
    stats: &ServiceStats,
) -> io::Result<()> {
    let activity = Activity::new();
    let moved = AtomicU64::new(0);
    let result = {
        let (os_rd, mut os_wr) = os.split();
        let up = async {
            // stack -> OS
            let mut wait = [0u8; WAIT_BUF];
            loop {
                let mut chunk = Vec::new();
                let data = next_chunk(&stack, &mut wait, &mut chunk).await?;
                if data.is_empty() {
                    break;
                }
                activity.touch();
                moved.fetch_add(data.len() as u64, Ordering::Relaxed);
                write_all_noting(&mut os_wr, data, &activity).await?;
            }
            os_wr.shutdown().await
        };
        let down = async {
            // OS -> stack
            let mut wr = &stack;
            loop {
                let mut chunk = Vec::new();
                next_os_chunk(os_rd.as_ref(), &mut chunk).await?;
                if chunk.is_empty() {
                    break;
                }
                activity.touch();
                moved.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                write_all_noting(&mut wr, &chunk, &activity).await?;
            }
            wr.shutdown().await
        };
        let copy = async { tokio::try_join!(up, down).map(|_| ()) };
        match idle {
            None => copy.await,
            Some(idle) => tokio::select! {
                r = copy => r,
                () = activity.idle_for(idle) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("idle for {:.0}s; both sides reset", idle.as_secs_f64()),
                )),
            },
        }
    };
    stats
        .bytes
        .fetch_add(moved.load(Ordering::Relaxed), Ordering::Relaxed);
    if result
        .as_ref()
        .is_err_and(|e| e.kind() == io::ErrorKind::TimedOut)
    {
        stack.abort();
        reset_os(os);
    }
    result
}

/// When a relayed connection last moved a byte (either way), shared by its two
/// [`Tracked`] halves.
struct Activity {
    start: Instant,
    /// Milliseconds since `start` of the last byte read or written.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// `write_all` that notes every step of progress in `activity` (a slow reader
/// still counts as traffic for the idle timeout).
async fn write_all_noting<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut data: &[u8],
    activity: &Activity,
) -> io::Result<()> {
    while !data.is_empty() {
        let n = w.write(data).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
        activity.touch();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_for_waits_for_silence() {
        let a = Activity::new();
        let t0 = Instant::now();
        a.idle_for(Duration::from_secs(5)).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(5));

        // Activity pushes the deadline back.
        let a = Arc::new(Activity::new());
        let b = a.clone();
        let t0 = Instant::now();
        let toucher = tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                b.touch();
            }
        });
        a.idle_for(Duration::from_secs(5)).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(17));
        toucher.await.unwrap();
    }
}
