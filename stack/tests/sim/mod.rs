//! Deterministic network simulation harness for `mptun-stack`.
//!
//! # Model
//!
//! A [`World`] holds N hosts, each a [`Stack`] with its own addresses, and a list of
//! [`Path`]s. A path joins two hosts through one address pair (`a_addr` on host `a`,
//! `b_addr` on host `b`) and has one [`Link`] per direction (`a_to_b`, `b_to_a`); two
//! hosts may be joined by several paths (multipath: one address pair per path). A
//! packet leaving a host is routed by its (source, destination) addresses, parsed from
//! the raw IPv4/IPv6 header: first the path whose address pair matches exactly, else a
//! path from the sending host whose far address is the destination; anything else
//! (malformed, unknown destination) is dropped and counted in [`World::unroutable`].
//!
//! Links ([`net`], the engine crate's `mptun_stack::impair`, shared with the daemon's
//! `--impair`) model delay, jitter (reordering), random loss, duplication,
//! single-bit corruption, a rate-limited bottleneck with a bounded tail-drop queue,
//! and an `up` switch to kill a path. All randomness comes from a seeded SplitMix64
//! ([`rng::Rng`]); every link and every stack gets a seed derived from the world seed.
//!
//! Time is virtual ([`Instant`], microseconds). Each step of [`World::run_until`]:
//!
//! 1. delivers every packet due at `now` (`handle_packet`);
//! 2. calls `handle_timeout(now)` on every stack whose `poll_timeout()` is `<= now`
//!    (a timeout in the past counts as due now);
//! 3. hands every stack event to that host's [`App`], then calls [`App::poll`] (apps
//!    send and receive data there);
//! 4. drains `poll_transmit` of every stack into the links;
//! 5. advances `now` to the earliest of: next packet delivery, every stack's
//!    `poll_timeout`, every app's `next_wakeup`.
//!
//! The run fails with a [`SimError`] (which names the seed) if an app reports an error,
//! if nothing is scheduled while the goal is not reached (deadlock), if time stops
//! advancing for [`World::stall_limit`] steps (livelock), or if virtual time passes
//! [`World::time_limit`] (default 30 min).
//!
//! # Replaying a seed
//!
//! Everything derives from the seed, so a failing seed replays bit for bit:
//!
//! ```text
//! SIM_SEED=17 cargo test -p mptun-stack --test tcp_sim bidirectional_transfer_200_seeds -- --nocapture
//! SIM_SEEDS=1000 cargo test -p mptun-stack --test tcp_sim bidirectional   # more seeds
//! SIM_MAX_FAILURES=1000 SIM_SEEDS=1000 ...   # MPTCP sims: list every failing seed, not 5
//! SIM_SACK_SEEDS=50 cargo test -p mptun-stack --test tcp_sim sack -- --nocapture
//! SIM_TRACE=1 SIM_SEED=17 cargo test ...   # print every packet and event
//! cargo test -p mptun-stack --test tcp_sim -- link scenario   # harness self-tests
//! ```
//!
//! A failing seed's message names the seed, its conditions
//! ([`Scenario::describe`]) and the replay command. With `SIM_SEED` a passing run
//! prints its figures (completion time, retransmissions, per-link counters).
//!
//! A transfer is finished when both apps have released their handle, `state(id)` is
//! `None` on both stacks (TIME_WAIT over: `sim_config` sets MSL to 1 s) and no stack
//! has a connection or a pending timer ([`World::idle`]).
//!
//! Tunables: `MAX_TRANSFER_BYTES`, `DEFAULT_SEEDS`, `SACK_CMP_*` in `tcp_sim.rs`;
//! the condition mix in [`Scenario::random`]; [`World::time_limit`],
//! [`World::stall_limit`] and [`World::burst_limit`] per world.
//!
//! # Using it from another test file
//!
//! ```ignore
//! mod sim;
//! use sim::*;
//! // Two hosts joined by two paths (10.0.0.1<->10.0.0.2 and 10.1.0.1<->10.1.0.2):
//! let mut w = World::pair(seed, sim_config(1), sim_config(2), false,
//!                         &[(p.clone(), p.clone()), (p.clone(), p)]);
//! // or step by step: World::new, add_host, add_path (or add_path_only).
//! w.stack_mut(1).listen(80).unwrap();
//! // ... apps implementing `App` (e.g. `Transfer`), one per host, then
//! w.run_until_done(&mut [&mut app_a, &mut app_b])?;
//! w.set_path_up(1, false); // kill the second path (in-flight packets die too)
//! w.run_for(&mut [&mut app_a, &mut app_b], Duration::from_secs(5))?;
//! w.tap = Some(Box::new(|host, pkt| { /* every packet a host sends */ }));
//! w.inject(0, &spoofed); // a packet from outside the paths, to host 0, now
//! ```
#![allow(dead_code)]

