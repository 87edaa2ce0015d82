//! The `Stack`: the engine's whole surface. Demultiplexes packets to connections,
//! runs their timers, queues their output and reports events to the application.

use crate::config::Config;
use crate::conn::Connection;
pub use crate::demux::ConnId;
use crate::demux::{ConnTable, FourTuple};
use crate::mptcp::connection::{rst_reason, tcprst_option, MptcpConn, MptcpSettings, MptcpStats};
use crate::mptcp::connection::{version_alg, Phase};
use crate::mptcp::crypto;
use crate::mptcp::join::{self, JoinRequest, SynJoin};
use crate::tcp::hooks::OptionBytes;
use crate::tcp::isn::IsnGenerator;
pub use crate::tcp::state::CloseReason;
use crate::tcp::tcb::{RstReply, Tcb, TcbStats};
use crate::tcp::State;
use crate::time::Instant;
use crate::wire::mptcp::MptcpVersion;
use crate::wire::{self, IcmpMessage, IpRepr, SeqNumber, TcpFlags, TcpRepr, WireError};
use core::cmp::Reverse;
use core::fmt;
use core::time::Duration;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A listener accepted a connection (handshake complete).
    Accepted {
        id: ConnId,
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// An active open completed.
    Connected(ConnId),
    /// New data (or the peer's FIN) is ready for `recv`.
    Readable(ConnId),
    /// Send-buffer space became free after being full.
    Writable(ConnId),
    /// The connection has ended; the handle stays valid for `recv` of any
    /// remaining data until `release`.
    Closed { id: ConnId, reason: CloseReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// No connection with this handle (never existed, or released).
    InvalidConnection,
    /// Already listening on this port.
    AddrInUse,
    /// No local address to connect from (none configured for the remote's family).
    NoLocalAddress,
    /// All ephemeral ports to this remote are in use, or the connection table is full.
    Exhausted,
    /// Sending after `shutdown`, or on a connection that is closed.
    NotWritable,
    /// The peer closed its direction and every byte has been read.
    Finished,
    /// The connection was reset or aborted; no more data will come.
    Reset,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::InvalidConnection => "no such connection",
            Error::AddrInUse => "address in use",
            Error::NoLocalAddress => "no local address for that family",
            Error::Exhausted => "no free port or connection slot",
            Error::NotWritable => "connection not writable",
            Error::Finished => "peer closed the connection",
            Error::Reset => "connection reset",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Error {}

/// Stack-wide counters, exported by the daemon's `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets_in: u64,
    pub packets_out: u64,
    pub segments_in: u64,
    pub segments_out: u64,
    pub retransmitted_segments: u64,
    pub retransmitted_bytes: u64,
    pub resets_sent: u64,
    pub resets_received: u64,
    pub connections_accepted: u64,
    pub connections_opened: u64,
    pub drop_malformed: u64,
    pub drop_bad_checksum: u64,
    pub drop_not_for_us: u64,
    pub drop_no_listener: u64,
    pub drop_invalid_option: u64,
    pub drop_backlog_full: u64,
    pub drop_out_of_window: u64,
    pub drop_paws: u64,
    pub drop_ooo_overflow: u64,
    pub challenge_acks: u64,
    pub drop_unsupported_protocol: u64,
    pub drop_rst_queue_full: u64,
    /// ICMP / ICMPv6 echo requests to one of our addresses with a valid checksum.
    pub icmp_echo_requests: u64,
    pub icmp_echo_replies_sent: u64,
    /// ICMP / ICMPv6 messages other than echo requests (echo replies included).
    pub drop_icmp_other: u64,
    /// Echo requests dropped because too many replies were already waiting.
    pub drop_icmp_queue_full: u64,
    /// Echo requests whose reply would not fit the MTU (we do not fragment).
    pub drop_icmp_too_big: u64,
    /// Closed connections that ran MPTCP to the end, and those that fell back.
    pub mptcp_connections: u64,
    pub mptcp_fallbacks: u64,
    /// DSS checksum failures, and the MP_FAIL / infinite mapping exchange that
    /// follows them (RFC 8684 §3.7), as Linux counts them.
    pub mptcp_checksum_errors: u64,
    pub mptcp_mp_fail_tx: u64,
    pub mptcp_mp_fail_rx: u64,
    pub mptcp_infinite_map_tx: u64,
    pub mptcp_infinite_map_rx: u64,
    /// MP_JOIN SYNs accepted, joins refused (unknown token, limits: RST with
    /// MP_TCPRST), joins completed in either role, HMAC failures.
    pub mptcp_join_syn_rx: u64,
    pub mptcp_join_rejected: u64,
    pub mptcp_joins_established: u64,
    pub mptcp_join_hmac_failures: u64,
    /// Bytes sent again on another subflow after theirs died or stalled.
    pub mptcp_reinjected_bytes: u64,
    /// Data-level retransmission timeouts that sent data again (the DATA_ACK
    /// stalled although the subflows had delivered it).
    pub mptcp_data_retransmits: u64,
    pub mptcp_mp_prio_tx: u64,
    pub mptcp_mp_prio_rx: u64,
    /// ADD_ADDR sent (repeats included) and valid ones received; echoes of ours
    /// received; received ones dropped for a wrong HMAC; REMOVE_ADDR both ways.
    pub mptcp_add_addr_tx: u64,
    pub mptcp_add_addr_rx: u64,
    pub mptcp_add_addr_echo_rx: u64,
    pub mptcp_add_addr_hmac_failures: u64,
    pub mptcp_rm_addr_tx: u64,
    pub mptcp_rm_addr_rx: u64,
    /// Connections opened again with v0 after their v1 SYN got plain TCP back.
    pub mptcp_v0_retries: u64,
}

impl Counters {
    fn add_mptcp(&mut self, st: &MptcpStats) {
        self.mptcp_checksum_errors += st.checksum_errors;
        self.mptcp_mp_fail_tx += st.mp_fail_tx;
        self.mptcp_mp_fail_rx += st.mp_fail_rx;
        self.mptcp_infinite_map_tx += st.infinite_map_tx;
        self.mptcp_infinite_map_rx += st.infinite_map_rx;
        self.mptcp_join_syn_rx += st.join_syn_rx;
        self.mptcp_joins_established += st.joins_established;
        self.mptcp_join_hmac_failures += st.join_hmac_failures;
        self.mptcp_reinjected_bytes += st.reinjected_bytes;
        self.mptcp_data_retransmits += st.data_rtx;
        self.mptcp_mp_prio_tx += st.mp_prio_tx;
        self.mptcp_mp_prio_rx += st.mp_prio_rx;
        self.mptcp_add_addr_tx += st.add_addr_tx;
        self.mptcp_add_addr_rx += st.add_addr_rx;
        self.mptcp_add_addr_echo_rx += st.add_addr_echo_rx;
        self.mptcp_add_addr_hmac_failures += st.add_addr_hmac_failures;
        self.mptcp_rm_addr_tx += st.rm_addr_tx;
        self.mptcp_rm_addr_rx += st.rm_addr_rx;
    }

    fn add_tcb(&mut self, s: &TcbStats) {
        self.retransmitted_segments += s.segments_retransmitted;
        self.retransmitted_bytes += s.bytes_retransmitted;
        self.drop_paws += s.drop_paws;
        self.drop_out_of_window += s.drop_out_of_window;
        self.drop_ooo_overflow += s.drop_ooo_overflow;
        self.challenge_acks += s.challenge_acks;
    }
}

/// What MPTCP's path manager does with one of our addresses (Linux's endpoint
/// flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointFlags {
    /// Announce it (ADD_ADDR) on connections accepted on another address.
    pub signal: bool,
    /// Open a subflow from it on connections we initiate.
    pub subflow: bool,
    /// Subflows on it are backups (MP_JOIN / MP_PRIO B bit).
    pub backup: bool,
}

