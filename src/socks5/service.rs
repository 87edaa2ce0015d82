//! `--socks5 PORT`: a SOCKS5 server on the stack's addresses, so that a
//! gateway's MPTCP connections (or any client, MPTCP or plain TCP) reach
//! whatever the concentrator's host can reach. Each target is dialled from
//! the host's own sockets, as `--forward` does, and relayed.

use super::server::{self, Failed};
use super::wire::{Reply, Target};
use super::Users;
use crate::relay::{relay, End};
use crate::relays::Relays;
use crate::services::{refused, spawn_accept_loop, RelayTimeouts, ServiceStats};
use crate::socket::{Handle, StackStream};
use ipnet::IpNet;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Who may use the service. Never empty: the daemon refuses to start an
/// open proxy.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Client source prefixes allowed; empty: any client with credentials.
    pub allow: Vec<IpNet>,
    pub users: Option<Users>,
}

impl Access {
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.users.is_none()
    }

    pub(crate) fn allows(&self, client: SocketAddr) -> bool {
        let ip = client.ip().to_canonical();
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

pub fn socks5(
    handle: &Handle,
    port: u16,
    access: Access,
    timeouts: RelayTimeouts,
    relays: &Arc<Relays>,
) -> io::Result<Arc<ServiceStats>> {
    if access.is_open() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an open proxy: give --socks5-allow or --socks5-users",
        ));
    }
    let listener = handle.listen(port)?;
    let stats = ServiceStats::new("socks5", port);
    let access = Arc::new(access);
    let relays = relays.clone();
    spawn_accept_loop(listener, stats.clone(), move |stream, stats| {
        let access = access.clone();
        let relays = relays.clone();
        async move { serve(stream, &access, timeouts, &stats, &relays).await }
    });
    Ok(stats)
}

async fn serve(
    mut stream: StackStream,
    access: &Access,
    timeouts: RelayTimeouts,
    stats: &ServiceStats,
    relays: &Arc<Relays>,
) -> io::Result<()> {
    let client = stream.peer_addr()?;
    let target = match server::accept_within(&mut stream, access.users.as_ref()).await {
        Ok(t) => t,
        Err(Failed::Reset(e)) => {
            stream.abort();
            return Err(e);
        }
        Err(Failed::Answered(e)) => return Err(e),
    };
    if !access.allows(client) {
        server::reply(&mut stream, Reply::NotAllowed).await?;
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("client {client} is not on the allow-list"),
        ));
    }
    let Some(rec) = relays.admit("socks5", client, target.to_string()) else {
        server::reply(&mut stream, Reply::GeneralFailure).await?;
        return Err(refused());
    };
    let os = match dial(&target, timeouts.connect).await {
        Ok(os) => os,
        Err(e) => {
            server::reply(&mut stream, Reply::for_error(&e)).await?;
            return Err(io::Error::new(e.kind(), format!("CONNECT {target}: {e}")));
        }
    };
    server::reply(&mut stream, Reply::Succeeded).await?;
    relay(End::Stack(stream), End::Os(os), timeouts.idle, stats, &rec).await
}

/// Connect to `target` from the host, resolving a name with the host's
/// resolver and trying its addresses in turn, within `timeout` in all.
pub(crate) async fn dial(target: &Target, timeout: Duration) -> io::Result<TcpStream> {
    let attempt = async {
        let addrs: Vec<SocketAddr> = match target {
            Target::Addr(a) => vec![*a],
            Target::Domain(host, port) => tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))?
                .collect(),
        };
        let mut last = io::Error::new(io::ErrorKind::NotFound, "name has no address");
        for a in addrs {
            match TcpStream::connect(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(io::Error::from(io::ErrorKind::TimedOut)))
}
