//! Connects the running daemon to the control socket (`status` answered from the
//! engine's state) and implements the `mptun status` client command.

use crate::cli::{AddrArgs, AddrOp, AddrSpec, CliError, MonitorArgs, Prio, StatusArgs};
use crate::control::{self, ControlServer, Request, Response, SocketAccess};
use crate::daemon::Runtime;
use crate::monitor::MonitorLine;
use crate::status::{
    connection_from_info, counters_from, paths_from, LimitsStatus, MemoryStatus, RelayStatus,
    RelaysStatus, ServiceStatus, ShardStatus, Status, UnusedPathStatus,
};
use crate::tun;
use mptun_stack::memory::Pressure;
use mptun_stack::EndpointFlags;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The control socket's serving task; dropping it stops serving and removes the
/// socket file.
pub struct ControlTask(tokio::task::JoinHandle<()>);

impl Drop for ControlTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds the control socket (see [`ControlServer::bind`]) and serves it.
pub async fn start(path: &Path, access: SocketAccess, rt: Arc<Runtime>) -> io::Result<ControlTask> {
    Ok(serve(ControlServer::bind(path, access).await?, rt))
}

/// Serves a bound control socket: `status` for everyone who can connect (MPTCP
/// keys for privileged callers only), address changes for privileged callers (the
/// server refuses the others).
pub fn serve(server: ControlServer, rt: Arc<Runtime>) -> ControlTask {
    let task = tokio::spawn(server.serve(move |caller, req| match req {
        Request::Status => {
            let mut status = snapshot(&rt);
            if !caller.privileged {
                status.redact_keys();
            }
            Response::status(status)
        }
        Request::AddrAdd { addr } => respond(addr_add(&rt, &addr)),
        Request::AddrDel { addr } => respond(addr_del(&rt, &addr)),
        Request::AddrSet { addr, backup } => respond(addr_set(&rt, &addr, backup)),
        // The server streams it itself (`ControlServer::set_monitor`).
        Request::Monitor => Response::error("monitor is not served here"),
    }));
    ControlTask(task)
}

fn respond(r: Result<(), String>) -> Response {
    match r {
        Ok(()) => Response::ok(),
        Err(e) => Response::error(e),
    }
}

fn parse_ip(addr: &str) -> Result<IpAddr, String> {
    addr.trim()
        .parse()
        .map_err(|_| format!("'{addr}' is not an IPv4 or IPv6 address"))
}

/// `addr add IP[,FLAG...]`: route it through the TUN, answer for it, and let the
/// path manager use it on existing connections (announce, open subflows).
fn addr_add(rt: &Runtime, spec: &str) -> Result<(), String> {
    let spec: AddrSpec = spec.parse().map_err(|e: CliError| e.to_string())?;
    let flags = flags_of(&spec);
    add_address(rt, &spec)?;
    tracing::info!(addr = %spec.addr, ?flags, "address added");
    Ok(())
}

fn flags_of(spec: &AddrSpec) -> EndpointFlags {
    EndpointFlags {
        signal: spec.signal,
        subflow: spec.subflow,
        backup: spec.backup,
    }
}

/// Answers for `spec`'s address with its flags on every shard (a known
/// address gets the new flags: MP_PRIO for a backup change, the others for
/// connections established from now on); a new one gets its host route
/// first. Shared by `addr add` and a reload.
pub(crate) fn add_address(rt: &Runtime, spec: &AddrSpec) -> Result<(), String> {
    let known = rt
        .shards
        .handle(0)
        .lock()
        .stack
        .endpoint(spec.addr)
        .is_some();
    if rt.routes && !known {
        tun::host_route(&rt.tun, spec.addr, true).map_err(|e| e.to_string())?;
    }
    let flags = flags_of(spec);
    for h in rt.shards.handles() {
        h.lock().stack.add_endpoint(spec.addr, flags);
    }
    rt.shards.kick_all();
    Ok(())
}

/// `addr del IP`: withdraw it (REMOVE_ADDR, its subflows reset) and its route.
fn addr_del(rt: &Runtime, addr: &str) -> Result<(), String> {
    let ip = parse_ip(addr)?;
    remove_address(rt, ip)?;
    tracing::info!(addr = %ip, "address removed");
    Ok(())
}