/// One subflow of a connection, for status displays and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct SubflowInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: State,
    pub srtt: Option<Duration>,
    pub cwnd: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub bytes_retransmitted: u64,
    /// MPTCP address ids of the local and remote address (0 for plain TCP).
    pub local_id: u8,
    pub remote_id: u8,
    pub backup: bool,
    /// The MP_JOIN handshake is done (always true for the first subflow).
    pub established: bool,
}

/// A snapshot of one connection for status displays and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: State,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub bytes_retransmitted: u64,
    pub segments_retransmitted: u64,
    pub srtt: Option<Duration>,
    pub rto: Duration,
    pub cwnd: usize,
    pub ssthresh: usize,
    pub snd_wnd: usize,
    pub mss: usize,
    pub sack: bool,
    pub timestamps: bool,
    pub congestion_control: &'static str,
    /// `None` for a plain TCP connection.
    pub mptcp: Option<MptcpInfo>,
    /// Every subflow, the first one first (a plain TCP connection has one).
    pub subflows: Vec<SubflowInfo>,
}

/// The MPTCP level of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MptcpInfo {
    pub version: u8,
    pub local_key: u64,
    pub remote_key: Option<u64>,
    pub local_token: u32,
    pub remote_token: Option<u32>,
    pub checksum: bool,
    pub fallback: bool,
    /// Why it fell back, if it did.
    pub fallback_reason: Option<String>,
    /// Our addresses announced on it: (address id, address, echoed by the peer).
    pub announced: Vec<(u8, IpAddr, bool)>,
    /// The peer's announced addresses: (address id, address, port).
    pub remote_addrs: Vec<(u8, IpAddr, Option<u16>)>,
}

/// Stateless RSTs waiting to go out are bounded; past this they are dropped.
const MAX_PENDING_RSTS: usize = 1024;
/// Echo replies waiting to go out are bounded; past this requests are dropped.
const MAX_PENDING_ECHO_REPLIES: usize = 256;
/// Ephemeral port range (IANA, RFC 6335).
const EPHEMERAL: core::ops::RangeInclusive<u16> = 49152..=65535;

#[derive(Debug, Clone, Copy)]
struct RstOut {
    local: SocketAddr,
    remote: SocketAddr,
    reply: RstReply,
    /// Options of a layered protocol (MPTCP's MP_FASTCLOSE and MP_TCPRST).
    extra: OptionBytes,
}

/// An echo reply to send: `src` is the address the request was sent to.
#[derive(Debug, Clone)]
struct EchoOut {
    src: IpAddr,
    dst: IpAddr,
    ident: u16,
    seq: u16,
    data: Vec<u8>,
}

#[derive(Debug, Default)]
struct Listener {
    /// Connections in SYN_RECEIVED for this port.
    pending: usize,
}

#[derive(Debug)]
struct Conn {
    c: Connection,
    /// Whether the connection sits in the transmit queue.
    queued: bool,
    /// Earliest timer entry of this connection still in the heap.
    armed: Option<Instant>,
    /// Listener port while the passive open is still pending.
    listener: Option<u16>,
    /// Whether the application ever heard of this connection.
    announced: bool,
}

/// The engine. See the crate documentation.
pub struct Stack {
    config: Config,
    rng: ChaCha8Rng,
    isn: IsnGenerator,
    addrs: Vec<IpAddr>,
    /// Per address (parallel to `addrs`): its MPTCP address id and flags.
    addr_meta: Vec<(u8, EndpointFlags)>,
    next_addr_id: u8,
    listeners: HashMap<u16, Listener>,
    conns: ConnTable<Conn>,
    next_id: u64,
    events: VecDeque<Event>,
    ready: VecDeque<ConnId>,
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    rsts: VecDeque<RstOut>,
    echoes: VecDeque<EchoOut>,
    counters: Counters,
    now: Instant,
    /// MPTCP tokens of live connections (unique; joins will look them up).
    tokens: HashMap<u32, ConnId>,
    /// Scratch list of due timers, kept to avoid an allocation per wake-up.
    due: Vec<(Instant, ConnId)>,
}

fn seg_len(seg: &TcpRepr<'_>) -> usize {
    seg.payload.len() + seg.flags.syn() as usize + seg.flags.fin() as usize
}

