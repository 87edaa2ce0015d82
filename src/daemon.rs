//! `mptun run`: configure the TUN, start services and the control socket, drive the
//! engine until SIGINT/SIGTERM, then close connections gracefully and clean up.
//!
//! It also ends, with an error (exit status 1), when the TUN device goes away, or
//! after a panic that may have left the engine half updated (see `crate::panics`):
//! then without a graceful close, but still removing the control socket, the
//! routes and the device.

use crate::cli::{MemorySize, RunArgs};
use crate::control::{ControlServer, SocketAccess};
use crate::driver::{Driver, DriverError, Impairment};
use crate::pcap::PcapWriter;
use crate::services::{self, RelayTimeouts, ServiceStats};
use crate::socket::{Handle, Shared};
use crate::tun::{Tun, TunConfig};
use mptun_stack::impair::ImpairSpec;
use mptun_stack::{Config, EndpointFlags, Seed, Stack};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// How long a shutdown waits for connections to finish their close handshakes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Why the daemon could not run or stopped; `main` prints it and exits 1.
#[derive(Debug)]
pub struct RunError(pub String);

impl RunError {
    /// A bug stopped the daemon ("internal error: ..."): the engine may be
    /// inconsistent, so `main` exits without running anything else.
    pub fn is_internal(&self) -> bool {
        self.0.starts_with(INTERNAL)
    }
}

const INTERNAL: &str = "internal error: ";

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

fn err(context: impl fmt::Display, e: impl fmt::Display) -> RunError {
    RunError(format!("{context}: {e}"))
}

/// Everything the control socket reports about the running daemon.
pub struct Runtime {
    pub tun: String,
    /// Whether addresses get host routes through the TUN (not `--no-routes`).
    pub routes: bool,
    pub handle: Handle,
    pub services: Vec<Arc<ServiceStats>>,
    pub relays: Arc<crate::relays::Relays>,
}

fn stack_config(args: &RunArgs, seed: Seed) -> Config {
    let mut config = Config {
        seed,
        ..Config::default()
    };
    config.tcp.mtu = args.mtu as usize;
    config.mptcp.v1 = args.mptcp_version.allows(1);
    config.mptcp.v0 = args.mptcp_version.allows(0);
    config.mptcp.retry_v0 = !args.no_v0_retry;
    config.mptcp.enabled = !args.no_mptcp && (config.mptcp.v1 || config.mptcp.v0);
    config.mptcp.checksum = args.checksum;
    config.mptcp.scheduler = args.scheduler;
    config.tcp.cc = args.cc;
    config.mptcp.max_subflows = args.max_subflows as usize;
    config.mptcp.max_add_addr_accepted = args.max_add_addr_accepted as usize;
    config.mptcp.deny_join_id0 = args.deny_join_initial_addr;
    config.mptcp.token_prefix = args.instance_id;
    config.max_memory = match args.max_memory {
        MemorySize::Bytes(n) => usize::try_from(n).unwrap_or(usize::MAX),
        MemorySize::Auto => auto_memory_budget(),
    };
    config.max_conns_per_source = args.max_conns_per_source as usize;
    config.max_connections = args.max_connections as usize;
    config.syn_cookies = args.syn_cookies;
    config
}

/// `--max-memory auto`: an eighth of the RAM (`MemTotal`), between 64 MiB and
/// 4 GiB; 256 MiB if the RAM cannot be read.
fn auto_memory_budget() -> usize {
    const MIB: u64 = 1 << 20;
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| kib * 1024);
    let budget = total.map_or(256 * MIB, |t| (t / 8).clamp(64 * MIB, 4096 * MIB));
    usize::try_from(budget).unwrap_or(usize::MAX)
}