pub mod dss_check;
pub mod net;
pub mod rng;
pub mod transfer;

#[allow(unused_imports)]
pub use mptun_stack::{Config, Event, Instant, Stack};
#[allow(unused_imports)]
pub use net::{Link, LinkParams, LinkStats};
#[allow(unused_imports)]
pub use rng::{derive, mix64, Rng};
#[allow(unused_imports)]
pub use transfer::{
    run_transfer, sim_config, Payload, Scenario, SlowReader, Transfer, TransferReport, SERVER_PORT,
};

use core::fmt;
use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Index of a host in its [`World`].
pub type HostId = usize;
/// Index of a path in its [`World`].
pub type PathId = usize;
/// A watcher of every packet a host sends: [`World::tap`].
pub type Tap = Box<dyn FnMut(HostId, &[u8])>;

/// The address of host `host` (1, 2, ...) on path number `path` (0, 1, ...):
/// `10.<path>.0.<host>` or `fd00:0:0:<path>::<host>`.
pub fn addr(ipv6: bool, path: u8, host: u8) -> IpAddr {
    if ipv6 {
        IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            0,
            0,
            path as u16,
            0,
            0,
            0,
            host as u16,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, path, 0, host))
    }
}

/// Source and destination of a raw IPv4/IPv6 datagram; `None` if it is too short or
/// its version nibble is neither 4 nor 6. No checksum or length validation: the
/// router only needs the addresses.
pub fn parse_addrs(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => {
            let s: [u8; 4] = packet[12..16].try_into().ok()?;
            let d: [u8; 4] = packet[16..20].try_into().ok()?;
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        6 if packet.len() >= 40 => {
            let s: [u8; 16] = packet[8..24].try_into().ok()?;
            let d: [u8; 16] = packet[24..40].try_into().ok()?;
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        _ => None,
    }
}

/// A one-line summary of a TCP/IP packet for traces (best effort, no validation).
pub fn describe_packet(packet: &[u8]) -> String {
    let Some((src, dst)) = parse_addrs(packet) else {
        return format!("malformed ({} bytes)", packet.len());
    };
    let (proto, l4) = if packet[0] >> 4 == 4 {
        let ihl = ((packet[0] & 0x0f) as usize) * 4;
        (packet[9], packet.get(ihl..).unwrap_or(&[]))
    } else {
        (packet[6], &packet[40..])
    };
    if proto != 6 || l4.len() < 20 {
        return format!("{src} > {dst} proto {proto} len {}", packet.len());
    }
    let sport = u16::from_be_bytes([l4[0], l4[1]]);
    let dport = u16::from_be_bytes([l4[2], l4[3]]);
    let seq = u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]);
    let ack = u32::from_be_bytes([l4[8], l4[9], l4[10], l4[11]]);
    let off = ((l4[12] >> 4) as usize) * 4;
    let flags = l4[13];
    let win = u16::from_be_bytes([l4[14], l4[15]]);
    let mut f = String::new();
    for (bit, c) in [
        (0x02, 'S'),
        (0x10, '.'),
        (0x08, 'P'),
        (0x01, 'F'),
        (0x04, 'R'),
    ] {
        if flags & bit != 0 {
            f.push(c);
        }
    }
    let data = l4.len().saturating_sub(off);
    format!(
        "{src}:{sport} > {dst}:{dport} [{f}] seq {seq} ack {ack} win {win} len {data}{}",
        describe_mptcp(packet)
    )
}

