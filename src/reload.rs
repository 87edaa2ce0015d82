//! Reload on SIGHUP: read the `--config` file again, merged with the
//! original command line exactly as at start (the command line still wins),
//! and apply what differs from the running configuration where that can be
//! done without dropping a connection: the addresses and their flags, the
//! limits, the log filter. Whatever else differs is logged, one warning per
//! key, as needing a restart, and stays as it runs (so the next reload says
//! it again). A file that cannot be read or parsed changes nothing.
//!
//! [`plan`] is the pure part (old and new arguments in, actions and the keys
//! left alone out); [`Reloader`] reads, plans, applies and keeps the running
//! configuration; [`serve`] waits for the signal and tells systemd.

use crate::cli::{AddrSpec, Command, RunArgs};
use crate::config_file::{key_of, FileConfig, Setting};
use crate::config_merge::{parse_args, ArgsError};
use crate::daemon::Runtime;
use crate::logging::LogControl;
use crate::notify::Notifier;
use crate::status::ReloadStatus;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;
use tracing::{error, info, warn};

/// Arguments whose changes a reload applies; every other one needs a restart.
const LIVE: &[&str] = &[
    "addrs",
    "max_connections",
    "max_conns_per_source",
    "max_memory",
    "max_subflows",
    "max_add_addr_accepted",
    "max_relays",
    "log_level",
];

/// Of [`LIVE`], the limits the engines keep (`Stack::set_limits`).
const ENGINE_LIMITS: &[&str] = &[
    "max_connections",
    "max_conns_per_source",
    "max_memory",
    "max_subflows",
    "max_add_addr_accepted",
];

/// One change a reload makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A new address (like `mptun addr add`: route, ADD_ADDR if `signal`).
    AddAddress(AddrSpec),
    /// A known address with other flags (like `mptun addr set` for backup:
    /// MP_PRIO; `signal` and `subflow` count for connections established
    /// from now on, as Linux's endpoint flags do).
    ChangeFlags { from: AddrSpec, to: AddrSpec },
    /// An address gone (like `mptun addr del`: REMOVE_ADDR, its subflows
    /// closed).
    RemoveAddress(IpAddr),
    /// A limit (argument `id`), with its old and new values as the file
    /// writes them.
    Limit {
        id: &'static str,
        from: String,
        to: String,
    },
    /// The log filter (`None`: the default).
    LogLevel {
        from: Option<String>,
        to: Option<String>,
    },
}

impl Action {
    /// `KEY: what`, as the summary and `status` show it.
    pub fn describe(&self) -> String {
        match self {
            Action::AddAddress(s) => format!("address: added {s}"),
            Action::ChangeFlags { from, to } => {
                format!(
                    "address: {} flags {} -> {}",
                    to.addr,
                    flags(from),
                    flags(to)
                )
            }
            Action::RemoveAddress(ip) => format!("address: removed {ip}"),
            Action::Limit { id, from, to } => format!("{}: {from} -> {to}", file_key(id)),
            Action::LogLevel { from, to } => {
                let text = |l: &Option<String>| l.clone().unwrap_or_else(|| "(default)".into());
                format!("log.level: {} -> {}", text(from), text(to))
            }
        }
    }
}

fn flags(s: &AddrSpec) -> String {
    let on: Vec<&str> = [
        (s.signal, "signal"),
        (s.subflow, "subflow"),
        (s.backup, "backup"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if on.is_empty() {
        "none".into()
    } else {
        on.join(",")
    }
}

fn file_key(id: &str) -> &'static str {
    key_of(id).map_or("(unknown)", |k| k.key)
}

/// A changed setting a reload leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotApplied {
    /// The file's key (`tun.mtu`).
    pub key: &'static str,
    pub from: String,
    pub to: String,
    pub why: &'static str,
}

const RESTART: &str = "a restart is needed to apply it";
const RUST_LOG_WINS: &str = "RUST_LOG was set at start and wins";

/// What a reload does: the actions in the order they run (addresses added
/// before any is removed, so that the stack never runs out of addresses),
/// and the changes it leaves alone.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub not_applied: Vec<NotApplied>,
}