impl Stack {
    pub fn new(config: Config) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        Stack {
            config,
            rng,
            isn: IsnGenerator::new(secret),
            addrs: Vec::new(),
            addr_meta: Vec::new(),
            next_addr_id: 1,
            listeners: HashMap::new(),
            conns: ConnTable::new(),
            next_id: 1,
            events: VecDeque::new(),
            ready: VecDeque::new(),
            timers: BinaryHeap::new(),
            rsts: VecDeque::new(),
            echoes: VecDeque::new(),
            counters: Counters::default(),
            now: Instant::ZERO,
            due: Vec::new(),
            tokens: HashMap::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Answer for `addr` (packets to other addresses are dropped).
    pub fn add_address(&mut self, addr: IpAddr) {
        self.add_endpoint(addr, EndpointFlags::default());
    }

    /// Answer for `addr`, with what MPTCP's path manager may do with it (like a
    /// Linux `ip mptcp endpoint`). Adding a known address updates its flags.
    pub fn add_endpoint(&mut self, addr: IpAddr, flags: EndpointFlags) {
        match self.addrs.iter().position(|a| *a == addr) {
            Some(i) => {
                let backup = flags.backup;
                self.addr_meta[i].1 = flags;
                let _ = self.set_backup(addr, backup);
            }
            None => {
                let aid = self.next_addr_id;
                self.addrs.push(addr);
                self.addr_meta.push((aid, flags));
                // Ids are never reused while the stack lives (0 is the initial
                // subflow's address).
                self.next_addr_id = self.next_addr_id.saturating_add(1);
                self.use_new_endpoint(addr, aid, flags);
            }
        }
    }

    /// Stop answering for `addr`. MPTCP connections are told (REMOVE_ADDR) and
    /// lose the subflows on it; plain TCP connections on it are left to time out.
    pub fn remove_address(&mut self, addr: IpAddr) {
        self.withdraw_address(addr);
        if let Some(i) = self.addrs.iter().position(|a| *a == addr) {
            self.addrs.remove(i);
            self.addr_meta.remove(i);
        }
    }

    /// The MPTCP address id and flags of one of our addresses.
    pub fn endpoint(&self, addr: IpAddr) -> Option<(u8, EndpointFlags)> {
        let i = self.addrs.iter().position(|a| *a == addr)?;
        Some(self.addr_meta[i])
    }

    pub fn addresses(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// Accept connections to `port` on every local address.
    pub fn listen(&mut self, port: u16) -> Result<(), Error> {
        if port == 0 || self.listeners.contains_key(&port) {
            return Err(Error::AddrInUse);
        }
        self.listeners.insert(port, Listener::default());
        Ok(())
    }

    /// Stop accepting on `port`; established connections are unaffected.
    pub fn unlisten(&mut self, port: u16) {
        self.listeners.remove(&port);
    }

    fn tick(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    fn ephemeral_port(&mut self, local: IpAddr, remote: SocketAddr) -> Option<u16> {
        let span = (*EPHEMERAL.end() - *EPHEMERAL.start()) as u32 + 1;
        let start = self.rng.next_u32() % span;
        (0..span)
            .map(|i| *EPHEMERAL.start() + ((start + i) % span) as u16)
            .find(|&p| {
                let t = FourTuple {
                    local: SocketAddr::new(local, p),
                    remote,
                };
                !self.conns.contains_tuple(&t)
            })
    }

    /// Open a connection to `remote` from `local` (or the first local address of the
    /// remote's family) and an ephemeral port.
    pub fn connect(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> Result<ConnId, Error> {
        self.tick(now);
        if self.conns.len() >= self.config.max_connections {
            return Err(Error::Exhausted);
        }
        let local_ip = match local {
            Some(l) => l.ip(),
            None => *self
                .addrs
                .iter()
                .find(|a| a.is_ipv4() == remote.is_ipv4())
                .ok_or(Error::NoLocalAddress)?,
        };
        if local_ip.is_ipv4() != remote.is_ipv4() {
            return Err(Error::NoLocalAddress);
        }
        let port = match local.map(|l| l.port()) {
            Some(p) if p != 0 => p,
            _ => self
                .ephemeral_port(local_ip, remote)
                .ok_or(Error::Exhausted)?,
        };
        let tuple = FourTuple {
            local: SocketAddr::new(local_ip, port),
            remote,
        };
        if self.conns.contains_tuple(&tuple) {
            return Err(Error::AddrInUse);
        }
        let tcb = self.active_tcb(now, tuple.local, remote, 0);
        let c = if self.config.mptcp.enabled {
            let version = if self.config.mptcp.v1 {
                MptcpVersion::V1
            } else {
                MptcpVersion::V0
            };
            let key = self.new_key(version);
            Connection::mptcp(tcb, MptcpConn::client(version, key, &self.mptcp_settings()))
        } else {
            Connection::tcp(tcb)
        };
        let id = self.insert(tuple, c, None, true);
        self.counters.connections_opened += 1;
        self.touch(id, now);
        Ok(id)
    }

    fn insert(
        &mut self,
        tuple: FourTuple,
        c: Connection,
        listener: Option<u16>,
        announced: bool,
    ) -> ConnId {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        if let Some(mp) = &c.mp {
            self.tokens.insert(mp.local_token(), id);
        }
        let conn = Conn {
            c,
            queued: false,
            armed: None,
            listener,
            announced,
        };
        self.conns.insert(id, tuple, conn);
        id
    }

    /// An MPTCP key whose token no live connection uses (RFC 8684 §3.1).
    fn new_key(&mut self, version: MptcpVersion) -> u64 {
        let tokens = &self.tokens;
        crypto::generate_key(version_alg(version), &mut self.rng, |t| {
            tokens.contains_key(&t)
        })
    }

    fn mptcp_settings(&self) -> MptcpSettings {
        MptcpSettings {
            allow_v1: self.config.mptcp.v1,
            allow_v0: self.config.mptcp.v0,
            retry_v0: self.config.mptcp.retry_v0,
            scheduler: self.config.mptcp.scheduler,
            max_subflows: self.config.mptcp.max_subflows,
            checksum: self.config.mptcp.checksum,
            send_buffer: self.config.tcp.send_buffer,
            recv_buffer: self.config.tcp.recv_buffer,
        }
    }

    fn conn_mut(&mut self, id: ConnId) -> Result<&mut Conn, Error> {
        match self.conns.get_mut(id) {
            Some(c) if !c.c.tcb.is_released() => Ok(c),
            _ => Err(Error::InvalidConnection),
        }
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id).filter(|c| !c.c.tcb.is_released())
    }

    /// Queue data; returns bytes accepted (0 when the send buffer is full).
    pub fn send(&mut self, id: ConnId, data: &[u8]) -> Result<usize, Error> {
        let conn = self.conn_mut(id)?;
        let n = conn.c.send(data).ok_or(Error::NotWritable)?;
        if n > 0 {
            self.schedule(id);
        }
        Ok(n)
    }

    /// Read in-order data. `Ok(0)`: nothing yet. `Err(Finished)`: the peer's FIN has
    /// been read past. `Err(Reset)`: the connection was reset.
    pub fn recv(&mut self, id: ConnId, buf: &mut [u8]) -> Result<usize, Error> {
        let conn = self.conn_mut(id)?;
        let r = conn.c.recv(buf);
        let wants_ack = conn.c.wants_ack();
        if wants_ack {
            self.schedule(id);
        }
        match r {
            Ok(n) => Ok(n),
            Err(true) => Err(Error::Finished),
            Err(false) => Err(Error::Reset),
        }
    }

    /// Bytes that `send` would accept now.
    pub fn send_capacity(&self, id: ConnId) -> Result<usize, Error> {
        self.conn(id)
            .map(|c| c.c.send_capacity())
            .ok_or(Error::InvalidConnection)
    }

    /// Bytes ready for `recv`.
    pub fn recv_available(&self, id: ConnId) -> Result<usize, Error> {
        self.conn(id)
            .map(|c| c.c.recv_available())
            .ok_or(Error::InvalidConnection)
    }

    /// Close our direction once queued data is sent (half-close).
    pub fn shutdown(&mut self, id: ConnId) -> Result<(), Error> {
        let now = self.now;
        self.conn_mut(id)?.c.shutdown();
        self.touch(id, now);
        Ok(())
    }

    /// Send a RST and drop the connection at once.
    pub fn abort(&mut self, id: ConnId) -> Result<(), Error> {
        self.conn_mut(id)?.c.abort();
        self.flush_rsts(id);
        self.remove(id);
        Ok(())
    }

    /// The application is done with the handle: after this the stack finishes the
    /// close on its own (data still arriving is answered with RST) and frees it.
    pub fn release(&mut self, id: ConnId) -> Result<(), Error> {
        let now = self.now;
        self.conn_mut(id)?.c.release(now);
        self.flush_rsts(id);
        self.touch(id, now);
        Ok(())
    }

    pub fn state(&self, id: ConnId) -> Option<State> {
        self.conn(id).map(|c| c.c.state())
    }

    pub fn info(&self, id: ConnId) -> Option<ConnInfo> {
        let conn = &self.conn(id)?.c;
        let t = &conn.tcb;
        let mptcp = conn.mp.as_deref().map(|m| MptcpInfo {
            version: m.version().number(),
            local_key: m.local_key(),
            remote_key: m.remote_key(),
            local_token: m.local_token(),
            remote_token: m.remote_token(),
            checksum: m.checksum(),
            fallback: m.is_fallback(),
            fallback_reason: m.fallback_reason().map(|r| format!("{r:?}")),
            announced: m
                .announced()
                .iter()
                .map(|a| (a.id, a.addr, a.echoed))
                .collect(),
            remote_addrs: m
                .remote_addrs()
                .iter()
                .map(|a| (a.id, a.addr, a.port))
                .collect(),
        });
        let s = t.stats();
        // An MPTCP connection's bytes are the data level's (its subflows may carry
        // some twice); after a fallback the subflow's.
        let (bytes_sent, bytes_received) = match conn.mp.as_deref() {
            Some(m) if !m.is_fallback() => (m.data_bytes_acked(), m.data_bytes_received()),
            _ => (s.bytes_acked, s.bytes_received),
        };
        Some(ConnInfo {
            local: t.local(),
            remote: t.remote(),
            state: conn.state(),
            bytes_sent,
            bytes_received,
            bytes_retransmitted: s.bytes_retransmitted,
            segments_retransmitted: s.segments_retransmitted,
            srtt: t.srtt(),
            rto: t.rto(),
            cwnd: t.cwnd(),
            ssthresh: t.ssthresh(),
            snd_wnd: t.snd_wnd(),
            mss: t.mss(),
            sack: t.sack_enabled(),
            timestamps: t.timestamps_enabled(),
            congestion_control: t.cc_name(),
            mptcp,
            subflows: (0..conn.subflow_count())
                .map(|i| {
                    let t = conn.subflow_tcb(i);
                    let s = t.stats();
                    let sf = conn.mp.as_deref().map(|m| m.subflow(i));
                    SubflowInfo {
                        local: t.local(),
                        remote: t.remote(),
                        state: t.state(),
                        srtt: t.srtt(),
                        cwnd: t.cwnd(),
                        bytes_sent: s.bytes_acked,
                        bytes_received: s.bytes_received,
                        bytes_retransmitted: s.bytes_retransmitted,
                        local_id: sf.map_or(0, |f| f.local_id),
                        remote_id: sf.map_or(0, |f| f.remote_id),
                        backup: sf.is_some_and(|f| f.is_backup()),
                        established: sf.is_none_or(|f| f.join_established()),
                    }
                })
                .collect(),
        })
    }

    /// Handles of every connection not yet released.
    pub fn connections(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.announced && !c.c.tcb.is_released())
            .map(|(id, _)| id)
            .collect()
    }

    /// Whether `poll_transmit` may have something to send (a driver need not be
    /// woken otherwise).
    pub fn wants_transmit(&self) -> bool {
        !self.ready.is_empty() || !self.rsts.is_empty() || !self.echoes.is_empty()
    }

    /// Every TCB the stack holds, released ones (closing, TIME_WAIT) included.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// TCBs still exchanging data or FINs: everything but TIME_WAIT and CLOSED.
    /// A graceful shutdown can stop once this reaches zero.
    pub fn active_connection_count(&self) -> usize {
        self.conns
            .iter()
            .filter(|(_, c)| !matches!(c.c.tcb.state(), State::TimeWait | State::Closed))
            .count()
    }

    /// Stack-wide counters, including those of connections already freed.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters.clone();
        for (_, conn) in self.conns.iter() {
            c.add_tcb(conn.c.tcb.stats());
            for t in &conn.c.joins {
                c.add_tcb(t.stats());
            }
            if let Some(mp) = &conn.c.mp {
                c.add_mptcp(&mp.stats());
            }
        }
        c
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A packet read from the network (an IPv4 or IPv6 datagram).
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        self.handle_packet_with(now, packet, true);
    }

    /// Like [`handle_packet`](Self::handle_packet), but the TCP checksum is not
    /// verified: for a packet the local kernel hands over with checksum offload,
    /// whose checksum it computed or checked itself, or never computed because the
    /// packet did not leave the machine (the field then holds only a partial sum).
    /// Everything else, the IPv4 header checksum included, is checked as usual.
    pub fn handle_packet_checksum_offloaded(&mut self, now: Instant, packet: &[u8]) {
        self.handle_packet_with(now, packet, false);
    }

    fn handle_packet_with(&mut self, now: Instant, packet: &[u8], verify: bool) {
        self.tick(now);
        self.counters.packets_in += 1;
        let (ip, payload) = match IpRepr::parse(packet) {
            Ok(p) => p,
            Err(e) => {
                self.count_wire_error(e);
                return;
            }
        };
        if !self.addrs.contains(&ip.dst) {
            self.counters.drop_not_for_us += 1;
            return;
        }
        match ip.protocol {
            wire::IPPROTO_TCP => self.handle_tcp(now, &ip, payload, verify),
            wire::IPPROTO_ICMP if ip.dst.is_ipv4() => self.handle_icmp(&ip, payload),
            wire::IPPROTO_ICMPV6 if ip.dst.is_ipv6() => self.handle_icmp(&ip, payload),
            _ => self.counters.drop_unsupported_protocol += 1,
        }
    }

    fn count_wire_error(&mut self, e: WireError) {
        match e {
            WireError::BadChecksum => self.counters.drop_bad_checksum += 1,
            WireError::BadOptionLength | WireError::OptionOverrun => {
                self.counters.drop_invalid_option += 1
            }
            _ => self.counters.drop_malformed += 1,
        }
    }

    /// ICMP (IPv4) or ICMPv6 (IPv6) to one of our addresses: echo requests are
    /// answered, everything else is counted and dropped. Never sends ICMP errors.
    fn handle_icmp(&mut self, ip: &IpRepr, bytes: &[u8]) {
        let echo = match IcmpMessage::parse(ip.src, ip.dst, bytes) {
            Ok(IcmpMessage::EchoRequest(e)) => e,
            Ok(IcmpMessage::EchoReply(_) | IcmpMessage::Other { .. }) => {
                self.counters.drop_icmp_other += 1;
                return;
            }
            Err(e) => {
                self.count_wire_error(e);
                return;
            }
        };
        self.counters.icmp_echo_requests += 1;
        if !is_unicast(ip.src) {
            self.counters.drop_malformed += 1;
            return;
        }
        if wire::icmp::echo_packet_len(ip.dst, echo.data.len()) > self.config.tcp.mtu {
            self.counters.drop_icmp_too_big += 1;
            return;
        }
        if self.echoes.len() >= MAX_PENDING_ECHO_REPLIES {
            self.counters.drop_icmp_queue_full += 1;
            return;
        }
        self.echoes.push_back(EchoOut {
            src: ip.dst,
            dst: ip.src,
            ident: echo.ident,
            seq: echo.seq,
            data: echo.data.to_vec(),
        });
    }

    fn handle_tcp(&mut self, now: Instant, ip: &IpRepr, bytes: &[u8], verify: bool) {
        let seg = match TcpRepr::parse(ip.src, ip.dst, bytes, verify) {
            Ok(s) => s,
            Err(e) => {
                self.count_wire_error(e);
                return;
            }
        };
        self.counters.segments_in += 1;
        if seg.src_port == 0 || seg.dst_port == 0 || !is_unicast(ip.src) {
            self.counters.drop_malformed += 1;
            return;
        }
        let tuple = FourTuple {
            local: SocketAddr::new(ip.dst, seg.dst_port),
            remote: SocketAddr::new(ip.src, seg.src_port),
        };
        if seg.flags.rst() {
            self.counters.resets_received += 1;
        }
        if let Some(id) = self.conns.lookup(&tuple) {
            let conn = self
                .conns
                .get_mut(id)
                .expect("tuple map points at a live connection");
            if let Some(i) = conn.c.subflow_index(tuple.local, tuple.remote) {
                conn.c.on_segment(now, i, &seg);
                let retry = core::mem::take(&mut conn.c.retry_v0);
                self.flush_rsts(id);
                if retry {
                    self.reopen_v0(now, id);
                }
            }
            self.touch(id, now);
            return;
        }
        let f = seg.flags;
        if f.syn() && !f.ack() && !f.rst() && !f.fin() && self.config.mptcp.enabled {
            if let Some(join) = join::syn_join(&seg) {
                self.accept_join(now, tuple, &seg, join);
                return;
            }
        }
        if f.syn() && !f.ack() && !f.rst() && !f.fin() {
            if let Some(listener) = self.listeners.get(&seg.dst_port) {
                if listener.pending >= self.config.backlog
                    || self.conns.len() >= self.config.max_connections
                {
                    self.counters.drop_backlog_full += 1;
                    return;
                }
                self.accept_syn(now, tuple, &seg);
                return;
            }
        }
        self.counters.drop_no_listener += 1;
        if !f.rst() {
            // RFC 9293 §3.10.7.1: a segment to a closed port gets a RST.
            let reply = if f.ack() {
                RstReply {
                    seq: seg.ack,
                    ack: None,
                }
            } else {
                RstReply {
                    seq: SeqNumber(0),
                    ack: Some(seg.seq + seg_len(&seg)),
                }
            };
            self.queue_rst(tuple.local, tuple.remote, reply);
        }
    }

    /// The TCB of an active open (a connection, a join, a v0 retry whose ISN
    /// must be `iss_offset` away from the refused one's).
    fn active_tcb(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        iss_offset: usize,
    ) -> Tcb {
        let iss = self.isn.generate(now, local, remote) + iss_offset;
        let ts_offset = self.rng.next_u32();
        Tcb::connect(&self.config.tcp, local, remote, iss, ts_offset, now)
    }

    /// The TCB of a passive open (a new connection or a joined subflow).
    fn passive_tcb(&mut self, now: Instant, tuple: FourTuple, syn: &TcpRepr<'_>) -> Tcb {
        let iss = self.isn.generate(now, tuple.local, tuple.remote);
        let ts_offset = self.rng.next_u32();
        Tcb::accept(
            &self.config.tcp,
            tuple.local,
            tuple.remote,
            iss,
            ts_offset,
            now,
            syn,
        )
    }

    fn accept_syn(&mut self, now: Instant, tuple: FourTuple, syn: &TcpRepr<'_>) {
        let tcb = self.passive_tcb(now, tuple, syn);
        let settings = self.mptcp_settings();
        let version = self
            .config
            .mptcp
            .enabled
            .then(|| MptcpConn::syn_version(syn, &settings))
            .flatten();
        let mp = version.and_then(|v| {
            let key = self.new_key(v);
            MptcpConn::server(syn, key, &settings)
        });
        let c = match mp {
            Some(mp) => Connection::mptcp(tcb, mp),
            None => Connection::tcp(tcb),
        };
        let port = tuple.local.port();
        if let Some(l) = self.listeners.get_mut(&port) {
            l.pending += 1;
        }
        let id = self.insert(tuple, c, Some(port), false);
        self.touch(id, now);
    }

    /// The v1 SYN of connection `id` got plain TCP back and v0 is allowed: open
    /// it again, same 4-tuple, new ISN, offering v0 (RFC 8684 §3.1). Once.
    fn reopen_v0(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conns.get(id) else {
            return;
        };
        let (local, remote) = (conn.c.tcb.local(), conn.c.tcb.remote());
        if let Some(mp) = &conn.c.mp {
            self.tokens.remove(&mp.local_token());
        }
        // A new ISN well away from the refused one.
        let away = (self.rng.next_u32() | 1) as usize;
        let tcb = self.active_tcb(now, local, remote, away);
        let key = self.new_key(MptcpVersion::V0);
        let mut mp = MptcpConn::client(MptcpVersion::V0, key, &self.mptcp_settings());
        self.tokens.insert(mp.local_token(), id);
        self.counters.mptcp_v0_retries += 1;
        if let Some(conn) = self.conns.get_mut(id) {
            let mut tcb = tcb;
            if let Some(old) = conn.c.mp.as_deref_mut() {
                old.carry_over(&mut mp);
            }
            if conn.c.tcb.is_released() {
                tcb.mark_released();
            }
            conn.c = Connection::mptcp(tcb, mp);
        }
        self.touch(id, now);
    }

    /// Send the RSTs a connection decided on.
    fn flush_rsts(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.c.rsts.is_empty() {
            return;
        }
        let rsts = core::mem::take(&mut conn.c.rsts);
        for r in rsts {
            self.queue_rst_with(r.local, r.remote, r.reply, r.extra);
        }
    }

    /// A SYN with MP_JOIN (RFC 8684 §3.2): a new subflow of the connection whose
    /// token it names, if that connection takes one more; else RST with MP_TCPRST.
    fn accept_join(&mut self, now: Instant, tuple: FourTuple, syn: &TcpRepr<'_>, join: SynJoin) {
        let (token, remote_nonce, remote_id, remote_backup) = join;
        let target = self.tokens.get(&token).copied().filter(|&id| {
            self.conns.get(id).is_some_and(|c| {
                c.c.state() != State::Closed && c.c.mp.as_deref().is_some_and(|m| m.join_allowed())
            })
        });
        let Some(id) = target.filter(|_| self.conns.len() < self.config.max_connections) else {
            self.counters.mptcp_join_rejected += 1;
            let reason = if self.tokens.contains_key(&token) {
                rst_reason::ADMIN_PROHIBITED
            } else {
                rst_reason::MPTCP_ERROR
            };
            let reply = RstReply {
                seq: SeqNumber(0),
                ack: Some(syn.seq + seg_len(syn)),
            };
            self.queue_rst_with(tuple.local, tuple.remote, reply, tcprst_option(reason));
            return;
        };
        let tcb = self.passive_tcb(now, tuple, syn);
        let local_nonce = self.rng.next_u32();
        let (local_id, flags) = self.local_endpoint(id, tuple.local.ip());
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let Some(mp) = conn.c.mp.as_deref_mut() else {
            return;
        };
        mp.accept_join(&JoinRequest {
            remote_nonce,
            remote_id,
            remote_backup,
            local_nonce,
            local_id,
            local_backup: flags.backup,
        });
        conn.c.add_join(tcb);
        self.conns.alias(id, tuple);
        self.touch(id, now);
    }

    /// Address id and flags of our address `ip` as connection `id` sees it: 0
    /// for the address of its first subflow.
    fn local_endpoint(&self, id: ConnId, ip: IpAddr) -> (u8, EndpointFlags) {
        let (addr_id, flags) = self.endpoint(ip).unwrap_or_default();
        let first = self.conns.get(id).map(|c| c.c.tcb.local().ip());
        if first == Some(ip) {
            (0, flags)
        } else {
            (addr_id, flags)
        }
    }

    /// The path manager (like Linux's in-kernel one). Once a connection is
    /// established: on one we opened, open a subflow from every local `subflow`
    /// endpoint to the peer's address; on one we accepted, announce every
    /// `signal` endpoint. Whenever the peer announces an address: open a subflow
    /// to it, within `max_add_addr_accepted`. Always within `max_subflows`.
    fn run_path_manager(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let Some(mp) = conn.c.mp.as_deref_mut() else {
            return;
        };
        if mp.is_fallback() || mp.phase() != Phase::Established {
            return;
        }
        let (local0, remote0) = (conn.c.tcb.local(), conn.c.tcb.remote());
        let fresh = if mp.has_fresh_addrs() {
            mp.take_fresh_addrs()
        } else {
            Vec::new()
        };
        let first_time = !conn.c.pm_done;
        conn.c.pm_done = true;
        let client = mp.is_client();
        if first_time {
            let family = |a: &IpAddr| a.is_ipv4() == remote0.is_ipv4();
            let endpoints: Vec<(IpAddr, u8, EndpointFlags)> = self
                .addrs
                .iter()
                .zip(&self.addr_meta)
                .filter(|(a, _)| **a != local0.ip() && family(a))
                .map(|(a, (aid, f))| (*a, *aid, *f))
                .collect();
            for (ip, aid, flags) in endpoints {
                if client && flags.subflow {
                    self.open_join(now, id, ip, remote0, 0);
                } else if !client && flags.signal {
                    if let Some(mp) = self.conns.get_mut(id).and_then(|c| c.c.mp.as_deref_mut()) {
                        mp.announce(aid, ip);
                    }
                }
            }
        }
        let limit = self.config.mptcp.max_add_addr_accepted;
        for r in fresh {
            let accepted = self
                .conns
                .get_mut(id)
                .and_then(|c| c.c.mp.as_deref_mut())
                .is_some_and(|m| m.accept_addr(limit));
            if !accepted {
                break;
            }
            // Our address toward it: the first subflow's, or the first of its family.
            let local = if r.addr.is_ipv4() == local0.is_ipv4() {
                Some(local0.ip())
            } else {
                self.addrs
                    .iter()
                    .copied()
                    .find(|a| a.is_ipv4() == r.addr.is_ipv4())
            };
            if let Some(local) = local {
                let remote = SocketAddr::new(r.addr, r.port.unwrap_or(remote0.port()));
                self.open_join(now, id, local, remote, r.id);
            }
        }
    }

    /// Withdraw our address `addr` from every MPTCP connection (REMOVE_ADDR) and
    /// reset the subflows that use it; then stop answering for it.
    fn withdraw_address(&mut self, addr: IpAddr) {
        let Some((aid, _)) = self.endpoint(addr) else {
            return;
        };
        let ids: Vec<ConnId> = self.conns.iter().map(|(id, _)| id).collect();
        let now = self.now;
        for id in ids {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            let first = conn.c.tcb.local().ip() == addr;
            if let Some(mp) = conn.c.mp.as_deref_mut() {
                mp.withdraw(if first { 0 } else { aid });
            }
            conn.c.apply_pm();
            self.flush_rsts(id);
            self.touch(id, now);
        }
    }

    /// Mark our address `addr` backup or not: future subflows carry the B bit,
    /// existing ones send MP_PRIO (Linux: `ip mptcp endpoint change ... backup`).
    pub fn set_backup(&mut self, addr: IpAddr, backup: bool) -> Result<(), Error> {
        let i = self
            .addrs
            .iter()
            .position(|a| *a == addr)
            .ok_or(Error::NoLocalAddress)?;
        self.addr_meta[i].1.backup = backup;
        let ids: Vec<ConnId> = self.conns.iter().map(|(id, _)| id).collect();
        let now = self.now;
        for id in ids {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.c.set_local_backup(addr, backup);
            }
            self.touch(id, now);
        }
        Ok(())
    }