/// The MPTCP options of a packet, briefly (DSNs and DATA_ACKs by their low 32
/// bits): `" mp[DSS ack=.. map=dsn/ssn/len F, ADD_ADDR id=1 echo]"`, or "".
pub fn describe_mptcp(packet: &[u8]) -> String {
    use mptun_stack::wire::mptcp::{AddAddr, MpJoin};
    use mptun_stack::wire::{mptcp_options, IpRepr, MptcpOption, ParseCtx, TcpRepr};
    let Ok((ip, tcp)) = IpRepr::parse(packet) else {
        return String::new();
    };
    let Ok(seg) = TcpRepr::parse(ip.src, ip.dst, tcp, false) else {
        return String::new();
    };
    let ctx = ParseCtx::from_repr(&seg);
    let low = |v: u64| v as u32;
    let opts: Vec<String> = mptcp_options(&seg)
        .map(|d| match MptcpOption::parse(d, ctx) {
            Ok(MptcpOption::MpCapable(c)) => format!(
                "CAPABLE v{}{}{}{}",
                c.version.number(),
                if c.sender_key.is_some() { " skey" } else { "" },
                if c.receiver_key.is_some() {
                    " rkey"
                } else {
                    ""
                },
                c.data_len.map_or(String::new(), |l| format!(" len={l}"))
            ),
            Ok(MptcpOption::MpJoin(MpJoin::Syn { .. })) => "JOIN syn".into(),
            Ok(MptcpOption::MpJoin(MpJoin::SynAck { .. })) => "JOIN synack".into(),
            Ok(MptcpOption::MpJoin(MpJoin::Ack { .. })) => "JOIN ack".into(),
            Ok(MptcpOption::Dss(d)) => {
                let mut s = "DSS".to_string();
                if let Some(a) = d.data_ack {
                    s += &format!(" ack={}", low(a.value));
                }
                if let Some(m) = d.mapping {
                    s += &format!(" map={}/{}/{}", low(m.dsn), m.ssn, m.data_len);
                }
                if d.data_fin {
                    s += " F";
                }
                s
            }
            Ok(MptcpOption::AddAddr(AddAddr::V1 { echo, addr_id, .. })) => {
                format!("ADD_ADDR id={addr_id}{}", if echo { " echo" } else { "" })
            }
            Ok(MptcpOption::AddAddr(AddAddr::V0 { addr_id, .. })) => {
                format!("ADD_ADDR v0 id={addr_id}")
            }
            Ok(MptcpOption::RemoveAddr(_)) => "REMOVE_ADDR".into(),
            Ok(MptcpOption::MpPrio(p)) => format!("MP_PRIO b={}", p.backup),
            Ok(MptcpOption::MpFail(_)) => "MP_FAIL".into(),
            Ok(MptcpOption::FastClose(_)) => "FASTCLOSE".into(),
            Ok(MptcpOption::TcpRst(r)) => format!("TCPRST {}", r.reason),
            Ok(MptcpOption::Unknown { subtype, .. }) => format!("? {subtype}"),
            Err(_) => "bad".into(),
        })
        .collect();
    if opts.is_empty() {
        String::new()
    } else {
        format!(" mp[{}]", opts.join(", "))
    }
}

/// One host: a stack and a name for messages.
pub struct Host {
    pub name: String,
    pub stack: Stack,
}

/// A path between host `a` (address `a_addr`) and host `b` (address `b_addr`).
pub struct Path {
    /// A middlebox on the path: rewrites (or empties, to drop) each delivered packet.
    pub middlebox: Option<fn(&mut Vec<u8>)>,
    /// Packets routed to this path travel on that path's links instead (a
    /// shared bottleneck: several address pairs, one link). Its `a` side must be
    /// on the other path's `a` side.
    pub alias_of: Option<PathId>,
    pub a: HostId,
    pub b: HostId,
    pub a_addr: IpAddr,
    pub b_addr: IpAddr,
    pub a_to_b: Link,
    pub b_to_a: Link,
}

