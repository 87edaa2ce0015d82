//! `mptun run`: configure the TUN, start services and the control socket, drive the
//! engine until SIGINT/SIGTERM, then close connections gracefully and clean up.
//! SIGHUP reloads the configuration file (`crate::reload`).
//!
//! It also ends, with an error (exit status 1), when the TUN device goes away, or
//! after a panic that may have left the engine half updated (see `crate::panics`):
//! then without a graceful close, but still removing the control socket, the
//! routes and the device.

use crate::cli::{MemorySize, RunArgs};
use crate::control::{ControlServer, SocketAccess};
use crate::driver::{Driver, DriverError, Impairment, Pcap, Router};
use crate::pcap::PcapWriter;
use crate::services::{self, RelayTimeouts, ServiceStats};
use crate::shards::Mesh;
use crate::socket::{Handle, Shared};
use crate::tun::{Tun, TunConfig};
use mptun_stack::impair::ImpairSpec;
use mptun_stack::{Config, EndpointFlags, RuntimeLimits, Seed, Shard, SharedCounts, Stack};
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
    /// The engines, one per thread (`--threads`).
    pub shards: Arc<Mesh>,
    pub services: Vec<Arc<ServiceStats>>,
    pub relays: Arc<crate::relays::Relays>,
    /// The last reload's result (SIGHUP).
    pub reload: std::sync::Mutex<Option<crate::reload::Record>>,
}

/// What `run` needs besides its arguments to reload them on SIGHUP.
pub struct ReloadSource {
    /// The whole command line as started (program name first).
    pub argv: Vec<std::ffi::OsString>,
    /// The log filter's control (absent where logging is not ours).
    pub log: Option<Arc<crate::logging::LogControl>>,
}

/// Shard `index`'s engine configuration among `count`: its own random
/// streams, ephemeral ports and token bits, and an even share of the memory
/// budget (the connection limits are counted over all shards together:
/// `SharedCounts`).
fn stack_config(
    args: &RunArgs,
    seed: Seed,
    index: usize,
    count: usize,
) -> Result<Config, RunError> {
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
    // Both at most 1 GiB (`--send-buffer`, `--recv-buffer`).
    config.tcp.send_buffer = args.send_buffer as usize;
    config.tcp.recv_buffer = args.recv_buffer as usize;
    config.mptcp.deny_join_id0 = args.deny_join_initial_addr;
    config.mptcp.token_prefix = crate::shards::token_prefix(args.instance_id, index, count)
        .map_err(|e| err("--threads", e))?;
    let l = limits_for(args, count);
    config.max_connections = l.max_connections;
    config.max_conns_per_source = l.max_conns_per_source;
    config.max_memory = l.max_memory;
    config.mptcp.max_subflows = l.max_subflows;
    config.mptcp.max_add_addr_accepted = l.max_add_addr_accepted;
    config.syn_cookies = args.syn_cookies;
    config.shard = Shard {
        index: index as u16,
        count: count as u16,
    };
    Ok(config)
}

