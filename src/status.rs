//! The daemon's status model: what `mptun status` shows and `mptun status --json`
//! prints.
//!
//! The JSON form is a contract with scripts. Key names of [`Status`] and the types it
//! contains must not change; new keys may be added. Addresses serialise as strings
//! (`"10.10.1.2"`, `"10.10.1.2:7"`, `"[fd00::2]:7"`), states as the RFC 793 names
//! (`"ESTABLISHED"`), counters as a map from the engine's counter names to numbers,
//! so a counter added to [`mptun_stack::Counters`] appears without a schema change
//! (once it is listed in [`counters_from`]; the compiler enforces that).
//!
//! Secrets: an MPTCP connection's `local_key` and `remote_key` let whoever knows
//! them forge MP_FASTCLOSE and MP_JOIN HMACs, so the daemon reports them only to
//! privileged callers of the control socket (root or the daemon's user). For
//! anyone else both are `null` and `keys_redacted` is `true` ([`Status::redact_keys`]);
//! tokens are public on the wire and always shown. The table shows no keys either
//! way, and says when they were withheld.
//!
//! ```json
//! { "tun": "mptun0", "addresses": ["10.10.1.2"], "uptime_s": 12.3, "keys_redacted": false,
//!   "connections": [ { "id": 3, "local": "10.10.1.2:7", "remote": "10.1.0.1:41234",
//!       "state": "ESTABLISHED", "bytes_sent": 123, "bytes_received": 456,
//!       "buffers": { "send_queued": 0, "send_capacity": 65536, "recv_queued": 0,
//!           "recv_capacity": 131072, "memory": 4242 },
//!       "mptcp": null,
//!       "subflows": [ { "local": "10.10.1.2:7", "remote": "10.1.0.1:41234",
//!           "state": "ESTABLISHED", "rtt_us": 1234, "cwnd": 14480, "backup": false,
//!           "addr_id": 0, "bytes_sent": 123, "bytes_received": 456,
//!           "retransmitted_bytes": 0, ... } ] } ],
//!   "services": [ { "kind": "sink", "port": 9, "connections": 2, "bytes": 268435456 } ],
//!   "counters": { "packets_in": 0, ... } }
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use mptun_stack::endpoint::{ConnInfo, Counters, MptcpInfo};
use mptun_stack::ConnId;
use serde::{Deserialize, Serialize};

/// Everything `mptun status` reports about one running daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Name of the TUN device.
    pub tun: String,
    /// The stack's local addresses.
    pub addresses: Vec<IpAddr>,
    /// Seconds since the daemon started.
    pub uptime_s: f64,
    /// Open connections (for MPTCP: one entry per MPTCP connection).
    pub connections: Vec<ConnectionStatus>,
    /// Built-in services (`sink`, `echo`, forwarders, ...).
    pub services: Vec<ServiceStatus>,
    /// Stack-wide counters by name; see [`counters_from`].
    pub counters: BTreeMap<String, u64>,
    /// MPTCP keys were withheld (the caller is not privileged): every
    /// `local_key` and `remote_key` is `null`.
    #[serde(default)]
    pub keys_redacted: bool,
    /// What the connections hold against `--max-memory`.
    #[serde(default)]
    pub memory: MemoryStatus,
    /// Each local address (a WAN, on a gateway): the subflows on it and what
    /// they moved, over every connection ([`paths_from`]).
    #[serde(default)]
    pub paths: Vec<PathStatus>,
    /// Relayed connections in progress, against `--max-relays`.
    #[serde(default)]
    pub relays: RelaysStatus,
    /// Each engine thread (`--threads`): how the load is spread.
    #[serde(default)]
    pub shards: Vec<ShardStatus>,
    /// The admission limits in force (a reload may have changed them).
    #[serde(default)]
    pub limits: LimitsStatus,
    /// The last reload (SIGHUP), if any since the start.
    #[serde(default)]
    pub reload: Option<ReloadStatus>,
}

/// The limits a reload can change, as in force now (`--max-memory` is
/// `memory.budget_bytes`, `--max-relays` `relays.limit`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsStatus {
    pub max_connections: u64,
    pub max_conns_per_source: u64,
    pub max_subflows: u64,
    pub max_add_addr_accepted: u64,
}

/// What the last reload did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// When it ran: seconds since the Unix epoch, and how long ago.
    pub unix_time_s: u64,
    pub age_s: f64,
    /// Everything it found to apply was applied (a file that cannot be read
    /// or parsed applies nothing and is not ok).
    pub ok: bool,
    /// Why not, if not: the file's error, or the changes that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The changes applied, each `KEY: what` (`address: added 10.10.3.2
    /// (signal)`, `limits.max-connections: 65536 -> 100`).
    pub applied: Vec<String>,
    /// Keys whose new values were not applied (a restart applies them).
    pub not_applied: Vec<String>,
}

/// One engine thread and its TUN queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStatus {
    pub index: u32,
    /// Connections it holds now, and has accepted and opened since the start.
    pub connections: u64,
    pub connections_accepted: u64,
    pub connections_opened: u64,
    /// Packets its engine took in (from its queue or from other threads)
    /// and sent.
    pub packets_in: u64,
    pub packets_out: u64,
}

/// One local address's share of the traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStatus {
    pub local: IpAddr,
    /// Subflows (or plain TCP connections) on it now, and of them established.
    pub subflows: u64,
    pub established: u64,
    /// Of them marked backup.
    pub backup: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub retransmitted_bytes: u64,
}

/// The relays (`--forward`, `--local-forward`, `--socks5`, `--transparent`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RelaysStatus {
    /// `--max-relays`, and how many clients it refused so far.
    pub limit: u64,
    pub refused: u64,
    /// In progress, oldest first.
    pub active: Vec<RelayStatus>,
}