    /// A new endpoint at run time: announce it (`signal`) on connections we
    /// accepted, open subflows from it (`subflow`) on connections we opened.
    fn use_new_endpoint(&mut self, addr: IpAddr, aid: u8, flags: EndpointFlags) {
        if !self.config.mptcp.enabled || !(flags.signal || flags.subflow) {
            return;
        }
        let now = self.now;
        let ids: Vec<ConnId> = self.conns.iter().map(|(id, _)| id).collect();
        for id in ids {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            let remote0 = conn.c.tcb.remote();
            let Some(mp) = conn.c.mp.as_deref_mut() else {
                continue;
            };
            if mp.is_fallback()
                || mp.phase() != Phase::Established
                || addr.is_ipv4() != remote0.is_ipv4()
            {
                continue;
            }
            if mp.is_client() && flags.subflow {
                self.open_join(now, id, addr, remote0, 0);
            } else if !mp.is_client() && flags.signal {
                mp.announce(aid, addr);
                self.touch(id, now);
            }
        }
    }

    /// Open a subflow of connection `id` from our address `local_ip` to `remote`
    /// (the peer's address id `remote_id`).
    fn open_join(
        &mut self,
        now: Instant,
        id: ConnId,
        local_ip: IpAddr,
        remote: SocketAddr,
        remote_id: u8,
    ) {
        let allowed = self
            .conns
            .get(id)
            .and_then(|c| c.c.mp.as_deref())
            .is_some_and(|m| m.join_allowed());
        if !allowed || self.conns.len() >= self.config.max_connections {
            return;
        }
        let Some(port) = self.ephemeral_port(local_ip, remote) else {
            return;
        };
        let tuple = FourTuple {
            local: SocketAddr::new(local_ip, port),
            remote,
        };
        let tcb = self.active_tcb(now, tuple.local, remote, 0);
        let nonce = self.rng.next_u32();
        let (local_id, flags) = self.local_endpoint(id, local_ip);
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let Some(mp) = conn.c.mp.as_deref_mut() else {
            return;
        };
        mp.open_join(nonce, local_id, remote_id, flags.backup);
        conn.c.add_join(tcb);
        self.conns.alias(id, tuple);
        self.schedule(id);
        self.arm(id, now);
    }