/// The limits a reload may change, for one shard among `count`: the memory
/// budget is shared out evenly; the connection limits hold for all shards
/// together (`SharedCounts`).
pub fn limits_for(args: &RunArgs, count: usize) -> RuntimeLimits {
    let share = |n: usize| n.div_ceil(count.max(1)).max(1);
    RuntimeLimits {
        max_connections: args.max_connections as usize,
        max_conns_per_source: args.max_conns_per_source as usize,
        max_memory: share(match args.max_memory {
            MemorySize::Bytes(n) => usize::try_from(n).unwrap_or(usize::MAX),
            MemorySize::Auto => auto_memory_budget(),
        }),
        max_subflows: args.max_subflows as usize,
        max_add_addr_accepted: args.max_add_addr_accepted as usize,
    }
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

/// The services that listen on the stack, started on one shard (in the
/// runtime current at the call: their tasks run there).
fn start_stack_services(
    args: &RunArgs,
    handle: &Handle,
    timeouts: RelayTimeouts,
    relays: &Arc<crate::relays::Relays>,
) -> Result<Vec<Arc<ServiceStats>>, RunError> {
    let mut services = Vec::new();
    for &port in &args.echo {
        services.push(services::echo(handle, port).map_err(|e| err(format!("--echo {port}"), e))?);
    }
    for &port in &args.sink {
        services.push(
            services::sink(handle, port, args.sink_sha256)
                .map_err(|e| err(format!("--sink {port}"), e))?,
        );
    }
    for &port in &args.chargen {
        services.push(
            crate::chargen::chargen(handle, port)
                .map_err(|e| err(format!("--chargen {port}"), e))?,
        );
    }
    for f in &args.forward {
        services.push(
            services::forward(
                handle,
                f.port,
                f.host.clone(),
                f.host_port,
                timeouts,
                relays,
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
            crate::socks5::service::socks5(handle, port, access, timeouts, relays)
                .map_err(|e| err(format!("--socks5 {port}"), e))?,
        );
    }
    if let (Some(route), true) = (gateway_route(args)?, args.transparent) {
        services.push(
            crate::gateway::transparent(handle, route, timeouts, relays)
                .map_err(|e| err("--transparent", e))?,
        );
    }
    Ok(services)
}

/// `--upstream` and its options, if given.
fn gateway_route(args: &RunArgs) -> Result<Option<crate::gateway::Route>, RunError> {
    let Some(upstream) = &args.upstream else {
        return Ok(None);
    };
    let creds = match &args.upstream_credentials {
        Some(path) => Some(
            crate::gateway::load_credentials(path)
                .map_err(|e| err("--upstream-credentials", std::io::Error::other(e)))?,
        ),
        None => None,
    };
    Ok(Some(crate::gateway::Route {
        upstream: upstream.clone(),
        creds,
        scheduler: args.upstream_scheduler,
    }))
}

/// The services on host sockets: one listener, whose connections go out
/// through the shards in turn.
async fn start_host_services(
    args: &RunArgs,
    shards: &Arc<Mesh>,
    timeouts: RelayTimeouts,
    relays: &Arc<crate::relays::Relays>,
) -> Result<Vec<Arc<ServiceStats>>, RunError> {
    let mut services = Vec::new();
    if let (Some(route), Some(listen)) = (gateway_route(args)?, args.socks5_listen) {
        let allow = args.socks5_listen_allow.clone();
        services.push(
            crate::socks5::local::socks5_listen(shards, listen, allow, route, timeouts, relays)
                .await
                .map_err(|e| err(format!("--socks5-listen {listen}"), e))?,
        );
    }
    for f in &args.local_forward {
        services.push(
            services::local_forward(shards, f.listen, f.remote, timeouts, relays)
                .await
                .map_err(|e| err(format!("--local-forward {f}"), e))?,
        );
    }
    Ok(services)
}

/// How one shard's driver ended: the driver (its TUN queue in it), and why.
type ShardEnd = Result<(Driver, Result<(), DriverError>), String>;

/// Run a shard's driver until `stop`, then close its connections gracefully
/// (no new ones, FIN on the rest, at most [`SHUTDOWN_GRACE`]). The driver
/// runs in a task of its own, so that its panic is an error we see
/// (`JoinError`: the message), not an unwinding through here.
async fn run_shard(mut driver: Driver, handle: Handle, stop: watch::Receiver<bool>) -> ShardEnd {
    let (d, r) = tokio::spawn(async move {
        let r = driver.run(stop).await;
        (driver, r)
    })
    .await
    .map_err(join_message)?;
    driver = d;
    let mut result = r;
    if result.is_ok() && handle.is_poisoned() {
        // Stopped (signal) at the same time as a task panicked with the engine.
        result = Err(DriverError::Internal(crate::panics::last().unwrap_or_else(
            || "a task panicked while holding the engine".to_string(),
        )));
    }
    if result.is_err() {
        return Ok((driver, result));
    }
    {
        let mut s = handle.lock();
        s.stop_accepting();
        for id in s.stack.connections() {
            let _ = s.stack.shutdown(id);
        }
    }
    handle.kick();
    tokio::spawn(async move {
        let r = driver.drain(SHUTDOWN_GRACE).await;
        (driver, r)
    })
    .await
    .map_err(join_message)
}

fn join_message(e: tokio::task::JoinError) -> String {
    if e.is_panic() {
        crate::panics::message(e.into_panic())
    } else {
        "the driver task was cancelled".to_string()
    }
}

pub async fn run(args: RunArgs, source: ReloadSource) -> Result<(), RunError> {
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
    let mut count = args.threads();
    if count > 1 && crate::tun::existing_multi_queue(&args.tun) == Some(false) {
        // A persistent device made with one queue cannot take more.
        if args.threads.is_some() {
            return Err(RunError(format!(
                "--threads {count}: the persistent TUN device {} has a single queue (create it with `ip tuntap add {} mode tun multi_queue`)",
                args.tun, args.tun
            )));
        }
        info!(tun = %args.tun, "the persistent TUN device has a single queue: one engine thread");
        count = 1;
    }
    let mut stacks = Vec::with_capacity(count);
    let counts = Arc::new(SharedCounts::new());
    for index in 0..count {
        let config = stack_config(&args, seed, index, count)?;
        let mut stack = Stack::sharing(config, counts.clone());
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
        stacks.push(stack);
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

    // The metrics listener too: a port in use stops us before the network changes.
    let metrics_listener = match args.metrics {
        Some(addr) => Some(
            crate::metrics_http::bind(addr)
                .await
                .map_err(|e| err(format!("--metrics {addr}"), e))?,
        ),
        None => None,
    };

    let mut tun = Tun::create(&TunConfig {
        name: args.tun.clone(),
        mtu: args.mtu,
        txqueuelen: args.txqueuelen,
        routes: args.addrs.iter().map(|a| a.addr).collect(),
        add_routes: !args.no_routes,
        offload: !args.no_offload,
        queues: count,
    })
    .map_err(|e| RunError(e.to_string()))?;
    info!(tun = %tun.name(), mtu = tun.mtu(), offload = tun.offload(), threads = count, "TUN device up");
    let queues = tun.take_queues();

    let pcap: Option<Pcap> = match &args.pcap {
        Some(path) => Some(Arc::new(std::sync::Mutex::new(
            PcapWriter::create(path).map_err(|e| err(format!("--pcap {}", path.display()), e))?,
        ))),
        None => None,
    };

    let mut specs = Vec::new();
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
        specs.push((imp.addr, spec.params, link_seed));
    }
    // Each shard's links draw from seeds of their own.
    let impairments = |shard: usize| -> Vec<Impairment> {
        specs
            .iter()
            .map(|(addr, params, seed)| {
                Impairment::new(
                    *addr,
                    params.clone(),
                    seed.wrapping_add((shard as u64) << 32),
                )
            })
            .collect()
    };

    // Every shard publishes its path events to one channel (`mptun monitor`).
    let events = crate::monitor::channel();
    let handles: Vec<Handle> = stacks
        .into_iter()
        .enumerate()
        .map(|(shard, s)| {
            let mut shared = Shared::new(s);
            shared.publish_to(crate::monitor::Publisher {
                shard,
                tx: events.clone(),
            });
            Handle::new(shared)
        })
        .collect();
    let mesh = Mesh::new(handles, args.instance_id);
    // From here on a panic wakes the drivers, which stop the daemon if the
    // panicking task held an engine.
    let woken = mesh.clone();
    crate::panics::install(move || woken.kick_all());
    let timeouts = RelayTimeouts {
        connect: args.connect_timeout,
        idle: (!args.idle_timeout.is_zero()).then_some(args.idle_timeout),
    };
    let relays = crate::relays::Relays::new(args.max_relays as usize);

    // Shards 1.. run on threads of their own, each a single-threaded runtime
    // (as shard 0 on this one): a connection's tasks stay with its engine.
    let mut runtimes = Vec::new();
    for index in 1..count {
        runtimes.push(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| err(format!("runtime of thread {index}"), e))?,
        );
    }
    let mut services = start_stack_services(&args, mesh.handle(0), timeouts, &relays)?;
    for (i, rt) in runtimes.iter().enumerate() {
        let _in = rt.enter();
        services.extend(start_stack_services(
            &args,
            mesh.handle(i + 1),
            timeouts,
            &relays,
        )?);
    }
    services.extend(start_host_services(&args, &mesh, timeouts, &relays).await?);

    let runtime = Arc::new(Runtime {
        tun: args.tun.clone(),
        routes: !args.no_routes,
        shards: mesh.clone(),
        services,
        relays,
        reload: std::sync::Mutex::new(None),
    });
    let mut control_server = control_server;
    control_server.set_monitor(events);
    let control = crate::control_glue::serve(control_server, runtime.clone());
    let _metrics = metrics_listener.map(|listener| {
        if let Ok(addr) = listener.local_addr() {
            if !addr.ip().is_loopback() {
                warn!(%addr, "--metrics is not on loopback: the metrics name peers' addresses; firewall it");
            }
            info!(%addr, "metrics at http://{addr}/metrics");
        }
        let rt = runtime.clone();
        crate::metrics_http::serve(
            listener,
            Arc::new(move || crate::metrics::render(&crate::control_glue::snapshot(&rt))),
        )
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| err("signal handler", e))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| err("signal handler", e))?;
    // Before READY=1: SIGHUP's default action would end the daemon.
    let sighup = signal(SignalKind::hangup()).map_err(|e| err("signal handler", e))?;
    // systemd (`Type=notify`): nothing happens without NOTIFY_SOCKET.
    let notifier = Arc::new(crate::notify::Notifier::from_env());
    let watchdog = notifier.watchdog().map(|interval| {
        info!(?interval, "systemd watchdog on");
        tokio::spawn(crate::watchdog::run(
            mesh.clone(),
            notifier.clone(),
            interval,
        ))
    });
    let stopper = stop_tx.clone();
    let notify_stop = notifier.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = sigint.recv() => info!("SIGINT: shutting down"),
            _ = sigterm.recv() => info!("SIGTERM: shutting down"),
        }
        // Before the drain: systemd shows "deactivating" and stops expecting
        // pings while connections close.
        notify_stop.stopping("closing connections");
        if let Some(w) = watchdog {
            w.abort();
        }
        stopper.send_replace(true);
    });

    let router =
        |index: usize| (count > 1).then(|| Router::new(mesh.clone(), index, args.debug_misroute));
    let mut others = Vec::new();
    for (i, (rt, queue)) in runtimes.into_iter().zip(queues).enumerate() {
        let index = i + 1;
        let handle = mesh.handle(index).clone();
        let (pcap, imps, router, stop) = (
            pcap.clone(),
            impairments(index),
            router(index),
            stop_rx.clone(),
        );
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<(), DriverError>>();
        let stopper = stop_tx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("mptun-{index}"))
            .spawn(move || {
                let end = rt.block_on(async move {
                    let tun = queue
                        .attach()
                        .map_err(|e| format!("TUN queue {index}: {e}"))?;
                    let driver = Driver::new(handle.clone(), tun, pcap, imps, router);
                    run_shard(driver, handle, stop).await
                });
                let r = match end {
                    Ok((_driver, r)) => r,
                    Err(msg) => Err(DriverError::Internal(msg)),
                };
                if r.is_err() {
                    // The others stop too.
                    stopper.send_replace(true);
                }
                let _ = done_tx.send(r);
                // Services' tasks of this shard are dropped with `rt` here.
            })
            .map_err(|e| err(format!("thread {index}"), e))?;
        others.push((thread, done_rx));
    }

    let addrs: Vec<String> = args.addrs.iter().map(|a| a.addr.to_string()).collect();
    info!(addresses = %addrs.join(","), "mptun running");
    // Every service listens and the control socket is served (clients that
    // came early wait in its backlog): ready.
    notifier.ready(&serving_status(&args, count));
    let reloader =
        crate::reload::Reloader::new(source.argv, args.clone(), count, source.log.clone());
    let _reloads = AbortOnDrop(tokio::spawn(crate::reload::serve(
        sighup,
        reloader,
        runtime.clone(),
        notifier.clone(),
        move |a| serving_status(a, count),
    )));
    let tun_name = args.tun.clone();
    let driver = Driver::new(mesh.handle(0).clone(), tun, pcap, impairments(0), router(0));
    let (mut driver, mut result) = match run_shard(driver, mesh.handle(0).clone(), stop_rx).await {
        Ok(done) => done,
        Err(msg) => return Err(fatal(control, msg)),
    };
    if result.is_err() {
        stop_tx.send_replace(true);
    }
    for (thread, done) in others {
        let r = done.await.unwrap_or_else(|_| {
            Err(DriverError::Internal(crate::panics::last().unwrap_or_else(
                || "a thread of the daemon ended unexpectedly".to_string(),
            )))
        });
        let _ = thread.join();
        result = match (result, r) {
            (Err(e @ DriverError::Internal(_)), _) | (_, Err(e @ DriverError::Internal(_))) => {
                Err(e)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        };
    }
    if let Err(DriverError::Internal(msg)) = &result {
        return Err(fatal(control, msg.clone()));
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

/// systemd's STATUS line while serving.
fn serving_status(args: &RunArgs, count: usize) -> String {
    let addrs: Vec<String> = args.addrs.iter().map(|a| a.addr.to_string()).collect();
    format!(
        "serving {} on {} ({count} engine thread{})",
        addrs.join(","),
        args.tun,
        if count == 1 { "" } else { "s" }
    )
}

/// Ends a task when the daemon stops (a reload must not run during the
/// shutdown).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A driver panicked, or a task did while holding an engine: remove the
/// control socket and report (the device goes with `main`'s exit, or went
/// with the panicking driver's `Drop`).
fn fatal(control: crate::control_glue::ControlTask, msg: String) -> RunError {
    drop(control);
    error!("internal error: {msg}: stopping");
    RunError(format!("{INTERNAL}{msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        let cli =
            Cli::try_parse_from(["mptun", "run", "--addr", "10.0.0.1"].iter().chain(args)).unwrap();
        let Command::Run(a) = cli.command else {
            unreachable!()
        };
        stack_config(&a, Seed::from_u64(1), 0, 1).unwrap()
    }

    #[test]
    fn the_buffer_ceilings_reach_the_engine() {
        let c = config(&[]);
        assert_eq!((c.tcp.send_buffer, c.tcp.recv_buffer), (4 << 20, 8 << 20));
        // The command line's defaults are the engine's own.
        let d = mptun_stack::TcpConfig::default();
        assert_eq!(
            (c.tcp.send_buffer, c.tcp.recv_buffer),
            (d.send_buffer, d.recv_buffer)
        );
        let c = config(&["--send-buffer", "32M", "--recv-buffer", "1G"]);
        assert_eq!((c.tcp.send_buffer, c.tcp.recv_buffer), (32 << 20, 1 << 30));
    }
}