/// One relayed connection: a client's, carried to its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayStatus {
    pub service: String,
    pub client: SocketAddr,
    /// Where it goes: an address, or a host name and port (SOCKS5).
    pub target: String,
    /// The local address of the stack connection that carries it upstream
    /// (its entry in `connections`), and that connection's established
    /// subflows; absent when the far side is a host socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<SocketAddr>,
    #[serde(default)]
    pub upstream_subflows: u64,
    /// Bytes from the client to the target, and back.
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub age_s: f64,
}

impl PathStatus {
    /// An address with no subflow on it.
    pub fn idle(local: IpAddr) -> Self {
        PathStatus {
            local,
            subflows: 0,
            established: 0,
            backup: 0,
            bytes_sent: 0,
            bytes_received: 0,
            retransmitted_bytes: 0,
        }
    }
}

/// Per local address, the subflows of `connections` on it and their bytes.
pub fn paths_from(connections: &[ConnectionStatus]) -> Vec<PathStatus> {
    let mut by: BTreeMap<IpAddr, PathStatus> = BTreeMap::new();
    for s in connections.iter().flat_map(|c| &c.subflows) {
        let ip = s.local.ip().to_canonical();
        let p = by.entry(ip).or_insert_with(|| PathStatus::idle(ip));
        p.subflows += 1;
        p.established += u64::from(s.state == "ESTABLISHED");
        p.backup += u64::from(s.backup);
        p.bytes_sent += s.bytes_sent;
        p.bytes_received += s.bytes_received;
        p.retransmitted_bytes += s.retransmitted_bytes;
    }
    by.into_values().collect()
}

/// Relays shown in the table at most (`status --json` has them all).
const TABLE_RELAYS: usize = 50;

/// The stack's memory budget (`--max-memory`) and its use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStatus {
    /// Heap bytes the connections hold (buffers and records).
    pub used_bytes: u64,
    /// Each engine thread's peak of `used_bytes` since the start, summed:
    /// the most ever held at once is at most this.
    #[serde(default)]
    pub peak_bytes: u64,
    pub budget_bytes: u64,
    /// `none`; `high` (past half the budget: buffers do not grow); or
    /// `exhausted` (no new connections).
    pub pressure: String,
    /// Closed connections reduced to TIME_WAIT records (a few dozen bytes
    /// each, counted in `used_bytes`); they are not in `connections`.
    #[serde(default)]
    pub time_wait: u64,
}

impl ReloadStatus {
    /// One line for the table: `reload 12s ago: ok; applied ...; not applied
    /// (restart needed): ...`.
    pub fn line(&self) -> String {
        let mut line = format!("reload {:.0}s ago: ", self.age_s);
        match &self.error {
            None if self.ok => line.push_str("ok"),
            None => line.push_str("failed"),
            Some(e) => {
                line.push_str("failed: ");
                line.push_str(e);
            }
        }
        let list = |v: &[String]| {
            if v.is_empty() {
                "nothing".to_string()
            } else {
                v.join(", ")
            }
        };
        let _ = write!(line, "; applied: {}", list(&self.applied));
        if !self.not_applied.is_empty() {
            let _ = write!(
                line,
                "; not applied (restart needed): {}",
                self.not_applied.join(", ")
            );
        }
        line
    }
}

impl Status {
    /// Withholds the MPTCP keys: `local_key` and `remote_key` become `null` and
    /// `keys_redacted` true. Tokens stay (they are public on the wire).
    pub fn redact_keys(&mut self) {
        for c in &mut self.connections {
            if let Some(m) = &mut c.mptcp {
                m.local_key = None;
                m.remote_key = None;
            }
        }
        self.keys_redacted = true;
    }
}

/// One connection: a plain TCP connection or an MPTCP connection with its subflows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    /// The engine's connection handle ([`ConnId`]), unique within its shard.
    pub id: u64,
    /// The engine (thread, TUN queue) that holds it (`--threads`).
    #[serde(default)]
    pub shard: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// TCP state name, e.g. `"ESTABLISHED"`.
    pub state: String,
    /// Application bytes sent (acknowledged or not) and received.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Its buffers and the heap memory it holds.
    pub buffers: BuffersStatus,
    /// MPTCP-level details; `null` for a plain TCP connection.
    pub mptcp: Option<MptcpStatus>,
    /// The TCP subflows; a plain TCP connection has exactly one, with the
    /// connection's own addresses.
    pub subflows: Vec<SubflowStatus>,
    /// Paths (our addresses, the peer's announced ones) that carry none of
    /// its data, each with why. Absent when every path is used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unused_paths: Vec<UnusedPathStatus>,
}

/// A path of a connection that carries none of its data, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnusedPathStatus {
    /// Our address.
    pub local: std::net::IpAddr,
    /// The peer's address, where the reason concerns one of its announced ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<std::net::IpAddr>,
    /// A stable name: `no_subflow_flag`, `no_signal_flag`, `subflow_limit`,
    /// `add_addr_limit`, `peer_denies_initial`, `announced_not_echoed`,
    /// `not_joined_by_peer`, `not_announced`, `not_joinable`, `backup`,
    /// `stalled`, `joining`, `subflow_ended`, `not_established`,
    /// `other_family`, `not_mptcp`.
    pub reason: String,
    /// The same in words.
    pub detail: String,
}

impl UnusedPathStatus {
    pub fn from_engine(u: &mptun_stack::UnusedPath) -> Self {
        UnusedPathStatus {
            local: u.local,
            remote: u.remote,
            reason: u.reason.code().to_string(),
            detail: describe_unused(u.reason),
        }
    }
}

