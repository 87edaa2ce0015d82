//! `--socks5-listen ADDR:PORT`: a SOCKS5 server on a host socket, for
//! applications configured with a proxy instead of routed through the TUN.
//! Each CONNECT takes the gateway's route (`--upstream`): an MPTCP connection
//! to the concentrator, which is asked for the same target (a host name is
//! resolved there), or a direct dial from the host. The concentrator's answer
//! (refused, unreachable, ...) is passed on as the reply.

use super::server::{self, Refused};
use super::wire::Reply;
use crate::gateway::{open, Route};
use crate::relay::{relay, reset_os, End};
use crate::relays::Relays;
use crate::services::{refused, RelayTimeouts, ServiceStats};
use crate::socket::Handle;
use ipnet::IpNet;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

/// How long a client may take over its greeting and request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn socks5_listen(
    handle: &Handle,
    listen: SocketAddr,
    allow: Vec<IpNet>,
    route: Route,
    timeouts: RelayTimeouts,
    relays: &Arc<Relays>,
) -> io::Result<Arc<ServiceStats>> {
    let listener = TcpListener::bind(listen).await?;
    let stats = ServiceStats::new("socks5-listen", listen.port());
    let (st, handle, relays) = (stats.clone(), handle.clone(), relays.clone());
    let (route, allow) = (Arc::new(route), Arc::new(allow));
    tokio::spawn(async move {
        loop {
            let (os, client) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    warn!("--socks5-listen {listen}: accept failed: {e}");
                    // Out of descriptors or the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            st.connections.fetch_add(1, Ordering::Relaxed);
            let (handle, st, relays, route, allow) = (
                handle.clone(),
                st.clone(),
                relays.clone(),
                route.clone(),
                allow.clone(),
            );
            tokio::spawn(async move {
                let r = serve(&handle, os, client, &allow, &route, timeouts, &st, &relays).await;
                match r {
                    Ok(()) => debug!(%client, "socks5-listen connection done"),
                    Err(e) => info!(%client, "socks5-listen connection ended: {e}"),
                }
            });
        }
    });
    Ok(stats)
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    handle: &Handle,
    mut os: TcpStream,
    client: SocketAddr,
    allow: &[IpNet],
    route: &Route,
    timeouts: RelayTimeouts,
    stats: &ServiceStats,
    relays: &Arc<Relays>,
) -> io::Result<()> {
    let target = match tokio::time::timeout(HANDSHAKE_TIMEOUT, server::accept(&mut os, None)).await
    {
        Ok(Ok(t)) => t,
        Ok(Err(Refused::Io(e))) => {
            reset_os(os);
            return Err(e);
        }
        Ok(Err(r)) => {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                r.to_string(),
            ))
        }
        Err(_) => {
            reset_os(os);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no SOCKS5 request within the handshake timeout",
            ));
        }
    };
    let ip = client.ip().to_canonical();
    if !allow.is_empty() && !allow.iter().any(|n| n.contains(&ip)) {
        server::reply(&mut os, Reply::NotAllowed).await?;
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("client {client} is not on --socks5-listen-allow"),
        ));
    }
    let Some(rec) = relays.admit("socks5-listen", client, target.to_string()) else {
        server::reply(&mut os, Reply::GeneralFailure).await?;
        return Err(refused());
    };
    let far = match open(handle, &target, route, timeouts.connect).await {
        Ok(far) => far,
        Err(e) => {
            server::reply(&mut os, Reply::for_error(&e)).await?;
            return Err(io::Error::new(e.kind(), format!("CONNECT {target}: {e}")));
        }
    };
    if let End::Stack(up) = &far {
        if let Ok(local) = up.local_addr() {
            rec.set_upstream(local);
        }
    }
    server::reply(&mut os, Reply::Succeeded).await?;
    relay(End::Os(os), far, timeouts.idle, stats, &rec).await
}