    fn queue_rst(&mut self, local: SocketAddr, remote: SocketAddr, reply: RstReply) {
        self.queue_rst_with(local, remote, reply, OptionBytes::default());
    }

    fn queue_rst_with(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        reply: RstReply,
        extra: OptionBytes,
    ) {
        if self.rsts.len() >= MAX_PENDING_RSTS {
            self.counters.drop_rst_queue_full += 1;
            return;
        }
        self.rsts.push_back(RstOut {
            local,
            remote,
            reply,
            extra,
        });
    }

    /// Add the connection to the transmit queue.
    fn schedule(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(id) {
            if !conn.queued {
                conn.queued = true;
                self.ready.push_back(id);
            }
        }
    }

    /// After anything happened to a connection: report its events, free it if it
    /// is finished, queue it for transmission and re-arm its timer.
    fn touch(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let ev = conn.c.take_events();
        let released = conn.c.tcb.is_released();
        if ev.established {
            if let Some(port) = conn.listener.take() {
                if let Some(l) = self.listeners.get_mut(&port) {
                    l.pending = l.pending.saturating_sub(1);
                }
                self.counters.connections_accepted += 1;
                conn.announced = true;
                if !released {
                    self.events.push_back(Event::Accepted {
                        id,
                        local: conn.c.tcb.local(),
                        remote: conn.c.tcb.remote(),
                    });
                }
            } else if !released {
                self.events.push_back(Event::Connected(id));
            }
        }
        let announced = conn.announced;
        if announced && !released {
            if ev.readable {
                self.events.push_back(Event::Readable(id));
            }
            if ev.writable {
                self.events.push_back(Event::Writable(id));
            }
            if let Some(reason) = ev.closed {
                self.events.push_back(Event::Closed { id, reason });
            }
        }
        let state = conn.c.state();
        if state == State::Closed {
            if let Some(port) = conn.listener.take() {
                if let Some(l) = self.listeners.get_mut(&port) {
                    l.pending = l.pending.saturating_sub(1);
                }
            }
            // The 4-tuple is free again; the handle lives until released.
            self.conns.unbind_tuple(id);
            if released || !announced {
                self.remove(id);
                return;
            }
        }
        self.run_path_manager(id, now);
        self.schedule(id);
        self.arm(id, now);
    }