/// Why a path is unused, in words.
pub fn describe_unused(r: mptun_stack::UnusedReason) -> String {
    use mptun_stack::UnusedReason as U;
    match r {
        U::NotMptcp => "plain TCP: the peer did not use MPTCP, or the connection fell back".into(),
        U::NotEstablished => "the MPTCP connection is not fully established yet".into(),
        U::NoSubflowFlag => "no subflow is opened from it: the address lacks the `subflow` flag".into(),
        U::NoSignalFlag => "not announced to the peer: the address lacks the `signal` flag".into(),
        U::OtherFamily => "the other IP family than the connection's".into(),
        U::SubflowLimit { max } => format!("subflow limit reached (--max-subflows {max})"),
        U::AddAddrLimit { max } => {
            format!("the peer's announcement is not joined: --max-add-addr-accepted {max} reached")
        }
        U::PeerDeniesInitial => "the peer asked for no subflow to its first address (MP_CAPABLE's C flag) and announced no other".into(),
        U::AnnouncedNotEchoed => "announced (ADD_ADDR); the peer has not echoed it".into(),
        U::NotJoinedByPeer => "announced and echoed; the peer has not joined it (on Linux: `ip mptcp limits set subflows N add_addr_accepted N`)".into(),
        U::NotAnnounced => "not announced yet".into(),
        U::NotJoinable => "announced by the peer but never joined: one of ours, loopback, link-local or the like".into(),
        U::Backup => "backup: its subflows carry data only when no other subflow works".into(),
        U::Stalled => "its subflow timed out repeatedly: data goes over the others until it recovers".into(),
        U::Joining => "a join is in its handshake".into(),
        U::Ended(end) => format!("its last subflow ended: {}", crate::monitor::describe_end(end)),
    }
}

/// A connection's buffers (an MPTCP connection's data level), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuffersStatus {
    /// Queued to send and not yet acknowledged, and the most that may be now
    /// (auto-tuned: it grows with use up to the configured ceiling).
    pub send_queued: u64,
    pub send_capacity: u64,
    /// Received and not yet read by the application, and the most the
    /// receive window may offer now (auto-tuned likewise).
    pub recv_queued: u64,
    pub recv_capacity: u64,
    /// Heap memory the connection holds, as the memory budget counts it.
    pub memory: u64,
}

impl BuffersStatus {
    pub fn from_info(b: &mptun_stack::BufferInfo) -> Self {
        BuffersStatus {
            send_queued: b.send_queued as u64,
            send_capacity: b.send_capacity as u64,
            recv_queued: b.recv_queued as u64,
            recv_capacity: b.recv_capacity as u64,
            memory: b.memory as u64,
        }
    }
}

/// MPTCP connection-level details. Filled in once the engine speaks MPTCP; more keys
/// will be added then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MptcpStatus {
    /// Protocol version: 1 (RFC 8684) or 0 (RFC 6824).
    pub version: u8,
    /// Keys and the tokens derived from them, as hex strings (the peer's are
    /// `null` until received). Both keys are `null` for unprivileged callers
    /// (see [`Status::keys_redacted`]); tokens are always shown.
    pub local_key: Option<String>,
    pub remote_key: Option<String>,
    pub local_token: String,
    pub remote_token: Option<String>,
    /// DSS checksums in use.
    pub checksum: bool,
    /// The connection fell back to plain TCP.
    pub fallback: bool,
    /// Why it fell back, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// Our addresses announced (ADD_ADDR) on this connection.
    #[serde(default)]
    pub announced: Vec<AddrStatus>,
    /// The addresses the peer announced.
    #[serde(default)]
    pub remote_addrs: Vec<AddrStatus>,
    /// How it spreads data over its subflows (`--scheduler`,
    /// `--upstream-scheduler`).
    #[serde(default)]
    pub scheduler: String,
    /// The peer asked for no subflow to its first address (RFC 8684's "C"
    /// flag, e.g. behind a load balancer): only the addresses it announces
    /// are joined.
    #[serde(default)]
    pub peer_denies_join_initial: bool,
}

/// An announced address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrStatus {
    pub addr_id: u8,
    pub addr: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// For our announcements: the peer echoed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echoed: Option<bool>,
}

impl MptcpStatus {
    pub fn from_info(m: &MptcpInfo) -> Self {
        MptcpStatus {
            version: m.version,
            local_key: Some(format!("{:016x}", m.local_key)),
            remote_key: m.remote_key.map(|k| format!("{k:016x}")),
            local_token: format!("{:08x}", m.local_token),
            remote_token: m.remote_token.map(|t| format!("{t:08x}")),
            checksum: m.checksum,
            fallback: m.fallback,
            fallback_reason: m.fallback_reason.clone(),
            announced: m
                .announced
                .iter()
                .map(|&(addr_id, addr, echoed)| AddrStatus {
                    addr_id,
                    addr,
                    port: None,
                    echoed: Some(echoed),
                })
                .collect(),
            remote_addrs: m
                .remote_addrs
                .iter()
                .map(|&(addr_id, addr, port)| AddrStatus {
                    addr_id,
                    addr,
                    port,
                    echoed: None,
                })
                .collect(),
            scheduler: m.scheduler.to_string(),
            peer_denies_join_initial: m.peer_denies_join_initial,
        }
    }
}

/// One TCP subflow (the connection itself, for plain TCP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubflowStatus {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// TCP state name, e.g. `"ESTABLISHED"`.
    pub state: String,
    /// Smoothed RTT in microseconds; `null` before the first RTT sample.
    pub rtt_us: Option<u64>,
    /// Congestion window in bytes.
    pub cwnd: u64,
    /// MPTCP backup flag (always `false` for plain TCP).
    pub backup: bool,
    /// MPTCP address id of the local address (0 for plain TCP and the initial subflow).
    pub addr_id: u8,
    /// The peer's address id of the remote address.
    #[serde(default)]
    pub remote_addr_id: u8,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub retransmitted_bytes: u64,
    /// Extra keys beyond the contract, useful when debugging.
    pub retransmitted_segments: u64,
    /// Retransmission timeout in microseconds.
    pub rto_us: u64,
    pub ssthresh: u64,
    /// Peer's advertised send window in bytes.
    pub snd_wnd: u64,
    pub mss: u64,
    pub sack: bool,
    pub timestamps: bool,
    pub congestion_control: String,
}

/// One built-in service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// `"sink"`, `"echo"`, `"chargen"`, `"forward"`, ...
    pub kind: String,
    pub port: u16,
    /// Connections handled so far.
    pub connections: u64,
    /// Payload bytes handled so far.
    pub bytes: u64,
    /// Hex SHA-256 of what the service received, for services that compute one;
    /// absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Converts the engine's snapshot of a plain TCP connection: one subflow with the
