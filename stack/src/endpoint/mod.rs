//! The `Stack`: the engine's whole surface. It owns the connections (each a
//! [`Connection`] in a slot of the demux table), takes packets in
//! (`input.rs`), sends what they and it decide (`output.rs`), runs their timers
//! (`timers.rs`), carries out what each connection returns and reports events
//! (`effects.rs`), runs MPTCP's path manager (`pm.rs`) and counts
//! (`counters.rs`). This file holds the state and the application calls.

mod cookies;
mod counters;
mod effects;
mod input;
mod limits;
mod memory;
mod monitor;
mod output;
mod pm;
mod random;
mod shared;
mod steer;
mod time_wait;
mod timers;
mod types;
mod unused;

pub use crate::conn::{
    BufferInfo, ConnInfo, EndedSubflow, LocalReset, MptcpInfo, PathEventKind, SubflowEnd,
    SubflowInfo, SubflowRef,
};
pub use counters::Counters;
pub use limits::RuntimeLimits;
pub use monitor::{PathEvent, PATH_EVENT_LIMIT};
pub use output::{TxPacket, TxParts};
pub use shared::SharedCounts;
pub use steer::Steer;
pub use types::{CloseReason, ConnId, ConnectOptions, EndpointFlags, Error, Event, Listen};
pub use unused::{UnusedPath, UnusedReason};

use crate::config::{Config, Shard};
use crate::conn::direct_read::DirectReader;
use crate::conn::Connection;
use crate::demux::{ConnTable, FourTuple};
use crate::memory::Pressure;
use crate::mptcp::level::version_alg;
use crate::mptcp::{crypto, DataLevel, MptcpSettings};
use crate::tcp::buffer::{CopyTo, FillWith, Reader, Room, With, Writer};
use crate::tcp::isn::IsnGenerator;
use crate::tcp::ratelimit::{ChallengeQuota, TokenBucket};
use crate::tcp::syncookie::CookieJar;
use crate::tcp::{State, Tcb};
use crate::time::Instant;
use crate::wire::mptcp::MptcpVersion;
use crate::wire::TcpRepr;
use cookies::SynAckQueue;
use core::cmp::Reverse;
use memory::SourceKey;

use output::{EchoOut, RstQueue};
use rand_core::Rng;
use random::Randomness;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Ephemeral port range (IANA, RFC 6335).
const EPHEMERAL: core::ops::RangeInclusive<u16> = 49152..=65535;

#[derive(Debug, Default)]
struct Listener {
    /// Connections in SYN_RECEIVED for this port.
    pending: usize,
    /// When this port last answered a SYN with a cookie.
    cookie_sent: Option<Instant>,
}

/// One of our addresses, with what MPTCP's path manager may do with it.
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    addr: IpAddr,
    /// MPTCP address id (RFC 8684 §3.4.1); never reused while the stack lives.
    id: u8,
    flags: EndpointFlags,
}

/// A connection and the stack's bookkeeping of it.
#[derive(Debug)]
struct Slot {
    conn: Connection,
    /// Whether the connection sits in the transmit queue.
    queued: bool,
    /// Earliest timer entry of this connection still in the heap.
    armed: Option<Instant>,
    /// Listener while the passive open is still pending.
    listener: Option<Listen>,
    /// Accepted as another address's stand-in ([`Listen::Transparent`]).
    transparent: bool,
    /// Whether the application ever heard of this connection.
    announced: bool,
    /// Heap bytes when last accounted (`memory.rs`).
    memory: usize,
    /// The source it counts against, if the peer opened it.
    source: Option<SourceKey>,
}

