//! `--socks5-listen ADDR:PORT`: a SOCKS5 server on a host socket, for
//! applications configured with a proxy instead of routed through the TUN.
//! Each CONNECT takes the gateway's route (`--upstream`): an MPTCP connection
//! to the concentrator, which is asked for the same target (a host name is
//! resolved there), or a direct dial from the host. The concentrator's answer
//! (refused, unreachable, ...) is passed on as the reply.

use super::server::{self, Failed};
use super::service::Access;
use super::wire::Reply;
use crate::gateway::{open, Route};
use crate::relay::{relay, reset_os, End};
use crate::relays::Relays;
use crate::services::{
    bind_host_listener, refused, spawn_os_accept_loop, RelayTimeouts, ServiceStats,
};
use crate::shards::Mesh;
use crate::socket::Handle;
use ipnet::IpNet;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

pub async fn socks5_listen(
    shards: &Arc<Mesh>,
    listen: SocketAddr,
    allow: Vec<IpNet>,
    route: Route,
    timeouts: RelayTimeouts,
    relays: &Arc<Relays>,
) -> io::Result<Arc<ServiceStats>> {
    let listener = bind_host_listener(listen)?;
    let stats = ServiceStats::new("socks5-listen", listen.port());
    let (shards, relays) = (shards.clone(), relays.clone());
    let route = Arc::new(route);
    let access = Arc::new(Access { allow, users: None });
    spawn_os_accept_loop(listener, stats.clone(), move |os, client, stats| {
        let (handle, relays, route, access) = (
            shards.pick().clone(),
            relays.clone(),
            route.clone(),
            access.clone(),
        );
        async move {
            serve(
                &handle, os, client, &access, &route, timeouts, &stats, &relays,
            )
            .await
        }
    });
    Ok(stats)
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    handle: &Handle,
    mut os: TcpStream,
    client: SocketAddr,
    access: &Access,
    route: &Route,
    timeouts: RelayTimeouts,
    stats: &ServiceStats,
    relays: &Arc<Relays>,
) -> io::Result<()> {
    let target = match server::accept_within(&mut os, None).await {
        Ok(t) => t,
        Err(Failed::Reset(e)) => {
            reset_os(os);
            return Err(e);
        }
        Err(Failed::Answered(e)) => return Err(e),
    };
    if !access.allows(client) {
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