impl Path {
    pub fn set_up(&mut self, up: bool) {
        self.a_to_b.set_up(up);
        self.b_to_a.set_up(up);
    }
}

/// The behaviour of one host's application.
pub trait App {
    /// An event of this host's stack.
    fn on_event(&mut self, now: Instant, stack: &mut Stack, event: Event) -> Result<(), String>;
    /// Called every step after the events: send and receive data here.
    fn poll(&mut self, now: Instant, stack: &mut Stack) -> Result<(), String>;
    /// When the app wants to be polled even if nothing else happens.
    fn next_wakeup(&self) -> Option<Instant> {
        None
    }
    /// Whether the app has reached its goal (used by [`World::run_until_done`]).
    fn done(&self, stack: &Stack) -> bool {
        let _ = stack;
        true
    }
    /// A short description of the app's progress for failure messages.
    fn status(&self) -> String {
        String::new()
    }
}

/// An app that ignores everything (for hosts without behaviour).
pub struct Idle;

impl App for Idle {
    fn on_event(&mut self, _: Instant, _: &mut Stack, _: Event) -> Result<(), String> {
        Ok(())
    }
    fn poll(&mut self, _: Instant, _: &mut Stack) -> Result<(), String> {
        Ok(())
    }
}

/// A failed run.
#[derive(Debug, Clone)]
pub struct SimError {
    pub seed: u64,
    pub at: Instant,
    pub message: String,
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "simulation seed {} failed at t={}: {}",
            self.seed, self.at, self.message
        )
    }
}

impl std::error::Error for SimError {}

