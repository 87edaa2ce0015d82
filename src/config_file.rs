//! The configuration file of `mptun run --config FILE` (TOML): its schema, and
//! the way back from a [`RunArgs`] to a file (`mptun check-config`).
//!
//! The file says what the command line says, in tables an operator can read
//! (`[tun]`, `[[address]]`, `[services]`, ...). It is not a second parser of
//! values: every setting names the `mptun run` argument it stands for
//! ([`Setting`]), and `config_merge` hands its values to that argument's own
//! clap parser, so a file and a command line accept exactly the same values.
//! Only TOML types are checked here (a port is an integer, a flag a boolean);
//! every leaf keeps its span so that an error can name its line.

use crate::cli::{MemorySize, RunArgs};
use mptun_stack::{CcAlgorithm, SchedulerKind, SynCookies};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

type S<T> = Spanned<T>;

/// The whole file. Every table is optional; what it leaves out keeps the
/// command line's default.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tun: Option<Tun>,
    #[serde(default, rename = "address", skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<S<Address>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services: Option<Services>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socks5: Option<Socks5>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Gateway>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Tcp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mptcp: Option<Mptcp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<Control>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<Debug>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<Log>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tun {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<S<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txqueuelen: Option<S<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offload: Option<S<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<S<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<S<i64>>,
}