/// What going from `old` to `new` takes. `log_from_env`: RUST_LOG chose the
/// log filter at start, so a new `log.level` is not applied.
pub fn plan(old: &RunArgs, new: &RunArgs, log_from_env: bool) -> Plan {
    let mut p = Plan::default();
    let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    for a in &new.addrs {
        match old.addrs.iter().find(|o| o.addr == a.addr) {
            None => added.push(Action::AddAddress(*a)),
            Some(o) if o != a => changed.push(Action::ChangeFlags { from: *o, to: *a }),
            Some(_) => {}
        }
    }
    for o in &old.addrs {
        if !new.addrs.iter().any(|a| a.addr == o.addr) {
            removed.push(Action::RemoveAddress(o.addr));
        }
    }
    p.actions.extend(added);
    p.actions.extend(changed);
    p.actions.extend(removed);
    for (id, from, to) in changed_settings(old, new) {
        if id == "addrs" {
            continue;
        }
        let key = file_key(id);
        if id == "log_level" {
            if log_from_env {
                p.not_applied.push(NotApplied {
                    key,
                    from,
                    to,
                    why: RUST_LOG_WINS,
                });
            } else {
                p.actions.push(Action::LogLevel {
                    from: old.log_level.clone(),
                    to: new.log_level.clone(),
                });
            }
        } else if LIVE.contains(&id) {
            p.actions.push(Action::Limit { id, from, to });
        } else {
            p.not_applied.push(NotApplied {
                key,
                from,
                to,
                why: RESTART,
            });
        }
    }
    p
}

/// Each argument whose value differs, with both values as the file writes
/// them, in the order of the file's keys. The comparison goes through the
/// file's rendering of the arguments, so that every option, present and
/// future, is covered without a list kept here.
fn changed_settings(old: &RunArgs, new: &RunArgs) -> Vec<(&'static str, String, String)> {
    let (Some(a), Some(b)) = (settings_of(old), settings_of(new)) else {
        // Only a path that is not UTF-8 (from the command line, so the same
        // in both) fails to render: compare what is left whole.
        let mut rest = new.clone();
        adopt_live(&mut rest, old);
        return if rest == *old {
            live_changes(old, new)
        } else {
            // Named by an id that has no key: reported as "(unknown)", not applied.
            vec![("config", "-".into(), "(changed)".into())]
        };
    };
    let mut out = Vec::new();
    for k in crate::config_file::KEYS {
        let (x, y) = (a.get(k.id), b.get(k.id));
        if x != y {
            out.push((k.id, text(k.id, x), text(k.id, y)));
        }
    }
    out
}

/// The live settings of `old` and `new` that differ, when the file's
/// rendering is not available.
fn live_changes(old: &RunArgs, new: &RunArgs) -> Vec<(&'static str, String, String)> {
    let pairs = [
        (
            "max_connections",
            old.max_connections.to_string(),
            new.max_connections.to_string(),
        ),
        (
            "max_conns_per_source",
            old.max_conns_per_source.to_string(),
            new.max_conns_per_source.to_string(),
        ),
        (
            "max_memory",
            format!("{:?}", old.max_memory),
            format!("{:?}", new.max_memory),
        ),
        (
            "max_subflows",
            old.max_subflows.to_string(),
            new.max_subflows.to_string(),
        ),
        (
            "max_add_addr_accepted",
            old.max_add_addr_accepted.to_string(),
            new.max_add_addr_accepted.to_string(),
        ),
        (
            "max_relays",
            old.max_relays.to_string(),
            new.max_relays.to_string(),
        ),
        (
            "log_level",
            format!("{:?}", old.log_level),
            format!("{:?}", new.log_level),
        ),
    ];
    pairs.into_iter().filter(|(_, a, b)| a != b).collect()
}

/// Each argument's values as text (a switch: no values), by id.
fn settings_of(args: &RunArgs) -> Option<BTreeMap<&'static str, Vec<String>>> {
    let settings: Vec<Setting> = FileConfig::from_run_args(args).ok()?.settings().ok()?;
    Some(
        settings
            .into_iter()
            .map(|s| (s.id, s.values.into_iter().map(|(v, _)| v).collect()))
            .collect(),
    )
}

/// A setting's value for a message: its values, or for a switch what the
/// file would say (`true`/`false`).
fn text(id: &str, values: Option<&Vec<String>>) -> String {
    let negated = key_of(id).is_some_and(|k| k.negated);
    match values {
        None if is_switch(id) => (negated).to_string(),
        None => "(none)".into(),
        Some(v) if v.is_empty() => (!negated).to_string(),
        Some(v) => v.join(", "),
    }
}