/// The engine. See the crate documentation.
pub struct Stack {
    config: Config,
    rng: Randomness,
    isn: IsnGenerator,
    cookies: CookieJar,
    endpoints: Vec<Endpoint>,
    next_addr_id: u8,
    listeners: HashMap<Listen, Listener>,
    /// Connections accepted by the transparent listener, still in the table.
    transparent_conns: usize,
    conns: ConnTable<Slot>,
    /// Connections reduced to their TIME_WAIT (`time_wait.rs`).
    time_wait: time_wait::TimeWaitTable,
    next_id: u64,
    events: VecDeque<Event>,
    path_events: monitor::PathEvents,
    /// Connections with something to send, each once, in turn.
    ready: VecDeque<ConnId>,
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    rsts: RstQueue,
    synacks: SynAckQueue,
    echoes: VecDeque<EchoOut>,
    counters: Counters,
    now: Instant,
    /// MPTCP tokens of live connections (unique; joins look them up).
    tokens: HashMap<u32, ConnId>,
    /// Scratch list of due timers, kept to avoid an allocation per wake-up.
    due: Vec<(Instant, ConnId)>,
    /// What others can make us send (`Config::limits`).
    challenge_quota: ChallengeQuota,
    rst_bucket: TokenBucket,
    echo_bucket: TokenBucket,
    /// Bytes the connections hold, the pressure that makes, and connections
    /// per source (`memory.rs`).
    memory: usize,
    /// The most `memory_used` has been.
    memory_peak: usize,
    pressure: Pressure,
    /// The host queues what arrives (`set_host_queue`).
    host_queue: bool,
    /// Connection counts kept with the other shards, if any.
    shared: Arc<SharedCounts>,
}

impl Stack {
    pub fn new(config: Config) -> Self {
        Self::sharing(config, Arc::new(SharedCounts::new()))
    }