    fn arm(&mut self, id: ConnId, _now: Instant) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if let Some(at) = conn.c.poll_at() {
            if conn.armed.is_none_or(|a| at < a) {
                conn.armed = Some(at);
                self.timers.push(Reverse((at, id)));
            }
        }
    }

    fn remove(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.remove(id) {
            if let Some(mp) = &conn.c.mp {
                self.tokens.remove(&mp.local_token());
                self.counters.add_mptcp(&mp.stats());
                if mp.is_fallback() {
                    self.counters.mptcp_fallbacks += 1;
                } else if mp.remote_key().is_some() {
                    self.counters.mptcp_connections += 1;
                }
            }
            if let Some(port) = conn.listener {
                if let Some(l) = self.listeners.get_mut(&port) {
                    l.pending = l.pending.saturating_sub(1);
                }
            }
            // A freed connection's statistics stay in the stack's totals.
            self.counters.add_tcb(conn.c.tcb.stats());
            for t in &conn.c.joins {
                self.counters.add_tcb(t.stats());
            }
        }
    }

    /// Write the next packet to send into `buf` (at least the MTU long); its length.
    /// Stateless RSTs go first, then echo replies, then connection traffic.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.tick(now);
        let hop = self.config.hop_limit;
        while let Some(rst) = self.rsts.pop_front() {
            if let Some(len) = emit_rst(&rst, hop, buf) {
                self.counters.resets_sent += 1;
                self.count_out();
                return Some(len);
            }
        }
        while let Some(e) = self.echoes.pop_front() {
            match wire::emit_echo_reply(e.src, e.dst, hop, e.ident, e.seq, &e.data, buf) {
                Ok(len) => {
                    self.counters.icmp_echo_replies_sent += 1;
                    self.counters.packets_out += 1;
                    return Some(len);
                }
                // Only a `buf` shorter than the MTU gets here; the reply is lost.
                Err(_) => self.counters.drop_icmp_too_big += 1,
            }
        }
        while let Some(id) = self.ready.pop_front() {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            conn.queued = false;
            let sent = conn.c.poll_transmit(now, hop, buf);
            conn.queued = sent.is_some();
            if !conn.c.rsts.is_empty() {
                self.flush_rsts(id);
            }
            if let Some(t) = sent {
                self.ready.push_back(id);
                self.arm(id, now);
                self.count_out();
                return Some(t.len);
            }
            self.arm(id, now);
        }
        None
    }

    fn count_out(&mut self) {
        self.counters.packets_out += 1;
        self.counters.segments_out += 1;
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        let mut due = core::mem::take(&mut self.due);
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            due.push((at, id));
        }
        for &(at, id) in &due {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            if conn.armed == Some(at) {
                conn.armed = None;
            }
            if conn.c.poll_at().is_some_and(|t| t <= now) {
                conn.c.on_timeout(now);
                self.flush_rsts(id);
                self.touch(id, now);
            } else {
                self.arm(id, now);
            }
        }
        due.clear();
        self.due = due;
    }
}

fn is_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !(a.is_broadcast() || a.is_multicast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

fn emit_rst(rst: &RstOut, hop: u8, buf: &mut [u8]) -> Option<usize> {
    let mut r = TcpRepr::new(rst.local.port(), rst.remote.port());
    r.seq = rst.reply.seq;
    r.flags = TcpFlags(TcpFlags::RST);
    if let Some(ack) = rst.reply.ack {
        r.ack = ack;
        r.flags = TcpFlags(TcpFlags::RST | TcpFlags::ACK);
    }
    for (kind, data) in rst.extra.iter() {
        r.unknown.push(kind, data);
    }
    wire::emit_packet(rst.local.ip(), rst.remote.ip(), hop, &r, &[], buf).ok()
}