pub async fn run(args: RunArgs) -> Result<(), RunError> {
    // The stack's secrets (ISN secret, MPTCP keys, nonces) come from 256 bits
    // of OS entropy; a --seed makes them predictable, for tests only. Neither
    // is ever logged.
    let seed = match args.seed {
        Some(s) => {
            warn!("--seed given: initial sequence numbers and MPTCP keys are predictable (for tests only)");
            Seed::from_u64(s)
        }
        None => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| err("cannot read OS entropy", e))?;
            Seed::from_bytes(bytes)
        }
    };
    let mut stack = Stack::new(stack_config(&args, seed));
    for a in &args.addrs {
        stack.add_endpoint(
            a.addr,
            EndpointFlags {
                signal: a.signal,
                subflow: a.subflow,
                backup: a.backup,
            },
        );
    }

    // The control socket first: a path that cannot be used safely (or another
    // daemon on it) is refused before anything on the network changes. Clients
    // that connect before it is served wait in its backlog.
    let access = SocketAccess {
        group: match &args.control_group {
            Some(g) => {
                Some(crate::control::resolve_group(g).map_err(|e| err("--control-group", e))?)
            }
            None => None,
        },
    };
    let control_server = ControlServer::bind(&args.control_path(), access)
        .await
        .map_err(|e| {
            err(
                format!("control socket {}", args.control_path().display()),
                e,
            )
        })?;

    let tun = Tun::create(&TunConfig {
        name: args.tun.clone(),
        mtu: args.mtu,
        txqueuelen: args.txqueuelen,
        routes: args.addrs.iter().map(|a| a.addr).collect(),
        add_routes: !args.no_routes,
        offload: !args.no_offload,
    })
    .map_err(|e| RunError(e.to_string()))?;
    info!(tun = %tun.name(), mtu = tun.mtu(), offload = tun.offload(), "TUN device up");

    let pcap = match &args.pcap {
        Some(path) => Some(
            PcapWriter::create(path).map_err(|e| err(format!("--pcap {}", path.display()), e))?,
        ),
        None => None,
    };

    let mut impairments = Vec::new();
    for (i, imp) in args.impair.iter().enumerate() {
        let spec: ImpairSpec = imp
            .spec
            .parse()
            .map_err(|e| err(format!("--impair {}", imp.addr), e))?;
        let link_seed = match (spec.seed, args.seed) {
            (Some(s), _) => s,
            (None, Some(s)) => s.wrapping_add(i as u64 + 1),
            (None, None) => getrandom::u64().map_err(|e| err("cannot read OS entropy", e))?,
        };
        info!(addr = %imp.addr, spec = %imp.spec, "fault injection on");
        impairments.push(Impairment::new(imp.addr, spec.params, link_seed));
    }

    let handle = Handle::new(Shared::new(stack));
    // From here on a panic wakes the driver, which stops the daemon if the
    // panicking task held the engine.
    crate::panics::install(handle.waker());
    let timeouts = RelayTimeouts {
        connect: args.connect_timeout,
        idle: (!args.idle_timeout.is_zero()).then_some(args.idle_timeout),
    };
    let relays = crate::relays::Relays::new(args.max_relays as usize);
    let mut services = Vec::new();
    for &port in &args.echo {
        services.push(services::echo(&handle, port).map_err(|e| err(format!("--echo {port}"), e))?);
    }
    for &port in &args.sink {
        services.push(
            services::sink(&handle, port, args.sink_sha256)
                .map_err(|e| err(format!("--sink {port}"), e))?,
        );
    }
    for f in &args.forward {
        services.push(
            services::forward(
                &handle,
                f.port,
                f.host.clone(),
                f.host_port,
                timeouts,
                &relays,
            )
            .map_err(|e| err(format!("--forward {f}"), e))?,
        );
    }
    if let Some(port) = args.socks5 {
        let users = match &args.socks5_users {
            Some(path) => Some(
                crate::socks5::Users::load(path)
                    .map_err(|e| err("--socks5-users", std::io::Error::other(e)))?,
            ),
            None => None,
        };
        let access = crate::socks5::service::Access {
            allow: args.socks5_allow.clone(),
            users,
        };
        services.push(
            crate::socks5::service::socks5(&handle, port, access, timeouts, &relays)
                .map_err(|e| err(format!("--socks5 {port}"), e))?,
        );
    }
    if let Some(upstream) = &args.upstream {
        let creds = match &args.upstream_credentials {
            Some(path) => Some(
                crate::gateway::load_credentials(path)
                    .map_err(|e| err("--upstream-credentials", std::io::Error::other(e)))?,
            ),
            None => None,
        };
        let route = crate::gateway::Route {
            upstream: upstream.clone(),
            creds,
            scheduler: args.upstream_scheduler,
        };
        if args.transparent {
            services.push(
                crate::gateway::transparent(&handle, route.clone(), timeouts, &relays)
                    .map_err(|e| err("--transparent", e))?,
            );
        }
        if let Some(listen) = args.socks5_listen {
            let allow = args.socks5_listen_allow.clone();
            services.push(
                crate::socks5::local::socks5_listen(
                    &handle, listen, allow, route, timeouts, &relays,
                )
                .await
                .map_err(|e| err(format!("--socks5-listen {listen}"), e))?,
            );
        }
    }
    for f in &args.local_forward {
        services.push(
            services::local_forward(&handle, f.listen, f.remote, timeouts, &relays)
                .await
                .map_err(|e| err(format!("--local-forward {f}"), e))?,
        );
    }

    let runtime = Arc::new(Runtime {
        tun: args.tun.clone(),
        routes: !args.no_routes,
        handle: handle.clone(),
        services,
        relays,
    });
    let control = crate::control_glue::serve(control_server, runtime.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| err("signal handler", e))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| err("signal handler", e))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = sigint.recv() => info!("SIGINT: shutting down"),
            _ = sigterm.recv() => info!("SIGTERM: shutting down"),
        }
        let _ = stop_tx.send(true);
    });

    let addrs: Vec<String> = args.addrs.iter().map(|a| a.addr.to_string()).collect();
    info!(addresses = %addrs.join(","), "mptun running");
    let tun_name = args.tun.clone();
    let driver = Driver::new(handle.clone(), tun, pcap, impairments);
    // The driver runs in a task of its own, so that its panic is an error we see
    // (`JoinError`), not an unwinding through this function. The TUN it owns is
    // torn down by `Tun`'s `Drop` while the panic unwinds.
    let (mut driver, mut result) = match tokio::spawn(async move {
        let mut driver = driver;
        let r = driver.run(stop_rx).await;
        (driver, r)
    })
    .await
    {
        Ok(done) => done,
        Err(e) => return Err(fatal(control, e)),
    };

    if result.is_ok() && handle.is_poisoned() {
        // Stopped (signal) at the same time as a task panicked with the engine.
        result = Err(DriverError::Internal(crate::panics::last().unwrap_or_else(
            || "a task panicked while holding the engine".to_string(),
        )));
    }
    if result.is_ok() {
        // Graceful shutdown: no new connections, FIN on the rest, bounded wait.
        {
            let mut s = handle.lock();
            s.stop_accepting();
            for id in s.stack.connections() {
                let _ = s.stack.shutdown(id);
            }
        }
        handle.kick();
        let drained = tokio::spawn(async move {
            let r = driver.drain(SHUTDOWN_GRACE).await;
            (driver, r)
        })
        .await;
        match drained {
            Ok((d, r)) => {
                driver = d;
                result = r;
            }
            Err(e) => return Err(fatal(control, e)),
        }
    }
    drop(control);
    if let Err(DriverError::DeviceGone(_)) = result {
        driver.tun_mut().forget_device();
    }
    driver.tun_mut().teardown();
    match result {
        Ok(()) => {
            info!("stopped");
            Ok(())
        }
        Err(DriverError::DeviceGone(e)) => {
            error!("the TUN device {tun_name} is gone ({e}): stopping");
            Err(RunError(format!(
                "TUN device {tun_name} is gone ({e}); was it deleted?"
            )))
        }
        Err(e @ DriverError::Internal(_)) => {
            error!("{e}: stopping");
            Err(RunError(e.to_string()))
        }
    }
}

/// The driver task panicked: the device went with it (its `Drop`); remove the
/// control socket and report.
fn fatal(control: crate::control_glue::ControlTask, e: tokio::task::JoinError) -> RunError {
    drop(control);
    let msg = if e.is_panic() {
        crate::panics::message(e.into_panic())
    } else {
        "the driver task was cancelled".to_string()
    };
    error!("internal error: {msg}: stopping");
    RunError(format!("{INTERNAL}{msg}"))
}