    /// A stack that counts its connections against the limits together with
    /// the other stacks given the same `shared` (the daemon's shards).
    pub fn sharing(config: Config, shared: Arc<SharedCounts>) -> Self {
        let (mut rng, secrets) = Randomness::new(&config.seed, config.shard.index);
        let l = config.limits;
        let challenge_quota = ChallengeQuota::new(l.challenge_acks, rng.public.next_u64());
        Stack {
            challenge_quota,
            rst_bucket: TokenBucket::new(l.rsts, (l.rsts / 10).max(1)),
            echo_bucket: TokenBucket::new(l.echo_replies, (l.echo_replies / 10).max(1)),
            config,
            rng,
            isn: IsnGenerator::new(secrets.isn),
            cookies: CookieJar::new(secrets.cookie),
            endpoints: Vec::new(),
            next_addr_id: 1,
            listeners: HashMap::new(),
            transparent_conns: 0,
            conns: ConnTable::new(),
            time_wait: Default::default(),
            next_id: 1,
            events: VecDeque::new(),
            path_events: Default::default(),
            ready: VecDeque::new(),
            timers: BinaryHeap::new(),
            rsts: RstQueue::default(),
            synacks: SynAckQueue::default(),
            echoes: VecDeque::new(),
            counters: Counters::default(),
            now: Instant::ZERO,
            due: Vec::new(),
            tokens: HashMap::new(),
            memory: 0,
            memory_peak: 0,
            pressure: Pressure::None,
            host_queue: false,
            shared,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Accept connections to `port` on every local address.
    pub fn listen(&mut self, port: u16) -> Result<(), Error> {
        if port == 0 {
            return Err(Error::AddrInUse);
        }
        self.listen_on(Listen::Port(port))
    }

    /// Start a listener (see [`Listen`]).
    pub fn listen_on(&mut self, on: Listen) -> Result<(), Error> {
        if on == Listen::Port(0) || self.listeners.contains_key(&on) {
            return Err(Error::AddrInUse);
        }
        self.listeners.insert(on, Listener::default());
        Ok(())
    }

    /// Stop accepting on `port`; established connections are unaffected.
    pub fn unlisten(&mut self, port: u16) {
        self.unlisten_on(Listen::Port(port));
    }

    /// Stop a listener; established connections are unaffected.
    pub fn unlisten_on(&mut self, on: Listen) {
        self.listeners.remove(&on);
    }

    /// Whether `addr` is one of the stack's addresses.
    pub fn is_local(&self, addr: IpAddr) -> bool {
        self.endpoints.iter().any(|e| e.addr == addr)
    }

    /// The listener that would take a connection to `local`.
    fn listener_for(&self, local: SocketAddr) -> Listen {
        if self.is_local(local.ip()) {
            Listen::Port(local.port())
        } else {
            Listen::Transparent
        }
    }

    fn tick(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        if self.time_wait.poll_at().is_some_and(|t| t <= now) && self.time_wait.expire(now) > 0 {
            self.update_pressure();
        }
    }

    /// TIME_WAIT records held (connections reduced to what TIME_WAIT needs).
    pub fn time_wait_records(&self) -> usize {
        self.time_wait.len()
    }

    /// A free port of this shard's share of the ephemeral range (every
    /// `count`th, see `config::Shard`), from a random start.
    fn ephemeral_port(&mut self, local: IpAddr, remote: SocketAddr) -> Option<u16> {
        let Shard { index, count } = self.config.shard;
        let (count, index) = (u32::from(count.max(1)), u32::from(index));
        let range = (*EPHEMERAL.end() - *EPHEMERAL.start()) as u32 + 1;
        let span = range.saturating_sub(index).div_ceil(count);
        let start = self.rng.public.next_u32() % span.max(1);
        (0..span)
            .map(|i| *EPHEMERAL.start() + (((start + i) % span) * count + index) as u16)
            .find(|&p| {
                let t = FourTuple {
                    local: SocketAddr::new(local, p),
                    remote,
                };
                !self.conns.contains_tuple(&t) && !self.time_wait.contains(&t)
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
        self.connect_with(now, local, remote, ConnectOptions::default())
    }

    /// [`connect`](Self::connect) with choices of its own (an MPTCP
    /// connection's scheduler) instead of the stack's.
    pub fn connect_with(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        opts: ConnectOptions,
    ) -> Result<ConnId, Error> {
        self.tick(now);
        if let Err(why) = self.admit(remote.ip(), false) {
            self.refused(why);
            return Err(Error::Exhausted);
        }
        let local_ip = match local {
            Some(l) => l.ip(),
            None => self
                .endpoints
                .iter()
                .map(|e| e.addr)
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
            let mut settings = self.mptcp_settings();
            if let Some(k) = opts.scheduler {
                settings.scheduler = k;
            }
            Connection::mptcp(tcb, DataLevel::client(version, key, &settings))
        } else {
            Connection::tcp(tcb)
        };
        let id = self.insert(tuple, c, None, true);
        self.counters.connections_opened += 1;
        self.touch(id);
        Ok(id)
    }

    fn insert(
        &mut self,
        tuple: FourTuple,
        conn: Connection,
        listener: Option<Listen>,
        announced: bool,
    ) -> ConnId {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        if let Some(token) = conn.token() {
            self.tokens.insert(token, id);
        }
        let mut conn = conn;
        if self.pressure != Pressure::None {
            conn.set_pressure(self.pressure);
        }
        if self.host_queue {
            conn.set_host_queue(true);
        }
        let transparent = listener == Some(Listen::Transparent);
        self.transparent_conns += transparent as usize;
        let slot = Slot {
            conn,
            queued: false,
            armed: None,
            listener,
            transparent,
            announced,
            memory: 0,
            source: None,
        };
        self.conns.insert(id, tuple, slot);
        self.shared.conn_added();
        self.account(id);
        id
    }

    /// An MPTCP key whose token no live connection uses (RFC 8684 §3.1) and
    /// starts with the configured prefix.
    fn new_key(&mut self, version: MptcpVersion) -> u64 {
        let tokens = &self.tokens;
        let prefix = self.config.mptcp.token_prefix;
        crypto::generate_key(version_alg(version), &mut self.rng.keys, |t| {
            tokens.contains_key(&t) || prefix.is_some_and(|p| !p.matches(t))
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
            join_attempts: self.config.mptcp.join_attempts,
            join_refill: self.config.mptcp.join_refill,
            accept_v0_add_addr: self.config.mptcp.accept_v0_add_addr,
            deny_join_id0: self.config.mptcp.deny_join_id0,
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
        let ts_offset = self.rng.public.next_u32();
        Tcb::connect(&self.config.tcp, local, remote, iss, ts_offset, now)
    }

    /// The TCB of a passive open (a new connection or a joined subflow).
    fn passive_tcb(&mut self, now: Instant, tuple: FourTuple, syn: &TcpRepr<'_>) -> Tcb {
        let iss = self.isn.generate(now, tuple.local, tuple.remote);
        let ts_offset = self.rng.public.next_u32();
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

    /// The connection behind a handle the application still holds.
    fn conn_mut(&mut self, id: ConnId) -> Result<&mut Connection, Error> {
        match self.conns.get_mut(id) {
            Some(s) if !s.conn.is_released() => Ok(&mut s.conn),
            _ => Err(Error::InvalidConnection),
        }
    }

    fn conn(&self, id: ConnId) -> Option<&Connection> {
        self.conns
            .get(id)
            .map(|s| &s.conn)
            .filter(|c| !c.is_released())
    }

    /// Queue data; returns bytes accepted (0 when the send buffer is full).
    pub fn send(&mut self, id: ConnId, data: &[u8]) -> Result<usize, Error> {
        self.send_from(id, &mut { data })
    }

    /// Queue data written in place: `fill` is given [`Room`] in the
    /// connection's send buffer (a chunk's worth at a time, at most `max`
    /// bytes in all) and appends to it; a fill that leaves room unfilled ends
    /// the write. Returns the bytes queued, as [`send`](Self::send) does (0
    /// when the buffer is full: the connection then reports `Writable` once
    /// there is room). A relay reads its socket straight into the send
    /// buffer this way, with no copy of its own.
    pub fn send_with(
        &mut self,
        id: ConnId,
        max: usize,
        fill: impl FnMut(&mut Room<'_>),
    ) -> Result<usize, Error> {
        let n = self.send_from(id, &mut FillWith { max, f: fill })?;
        if n == 0 {
            // Storage may have moved even so (taken, then given back).
            self.account(id);
        }
        Ok(n)
    }

    fn send_from(&mut self, id: ConnId, w: &mut impl Writer) -> Result<usize, Error> {
        let n = self.conn_mut(id)?.send_from(w).ok_or(Error::NotWritable)?;
        if n > 0 {
            self.queue_for_transmit(id);
            self.account(id);
        }
        Ok(n)
    }

    /// Read in-order data. `Ok(0)`: nothing yet. `Err(Finished)`: the peer's FIN has
    /// been read past. `Err(Reset)`: the connection was reset.
    pub fn recv(&mut self, id: ConnId, buf: &mut [u8]) -> Result<usize, Error> {
        self.recv_into(id, &mut CopyTo::new(buf))
    }

    /// Read in-order data without copying it out: `f` is given the bytes in
    /// order, as slices of the connection's receive buffer, at most `max` in
    /// all, and returns how many of each it took (fewer than offered ends the
    /// read). Results as for [`recv`](Self::recv).
    pub fn recv_with(
        &mut self,
        id: ConnId,
        max: usize,
        f: impl FnMut(&[u8]) -> usize,
    ) -> Result<usize, Error> {
        self.recv_into(id, &mut With { max, f })
    }

    fn recv_into<R: Reader + ?Sized>(
        &mut self,
        id: ConnId,
        reader: &mut R,
    ) -> Result<usize, Error> {
        let now = self.now;
        let conn = self.conn_mut(id)?;
        let (r, fx) = conn.recv_into(now, reader);
        let wants_ack = conn.wants_ack();
        if !fx.is_empty() {
            self.apply_effects(id, now, fx, false);
            self.touch(id);
        } else if wants_ack {
            self.queue_for_transmit(id);
        }
        if matches!(r, Ok(n) if n > 0) {
            self.account(id);
        }
        match r {
            Ok(n) => Ok(n),
            Err(true) => Err(Error::Finished),
            Err(false) => Err(Error::Reset),
        }
    }

    /// Give connection `id` a reader of its bytes as they arrive (`None`
    /// takes it away): in-order bytes that would go to the front of its
    /// empty receive buffer are offered to it straight from the packet, and
    /// what it takes is read (no `readable` event, no copy into the buffer);
    /// ordinary reads still return what it declined. Returns the reader it
    /// had. The reader is dropped when the application releases the handle.
    pub fn set_direct_reader(
        &mut self,
        id: ConnId,
        r: Option<Box<dyn DirectReader>>,
    ) -> Result<Option<Box<dyn DirectReader>>, Error> {
        Ok(self.conn_mut(id)?.set_direct_reader(r))
    }

    /// Bytes that `send` would accept now.
    pub fn send_capacity(&self, id: ConnId) -> Result<usize, Error> {
        self.conn(id)
            .map(|c| c.send_capacity())
            .ok_or(Error::InvalidConnection)
    }

    /// Bytes ready for `recv`.
    pub fn recv_available(&self, id: ConnId) -> Result<usize, Error> {
        self.conn(id)
            .map(|c| c.recv_available())
            .ok_or(Error::InvalidConnection)
    }

    /// Close our direction once queued data is sent (half-close).
    pub fn shutdown(&mut self, id: ConnId) -> Result<(), Error> {
        self.conn_mut(id)?.shutdown();
        self.touch(id);
        Ok(())
    }

    /// Send a RST and drop the connection at once.
    pub fn abort(&mut self, id: ConnId) -> Result<(), Error> {
        let fx = self.conn_mut(id)?.abort();
        self.queue_own_rsts(fx.rsts);
        self.remove(id);
        Ok(())
    }

    /// The application is done with the handle: after this the stack finishes the
    /// close on its own (data still arriving is answered with RST) and frees it.
    pub fn release(&mut self, id: ConnId) -> Result<(), Error> {
        let now = self.now;
        let fx = self.conn_mut(id)?.release(now);
        self.apply_effects(id, now, fx, false);
        self.touch(id);
        Ok(())
    }

    pub fn state(&self, id: ConnId) -> Option<State> {
        self.conn(id).map(|c| c.state())
    }

    /// The connection's (local, remote) addresses: for a transparent
    /// listener's connection the local one is the destination the peer meant.
    pub fn endpoints_of(&self, id: ConnId) -> Option<(SocketAddr, SocketAddr)> {
        self.conn(id).map(|c| (c.local(), c.remote()))
    }

    pub fn info(&self, id: ConnId) -> Option<ConnInfo> {
        self.conn(id).map(|c| c.info())
    }

    /// The last joins of ours on connection `id` that never worked, oldest
    /// first (of the last `conn::ENDED_KEPT` subflows that ended).
    pub fn join_failures(&self, id: ConnId) -> Vec<EndedSubflow> {
        self.conn(id)
            .map(|c| {
                c.ended_subflows()
                    .iter()
                    .filter(|e| e.is_failed_join())
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Handles of every connection not yet released.
    pub fn connections(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, s)| s.announced && !s.conn.is_released())
            .map(|(id, _)| id)
            .collect()
    }

    /// Every connection the stack holds, released ones (closing, TIME_WAIT)
    /// included.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Connections still exchanging data or FINs: anything but TIME_WAIT and
    /// CLOSED. A graceful shutdown can stop once this reaches zero.
    pub fn active_connection_count(&self) -> usize {
        self.conns
            .iter()
            .filter(|(_, s)| s.conn.is_active())
            .count()
    }

    /// Stack-wide counters, including those of connections already freed.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters.clone();
        for (_, s) in self.conns.iter() {
            c.add_tcb(&s.conn.tcp_stats());
            if let Some(st) = s.conn.mptcp_stats() {
                c.add_mptcp(&st);
            }
        }
        c
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