/// Hosts, paths and the virtual clock.
pub struct World {
    pub seed: u64,
    pub now: Instant,
    pub hosts: Vec<Host>,
    pub paths: Vec<Path>,
    /// Packets dropped because no path matched (or they did not parse).
    pub unroutable: u64,
    /// Steps run so far.
    pub steps: u64,
    /// Virtual time after which a run fails.
    pub time_limit: Duration,
    /// Consecutive steps without time advancing after which a run fails.
    pub stall_limit: u64,
    /// Packets one stack may emit in one step before the run fails.
    pub burst_limit: u64,
    /// Print every packet sent and delivered (also enabled by env `SIM_TRACE`).
    pub trace: bool,
    /// Sees every packet a host sends (host, packet), before a link takes it:
    /// for tests that watch the real traffic.
    pub tap: Option<Tap>,
    /// Segments a host may hand over as one super-packet
    /// (`Stack::poll_transmit_gso`), which the world cuts into segments
    /// (`wire::gso::segment`) as a TSO device would: 1 for none. Odd seeds
    /// use it, so that every simulation runs both ways; env `SIM_GSO=N`
    /// sets it for all.
    pub gso_segments: usize,
    /// The hosts leave TCP checksums to the device (`TxChecksum::Partial`)
    /// and hand data segments over as headers and payload apart
    /// (`Stack::poll_transmit_parts`), which the world puts together and
    /// completes as a device with a gather write would. Set in `new`, before
    /// hosts are added: seeds 2 and 3 mod 4 (half of the runs, half of those
    /// with super-packets); env `SIM_GATHER=1` or `0` decides for all.
    pub gather: bool,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl World {
    pub fn new(seed: u64) -> Self {
        World {
            seed,
            now: Instant::ZERO,
            hosts: Vec::new(),
            paths: Vec::new(),
            unroutable: 0,
            steps: 0,
            time_limit: Duration::from_secs(30 * 60),
            stall_limit: 100_000,
            burst_limit: 1_000_000,
            trace: std::env::var_os("SIM_TRACE").is_some(),
            tap: None,
            gso_segments: match std::env::var("SIM_GSO").ok().and_then(|v| v.parse().ok()) {
                Some(n) => n,
                None if seed % 2 == 1 => 44,
                None => 1,
            },
            gather: match std::env::var("SIM_GATHER").ok().as_deref() {
                Some("1") => true,
                Some("0") => false,
                _ => seed / 2 % 2 == 1,
            },
            buf: vec![0; 65536],
            scratch: Vec::new(),
        }
    }

    /// Add a host; its stack's `config.seed` is kept as given.
    pub fn add_host(&mut self, name: &str, mut config: Config) -> HostId {
        if self.gather {
            config.tcp.tx_checksum = mptun_stack::wire::TxChecksum::Partial;
        }
        self.hosts.push(Host {
            name: name.to_string(),
            stack: Stack::new(config),
        });
        self.hosts.len() - 1
    }

    /// Join hosts `a` and `b` by a new path; adds the addresses to the stacks (if not
    /// already there). Link seeds derive from the world seed and the path index.
    pub fn add_path(
        &mut self,
        a: HostId,
        a_addr: IpAddr,
        b: HostId,
        b_addr: IpAddr,
        a_to_b: LinkParams,
        b_to_a: LinkParams,
    ) -> PathId {
        for (h, ad) in [(a, a_addr), (b, b_addr)] {
            // `add_address` ignores an address the stack already has.
            self.hosts[h].stack.add_address(ad);
        }
        self.add_path_only(a, a_addr, b, b_addr, a_to_b, b_to_a)
    }

    /// Like [`add_path`](World::add_path) but leaves the stacks' addresses alone (the
    /// test adds them itself, e.g. later, to announce a new address).
    pub fn add_path_only(
        &mut self,
        a: HostId,
        a_addr: IpAddr,
        b: HostId,
        b_addr: IpAddr,
        a_to_b: LinkParams,
        b_to_a: LinkParams,
    ) -> PathId {
        assert_ne!(a, b, "a path joins two different hosts");
        let i = self.paths.len() as u64;
        self.paths.push(Path {
            middlebox: None,
            alias_of: None,
            a,
            b,
            a_addr,
            b_addr,
            a_to_b: Link::new(a_to_b, derive(self.seed, 1000 + 2 * i)),
            b_to_a: Link::new(b_to_a, derive(self.seed, 1001 + 2 * i)),
        });
        self.paths.len() - 1
    }

    /// Two hosts, "a" (id 0) and "b" (id 1), joined by one path per entry of `links`
    /// (`(a_to_b, b_to_a)`); path `i` uses addresses [`addr`]`(ipv6, i, 1)` on a and
    /// `addr(ipv6, i, 2)` on b.
    pub fn pair(
        seed: u64,
        config_a: Config,
        config_b: Config,
        ipv6: bool,
        links: &[(LinkParams, LinkParams)],
    ) -> World {
        let mut w = World::new(seed);
        let a = w.add_host("a", config_a);
        let b = w.add_host("b", config_b);
        for (i, (ab, ba)) in links.iter().enumerate() {
            let i = u8::try_from(i).expect("too many paths");
            w.add_path(
                a,
                addr(ipv6, i, 1),
                b,
                addr(ipv6, i, 2),
                ab.clone(),
                ba.clone(),
            );
        }
        w
    }

    pub fn stack(&self, h: HostId) -> &Stack {
        &self.hosts[h].stack
    }

    pub fn stack_mut(&mut self, h: HostId) -> &mut Stack {
        &mut self.hosts[h].stack
    }

    pub fn path(&self, p: PathId) -> &Path {
        &self.paths[p]
    }

    pub fn path_mut(&mut self, p: PathId) -> &mut Path {
        &mut self.paths[p]
    }

    /// Hand `packet` to host `h` now, as if it had just arrived: a packet
    /// from outside the simulated paths (an attacker's), which no link delays
    /// or loses. What the host answers leaves at the next step.
    pub fn inject(&mut self, h: HostId, packet: &[u8]) {
        if self.trace {
            eprintln!(
                "{} host {} inject {}",
                self.now,
                self.hosts[h].name,
                describe_packet(packet)
            );
        }
        self.hosts[h].stack.handle_packet(self.now, packet);
    }

    /// Bring both directions of a path up or down.
    pub fn set_path_up(&mut self, p: PathId, up: bool) {
        self.paths[p].set_up(up);
    }

    /// True when no stack has a connection handle or a pending timer.
    pub fn idle(&self) -> bool {
        self.hosts
            .iter()
            .all(|h| h.stack.connections().is_empty() && h.stack.poll_timeout().is_none())
    }

    /// A path between `a_addr` on `a` and `b_addr` on `b` whose packets share
    /// the links of path `of` (whose `a` side must be on this one's `a` side).
    pub fn add_path_alias(
        &mut self,
        a: HostId,
        a_addr: IpAddr,
        b: HostId,
        b_addr: IpAddr,
        of: PathId,
    ) -> PathId {
        let p = self.add_path(
            a,
            a_addr,
            b,
            b_addr,
            LinkParams::default(),
            LinkParams::default(),
        );
        self.paths[p].alias_of = Some(of);
        p
    }

    /// Which path and direction (`true`: a to b) carries a packet from `from`.
    pub fn route(&self, from: HostId, src: IpAddr, dst: IpAddr) -> Option<(PathId, bool)> {
        self.route_named(from, src, dst)
            .map(|(p, dir)| (self.paths[p].alias_of.unwrap_or(p), dir))
    }

    fn route_named(&self, from: HostId, src: IpAddr, dst: IpAddr) -> Option<(PathId, bool)> {
        let exact = self.paths.iter().enumerate().find_map(|(i, p)| {
            if p.a == from && p.a_addr == src && p.b_addr == dst {
                Some((i, true))
            } else if p.b == from && p.b_addr == src && p.a_addr == dst {
                Some((i, false))
            } else {
                None
            }
        });
        exact.or_else(|| {
            self.paths.iter().enumerate().find_map(|(i, p)| {
                if p.a == from && p.b_addr == dst {
                    Some((i, true))
                } else if p.b == from && p.a_addr == dst {
                    Some((i, false))
                } else {
                    None
                }
            })
        })
    }

    fn err(&self, message: String) -> SimError {
        SimError {
            seed: self.seed,
            at: self.now,
            message,
        }
    }

    /// Progress of every app and stack, for failure messages.
    pub fn diagnostics(&self, apps: &[&mut dyn App]) -> String {
        let mut s = String::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let conns: Vec<String> = h
                .stack
                .connections()
                .iter()
                .map(|&c| match h.stack.state(c) {
                    Some(st) => format!("{c} {st}"),
                    None => format!("{c} ?"),
                })
                .collect();
            s += &format!(
                "\n  host {} [{}]: conns [{}], timer {:?}",
                h.name,
                apps.get(i).map(|a| a.status()).unwrap_or_default(),
                conns.join(", "),
                h.stack.poll_timeout()
            );
        }
        for (i, p) in self.paths.iter().enumerate() {
            s += &format!(
                "\n  path {i} {}->{}: {}\n  path {i} {}->{}: {}",
                p.a_addr,
                p.b_addr,
                p.a_to_b.stats().describe(),
                p.b_addr,
                p.a_addr,
                p.b_to_a.stats().describe()
            );
        }
        s
    }