fn is_switch(id: &str) -> bool {
    use clap::CommandFactory;
    let cmd = crate::cli::Cli::command();
    cmd.find_subcommand("run")
        .and_then(|run| run.get_arguments().find(|a| a.get_id() == id))
        .is_some_and(|a| !a.get_action().takes_values())
}

/// `running` takes `new`'s values of every live argument.
fn adopt_live(running: &mut RunArgs, new: &RunArgs) {
    running.addrs.clone_from(&new.addrs);
    running.max_connections = new.max_connections;
    running.max_conns_per_source = new.max_conns_per_source;
    running.max_memory = new.max_memory;
    running.max_subflows = new.max_subflows;
    running.max_add_addr_accepted = new.max_add_addr_accepted;
    running.max_relays = new.max_relays;
    running.log_level.clone_from(&new.log_level);
}

/// The command line of `mptun run ...` as started, parsed again (the file
/// read anew): the arguments, or the error as `mptun` would print it.
pub fn parse_again(argv: &[OsString]) -> Result<RunArgs, String> {
    match parse_args(argv.iter().cloned()) {
        Ok(cli) => match cli.command {
            Command::Run(run) => Ok(run),
            _ => Err("the command line is not `mptun run`".into()),
        },
        Err(ArgsError::Config(e)) => Err(e.to_string()),
        Err(ArgsError::Clap(e)) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            Err(first.strip_prefix("error: ").unwrap_or(first).to_owned())
        }
    }
}

/// The last reload, as kept for `status`.
#[derive(Debug, Clone)]
pub struct Record {
    pub at: SystemTime,
    pub error: Option<String>,
    pub applied: Vec<String>,
    pub not_applied: Vec<String>,
}

impl Record {
    fn failed(msg: String) -> Self {
        Record {
            at: SystemTime::now(),
            error: Some(msg),
            applied: Vec::new(),
            not_applied: Vec::new(),
        }
    }

    pub fn status(&self) -> ReloadStatus {
        ReloadStatus {
            unix_time_s: self
                .at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            age_s: self.at.elapsed().map_or(0.0, |d| d.as_secs_f64()),
            ok: self.error.is_none(),
            error: self.error.clone(),
            applied: self.applied.clone(),
            not_applied: self.not_applied.clone(),
        }
    }
}

impl Runtime {
    /// The last reload's result, for `status`.
    pub fn last_reload(&self) -> Option<ReloadStatus> {
        self.reload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Record::status)
    }
}

/// The daemon's command line and its configuration as it runs.
pub struct Reloader {
    argv: Vec<OsString>,
    config: Option<PathBuf>,
    /// What is in force: the start's arguments with every applied change.
    running: RunArgs,
    /// Engine threads (the memory budget is shared out among them).
    threads: usize,
    log: Option<Arc<LogControl>>,
}

impl Reloader {
    /// For a daemon started with `argv` (the whole command line, program
    /// name first), which became `running`.
    pub fn new(
        argv: Vec<OsString>,
        running: RunArgs,
        threads: usize,
        log: Option<Arc<LogControl>>,
    ) -> Self {
        Reloader {
            argv,
            config: running.config.clone(),
            running,
            threads,
            log,
        }
    }

    /// The configuration in force.
    pub fn running(&self) -> &RunArgs {
        &self.running
    }

    fn log_from_env(&self) -> bool {
        self.log.as_ref().is_some_and(|l| l.from_env())
    }

    /// Reads the file and plans the changes; nothing is applied yet, and an
    /// error leaves everything as it was.
    pub fn prepare(&self) -> Result<(RunArgs, Plan), String> {
        if self.config.is_none() {
            return Err("started without --config: there is no file to reload".into());
        }
        let new = parse_again(&self.argv)?;
        let plan = plan(&self.running, &new, self.log_from_env());
        Ok((new, plan))
    }

