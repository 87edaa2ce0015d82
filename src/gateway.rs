//! `--transparent`: the gateway end. Every TCP connection the host routes into
//! the TUN for an address that is not mptun's is accepted as if mptun were its
//! destination; its bytes go upstream — over an MPTCP connection from all of
//! mptun's subflow addresses to a SOCKS5 concentrator (`--upstream
//! socks5://HOST:PORT`), which CONNECTs to the original destination, or
//! straight from the host (`--upstream direct`) — and are relayed both ways. A
//! destination that refuses or cannot be reached resets the LAN client's
//! connection, as the destination itself would have.

use crate::relay::{relay, End};
use crate::relays::{Relay, Relays};
use crate::services::{refused, spawn_accept_loop, RelayTimeouts, ServiceStats};
use crate::socket::{Handle, StackStream};
use crate::socks5::client::{self, Credentials};
use crate::socks5::wire::Target;
use mptun_stack::{ConnectOptions, Listen, SchedulerKind};
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Where a transparent connection's bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// Dial the destination from the host's own sockets.
    Direct,
    /// Through a SOCKS5 server reached over the stack (MPTCP from every
    /// subflow address).
    Socks5(SocketAddr),
}

impl FromStr for Upstream {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "direct" {
            return Ok(Upstream::Direct);
        }
        let Some(rest) = s.strip_prefix("socks5://") else {
            return Err(format!("{s:?}: expected socks5://ADDR:PORT or direct"));
        };
        if rest.contains('@') {
            return Err(
                "credentials do not go on the command line: use --upstream-credentials FILE".into(),
            );
        }
        rest.parse::<SocketAddr>()
            .map(Upstream::Socks5)
            .map_err(|_| format!("{rest:?}: expected ADDR:PORT (an IPv6 address in brackets)"))
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upstream::Direct => f.write_str("direct"),
            Upstream::Socks5(a) => write!(f, "socks5://{a}"),
        }
    }
}

/// Where the gateway's connections go, and the credentials for it.
#[derive(Debug, Clone)]
pub struct Route {
    pub upstream: Upstream,
    pub creds: Option<Credentials>,
    /// The upstream MPTCP connections' scheduler (else the stack's).
    pub scheduler: Option<SchedulerKind>,
}

/// How long the SOCKS5 exchange with the concentrator may take once its
/// connection is up.
const SOCKS_TIMEOUT: Duration = Duration::from_secs(10);

pub fn transparent(
    handle: &Handle,
    route: Route,
    timeouts: RelayTimeouts,
    relays: &Arc<Relays>,
) -> io::Result<Arc<ServiceStats>> {
    let relays = relays.clone();
    let route = Arc::new(route);
    let listener = handle.listen_on(Listen::Transparent)?;
    let stats = ServiceStats::new("transparent", 0);
    let handle = handle.clone();
    spawn_accept_loop(listener, stats.clone(), move |lan, stats| {
        let (handle, relays, route) = (handle.clone(), relays.clone(), route.clone());
        async move {
            let (dest, client) = (lan.local_addr()?, lan.peer_addr()?);
            let Some(rec) = relays.admit("transparent", client, dest.to_string()) else {
                // The LAN client learns at once, as from a host that refuses.
                lan.abort();
                return Err(refused());
            };
            serve(&handle, lan, dest, &route, timeouts, &stats, &rec)
                .await
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("to {dest} via {}: {e}", route.upstream))
                })
        }
    });
    Ok(stats)
}

async fn serve(
    handle: &Handle,
    lan: StackStream,
    dest: SocketAddr,
    route: &Route,
    timeouts: RelayTimeouts,
    stats: &ServiceStats,
    rec: &Relay,
) -> io::Result<()> {
    let far = match open(handle, &Target::Addr(dest), route, timeouts.connect).await {
        Ok(far) => far,
        Err(e) => {
            // The LAN client learns at once, as from the destination itself.
            lan.abort();
            return Err(e);
        }
    };
    if let End::Stack(up) = &far {
        if let Ok(local) = up.local_addr() {
            rec.set_upstream(local);
        }
    }
    relay(End::Stack(lan), far, timeouts.idle, stats, rec).await
}

/// The far end of a gateway connection to `target`, by `route`.
pub(crate) async fn open(
    handle: &Handle,
    target: &Target,
    route: &Route,
    connect: Duration,
) -> io::Result<End> {
    match &route.upstream {
        Upstream::Direct => crate::socks5::service::dial(target, connect)
            .await
            .map(End::Os)
            .map_err(|e| io::Error::new(e.kind(), format!("{target}: {e}"))),
        Upstream::Socks5(server) => {
            let opts = ConnectOptions {
                scheduler: route.scheduler,
            };
            let mut up = handle
                .connect_timeout_with(*server, connect, opts)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("upstream {server}: {e}")))?;
            let asked = client::connect(&mut up, target, route.creds.as_ref());
            match tokio::time::timeout(SOCKS_TIMEOUT, asked).await {
                Ok(Ok(())) => Ok(End::Stack(up)),
                Ok(Err(e)) => {
                    up.abort();
                    Err(io::Error::new(e.kind(), format!("upstream {server}: {e}")))
                }
                Err(_) => {
                    up.abort();
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("upstream {server} did not answer the SOCKS5 request"),
                    ))
                }
            }
        }
    }
}

/// `--upstream-credentials FILE`: one `user:password` line (comments and
/// blank lines aside); refused if others may read the file.
pub fn load_credentials(path: &std::path::Path) -> Result<Credentials, String> {
    let text = crate::socks5::read_secret_file(path)?;
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines
        .next()
        .ok_or_else(|| format!("{}: no user:password line", path.display()))?;
    if lines.next().is_some() {
        return Err(format!(
            "{}: more than one user:password line",
            path.display()
        ));
    }
    match line.split_once(':') {
        Some((u, p)) if !u.is_empty() && u.len() <= 255 && !p.is_empty() && p.len() <= 255 => {
            Ok(Credentials {
                user: u.into(),
                pass: p.into(),
            })
        }
        _ => Err(format!(
            "{}: expected user:password, each 1 to 255 bytes",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_parses() {
        assert_eq!("direct".parse::<Upstream>(), Ok(Upstream::Direct));
        assert_eq!(
            "socks5://10.40.1.2:1080".parse::<Upstream>(),
            Ok(Upstream::Socks5("10.40.1.2:1080".parse().unwrap()))
        );
        assert_eq!(
            "socks5://[fd40::2]:1080".parse::<Upstream>(),
            Ok(Upstream::Socks5("[fd40::2]:1080".parse().unwrap()))
        );
        assert!("socks5://u:p@10.0.0.1:1080"
            .parse::<Upstream>()
            .unwrap_err()
            .contains("credentials"));
        assert!("http://10.0.0.1:80".parse::<Upstream>().is_err());
        assert!("socks5://host:1080".parse::<Upstream>().is_err());
    }
}