    /// One step at `self.now` (delivery, timers, apps, transmission). Returns the time
    /// of the next scheduled thing, if any.
    pub fn step(&mut self, apps: &mut [&mut dyn App]) -> Result<Option<Instant>, SimError> {
        assert_eq!(apps.len(), self.hosts.len(), "one app per host");
        let now = self.now;
        self.steps += 1;

        // 1. Deliveries.
        for (i, p) in self.paths.iter_mut().enumerate() {
            for (link, to, dir) in [(&mut p.a_to_b, p.b, "a>b"), (&mut p.b_to_a, p.a, "b>a")] {
                while let Some(mut pkt) = link.pop_due(now) {
                    if let Some(rewrite) = p.middlebox {
                        rewrite(&mut pkt);
                        if pkt.is_empty() {
                            continue;
                        }
                    }
                    if self.trace {
                        eprintln!("{now} path {i} {dir} deliver {}", describe_packet(&pkt));
                    }
                    // A shared link carries packets for several hosts.
                    let owner = parse_addrs(&pkt).and_then(|(_, dst)| {
                        self.hosts
                            .iter()
                            .position(|h| h.stack.addresses().contains(&dst))
                    });
                    self.hosts[owner.unwrap_or(to)]
                        .stack
                        .handle_packet(now, &pkt);
                }
            }
        }

        // 2. Timers.
        for h in &mut self.hosts {
            if matches!(h.stack.poll_timeout(), Some(t) if t <= now) {
                h.stack.handle_timeout(now);
            }
        }

        // 3. Applications.
        for (i, app) in apps.iter_mut().enumerate() {
            let host = &mut self.hosts[i];
            let stack = &mut host.stack;
            let mut r = Ok(());
            while let Some(ev) = stack.poll_event() {
                if self.trace {
                    eprintln!("{now} host {} event {ev:?}", host.name);
                }
                r = app.on_event(now, stack, ev);
                if r.is_err() {
                    break;
                }
            }
            if r.is_ok() {
                r = app.poll(now, stack);
            }
            if let Err(e) = r {
                let e = format!("host {}: {e}", self.hosts[i].name);
                return Err(self.err(e));
            }
        }

        // 4. Transmission.
        let mut buf = std::mem::take(&mut self.buf);
        let mut scratch = std::mem::take(&mut self.scratch);
        for h in 0..self.hosts.len() {
            let mut n_out = 0u64;
            while let Some(t) = poll_packet(
                &mut self.hosts[h].stack,
                now,
                &mut buf,
                self.gso_segments,
                self.gather,
            ) {
                n_out += 1;
                if n_out > self.burst_limit {
                    self.buf = buf;
                    let e = format!(
                        "host {} emitted more than {} packets in one step",
                        self.hosts[h].name, self.burst_limit
                    );
                    return Err(self.err(e));
                }
                let pkt = &mut buf[..t.len];
                match t.segment_size {
                    None if self.gather => {
                        complete_tcp_checksum(pkt);
                        self.send_one(now, h, pkt)
                    }
                    None => self.send_one(now, h, pkt),
                    Some(size) => {
                        let r = mptun_stack::wire::gso::segment(pkt, size, &mut scratch, |p| {
                            self.send_one(now, h, p)
                        });
                        if let Err(e) = r {
                            self.buf = buf;
                            let e = format!("host {}: a bad super-packet: {e}", self.hosts[h].name);
                            return Err(self.err(e));
                        }
                    }
                }
            }
        }
        self.buf = buf;
        self.scratch = scratch;

        // 5. Next event.
        let links = self
            .paths
            .iter()
            .flat_map(|p| [p.a_to_b.next_delivery(), p.b_to_a.next_delivery()]);
        let timers = self.hosts.iter().map(|h| h.stack.poll_timeout());
        let wakeups = apps.iter().map(|a| a.next_wakeup());
        let next = links.chain(timers).chain(wakeups).flatten().min();
        Ok(next.map(|t| t.max(now)))
    }