    /// Reads the file again and applies what changed to `rt`'s engines,
    /// relays and log; logs what it did and returns the record of it.
    pub fn reload(&mut self, rt: &Runtime) -> Record {
        let Some(path) = &self.config else {
            info!("SIGHUP: started without --config: nothing to reload");
            return Record::failed("started without --config: nothing to reload".into());
        };
        info!(file = %path.display(), "SIGHUP: reloading the configuration");
        let (new, plan) = match self.prepare() {
            Ok(p) => p,
            Err(e) => {
                error!("reload: {e}; the running configuration is kept");
                return Record::failed(e);
            }
        };
        for n in &plan.not_applied {
            warn!(
                "reload: {}: changed ({} -> {}) but not applied: {}",
                n.key, n.from, n.to, n.why
            );
        }
        let (applied, failed) = self.apply(rt, &plan, &new);
        let not_applied: Vec<String> = plan.not_applied.iter().map(|n| n.key.to_string()).collect();
        // Counts first: the items themselves hold commas and semicolons.
        let list = |v: &[String], sep: &str| {
            if v.is_empty() {
                "0".to_string()
            } else {
                format!("{} ({})", v.len(), v.join(sep))
            }
        };
        let summary = format!(
            "applied {}, not applied {}",
            list(&applied, "; "),
            list(&not_applied, ", ")
        );
        if failed.is_empty() {
            info!("reload done: {summary}");
        } else {
            error!("reload: failed: {}; {summary}", failed.join("; "));
        }
        Record {
            at: SystemTime::now(),
            error: (!failed.is_empty()).then(|| failed.join("; ")),
            applied,
            not_applied,
        }
    }

    /// Carries out `plan` (towards `new`), each action on every shard; the
    /// running configuration takes each change that succeeded. Returns what
    /// was applied and what failed.
    fn apply(&mut self, rt: &Runtime, plan: &Plan, new: &RunArgs) -> (Vec<String>, Vec<String>) {
        let (mut applied, mut failed) = (Vec::new(), Vec::new());
        let mut limits = false;
        for a in &plan.actions {
            let r = match a {
                Action::AddAddress(spec) | Action::ChangeFlags { to: spec, .. } => {
                    crate::control_glue::add_address(rt, spec).map(|()| {
                        match self.running.addrs.iter_mut().find(|o| o.addr == spec.addr) {
                            Some(o) => *o = *spec,
                            None => self.running.addrs.push(*spec),
                        }
                    })
                }
                Action::RemoveAddress(ip) => {
                    crate::control_glue::remove_address(rt, *ip).map(|()| {
                        self.running.addrs.retain(|o| o.addr != *ip);
                    })
                }
                Action::Limit { id, .. } => {
                    copy_limit(&mut self.running, new, id);
                    if ENGINE_LIMITS.contains(id) {
                        // Set once, below, all together.
                        limits = true;
                    } else {
                        rt.relays.set_limit(new.max_relays as usize);
                    }
                    Ok(())
                }
                Action::LogLevel { to, .. } => match &self.log {
                    Some(log) => log.set(to.as_deref()).map(|()| {
                        self.running.log_level.clone_from(to);
                    }),
                    None => Err("the log filter cannot be changed here".into()),
                },
            };
            match r {
                Ok(()) => {
                    info!("reload: {}", a.describe());
                    applied.push(a.describe());
                }
                Err(e) => failed.push(format!("{}: {e}", a.describe())),
            }
        }
        if limits {
            let l = crate::daemon::limits_for(&self.running, self.threads);
            for h in rt.shards.handles() {
                h.lock().stack.set_limits(l);
            }
            rt.shards.kick_all();
        }
        (applied, failed)
    }
}

fn copy_limit(running: &mut RunArgs, new: &RunArgs, id: &str) {
    match id {
        "max_connections" => running.max_connections = new.max_connections,
        "max_conns_per_source" => running.max_conns_per_source = new.max_conns_per_source,
        "max_memory" => running.max_memory = new.max_memory,
        "max_subflows" => running.max_subflows = new.max_subflows,
        "max_add_addr_accepted" => running.max_add_addr_accepted = new.max_add_addr_accepted,
        "max_relays" => running.max_relays = new.max_relays,
        _ => {}
    }
}

/// Waits for SIGHUP and reloads, telling systemd (`RELOADING=1`, then
/// `READY=1` with the status line `ready_status` makes) when it listens.
/// The handler must be installed before the daemon says it is ready: until
/// then SIGHUP's default action would end the process.
pub async fn serve(
    mut hup: tokio::signal::unix::Signal,
    mut reloader: Reloader,
    rt: Arc<Runtime>,
    notifier: Arc<Notifier>,
    ready_status: impl Fn(&RunArgs) -> String,
) {
    while hup.recv().await.is_some() {
        notifier.reloading("reloading the configuration");
        let record = reloader.reload(&rt);
        *rt.reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(record);
        notifier.ready(&ready_status(reloader.running()));
    }
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