/// One `[[address]]`: `--addr IP[,signal][,subflow][,backup]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Address {
    pub ip: S<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub signal: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub subflow: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub backup: bool,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Services {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub echo: Vec<S<i64>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sink: Vec<S<i64>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chargen: Vec<S<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink_sha256: Option<S<bool>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward: Vec<S<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_forward: Vec<S<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Socks5 {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<S<i64>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Gateway {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transparent: Option<S<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_scheduler: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_credentials: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socks5_listen: Option<S<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub socks5_listen_allow: Vec<S<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tcp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cc: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syn_cookies: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_buffer: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recv_buffer: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Mptcp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<S<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v0_retry: Option<S<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<S<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_subflows: Option<S<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_add_addr_accepted: Option<S<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_join_initial_addr: Option<S<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<S<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_conns_per_source: Option<S<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_relays: Option<S<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Control {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Debug {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap: Option<S<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub impair: Vec<S<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<S<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub misroute: Option<S<bool>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Log {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<S<String>>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// Which `mptun run` argument (its clap id, the `RunArgs` field) each file
/// key stands for, and how to name the command-line form in messages.
/// `negated`: the file says `KEY = false` where the command line says
/// `--no-...`.
pub struct Key {
    pub id: &'static str,
    pub key: &'static str,
    pub negated: bool,
}

const fn key(id: &'static str, key: &'static str) -> Key {
    Key {
        id,
        key,
        negated: false,
    }
}

const fn negated(id: &'static str, key: &'static str) -> Key {
    Key {
        id,
        key,
        negated: true,
    }
}

/// Every argument of `mptun run` but `--config` has a key (a unit test holds
/// the two lists together).
pub const KEYS: &[Key] = &[
    key("tun", "tun.name"),
    key("mtu", "tun.mtu"),
    key("txqueuelen", "tun.txqueuelen"),
    negated("no_offload", "tun.offload"),
    negated("no_routes", "tun.routes"),
    key("threads", "tun.threads"),
    key("addrs", "address"),
    key("echo", "services.echo"),
    key("sink", "services.sink"),
    key("sink_sha256", "services.sink-sha256"),
    key("chargen", "services.chargen"),
    key("forward", "services.forward"),
    key("local_forward", "services.local-forward"),
    key("socks5", "socks5.port"),
    key("socks5_allow", "socks5.allow"),
    key("socks5_users", "socks5.users"),
    key("transparent", "gateway.transparent"),
    key("upstream", "gateway.upstream"),
    key("upstream_scheduler", "gateway.upstream-scheduler"),
    key("upstream_credentials", "gateway.upstream-credentials"),
    key("socks5_listen", "gateway.socks5-listen"),
    key("socks5_listen_allow", "gateway.socks5-listen-allow"),
    key("cc", "tcp.cc"),
    key("syn_cookies", "tcp.syn-cookies"),
    key("send_buffer", "tcp.send-buffer"),
    key("recv_buffer", "tcp.recv-buffer"),
    negated("no_mptcp", "mptcp.enabled"),
    key("mptcp_version", "mptcp.version"),
    negated("no_v0_retry", "mptcp.v0-retry"),
    key("checksum", "mptcp.checksum"),
    key("scheduler", "mptcp.scheduler"),
    key("max_subflows", "mptcp.max-subflows"),
    key("max_add_addr_accepted", "mptcp.max-add-addr-accepted"),
    key("deny_join_initial_addr", "mptcp.deny-join-initial-addr"),
    key("instance_id", "mptcp.instance-id"),
    key("max_memory", "limits.max-memory"),
    key("max_connections", "limits.max-connections"),
    key("max_conns_per_source", "limits.max-conns-per-source"),
    key("max_relays", "limits.max-relays"),
    key("connect_timeout", "limits.connect-timeout"),
    key("idle_timeout", "limits.idle-timeout"),
    key("control", "control.socket"),
    key("control_group", "control.group"),
    key("metrics", "control.metrics"),
    key("pcap", "debug.pcap"),
    key("impair", "debug.impair"),
    key("seed", "debug.seed"),
    key("debug_misroute", "debug.misroute"),
    key("log_level", "log.level"),
];

/// The file key of an argument id.
pub fn key_of(id: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.id == id)
}

/// What the file says for one argument: its values as command-line text,
/// each with the span of the TOML value it came from. A flag (`--checksum`,
/// `--no-offload`) that the file turns on has no value, only `span`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub id: &'static str,
    pub values: Vec<(String, Range<usize>)>,
    pub span: Range<usize>,
}

impl FileConfig {
    /// The file's settings, in the order of [`KEYS`]. Flags left at their
    /// default (`checksum = false`, `offload = true`) say nothing.
    pub fn settings(&self) -> Result<Vec<Setting>, (String, Range<usize>)> {
        let mut out = Vec::new();
        let mut one = |id, values: Vec<(String, Range<usize>)>, span: Range<usize>| {
            out.push(Setting { id, values, span })
        };
        let str_ = |v: &S<String>| (v.get_ref().clone(), v.span());
        let int = |v: &S<i64>| (v.get_ref().to_string(), v.span());
        macro_rules! scalar {
            ($id:expr, $v:expr, $conv:expr) => {
                if let Some(v) = $v {
                    let (text, span) = $conv(v);
                    one($id, vec![(text, span.clone())], span);
                }
            };
        }
        macro_rules! flag {
            ($id:expr, $v:expr, $when:expr) => {
                if let Some(v) = $v {
                    if *v.get_ref() == $when {
                        one($id, Vec::new(), v.span());
                    }
                }
            };
        }
        if let Some(t) = &self.tun {
            scalar!("tun", &t.name, str_);
            scalar!("mtu", &t.mtu, int);
            scalar!("txqueuelen", &t.txqueuelen, int);
            flag!("no_offload", &t.offload, false);
            flag!("no_routes", &t.routes, false);
            scalar!("threads", &t.threads, int);
        }
        if let Some(s) = &self.services {
            flag!("sink_sha256", &s.sink_sha256, true);
        }
        if let Some(s) = &self.socks5 {
            scalar!("socks5", &s.port, int);
            scalar!("socks5_users", &s.users, str_);
        }
        if let Some(g) = &self.gateway {
            flag!("transparent", &g.transparent, true);
            scalar!("upstream", &g.upstream, str_);
            scalar!("upstream_scheduler", &g.upstream_scheduler, str_);
            scalar!("upstream_credentials", &g.upstream_credentials, str_);
            scalar!("socks5_listen", &g.socks5_listen, str_);
        }
        if let Some(t) = &self.tcp {
            scalar!("cc", &t.cc, str_);
            scalar!("syn_cookies", &t.syn_cookies, str_);
            scalar!("send_buffer", &t.send_buffer, str_);
            scalar!("recv_buffer", &t.recv_buffer, str_);
        }
        if let Some(m) = &self.mptcp {
            flag!("no_mptcp", &m.enabled, false);
            scalar!("mptcp_version", &m.version, str_);
            flag!("no_v0_retry", &m.v0_retry, false);
            flag!("checksum", &m.checksum, true);
            scalar!("scheduler", &m.scheduler, str_);
            scalar!("max_subflows", &m.max_subflows, int);
            scalar!("max_add_addr_accepted", &m.max_add_addr_accepted, int);
            flag!("deny_join_initial_addr", &m.deny_join_initial_addr, true);
            scalar!("instance_id", &m.instance_id, str_);
        }
        if let Some(l) = &self.limits {
            scalar!("max_memory", &l.max_memory, str_);
            scalar!("max_connections", &l.max_connections, int);
            scalar!("max_conns_per_source", &l.max_conns_per_source, int);
            scalar!("max_relays", &l.max_relays, int);
            scalar!("connect_timeout", &l.connect_timeout, str_);
            scalar!("idle_timeout", &l.idle_timeout, str_);
        }
        if let Some(c) = &self.control {
            scalar!("control", &c.socket, str_);
            scalar!("control_group", &c.group, str_);
            scalar!("metrics", &c.metrics, str_);
        }
        if let Some(d) = &self.debug {
            scalar!("pcap", &d.pcap, str_);
            scalar!("seed", &d.seed, |v: &S<u64>| (
                v.get_ref().to_string(),
                v.span()
            ));
            flag!("debug_misroute", &d.misroute, true);
        }
        if let Some(l) = &self.log {
            scalar!("log_level", &l.level, str_);
        }

        let mut list = |id, values: Vec<(String, Range<usize>)>| {
            if let Some(first) = values.first() {
                let span = first.1.clone();
                out.push(Setting { id, values, span });
            }
        };
        let strs = |v: &[S<String>]| v.iter().map(str_).collect::<Vec<_>>();
        let ints = |v: &[S<i64>]| v.iter().map(int).collect::<Vec<_>>();
        let mut addrs = Vec::new();
        for a in &self.addresses {
            let a = a.get_ref();
            // The command line's `IP,FLAG...` text, so that the address is
            // read by --addr's own parser; an error points at `ip`.
            let mut text = a.ip.get_ref().clone();
            for (set, name) in [
                (a.signal, "signal"),
                (a.subflow, "subflow"),
                (a.backup, "backup"),
            ] {
                if set {
                    text.push(',');
                    text.push_str(name);
                }
            }
            if a.ip.get_ref().contains(',') {
                return Err((
                    "write the flags as `signal = true` etc., not in the address".into(),
                    a.ip.span(),
                ));
            }
            addrs.push((text, a.ip.span()));
        }
        list("addrs", addrs);
        if let Some(s) = &self.services {
            list("echo", ints(&s.echo));
            list("sink", ints(&s.sink));
            list("chargen", ints(&s.chargen));
            list("forward", strs(&s.forward));
            list("local_forward", strs(&s.local_forward));
        }
        if let Some(s) = &self.socks5 {
            list("socks5_allow", strs(&s.allow));
        }
        if let Some(g) = &self.gateway {
            list("socks5_listen_allow", strs(&g.socks5_listen_allow));
        }
        if let Some(d) = &self.debug {
            list("impair", strs(&d.impair));
        }
        Ok(out)
    }

    /// The file that says what `args` says, every setting written out
    /// (defaults too, so that `check-config` shows what will run).
    pub fn from_run_args(args: &RunArgs) -> Result<Self, String> {
        let s = |v: String| Spanned::new(0..0, v);
        let n = |v: u64| Spanned::new(0..0, v as i64);
        let b = |v: bool| Some(Spanned::new(0..0, v));
        let path = |p: &Path| {
            p.to_str()
                .map(|t| Spanned::new(0..0, t.to_owned()))
                .ok_or_else(|| format!("{} is not UTF-8, which TOML cannot hold", p.display()))
        };
        let opt_path = |p: &Option<std::path::PathBuf>| p.as_deref().map(path).transpose();
        let list = |v: Vec<String>| v.into_iter().map(s).collect::<Vec<_>>();
        Ok(FileConfig {
            tun: Some(Tun {
                name: Some(s(args.tun.clone())),
                mtu: Some(n(args.mtu.into())),
                txqueuelen: Some(n(args.txqueuelen.into())),
                offload: b(!args.no_offload),
                routes: b(!args.no_routes),
                threads: args.threads.map(|t| n(t.into())),
            }),
            addresses: args
                .addrs
                .iter()
                .map(|a| {
                    Spanned::new(
                        0..0,
                        Address {
                            ip: s(a.addr.to_string()),
                            signal: a.signal,
                            subflow: a.subflow,
                            backup: a.backup,
                        },
                    )
                })
                .collect(),
            services: Some(Services {
                echo: args.echo.iter().map(|&p| n(p.into())).collect(),
                sink: args.sink.iter().map(|&p| n(p.into())).collect(),
                sink_sha256: b(args.sink_sha256),
                chargen: args.chargen.iter().map(|&p| n(p.into())).collect(),
                forward: list(args.forward.iter().map(ToString::to_string).collect()),
                local_forward: list(args.local_forward.iter().map(ToString::to_string).collect()),
            }),
            // A table with nothing to say is left out.
            socks5: Some(Socks5 {
                port: args.socks5.map(|p| n(p.into())),
                allow: list(args.socks5_allow.iter().map(ToString::to_string).collect()),
                users: opt_path(&args.socks5_users)?,
            })
            .filter(|s| s.port.is_some() || !s.allow.is_empty() || s.users.is_some()),
            gateway: Some(Gateway {
                transparent: b(args.transparent),
                upstream: args.upstream.as_ref().map(|u| s(u.to_string())),
                upstream_scheduler: args.upstream_scheduler.map(|k| s(scheduler_name(k).into())),
                upstream_credentials: opt_path(&args.upstream_credentials)?,
                socks5_listen: args.socks5_listen.map(|a| s(a.to_string())),
                socks5_listen_allow: list(
                    args.socks5_listen_allow
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                ),
            }),
            tcp: Some(Tcp {
                cc: Some(s(cc_name(args.cc).into())),
                syn_cookies: Some(s(syn_cookies_name(args.syn_cookies).into())),
                send_buffer: Some(s(size_text(args.send_buffer))),
                recv_buffer: Some(s(size_text(args.recv_buffer))),
            }),
            mptcp: Some(Mptcp {
                enabled: b(!args.no_mptcp),
                version: Some(s(args.mptcp_version.to_string())),
                v0_retry: b(!args.no_v0_retry),
                checksum: b(args.checksum),
                scheduler: Some(s(scheduler_name(args.scheduler).into())),
                max_subflows: Some(n(args.max_subflows.into())),
                max_add_addr_accepted: Some(n(args.max_add_addr_accepted.into())),
                deny_join_initial_addr: b(args.deny_join_initial_addr),
                instance_id: args
                    .instance_id
                    .map(|p| s(format!("{}/{}", p.id(), p.bits()))),
            }),
            limits: Some(Limits {
                max_memory: Some(s(memory_text(args.max_memory))),
                max_connections: Some(n(args.max_connections.into())),
                max_conns_per_source: Some(n(args.max_conns_per_source.into())),
                max_relays: Some(n(args.max_relays.into())),
                connect_timeout: Some(s(duration_text(args.connect_timeout))),
                idle_timeout: Some(s(duration_text(args.idle_timeout))),
            }),
            control: Some(Control {
                socket: opt_path(&args.control)?,
                group: args.control_group.clone().map(s),
                metrics: args.metrics.map(|a| s(a.to_string())),
            })
            .filter(|c| c.socket.is_some() || c.group.is_some() || c.metrics.is_some()),
            debug: Some(Debug {
                pcap: opt_path(&args.pcap)?,
                impair: list(args.impair.iter().map(ToString::to_string).collect()),
                seed: args.seed.map(|v| Spanned::new(0..0, v)),
                misroute: args.debug_misroute.then(|| Spanned::new(0..0, true)),
            })
            .filter(|d| {
                d.pcap.is_some() || !d.impair.is_empty() || d.seed.is_some() || d.misroute.is_some()
            }),
            log: args.log_level.as_ref().map(|l| Log {
                level: Some(s(l.clone())),
            }),
        })
    }
}

fn scheduler_name(k: SchedulerKind) -> &'static str {
    match k {
        SchedulerKind::MinRtt => "minrtt",
        SchedulerKind::RoundRobin => "roundrobin",
        SchedulerKind::Redundant => "redundant",
        SchedulerKind::Overflow => "overflow",
    }
}

fn cc_name(c: CcAlgorithm) -> &'static str {
    match c {
        CcAlgorithm::NewReno => "newreno",
        CcAlgorithm::Cubic => "cubic",
        CcAlgorithm::Lia => "lia",
        CcAlgorithm::Olia => "olia",
    }
}

fn syn_cookies_name(c: SynCookies) -> &'static str {
    match c {
        SynCookies::Off => "off",
        SynCookies::OnOverflow => "on-overflow",
        SynCookies::Always => "always",
    }
}

/// `--max-memory`'s syntax, in the largest unit that is exact.
fn memory_text(m: MemorySize) -> String {
    match m {
        MemorySize::Auto => "auto".into(),
        MemorySize::Bytes(b) => size_text(b),
    }
}

/// A size in the largest unit that is exact (`4M`, `640K`, `1000`).
fn size_text(b: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if b.is_multiple_of(1 << shift) {
            return format!("{}{unit}", b >> shift);
        }
    }
    b.to_string()
}

/// The duration syntax of the command line, in the largest unit that is
/// exact (to the millisecond).
fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, name) in [(3_600_000, "h"), (60_000, "m"), (1000, "s")] {
        if ms.is_multiple_of(unit) && ms > 0 {
            return format!("{}{name}", ms / unit);
        }
    }
    format!("{ms}ms")
}