    /// One packet from host `h` onto the path its addresses pick.
    fn send_one(&mut self, now: Instant, h: usize, pkt: &[u8]) {
        if let Some(tap) = self.tap.as_mut() {
            tap(h, pkt);
        }
        let route = parse_addrs(pkt).and_then(|(s, d)| self.route(h, s, d));
        if self.trace {
            eprintln!(
                "{now} host {} send {} via {route:?}",
                self.hosts[h].name,
                describe_packet(pkt)
            );
        }
        match route {
            Some((p, true)) => self.paths[p].a_to_b.send(now, pkt),
            Some((p, false)) => self.paths[p].b_to_a.send(now, pkt),
            None => self.unroutable += 1,
        }
    }

    /// Step until `goal` holds (checked after every step).
    pub fn run_until(
        &mut self,
        apps: &mut [&mut dyn App],
        goal: impl FnMut(&World, &[&mut dyn App]) -> bool,
    ) -> Result<(), SimError> {
        self.run_loop(apps, None, goal)
    }

    /// Step until every app is done and every stack [`idle`](World::idle).
    pub fn run_until_done(&mut self, apps: &mut [&mut dyn App]) -> Result<(), SimError> {
        self.run_until(apps, |w, apps| {
            apps.iter().zip(&w.hosts).all(|(a, h)| a.done(&h.stack)) && w.idle()
        })
    }