/// connection's addresses and `mptcp: null`.
pub fn connection_from_info(id: ConnId, info: &ConnInfo) -> ConnectionStatus {
    let state = info.state.as_str().to_string();
    let subflows = info
        .subflows
        .iter()
        .enumerate()
        .map(|(i, sf)| {
            // The connection-wide TCP details describe its first subflow.
            let first = i == 0;
            let detail = |v: u64| if first { v } else { 0 };
            SubflowStatus {
                local: sf.local,
                remote: sf.remote,
                state: sf.state.as_str().to_string(),
                rtt_us: sf.srtt.map(|d| duration_us(d.as_micros())),
                cwnd: sf.cwnd as u64,
                backup: sf.backup,
                addr_id: sf.local_id,
                remote_addr_id: sf.remote_id,
                bytes_sent: sf.bytes_sent,
                bytes_received: sf.bytes_received,
                retransmitted_bytes: sf.bytes_retransmitted,
                retransmitted_segments: detail(info.segments_retransmitted),
                rto_us: detail(duration_us(info.rto.as_micros())),
                ssthresh: detail(info.ssthresh as u64),
                snd_wnd: detail(info.snd_wnd as u64),
                mss: detail(info.mss as u64),
                sack: info.sack,
                timestamps: info.timestamps,
                congestion_control: info.congestion_control.to_string(),
            }
        })
        .collect();
    ConnectionStatus {
        id: id.0,
        shard: 0,
        local: info.local,
        remote: info.remote,
        state,
        bytes_sent: info.bytes_sent,
        bytes_received: info.bytes_received,
        buffers: BuffersStatus::from_info(&info.buffers),
        mptcp: info.mptcp.as_ref().map(MptcpStatus::from_info),
        subflows,
        unused_paths: Vec::new(),
    }
}

fn duration_us(us: u128) -> u64 {
    u64::try_from(us).unwrap_or(u64::MAX)
}

/// Lists the fields once: the destructuring pattern has no `..`, so a field added to
/// `Counters` and not listed here is a compile error.
macro_rules! counter_map {
    ($c:expr; $($field:ident),* $(,)?) => {{
        let Counters { $($field),* } = $c;
        let mut map = BTreeMap::new();
        $( map.insert(stringify!($field).to_string(), *$field); )*
        map
    }};
}

/// Every field of the engine's [`Counters`], by field name.
pub fn counters_from(c: &Counters) -> BTreeMap<String, u64> {
    counter_map!(c;
        packets_in,
        packets_out,
        segments_in,
        super_packets_in,
        segments_out,
        super_packets_out,
        retransmitted_segments,
        retransmitted_bytes,
        resets_sent,
        resets_received,
        connections_accepted,
        connections_opened,
        drop_malformed,
        drop_bad_checksum,
        drop_not_for_us,
        drop_no_listener,
        drop_invalid_option,
        drop_backlog_full,
        syncookies_sent,
        syncookies_recv,
        syncookies_failed,
        syncookies_dropped,
        drop_out_of_window,
        drop_paws,
        drop_ooo_overflow,
        drop_ooo_memory,
        drop_memory,
        memory_pressure,
        time_wait_overflow,
        drop_source_limit,
        challenge_acks,
        challenge_acks_limited,
        oow_acks_limited,
        drop_unsupported_protocol,
        drop_rst_queue_full,
        path_events_dropped,
        drop_rst_rate_limited,
        drop_own_source,
        icmp_echo_requests,
        icmp_echo_replies_sent,
        icmp_unreachable,
        drop_icmp_other,
        drop_icmp_queue_full,
        drop_icmp_rate_limited,
        drop_icmp_too_big,
        mptcp_connections,
        mptcp_fallbacks,
        mptcp_checksum_errors,
        mptcp_mp_fail_tx,
        mptcp_mp_fail_rx,
        mptcp_infinite_map_tx,
        mptcp_infinite_map_rx,
        mptcp_join_syn_rx,
        mptcp_join_rejected,
        mptcp_joins_established,
        mptcp_join_hmac_failures,
        mptcp_reinjected_bytes,
        mptcp_data_retransmits,
        mptcp_window_probes,
        mptcp_mp_prio_tx,
        mptcp_mp_prio_rx,
        mptcp_add_addr_tx,
        mptcp_add_addr_rx,
        mptcp_add_addr_echo_rx,
        mptcp_add_addr_hmac_failures,
        mptcp_add_addr_ignored,
        mptcp_add_addr_refused,
        mptcp_reinject_overflow,
        mptcp_ofo_dropped_bytes,
        mptcp_unmapped_held,
        mptcp_unmapped_dropped,
        mptcp_rm_addr_tx,
        mptcp_rm_addr_rx,
        mptcp_v0_retries,
        mptcp_bad_data_acks,
        mptcp_bad_mappings,
        mptcp_malformed_options,
    )
}

/// Left- or right-aligned column of a [`Table`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// A minimal text table: a header row and rows of cells, columns padded to the
/// widest cell and separated by two spaces.
struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