/// Withdraws `ip` on every shard (REMOVE_ADDR to MPTCP peers), then its
/// route; never the last address. Shared by `addr del` and a reload.
pub(crate) fn remove_address(rt: &Runtime, ip: IpAddr) -> Result<(), String> {
    {
        let s = rt.shards.handle(0).lock();
        if s.stack.endpoint(ip).is_none() {
            return Err(format!("{ip} is not one of the stack's addresses"));
        }
        if s.stack.addresses().len() == 1 {
            return Err(format!("{ip} is the stack's only address"));
        }
    }
    for h in rt.shards.handles() {
        h.lock().stack.remove_address(ip);
    }
    rt.shards.kick_all();
    if rt.routes {
        tun::host_route(&rt.tun, ip, false).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `addr set IP backup|nobackup`: MP_PRIO on the subflows using it.
fn addr_set(rt: &Runtime, addr: &str, backup: bool) -> Result<(), String> {
    let ip = parse_ip(addr)?;
    for h in rt.shards.handles() {
        h.lock()
            .stack
            .set_backup(ip, backup)
            .map_err(|_| format!("{ip} is not one of the stack's addresses"))?;
    }
    rt.shards.kick_all();
    tracing::info!(addr = %ip, backup, "address priority changed");
    Ok(())
}

/// `mptun addr ...`: ask a running daemon to change its addresses.
pub async fn addr(args: AddrArgs) -> Result<(), String> {
    let req = match &args.op {
        AddrOp::Add { spec } => Request::AddrAdd { addr: spec.clone() },
        AddrOp::Del { addr } => Request::AddrDel {
            addr: addr.to_string(),
        },
        AddrOp::Set { addr, prio } => Request::AddrSet {
            addr: addr.to_string(),
            backup: *prio == Prio::Backup,
        },
    };
    let resp = control::request(&args.control_path(), &req)
        .await
        .map_err(|e| e.to_string())?;
    if resp.ok {
        Ok(())
    } else {
        Err(resp.error.unwrap_or_else(|| "request failed".into()))
    }
}

/// The daemon's state as `mptun status` shows it.
pub fn snapshot(rt: &Runtime) -> Status {
    // Each engine is locked in turn, never two at once.
    let mut connections = Vec::new();
    let mut counters = std::collections::BTreeMap::new();
    let mut memory = MemoryStatus {
        used_bytes: 0,
        peak_bytes: 0,
        budget_bytes: 0,
        pressure: "none".to_string(),
        time_wait: 0,
    };
    let mut worst = Pressure::None;
    let mut shards = Vec::new();
    for (shard, h) in rt.shards.handles().enumerate() {
        let s = h.lock();
        let c = s.stack.counters();
        shards.push(ShardStatus {
            index: shard as u32,
            connections: s.stack.connection_count() as u64,
            connections_accepted: c.connections_accepted,
            connections_opened: c.connections_opened,
            packets_in: c.packets_in,
            packets_out: c.packets_out,
        });
        connections.extend(s.stack.connections().into_iter().filter_map(|id| {
            let info = s.stack.info(id)?;
            let mut c = connection_from_info(id, &info);
            c.shard = shard as u32;
            c.unused_paths = s
                .stack
                .unused_paths_of(id, &info)
                .iter()
                .map(UnusedPathStatus::from_engine)
                .collect();
            Some(c)
        }));
        for (k, v) in counters_from(&s.stack.counters()) {
            *counters.entry(k).or_insert(0) += v;
        }
        memory.used_bytes += s.stack.memory_used() as u64;
        memory.peak_bytes += s.stack.memory_peak() as u64;
        memory.budget_bytes += s.stack.config().max_memory as u64;
        memory.time_wait += s.stack.time_wait_records() as u64;
        worst = worst.max(s.stack.memory_pressure());
    }
    let limits = {
        let l = rt.shards.handle(0).lock().stack.limits();
        LimitsStatus {
            max_connections: l.max_connections as u64,
            max_conns_per_source: l.max_conns_per_source as u64,
            max_subflows: l.max_subflows as u64,
            max_add_addr_accepted: l.max_add_addr_accepted as u64,
        }
    };
    memory.pressure = match worst {
        Pressure::None => "none",
        Pressure::High => "high",
        Pressure::Exhausted => "exhausted",
    }
    .to_string();
    let (forwarded, dropped) = rt.shards.forwarded();
    counters.insert("shard_forwarded".to_string(), forwarded);
    counters.insert("shard_forward_dropped".to_string(), dropped);
    let (addresses, uptime_s) = {
        let s = rt.shards.handle(0).lock();
        (s.stack.addresses().to_vec(), s.uptime().as_secs_f64())
    };
    let relays = RelaysStatus {
        limit: rt.relays.limit() as u64,
        refused: rt.relays.refused(),
        active: rt
            .relays
            .snapshot()
            .iter()
            .map(|r| {
                let upstream = r.upstream();
                let upstream_subflows = upstream
                    .and_then(|u| connections.iter().find(|c| c.local == u))
                    .map_or(0, |c| {
                        c.subflows
                            .iter()
                            .filter(|s| s.state == "ESTABLISHED")
                            .count() as u64
                    });
                RelayStatus {
                    service: r.service.to_string(),
                    client: r.client,
                    target: r.target.clone(),
                    upstream,
                    upstream_subflows,
                    bytes_up: r.up.load(Ordering::Relaxed),
                    bytes_down: r.down.load(Ordering::Relaxed),
                    age_s: r.started.elapsed().as_secs_f64(),
                }
            })
            .collect(),
    };
    Status {
        tun: rt.tun.clone(),
        addresses,
        uptime_s,
        paths: paths_from(&connections),
        connections,
        services: services_status(&rt.services),
        relays,
        counters,
        keys_redacted: false,
        memory,
        shards,
        limits,
        reload: rt.last_reload(),
    }
}

/// One line per service: each thread runs its own copy of a stack service,
/// whose counters are added up; a sink's SHA-256 is the latest completed.
fn services_status(stats: &[Arc<crate::services::ServiceStats>]) -> Vec<ServiceStatus> {
    let mut out: Vec<(ServiceStatus, u64)> = Vec::new();
    for svc in stats {
        let sha = svc
            .last_sha256
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let seq = svc.last_sha256_seq.load(Ordering::Relaxed);
        let (connections, bytes) = (
            svc.connections.load(Ordering::Relaxed),
            svc.bytes.load(Ordering::Relaxed),
        );
        match out
            .iter_mut()
            .find(|(s, _)| s.kind == svc.kind && s.port == svc.port)
        {
            Some((s, latest)) => {
                s.connections += connections;
                s.bytes += bytes;
                if sha.is_some() && seq > *latest {
                    s.sha256 = sha;
                    *latest = seq;
                }
            }
            None => out.push((
                ServiceStatus {
                    kind: svc.kind.to_string(),
                    port: svc.port,
                    connections,
                    bytes,
                    sha256: sha,
                },
                seq,
            )),
        }
    }
    out.into_iter().map(|(s, _)| s).collect()
}

/// `mptun monitor`: print the daemon's path events until it stops (or
/// whoever reads our output goes away).
pub async fn monitor(args: MonitorArgs) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let r = control::monitor(&args.control_path(), |line| {
        let text = match &line {
            MonitorLine::Event(e) if !args.json => e.to_text(),
            MonitorLine::Lost { lost } if !args.json => {
                eprintln!("mptun: monitor: {lost} events lost (this reader fell behind)");
                return true;
            }
            l => serde_json::to_string(l).unwrap_or_default(),
        };
        // A closed pipe (`| head`) ends the monitor quietly.
        writeln!(out, "{text}").and_then(|()| out.flush()).is_ok()
    })
    .await;
    r.map_err(|e| e.to_string())
}

/// `mptun status`: ask a running daemon and print a table or JSON.
pub async fn status(args: StatusArgs) -> Result<(), String> {
    let status = control::fetch_status(&args.control_path())
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        let text = serde_json::to_string_pretty(&status).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", status.render_table());
    }
    Ok(())
}