    /// Step for `d` of virtual time (returns early only on error).
    pub fn run_for(&mut self, apps: &mut [&mut dyn App], d: Duration) -> Result<(), SimError> {
        let end = self.now + d;
        self.run_loop(apps, Some(end), |_, _| false)
    }

    fn run_loop(
        &mut self,
        apps: &mut [&mut dyn App],
        deadline: Option<Instant>,
        mut goal: impl FnMut(&World, &[&mut dyn App]) -> bool,
    ) -> Result<(), SimError> {
        let limit = Instant::ZERO + self.time_limit;
        let mut stalled = 0u64;
        loop {
            let next = self.step(apps)?;
            if goal(self, apps) {
                return Ok(());
            }
            let next = match (next, deadline) {
                _ if deadline.is_some_and(|end| self.now >= end) => return Ok(()),
                (Some(n), Some(end)) => n.min(end),
                (None, Some(end)) => end,
                (Some(n), None) => n,
                (None, None) => {
                    let d = self.diagnostics(apps);
                    return Err(self.err(format!("deadlock: nothing scheduled{d}")));
                }
            };
            if next > self.now {
                stalled = 0;
                self.now = next;
            } else {
                stalled += 1;
                if stalled >= self.stall_limit {
                    let d = self.diagnostics(apps);
                    return Err(self.err(format!("livelock: time stuck for {stalled} steps{d}")));
                }
            }
            if self.now > limit {
                let d = self.diagnostics(apps);
                return Err(self.err(format!(
                    "virtual time limit {:?} exceeded{d}",
                    self.time_limit
                )));
            }
        }
    }
}

/// A number from the environment (`SIM_SEED`, `SIM_SEEDS`, ...); a value that
/// is not a number is a mistake worth stopping for.
pub fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

/// The seeds a test runs: `SIM_SEED=n` replays one, `SIM_SEEDS=n` runs `0..n`,
/// else `0..default`.
pub fn seeds(default: u64) -> Vec<u64> {
    match env_u64("SIM_SEED") {
        Some(s) => vec![s],
        None => (0..env_u64("SIM_SEEDS").unwrap_or(default)).collect(),
    }
}

/// Failing seeds after which a multi-seed test stops: `SIM_MAX_FAILURES=n`,
/// else 5 (raise it to list every failing seed of a long run).
pub fn max_failures() -> usize {
    env_u64("SIM_MAX_FAILURES").map_or(5, |n| n as usize)
}

/// The next packet of `stack` into `buf`, whole: with `gather`, its headers
/// and payload, handed over apart, put together.
fn poll_packet(
    stack: &mut Stack,
    now: Instant,
    buf: &mut [u8],
    gso_segments: usize,
    gather: bool,
) -> Option<mptun_stack::TxPacket> {
    if !gather {
        return stack.poll_transmit_gso(now, buf, gso_segments);
    }
    let parts = stack.poll_transmit_parts(now, buf, gso_segments)?;
    let (a, b) = parts.payload;
    let at = parts.packet.len;
    buf[at..at + a.len()].copy_from_slice(a);
    buf[at + a.len()..at + a.len() + b.len()].copy_from_slice(b);
    Some(mptun_stack::TxPacket {
        len: parts.whole_len(),
        ..parts.packet
    })
}

/// Complete a TCP packet's checksum, which its sender left partial (the
/// pseudo-header's sum), as a device with checksum offload would.
pub fn complete_tcp_checksum(pkt: &mut [u8]) {
    use mptun_stack::wire::checksum::{accumulate, fold, pseudo_header};
    let Some((src, dst)) = parse_addrs(pkt) else {
        return;
    };
    let (l4, proto) = match pkt[0] >> 4 {
        4 => (20, pkt[9]),
        _ => (40, pkt[6]),
    };
    if proto != 6 || pkt.len() < l4 + 20 {
        return;
    }
    let seg = &mut pkt[l4..];
    seg[16..18].copy_from_slice(&[0, 0]);
    let sum = accumulate(pseudo_header(src, dst, 6, seg.len() as u32), seg);
    let c = !fold(u64::from(sum));
    seg[16..18].copy_from_slice(&c.to_be_bytes());
}