/// `cell` safe to print on a terminal: some cells come from peers (a SOCKS5
/// client's target name may hold ESC, CR or LF), and raw they would reach
/// the terminal of whoever runs `mptun status` as control sequences or
/// spoofed lines. Control and bidirectional formatting characters are shown
/// escaped (`\u{1b}`); `--json` escapes them anyway.
fn printable(cell: String) -> String {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !cell.chars().any(unsafe_char) {
        return cell;
    }
    let mut out = String::with_capacity(cell.len() + 8);
    for c in cell.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

impl Table {
    fn new(columns: &[(&'static str, Align)]) -> Self {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row.into_iter().map(printable).collect());
    }

    /// Header and rows, unindented.
    fn write_all(&self, out: &mut String) {
        let w = self.widths();
        self.write_header(out, "", &w);
        for r in 0..self.rows.len() {
            self.write_row(out, "", &w, r);
        }
    }

    fn widths(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                self.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([name.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    fn write_line(&self, out: &mut String, indent: &str, widths: &[usize], cells: &[&str]) {
        let mut line = String::from(indent);
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            let align = self.columns[i].1;
            if align == Align::Right {
                line.push_str(&" ".repeat(pad));
            }
            line.push_str(cell);
            if i != last {
                if align == Align::Left {
                    line.push_str(&" ".repeat(pad));
                }
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }

    fn write_header(&self, out: &mut String, indent: &str, widths: &[usize]) {
        let names: Vec<&str> = self.columns.iter().map(|(n, _)| *n).collect();
        self.write_line(out, indent, widths, &names);
    }

    fn write_row(&self, out: &mut String, indent: &str, widths: &[usize], row: usize) {
        let cells: Vec<&str> = self.rows[row].iter().map(String::as_str).collect();
        self.write_line(out, indent, widths, &cells);
    }
}

const SUBFLOW_INDENT: &str = "    ";

/// Bytes in binary units, as `ip`/`ss` users read them.
fn format_bytes(n: u64) -> String {
    match n {
        n if n < 10 << 10 => format!("{n}B"),
        n if n < 10 << 20 => format!("{}KiB", n >> 10),
        n => format!("{}MiB", n >> 20),
    }
}

fn format_rtt(rtt_us: Option<u64>) -> String {
    match rtt_us {
        None => "-".to_string(),
        Some(us) if us < 10_000 => format!("{:.3}ms", us as f64 / 1000.0),
        Some(us) => format!("{:.1}ms", us as f64 / 1000.0),
    }
}

impl Status {
    /// The human-readable form printed by `mptun status`: a header line, the
    /// connections with their subflows indented under each, the services, and the
    /// counters that are not zero.
    pub fn render_table(&self) -> String {
        use Align::{Left, Right};
        let mut out = String::new();

        let addresses = if self.addresses.is_empty() {
            "-".to_string()
        } else {
            self.addresses
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "tun {}  addresses {}  uptime {:.1}s",
            self.tun, addresses, self.uptime_s
        );
        if self.shards.len() > 1 {
            let each: Vec<String> = self
                .shards
                .iter()
                .map(|s| {
                    format!(
                        "#{} {} conns {} pkts in",
                        s.index, s.connections, s.packets_in
                    )
                })
                .collect();
            let _ = writeln!(out, "threads {}: {}", self.shards.len(), each.join(", "));
        }
        let l = &self.limits;
        let _ = writeln!(
            out,
            "limits: connections {}  per source {}  subflows {}  add_addr accepted {}",
            l.max_connections, l.max_conns_per_source, l.max_subflows, l.max_add_addr_accepted
        );
        if let Some(r) = &self.reload {
            let _ = writeln!(out, "{}", r.line());
        }

        out.push('\n');
        if self.connections.is_empty() {
            out.push_str("connections: none\n");
        } else {
            let _ = writeln!(out, "connections: {}", self.connections.len());
            let mut conns = Table::new(&[
                ("ID", Right),
                ("LOCAL", Left),
                ("REMOTE", Left),
                ("STATE", Left),
                ("SENT", Right),
                ("RECV", Right),
                ("MEM", Right),
            ]);
            let mut subflows = Table::new(&[
                ("LOCAL", Left),
                ("REMOTE", Left),
                ("STATE", Left),
                ("RTT", Right),
                ("CWND", Right),
                ("IDS", Left),
                ("BACKUP", Left),
                ("SENT", Right),
                ("RECV", Right),
            ]);
            // Subflow rows of connection i are subflow_rows[i]; one set of column
            // widths for all of them, so the indented tables line up.
            let mut subflow_rows = Vec::with_capacity(self.connections.len());
            for c in &self.connections {
                conns.push(vec![
                    c.id.to_string(),
                    c.local.to_string(),
                    c.remote.to_string(),
                    c.state.clone(),
                    c.bytes_sent.to_string(),
                    c.bytes_received.to_string(),
                    format_bytes(c.buffers.memory),
                ]);
                let first = subflows.rows.len();
                for s in &c.subflows {
                    subflows.push(vec![
                        s.local.to_string(),
                        s.remote.to_string(),
                        s.state.clone(),
                        format_rtt(s.rtt_us),
                        s.cwnd.to_string(),
                        format!("{}/{}", s.addr_id, s.remote_addr_id),
                        if s.backup { "yes" } else { "no" }.to_string(),
                        s.bytes_sent.to_string(),
                        s.bytes_received.to_string(),
                    ]);
                }
                subflow_rows.push(first..subflows.rows.len());
            }
            let cw = conns.widths();
            let sw = subflows.widths();
            conns.write_header(&mut out, "", &cw);
            for (i, rows) in subflow_rows.into_iter().enumerate() {
                conns.write_row(&mut out, "", &cw, i);
                if let Some(m) = &self.connections[i].mptcp {
                    let addrs = |v: &[AddrStatus]| {
                        v.iter()
                            .map(|a| {
                                let echo = if a.echoed == Some(false) {
                                    " (no echo yet)"
                                } else {
                                    ""
                                };
                                format!("{}={}{echo}", a.addr_id, a.addr)
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let fb = if m.fallback { "  fallback" } else { "" };
                    let c = if m.peer_denies_join_initial {
                        "  (peer: no joins to its first address)"
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        out,
                        "{SUBFLOW_INDENT}mptcp v{}{fb}  announced [{}]  peer announced [{}]{c}",
                        m.version,
                        addrs(&m.announced),
                        addrs(&m.remote_addrs)
                    );
                }
                if !rows.is_empty() {
                    subflows.write_header(&mut out, SUBFLOW_INDENT, &sw);
                    for r in rows {
                        subflows.write_row(&mut out, SUBFLOW_INDENT, &sw, r);
                    }
                }
                for u in &self.connections[i].unused_paths {
                    let to = u.remote.map_or(String::new(), |r| format!(" -> {r}"));
                    let _ = writeln!(
                        out,
                        "{SUBFLOW_INDENT}unused path {}{to}: {}",
                        u.local, u.detail
                    );
                }
            }
        }

        if self.keys_redacted && self.connections.iter().any(|c| c.mptcp.is_some()) {
            out.push_str(
                "(MPTCP keys withheld: only root and mptun's user see them, in `status --json`)\n",
            );
        }

        out.push('\n');
        if self.services.is_empty() {
            out.push_str("services: none\n");
        } else {
            out.push_str("services:\n");
            let mut t = Table::new(&[
                ("KIND", Left),
                ("PORT", Right),
                ("CONNS", Right),
                ("BYTES", Right),
                ("SHA256", Left),
            ]);
            for s in &self.services {
                t.push(vec![
                    s.kind.clone(),
                    s.port.to_string(),
                    s.connections.to_string(),
                    s.bytes.to_string(),
                    s.sha256.clone().unwrap_or_else(|| "-".to_string()),
                ]);
            }
            let w = t.widths();
            t.write_header(&mut out, "", &w);
            for r in 0..t.rows.len() {
                t.write_row(&mut out, "", &w, r);
            }
        }

        if !self.paths.is_empty() {
            out.push_str("\npaths (local addresses):\n");
            let mut t = Table::new(&[
                ("LOCAL", Left),
                ("SUBFLOWS", Right),
                ("ESTAB", Right),
                ("BACKUP", Right),
                ("SENT", Right),
                ("RECEIVED", Right),
                ("RETRANS", Right),
            ]);
            for p in &self.paths {
                t.push(vec![
                    p.local.to_string(),
                    p.subflows.to_string(),
                    p.established.to_string(),
                    p.backup.to_string(),
                    p.bytes_sent.to_string(),
                    p.bytes_received.to_string(),
                    p.retransmitted_bytes.to_string(),
                ]);
            }
            t.write_all(&mut out);
        }

        let r = &self.relays;
        if r.limit > 0 {
            let _ = writeln!(
                out,
                "\nrelays: {} of at most {}, {} refused",
                r.active.len(),
                r.limit,
                r.refused
            );
            if !r.active.is_empty() {
                let mut t = Table::new(&[
                    ("SERVICE", Left),
                    ("CLIENT", Left),
                    ("TARGET", Left),
                    ("UPSTREAM", Left),
                    ("SUBFLOWS", Right),
                    ("UP", Right),
                    ("DOWN", Right),
                    ("AGE", Right),
                ]);
                for x in r.active.iter().take(TABLE_RELAYS) {
                    t.push(vec![
                        x.service.clone(),
                        x.client.to_string(),
                        x.target.clone(),
                        x.upstream.map_or("-".into(), |a| a.to_string()),
                        x.upstream
                            .map_or("-".into(), |_| x.upstream_subflows.to_string()),
                        x.bytes_up.to_string(),
                        x.bytes_down.to_string(),
                        format!("{:.0}s", x.age_s),
                    ]);
                }
                t.write_all(&mut out);
                if r.active.len() > TABLE_RELAYS {
                    let _ = writeln!(
                        out,
                        "... and {} more (`mptun status --json` lists them all)",
                        r.active.len() - TABLE_RELAYS
                    );
                }
            }
        }

        out.push('\n');
        let m = &self.memory;
        let _ = writeln!(
            out,
            "memory: {:.1} MiB of {:.0} MiB (peak {:.1} MiB), pressure {}; {} in TIME_WAIT",
            m.used_bytes as f64 / (1 << 20) as f64,
            m.budget_bytes as f64 / (1 << 20) as f64,
            m.peak_bytes as f64 / (1 << 20) as f64,
            m.pressure,
            m.time_wait
        );
        let nonzero: Vec<(&String, &u64)> =
            self.counters.iter().filter(|(_, v)| **v != 0).collect();
        if nonzero.is_empty() {
            out.push_str("counters: all zero\n");
        } else {
            out.push_str("counters:\n");
            let mut t = Table::new(&[("COUNTER", Left), ("VALUE", Right)]);
            for (k, v) in nonzero {
                t.push(vec![k.clone(), v.to_string()]);
            }
            let w = t.widths();
            for r in 0..t.rows.len() {
                t.write_row(&mut out, "  ", &w, r);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mptun_stack::State;
    use serde_json::Value;
    use std::time::Duration;

    fn info() -> ConnInfo {
        ConnInfo {
            local: "10.10.1.2:7".parse().unwrap(),
            remote: "10.1.0.1:41234".parse().unwrap(),
            state: State::Established,
            bytes_sent: 123,
            bytes_received: 456,
            bytes_retransmitted: 7,
            segments_retransmitted: 1,
            srtt: Some(Duration::from_micros(1234)),
            rto: Duration::from_millis(201),
            cwnd: 14480,
            ssthresh: 65535,
            snd_wnd: 64240,
            mss: 1448,
            sack: true,
            timestamps: true,
            congestion_control: "cubic",
            buffers: mptun_stack::BufferInfo {
                send_queued: 10,
                send_capacity: 65536,
                recv_queued: 0,
                recv_capacity: 131072,
                memory: 4242,
            },
            mptcp: None,
            subflows: vec![mptun_stack::SubflowInfo {
                local: "10.10.1.2:7".parse().unwrap(),
                remote: "10.1.0.1:41234".parse().unwrap(),
                state: State::Established,
                srtt: Some(Duration::from_micros(1234)),
                cwnd: 14480,
                bytes_sent: 123,
                bytes_received: 456,
                bytes_retransmitted: 7,
                local_id: 0,
                remote_id: 0,
                backup: false,
                established: true,
                stalled: false,
            }],
        }
    }

    fn sample() -> Status {
        let counters = counters_from(&Counters {
            packets_in: 10,
            drop_bad_checksum: 2,
            ..Counters::default()
        });
        Status {
            shards: Vec::new(),
            limits: Default::default(),
            reload: None,
            tun: "mptun0".into(),
            addresses: vec!["10.10.1.2".parse().unwrap(), "fd00::2".parse().unwrap()],
            uptime_s: 12.3,
            connections: vec![connection_from_info(ConnId(3), &info())],
            services: vec![
                ServiceStatus {
                    kind: "sink".into(),
                    port: 9,
                    connections: 2,
                    bytes: 268_435_456,
                    sha256: Some("ab".repeat(32)),
                },
                ServiceStatus {
                    kind: "echo".into(),
                    port: 7,
                    connections: 1,
                    bytes: 5,
                    sha256: None,
                },
            ],
            counters,
            keys_redacted: false,
            memory: MemoryStatus::default(),
            paths: vec![],
            relays: RelaysStatus::default(),
        }
    }

    #[test]
    fn json_keys_are_the_contract() {
        let s = sample();
        let v: Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["tun"], "mptun0");
        assert_eq!(v["addresses"][0], "10.10.1.2");
        assert_eq!(v["addresses"][1], "fd00::2");
        assert_eq!(v["uptime_s"], 12.3);

        let c = &v["connections"][0];
        assert_eq!(c["id"], 3);
        assert_eq!(c["local"], "10.10.1.2:7");
        assert_eq!(c["remote"], "10.1.0.1:41234");
        assert_eq!(c["state"], "ESTABLISHED");
        assert_eq!(c["bytes_sent"], 123);
        assert_eq!(c["bytes_received"], 456);
        assert!(c.get("mptcp").is_some(), "mptcp key must be present");
        assert_eq!(c["mptcp"], Value::Null);
        assert_eq!(c["buffers"]["send_queued"], 10);
        assert_eq!(c["buffers"]["send_capacity"], 65536);
        assert_eq!(c["buffers"]["recv_capacity"], 131072);
        assert_eq!(c["buffers"]["memory"], 4242);

        let sf = &c["subflows"][0];
        assert_eq!(c["subflows"].as_array().unwrap().len(), 1);
        assert_eq!(sf["local"], "10.10.1.2:7");
        assert_eq!(sf["remote"], "10.1.0.1:41234");
        assert_eq!(sf["state"], "ESTABLISHED");
        assert_eq!(v["connections"][0]["subflows"][0]["rtt_us"], 1234);
        assert_eq!(sf["cwnd"], 14480);
        assert_eq!(sf["backup"], false);
        assert_eq!(sf["addr_id"], 0);
        assert_eq!(sf["bytes_sent"], 123);
        assert_eq!(sf["bytes_received"], 456);
        assert_eq!(sf["retransmitted_bytes"], 7);

        let svc = &v["services"][0];
        assert_eq!(svc["kind"], "sink");
        assert_eq!(svc["port"], 9);
        assert_eq!(svc["connections"], 2);
        assert_eq!(svc["bytes"], 268_435_456);
        assert_eq!(svc["sha256"], "ab".repeat(32));
        assert!(v["services"][1].get("sha256").is_none());

        for key in [
            "packets_in",
            "packets_out",
            "segments_in",
            "segments_out",
            "retransmitted_segments",
            "retransmitted_bytes",
            "resets_sent",
            "resets_received",
            "drop_bad_checksum",
            "drop_no_listener",
            "drop_invalid_option",
            "drop_malformed",
        ] {
            assert!(v["counters"][key].is_u64(), "counter {key} missing");
        }
        assert_eq!(v["counters"]["packets_in"], 10);
        assert_eq!(v["counters"]["drop_bad_checksum"], 2);

        let text = serde_json::to_string(&s).unwrap();
        let back: Status = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn rtt_is_null_before_the_first_sample_and_ipv6_is_bracketed() {
        let mut i = info();
        i.srtt = None;
        i.subflows[0].srtt = None;
        i.local = "[fd00::2]:80".parse().unwrap();
        let v = serde_json::to_value(connection_from_info(ConnId(1), &i)).unwrap();
        assert_eq!(v["subflows"][0]["rtt_us"], Value::Null);
        assert_eq!(v["local"], "[fd00::2]:80");
    }

    #[test]
    fn counters_list_every_field() {
        let m = counters_from(&Counters::default());
        // As many entries as the struct has fields (its Debug output names each).
        let fields = format!("{:?}", Counters::default()).matches(": ").count();
        assert_eq!(m.len(), fields);
        assert!(m.values().all(|v| *v == 0));
        assert!(m.contains_key("drop_rst_queue_full"));
    }

    #[test]
    fn table_has_columns_values_and_nonzero_counters() {
        let t = sample().render_table();
        let first = t.lines().next().unwrap();
        assert!(first.contains("mptun0"), "{t}");
        assert!(first.contains("10.10.1.2, fd00::2"), "{t}");
        assert!(first.contains("12.3s"), "{t}");

        let header = t.lines().find(|l| l.starts_with("ID")).expect(&t);
        let cols: Vec<&str> = header.split_whitespace().collect();
        assert_eq!(
            cols,
            ["ID", "LOCAL", "REMOTE", "STATE", "SENT", "RECV", "MEM"]
        );
        let row = t
            .lines()
            .find(|l| l.trim_start().starts_with("3 "))
            .expect(&t);
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "3",
                "10.10.1.2:7",
                "10.1.0.1:41234",
                "ESTABLISHED",
                "123",
                "456",
                "4242B"
            ]
        );

        let sub_header = t
            .lines()
            .find(|l| l.starts_with(SUBFLOW_INDENT) && l.contains("RTT"))
            .expect(&t);
        let cols: Vec<&str> = sub_header.split_whitespace().collect();
        assert_eq!(
            cols,
            ["LOCAL", "REMOTE", "STATE", "RTT", "CWND", "IDS", "BACKUP", "SENT", "RECV"]
        );
        let sub = t
            .lines()
            .find(|l| l.starts_with(SUBFLOW_INDENT) && l.contains("1.234ms"))
            .expect(&t);
        assert!(sub.contains("14480"), "{t}");

        assert!(t.contains("sink"), "{t}");
        assert!(t.contains("268435456"), "{t}");
        assert!(t.contains(&"ab".repeat(32)), "{t}");
        assert!(
            t.lines()
                .any(|l| l.split_whitespace().eq(["packets_in", "10"])),
            "{t}"
        );
        assert!(t.contains("drop_bad_checksum"), "{t}");
        assert!(!t.contains("packets_out"), "zero counters are hidden:\n{t}");
    }

    #[test]
    fn keys_are_redacted_for_unprivileged_callers() {
        let mut i = info();
        i.mptcp = Some(MptcpInfo {
            version: 1,
            local_key: 0x0123_4567_89ab_cdef,
            remote_key: Some(0xfedc_ba98_7654_3210),
            local_token: 0xdead_beef,
            remote_token: Some(0x1234_5678),
            checksum: false,
            fallback: false,
            fallback_reason: None,
            announced: vec![],
            remote_addrs: vec![],
            scheduler: "overflow",
            peer_denies_join_initial: true,
        });
        let mut s = sample();
        s.connections = vec![connection_from_info(ConnId(3), &i)];
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["keys_redacted"], false);
        assert_eq!(v["connections"][0]["mptcp"]["scheduler"], "overflow");
        let m = &v["connections"][0]["mptcp"];
        assert_eq!(m["local_key"], "0123456789abcdef");
        assert_eq!(m["remote_key"], "fedcba9876543210");
        assert_eq!(m["peer_denies_join_initial"], true);
        assert!(!s.render_table().contains("withheld"));
        assert!(s
            .render_table()
            .contains("(peer: no joins to its first address)"));

        s.redact_keys();
        let text = serde_json::to_string(&s).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["keys_redacted"], true);
        let m = &v["connections"][0]["mptcp"];
        assert!(m.get("local_key").is_some_and(Value::is_null), "{m}");
        assert!(m.get("remote_key").is_some_and(Value::is_null), "{m}");
        assert_eq!(m["local_token"], "deadbeef", "tokens are public");
        assert_eq!(m["remote_token"], "12345678");
        for secret in ["0123456789abcdef", "fedcba9876543210"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(serde_json::from_str::<Status>(&text).unwrap(), s);
        let t = s.render_table();
        assert!(t.contains("MPTCP keys withheld"), "{t}");
        assert!(!t.contains("0123456789abcdef"), "{t}");

        // A status from before `keys_redacted` existed still parses.
        let mut old = serde_json::to_value(sample()).unwrap();
        old.as_object_mut().unwrap().remove("keys_redacted");
        let back: Status = serde_json::from_value(old).unwrap();
        assert!(!back.keys_redacted);
    }

    #[test]
    fn paths_and_relays_in_json_and_table() {
        let mut s = sample();
        s.paths = paths_from(&s.connections);
        let subflows: u64 = s.connections.iter().map(|c| c.subflows.len() as u64).sum();
        assert_eq!(s.paths.iter().map(|p| p.subflows).sum::<u64>(), subflows);
        let sent: u64 = s.connections[0].subflows.iter().map(|x| x.bytes_sent).sum();
        assert_eq!(s.paths.iter().map(|p| p.bytes_sent).sum::<u64>(), sent);
        s.relays = RelaysStatus {
            limit: 16384,
            refused: 2,
            active: vec![RelayStatus {
                service: "transparent".into(),
                client: "192.168.50.2:40000".parse().unwrap(),
                target: "10.50.0.2:443".into(),
                upstream: Some("10.20.1.2:49152".parse().unwrap()),
                upstream_subflows: 2,
                bytes_up: 100,
                bytes_down: 2000,
                age_s: 3.2,
            }],
        };
        let v: Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["relays"]["active"][0]["upstream"], "10.20.1.2:49152");
        assert_eq!(v["relays"]["refused"], 2);
        assert!(v["paths"][0]["local"].is_string());
        let back: Status = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        let t = s.render_table();
        assert!(t.contains("relays: 1 of at most 16384, 2 refused"), "{t}");
        assert!(t.contains("192.168.50.2:40000"), "{t}");
        assert!(t.contains("10.20.1.2:49152"), "{t}");
        assert!(t.contains("paths (local addresses):"), "{t}");
    }

    /// Found by review: a SOCKS5 client's target name may hold control
    /// characters, and the table printed them raw to the terminal of
    /// whoever ran `mptun status` (escape sequences, spoofed lines).
    #[test]
    fn a_peers_text_reaches_the_table_escaped() {
        let mut s = sample();
        s.relays = RelaysStatus {
            limit: 16,
            refused: 0,
            active: vec![RelayStatus {
                service: "socks5".into(),
                client: "192.168.50.2:40000".parse().unwrap(),
                target: "evil\u{1b}]0;owned\u{7}\r\nfake line\u{202e}:80".into(),
                upstream: None,
                upstream_subflows: 0,
                bytes_up: 0,
                bytes_down: 0,
                age_s: 1.0,
            }],
        };
        let t = s.render_table();
        assert!(
            !t.contains('\u{1b}') && !t.contains('\r') && !t.contains('\u{202e}'),
            "{t:?}"
        );
        assert!(!t.contains("\nfake line"), "{t}");
        assert!(
            t.contains("evil\\u{1b}]0;owned\\u{7}\\u{d}\\u{a}fake line\\u{202e}:80"),
            "{t}"
        );
    }

    #[test]
    fn table_of_an_idle_daemon() {
        let s = Status {
            shards: Vec::new(),
            limits: Default::default(),
            reload: None,
            tun: "mptun0".into(),
            addresses: vec![],
            uptime_s: 0.0,
            connections: vec![],
            services: vec![],
            counters: counters_from(&Counters::default()),
            keys_redacted: false,
            memory: MemoryStatus::default(),
            paths: vec![],
            relays: RelaysStatus::default(),
        };
        let t = s.render_table();
        assert!(t.contains("connections: none"), "{t}");
        assert!(t.contains("services: none"), "{t}");
        assert!(t.contains("counters: all zero"), "{t}");
    }
}
