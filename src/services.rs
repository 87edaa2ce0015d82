//! Built-in services on the stack: echo, sink, forward (stack → OS TCP backend) and
//! local-forward (OS TCP listener → stack connection), each an ordinary user of
//! the async stream API.

use crate::socket::{Handle, StackListener, StackStream};
use sha2::{Digest, Sha256};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info, warn};

/// Copy buffer per direction; large enough to keep a fast path busy.
const BUF: usize = 256 * 1024;

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
    spawn_accept_loop(listener, stats.clone(), |stream, stats| async move {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut buf = vec![0u8; BUF];
        loop {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            wr.write_all(&buf[..n]).await?;
            stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        wr.shutdown().await
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
            let mut buf = vec![0u8; BUF];
            let mut hash = sha256.then(Sha256::new);
            let mut total = 0u64;
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                if let Some(h) = &mut hash {
                    h.update(&buf[..n]);
                }
                total += n as u64;
                stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
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
) -> io::Result<Arc<ServiceStats>> {
    let listener = handle.listen(port)?;
    let stats = ServiceStats::new("forward", port);
    spawn_accept_loop(listener, stats.clone(), move |mut stream, stats| {
        let host = host.clone();
        async move {
            let mut backend = tokio::net::TcpStream::connect((host.as_str(), host_port))
                .await
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("backend {host}:{host_port}: {e}"))
                })?;
            let (a, b) =
                tokio::io::copy_bidirectional_with_sizes(&mut stream, &mut backend, BUF, BUF)
                    .await?;
            stats.bytes.fetch_add(a + b, Ordering::Relaxed);
            Ok(())
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
) -> io::Result<Arc<ServiceStats>> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let stats = ServiceStats::new("local-forward", listen.port());
    let handle = handle.clone();
    let st = stats.clone();
    tokio::spawn(async move {
        loop {
            let (mut os, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    warn!("local-forward {listen}: accept failed: {e}");
                    continue;
                }
            };
            st.connections.fetch_add(1, Ordering::Relaxed);
            let handle = handle.clone();
            let st = st.clone();
            tokio::spawn(async move {
                let r = async {
                    let mut stream = handle.connect(remote).await?;
                    let (a, b) =
                        tokio::io::copy_bidirectional_with_sizes(&mut os, &mut stream, BUF, BUF)
                            .await?;
                    st.bytes.fetch_add(a + b, Ordering::Relaxed);
                    io::Result::Ok(())
                }
                .await;
                if let Err(e) = r {
                    info!(%peer, %remote, "local-forward connection ended: {e}");
                }
            });
        }
    });
    Ok(stats)
}
