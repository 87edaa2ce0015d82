//! The event loop around the engine: TUN in, engine, TUN out, timers.
//!
//! One task owns the TUN device. Each wake-up (a packet, the engine's timer, a
//! stream that queued work, a delayed packet of the fault injector) it drains every
//! packet the device has ready into the engine, runs the engine's timers, hands
//! events to the streams, and then writes out everything the engine wants to send.
//!
//! With TUN offloads (`Tun::offload`) a frame read from the device may be a TCP
//! super-packet, split into segments for the engine (`gso::split`), and the
//! engine's consecutive segments of one flow are written as one super-packet
//! (`gso::Coalescer`): one system call per up to 64 KiB instead of per segment.
//!
//! Device errors ([`classify`]): a transient one (ENOBUFS, ENOMEM, EINTR, EIO while
//! the link is down, or anything not known to be fatal) never ends the loop. It is
//! logged at WARN, at most once a second per direction with a count of the rest; a
//! frame that cannot be written is dropped (TCP retransmits), and reads that keep
//! failing are retried after a pause doubling from 1 ms to 100 ms, while timers
//! and streams are still served. Only an error that means the device is gone
//! (EBADFD, ENODEV, ENXIO, EBADF) ends it: [`DriverError::DeviceGone`]. A task that
//! panicked while holding the engine ends it too: [`DriverError::Internal`].

use crate::gso::{self, Coalescer, Commit};
use crate::pcap::PcapWriter;
use crate::shards::{Forwarded, Mesh};
use crate::socket::{Handle, Shared};
use crate::tun::Tun;
use mptun_stack::impair::{Link, LinkParams};
use mptun_stack::wire::TxChecksum;
use mptun_stack::{Instant, Steer};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// Packets read per wake-up (segments of super-packets count one by one) before
/// the engine's output is flushed, so a flood in one direction cannot starve the
/// other.
const MAX_BATCH: usize = 256;
/// How long the engine is still told its host queues after a batch last
/// left packets waiting (the device empties between batches now and then
/// even while the daemon cannot keep up).
const HOST_QUEUE_HOLD: core::time::Duration = core::time::Duration::from_millis(200);

/// Segments written between two readings of the clock.
const CLOCK_EVERY: usize = 64;

/// Segments the engine may put in one super-packet for the kernel to cut
/// (its 64 KiB bound comes first at an MTU of 1500).
const MAX_BURST: usize = 64;

/// Longest pause between two reads after read errors in a row.
const MAX_READ_BACKOFF: Duration = Duration::from_millis(100);

/// How often a recurring device error is logged.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// What an error of the TUN device means for the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Nothing to read, or no room to write, now (EAGAIN/EWOULDBLOCK): wait for
    /// the device to become ready.
    NotReady,
    /// Passing trouble, or an error about one frame: ENOBUFS, ENOMEM, EINTR, EIO
    /// (the link is down, e.g. while it flaps), EINVAL, and anything else not
    /// known to be fatal. Log, drop the frame or pause reading, go on.
    Transient,
    /// The device is gone or our descriptor no longer refers to it (EBADFD:
    /// the device was deleted; ENODEV, ENXIO, EBADF; or torn down by us): stop.
    Gone,
}

/// Classifies an error of a TUN read or write (see [`ErrorClass`]).
pub fn classify(e: &io::Error) -> ErrorClass {
    match e.kind() {
        io::ErrorKind::WouldBlock => return ErrorClass::NotReady,
        io::ErrorKind::Interrupted => return ErrorClass::Transient,
        // `Tun` answers NotConnected once it was torn down.
        io::ErrorKind::NotConnected => return ErrorClass::Gone,
        _ => {}
    }
    match e.raw_os_error() {
        Some(libc::EBADFD | libc::ENODEV | libc::ENXIO | libc::EBADF) => ErrorClass::Gone,
        Some(libc::EAGAIN) => ErrorClass::NotReady,
        _ => ErrorClass::Transient,
    }
}

/// Why [`Driver::run`] stopped before being asked to.
#[derive(Debug)]
pub enum DriverError {
    /// The TUN device is gone (deleted, or the descriptor unusable).
    DeviceGone(io::Error),
    /// A task panicked while holding the engine (the message, if known): its
    /// state cannot be trusted any more.
    Internal(String),
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::DeviceGone(e) => write!(f, "the TUN device is gone ({e})"),
            DriverError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for DriverError {}

/// A device error that recurs, logged at most once per [`ERROR_LOG_INTERVAL`]
/// with how many more there were.
#[derive(Debug)]
struct ErrorLog {
    what: &'static str,
    last: Option<std::time::Instant>,
    suppressed: u64,
    /// Errors since the operation last succeeded.
    in_a_row: u64,
}

impl ErrorLog {
    const fn new(what: &'static str) -> Self {
        ErrorLog {
            what,
            last: None,
            suppressed: 0,
            in_a_row: 0,
        }
    }

    fn report(&mut self, e: &io::Error, consequence: &str) {
        self.in_a_row += 1;
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < ERROR_LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            warn!(
                "{} failed: {e}; {consequence} ({} more since the last message)",
                self.what, self.suppressed
            );
        } else {
            warn!("{} failed: {e}; {consequence}", self.what);
        }
        self.last = Some(now);
        self.suppressed = 0;
    }

    /// The operation worked: note a recovery after errors.
    fn ok(&mut self) {
        if self.in_a_row > 0 {
            info!("{} works again after {} error(s)", self.what, self.in_a_row);
            self.in_a_row = 0;
        }
    }

    /// The pause before the next read after `in_a_row` errors: none after one
    /// (EINTR and the like), then 1 ms doubling up to [`MAX_READ_BACKOFF`].
    fn backoff(&self) -> Duration {
        match self.in_a_row {
            0 | 1 => Duration::ZERO,
            n => Duration::from_millis(1 << (n - 2).min(16)).min(MAX_READ_BACKOFF),
        }
    }
}

/// Fault injection on the packets to and from one stack address.
pub struct Impairment {
    pub addr: IpAddr,
    inbound: Link,
    outbound: Link,
}

impl Impairment {
    pub fn new(addr: IpAddr, params: LinkParams, seed: u64) -> Self {
        Impairment {
            addr,
            inbound: Link::new(params.clone(), seed),
            outbound: Link::new(params, seed.wrapping_add(1)),
        }
    }
}

/// A capture file, shared by the drivers of all shards.
pub type Pcap = Arc<Mutex<PcapWriter>>;

/// This driver's place among several shards (`crate::shards`).
pub struct Router {
    mesh: Arc<Mesh>,
    me: usize,
    /// Segments of 4-tuples this shard does not hold, read in the current
    /// batch: offered to the other shards once our lock is released.
    strays: Vec<Forwarded>,
    /// `--debug-misroute`: every other packet read from the TUN goes first
    /// to the next shard, as if the kernel had picked the wrong queue, and
    /// overtakes or falls behind its neighbours (tests).
    misroute: bool,
    /// Packets read from the TUN (for `misroute`).
    read: u64,
    /// The inbox's packets while they are handled (storage kept).
    inbox: VecDeque<Forwarded>,
}

impl Router {
    pub fn new(mesh: Arc<Mesh>, me: usize, misroute: bool) -> Self {
        Router {
            mesh,
            me,
            strays: Vec::new(),
            misroute,
            read: 0,
            inbox: VecDeque::new(),
        }
    }
}

pub struct Driver {
    handle: Handle,
    tun: Tun,
    pcap: Option<Pcap>,
    impairments: Vec<Impairment>,
    /// `None` when this is the only shard.
    router: Option<Router>,
    /// One frame read from the device.
    rx: Vec<u8>,
    /// The frame being built for the device out of the engine's packets.
    out: Coalescer,
    read_errors: ErrorLog,
    write_errors: ErrorLog,
    /// The engine may hand over super-packets (`Stack::poll_transmit_gso`):
    /// with offloads, and with nothing reading the packets on the way.
    tso: bool,
    /// No read before this (after read errors in a row).
    read_paused_until: Option<tokio::time::Instant>,
    /// The last time a batch left packets waiting in the device: the engine
    /// is told its host queues (`Stack::set_host_queue`) until a read finds
    /// the device empty `HOST_QUEUE_HOLD` after it.
    queued_at: Option<Instant>,
}

fn capture(pcap: &mut Option<Pcap>, pkt: &[u8]) {
    if let Some(p) = pcap {
        let r = p
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_packet(SystemTime::now(), pkt);
        if let Err(e) = r {
            warn!("pcap write failed, capture stopped: {e}");
            *pcap = None;
        }
    }
}

/// Destination and source address of a raw IP packet, if it parses that far.
fn addrs(pkt: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match pkt.first()? >> 4 {
        4 if pkt.len() >= 20 => {
            let s: [u8; 4] = pkt[12..16].try_into().ok()?;
            let d: [u8; 4] = pkt[16..20].try_into().ok()?;
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        6 if pkt.len() >= 40 => {
            let s: [u8; 16] = pkt[8..24].try_into().ok()?;
            let d: [u8; 16] = pkt[24..40].try_into().ok()?;
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        _ => None,
    }
}

impl Driver {
    pub fn new(
        handle: Handle,
        tun: Tun,
        pcap: Option<Pcap>,
        impairments: Vec<Impairment>,
        router: Option<Router>,
    ) -> Self {
        // Room for the largest frame the device can hand us.
        let mtu = usize::from(tun.mtu());
        let size = if tun.offload() {
            gso::MAX_FRAME
        } else {
            mtu.max(1500) + 64
        };
        let mut out = Coalescer::new(tun.offload(), mtu);
        // With offloads the kernel completes TCP checksums: the engine need
        // not sum every payload it sends. Not when something reads the
        // packets on the way (a capture, the fault injector): they see
        // complete checksums.
        let partial = tun.offload() && pcap.is_none() && impairments.is_empty();
        out.set_partial_checksums(partial);
        if partial {
            handle.lock().stack.set_tx_checksum(TxChecksum::Partial);
        }
        Driver {
            tso: partial,
            handle,
            tun,
            pcap,
            impairments,
            router,
            rx: vec![0; size],
            out,
            read_errors: ErrorLog::new("TUN read"),
            write_errors: ErrorLog::new("TUN write"),
            read_paused_until: None,
            queued_at: None,
        }
    }

    pub fn tun_mut(&mut self) -> &mut Tun {
        &mut self.tun
    }

    /// Run until `stop` turns true.
    pub async fn run(&mut self, mut stop: watch::Receiver<bool>) -> Result<(), DriverError> {
        loop {
            let stopped = async {
                while !*stop.borrow_and_update() {
                    if stop.changed().await.is_err() {
                        // The sender is gone: nobody can ask us to stop any more.
                        std::future::pending::<()>().await;
                    }
                }
            };
            if !self.turn(stopped).await? {
                return Ok(());
            }
        }
    }

    /// Run the loop for at most `grace`, or until no connection is still exchanging
    /// data or FINs, whichever comes first (graceful shutdown).
    pub async fn drain(&mut self, grace: Duration) -> Result<(), DriverError> {
        let end = tokio::time::Instant::now() + grace;
        while self.handle.lock().stack.active_connection_count() > 0 {
            if !self.turn(tokio::time::sleep_until(end)).await? {
                break;
            }
        }
        Ok(())
    }

    /// Stop if a task panicked while holding the engine.
    fn check_engine(&self) -> Result<(), DriverError> {
        if self.handle.is_poisoned() {
            return Err(DriverError::Internal(crate::panics::last().unwrap_or_else(
                || "a task panicked while holding the engine".to_string(),
            )));
        }
        Ok(())
    }

    /// One turn: wait for a packet, a timer, a stream's news or `stop`, then serve
    /// the engine. False when `stop` completed first.
    async fn turn(
        &mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<bool, DriverError> {
        self.check_engine()?;
        let deadline = self.next_deadline();
        let now = tokio::time::Instant::now();
        let paused = self.read_paused_until.filter(|&t| t > now);
        tokio::select! {
            r = self.tun.recv(&mut self.rx), if paused.is_none() => match r {
                Ok(n) => {
                    self.read_errors.ok();
                    self.drain_tun(n)?;
                }
                Err(e) => self.read_failed(e)?,
            },
            _ = sleep_until(paused.map(Into::into)) => {}
            _ = sleep_until(deadline) => {}
            _ = self.handle.notified() => {}
            _ = stop => return Ok(false),
        }
        self.check_engine()?;
        self.service().await?;
        self.handle.count_turn();
        Ok(true)
    }

    /// A read failed: stop if the device is gone, else log and pause reading.
    fn read_failed(&mut self, e: io::Error) -> Result<(), DriverError> {
        match classify(&e) {
            ErrorClass::NotReady => Ok(()),
            ErrorClass::Gone => Err(DriverError::DeviceGone(e)),
            ErrorClass::Transient => {
                self.read_errors.report(&e, "retrying");
                let pause = self.read_errors.backoff();
                self.read_paused_until =
                    (!pause.is_zero()).then(|| tokio::time::Instant::now() + pause);
                Ok(())
            }
        }
    }

    /// A write failed: stop if the device is gone, else log; the frame is dropped
    /// (TCP retransmits).
    fn write_failed(&mut self, e: io::Error) -> Result<(), DriverError> {
        match classify(&e) {
            ErrorClass::Gone => Err(DriverError::DeviceGone(e)),
            ErrorClass::NotReady | ErrorClass::Transient => {
                self.write_errors.report(&e, "frame dropped");
                Ok(())
            }
        }
    }

    fn next_deadline(&self) -> Option<std::time::Instant> {
        let s = self.handle.lock();
        let engine = s.stack.poll_timeout();
        let links = self
            .impairments
            .iter()
            .flat_map(|i| [i.inbound.next_delivery(), i.outbound.next_delivery()])
            .flatten()
            .min();
        let at = match (engine, links) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        at.map(|t| s.to_std(t))
    }

    /// The frame just read (`self.rx[..first]`) and every further one the device
    /// has ready (up to a batch), under one lock and one clock reading.
    fn drain_tun(&mut self, first: usize) -> Result<(), DriverError> {
        let handle = self.handle.clone();
        let mut s = handle.lock();
        let now = s.now();
        let mut n = first;
        let mut packets = 0;
        loop {
            packets += self.inbound(&mut s, now, n);
            if packets >= MAX_BATCH {
                self.queued_at = Some(now);
                s.stack.set_host_queue(true);
                return Ok(());
            }
            n = match self.tun.try_recv(&mut self.rx) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self
                        .queued_at
                        .is_some_and(|t| now.saturating_since(t) >= HOST_QUEUE_HOLD)
                    {
                        self.queued_at = None;
                        s.stack.set_host_queue(false);
                    }
                    return Ok(());
                }
                Err(e) => {
                    drop(s);
                    return self.read_failed(e);
                }
            };
        }
    }

    /// A frame read from the TUN (in `self.rx[..n]`): its packets to the engine.
    /// Returns how many packets it held.
    fn inbound(&mut self, s: &mut Shared, now: Instant, n: usize) -> usize {
        let Driver {
            tun,
            rx,
            pcap,
            impairments,
            router,
            ..
        } = self;
        if !tun.offload() {
            Self::deliver(s, pcap, impairments, router, now, &rx[..n], false);
            return 1;
        }
        // The capture and the fault injector need packets as on a wire, with
        // complete checksums; the engine alone can take the kernel's partial ones.
        let full = pcap.is_some() || !impairments.is_empty();
        if !full {
            if let Some((pkt, segments)) = gso::whole(&rx[..n]) {
                // Forwarded to another shard, it would be held as one packet
                // in a queue bounded in packets: only this shard's take it whole.
                let here = match router {
                    None => true,
                    Some(r) => !r.misroute && s.stack.steer(pkt) == Steer::Here,
                };
                if here {
                    s.stack.handle_super_packet(now, pkt, segments);
                    return segments;
                }
            }
        }
        let r = gso::split(&mut rx[..n], full, |pkt, checksum_ok| {
            Self::deliver(s, pcap, impairments, router, now, pkt, checksum_ok)
        });
        r.unwrap_or_else(|e| {
            debug!("TUN frame dropped: {e}");
            1
        })
    }

    /// Capture a packet from the TUN and hand it to the engine, or to the fault
    /// injector of its destination address. `checksum_ok`: the kernel vouches for
    /// the TCP checksum (offloads), so the engine need not verify it.
    fn deliver(
        s: &mut Shared,
        pcap: &mut Option<Pcap>,
        impairments: &mut [Impairment],
        router: &mut Option<Router>,
        now: Instant,
        pkt: &[u8],
        checksum_ok: bool,
    ) {
        capture(pcap, pkt);
        if !impairments.is_empty() {
            if let Some((_, dst)) = addrs(pkt) {
                if let Some(imp) = impairments.iter_mut().find(|i| i.addr == dst) {
                    imp.inbound.send(now, pkt);
                    return;
                }
            }
        }
        Self::input(s, router, now, pkt, checksum_ok, true);
    }

    /// A packet to this shard's engine, or on its way to the shard that
    /// holds its connection.
    fn input(
        s: &mut Shared,
        router: &mut Option<Router>,
        now: Instant,
        pkt: &[u8],
        checksum_ok: bool,
        from_tun: bool,
    ) {
        if let Some(r) = router {
            r.read += u64::from(from_tun);
            let copy = |owner_known| Forwarded {
                packet: pkt.to_vec(),
                checksum_ok,
                owner_known,
            };
            if r.misroute && from_tun && r.read % 2 == 0 {
                let next = (r.me + 1) % r.mesh.len();
                r.mesh.forward(next, copy(false));
                return;
            }
            match s.stack.steer(pkt) {
                Steer::Here => {}
                Steer::Join { token } => {
                    let owner = r.mesh.owner_of_token(token);
                    if owner != r.me {
                        r.mesh.forward(owner, copy(true));
                        return;
                    }
                }
                Steer::Stray => {
                    r.strays.push(copy(false));
                    return;
                }
            }
        }
        Self::to_engine(s, now, pkt, checksum_ok);
    }

    fn to_engine(s: &mut Shared, now: Instant, pkt: &[u8], checksum_ok: bool) {
        if checksum_ok {
            s.stack.handle_packet_checksum_offloaded(now, pkt);
        } else {
            s.stack.handle_packet(now, pkt);
        }
    }

    /// This batch's strays to the shards that hold them; those nobody holds,
    /// and the packets other shards forwarded to us, to our engine.
    fn exchange(&mut self, now: Instant) {
        let Some(r) = &mut self.router else {
            return;
        };
        let mut inbox = std::mem::take(&mut r.inbox);
        r.mesh.take_inbox(r.me, &mut inbox);
        if !inbox.is_empty() {
            let handle = self.handle.clone();
            let mut s = handle.lock();
            for f in &inbox {
                if f.owner_known {
                    Self::to_engine(&mut s, now, &f.packet, f.checksum_ok);
                } else {
                    Self::input(
                        &mut s,
                        &mut self.router,
                        now,
                        &f.packet,
                        f.checksum_ok,
                        false,
                    );
                }
            }
        }
        let Some(r) = &mut self.router else {
            return;
        };
        inbox.clear();
        r.inbox = inbox;
        let mut ours = Vec::new();
        for f in r.strays.drain(..) {
            match r.mesh.find_owner(r.me, &f.packet) {
                Some(k) => r.mesh.forward(
                    k,
                    Forwarded {
                        owner_known: true,
                        ..f
                    },
                ),
                None => ours.push(f),
            }
        }
        if !ours.is_empty() {
            let mut s = self.handle.lock();
            for f in &ours {
                Self::to_engine(&mut s, now, &f.packet, f.checksum_ok);
            }
        }
    }

    /// Timers, delayed packets, events, then every packet the engine wants to send.
    async fn service(&mut self) -> Result<(), DriverError> {
        let now = self.handle.lock().now();
        self.deliver_impaired(now).await?;
        self.exchange(now);
        {
            let mut s = self.handle.lock();
            s.stack.handle_timeout(now);
            s.dispatch_events();
        }
        loop {
            // Write under one lock while the device takes frames; only a full
            // device queue makes us release it and wait.
            let blocked = {
                let handle = self.handle.clone();
                let mut s = handle.lock();
                let r = self.transmit(&mut s, now);
                // Sending may have completed closes that streams wait on.
                s.dispatch_events();
                r?
            };
            if !blocked {
                return Ok(());
            }
            match self.tun.send(self.out.frame()).await {
                Ok(_) => self.write_errors.ok(),
                Err(e) => self.write_failed(e)?,
            }
            self.out.clear();
        }
    }

    /// Everything the engine wants to send, packet by packet into `self.out` and
    /// frame by frame to the device. True when the device could not take a frame
    /// (it is still in `self.out`, to be written once the device is writable).
    fn transmit(&mut self, s: &mut Shared, now: Instant) -> Result<bool, DriverError> {
        let mut t = now;
        let mut since_clock = 0;
        loop {
            if self.out.is_full() && !self.flush()? {
                return Ok(true);
            }
            // A fresh clock reading now and then (for timestamps and timers) on a
            // long run of segments; one per packet cost ~3 % of the CPU.
            if since_clock >= CLOCK_EVERY {
                t = s.now();
                since_clock = 0;
            }
            // A frame of the engine's own segments (TSO) when one can start
            // here; captures and impairments see segment by segment.
            let burst = if self.tso && self.out.is_empty() {
                MAX_BURST
            } else {
                1
            };
            if burst > 1 && self.pcap.is_none() && self.impairments.is_empty() {
                // A data segment's payload goes from the engine's buffer
                // into the device in the same write as its headers: no copy
                // into the frame. (Captures and impairments need packets
                // whole.)
                match self.transmit_parts(s, t, burst)? {
                    Parts::None => break,
                    Parts::Sent(segments) => {
                        since_clock += segments;
                        continue;
                    }
                    Parts::Blocked => return Ok(true),
                    Parts::Whole(tx) => {
                        since_clock += tx.segments;
                        if self.out.commit(tx.len, tx.segment_size) == Commit::Rejected
                            && !self.flush()?
                        {
                            return Ok(true);
                        }
                        continue;
                    }
                }
            }
            let Some(tx) = s.stack.poll_transmit_gso(t, self.out.slot(), burst) else {
                break;
            };
            let n = tx.len;
            since_clock += tx.segments;
            let pkt = self.out.packet(n);
            if !self.impairments.is_empty() {
                if let Some((src, _)) = addrs(pkt) {
                    if let Some(imp) = self.impairments.iter_mut().find(|i| i.addr == src) {
                        imp.outbound.send(now, pkt);
                        self.out.discard();
                        continue;
                    }
                }
            }
            capture(&mut self.pcap, pkt);
            if self.out.commit(n, tx.segment_size) == Commit::Rejected && !self.flush()? {
                return Ok(true);
            }
        }
        Ok(!self.out.is_empty() && !self.flush()?)
    }

    /// The engine's next packet into an empty `self.out`; a data segment's
    /// headers and its payload, held by the engine, written together.
    fn transmit_parts(
        &mut self,
        s: &mut Shared,
        now: Instant,
        burst: usize,
    ) -> Result<Parts, DriverError> {
        let Some(tx) = s.stack.poll_transmit_parts(now, self.out.slot(), burst) else {
            return Ok(Parts::None);
        };
        let (a, b) = tx.payload;
        let p = tx.packet;
        if a.is_empty() && b.is_empty() {
            return Ok(Parts::Whole(p));
        }
        if p.segment_size.is_none() {
            // One segment (a resend, say): copied in after all, so that the
            // segments after it may still join its frame.
            let slot = self.out.slot();
            slot[p.len..p.len + a.len()].copy_from_slice(a);
            slot[p.len + a.len()..p.len + a.len() + b.len()].copy_from_slice(b);
            return Ok(Parts::Whole(mptun_stack::TxPacket {
                len: tx.whole_len(),
                ..p
            }));
        }
        self.out
            .commit_headers(p.len, a.len() + b.len(), p.segment_size);
        let parts = [
            io::IoSlice::new(self.out.frame_headers()),
            io::IoSlice::new(a),
            io::IoSlice::new(b),
        ];
        match self.tun.try_send_vectored(&parts) {
            Ok(_) => self.write_errors.ok(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Written later, whole: the engine's buffer may change by then.
                self.out.fill_payload(&[a, b]);
                return Ok(Parts::Blocked);
            }
            Err(e) => self.write_failed(e)?,
        }
        self.out.clear();
        Ok(Parts::Sent(p.segments))
    }

    /// Write the frame in `self.out`. False when the device cannot take it now.
    fn flush(&mut self) -> Result<bool, DriverError> {
        match self.tun.try_send(self.out.frame()) {
            Ok(_) => self.write_errors.ok(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            // A frame the kernel refuses (the link is down, no buffers, ...) must
            // not stop the daemon; TCP retransmits.
            Err(e) => self.write_failed(e)?,
        }
        self.out.clear();
        Ok(true)
    }

    async fn deliver_impaired(&mut self, now: Instant) -> Result<(), DriverError> {
        let mut inbound = Vec::new();
        let mut outbound = Vec::new();
        for imp in &mut self.impairments {
            while let Some(p) = imp.inbound.pop_due(now) {
                inbound.push(p);
            }
            while let Some(p) = imp.outbound.pop_due(now) {
                outbound.push(p);
            }
        }
        if !inbound.is_empty() {
            let handle = self.handle.clone();
            let mut s = handle.lock();
            for p in &inbound {
                Self::input(&mut s, &mut self.router, now, p, false, false);
            }
        }
        for p in outbound {
            capture(&mut self.pcap, &p);
            self.write(&p).await?;
        }
        Ok(())
    }

    async fn write(&mut self, pkt: &[u8]) -> Result<(), DriverError> {
        let r = match self.tun.try_send_packet(pkt) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.tun.send_packet(pkt).await,
            r => r,
        };
        match r {
            Ok(_) => {
                self.write_errors.ok();
                Ok(())
            }
            // The kernel refusing one packet must not stop the daemon; TCP will
            // retransmit.
            Err(e) => self.write_failed(e),
        }
    }
}

/// What [`Driver::transmit_parts`] did.
enum Parts {
    /// The engine had nothing to send.
    None,
    /// A packet went, its payload from the engine's buffer: its segments.
    Sent(usize),
    /// The device could not take it: the frame waits in `out`, whole.
    Blocked,
    /// A packet whole in `out`'s slot (no payload, or one segment's copied
    /// in), not yet committed.
    Whole(mptun_stack::TxPacket),
}

async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn errors_are_classified() {
        for e in [libc::EAGAIN, libc::EWOULDBLOCK] {
            assert_eq!(classify(&os(e)), ErrorClass::NotReady, "{e}");
        }
        assert_eq!(
            classify(&io::Error::from(io::ErrorKind::WouldBlock)),
            ErrorClass::NotReady
        );
        for e in [
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EINTR,
            libc::EIO,
            libc::EINVAL,
            libc::EMSGSIZE,
            libc::EFAULT,
            libc::ENETDOWN,
            libc::EPERM,
        ] {
            assert_eq!(classify(&os(e)), ErrorClass::Transient, "{}", os(e));
        }
        assert_eq!(
            classify(&io::Error::from(io::ErrorKind::Interrupted)),
            ErrorClass::Transient
        );
        assert_eq!(classify(&io::Error::other("what")), ErrorClass::Transient);
        for e in [libc::EBADFD, libc::ENODEV, libc::ENXIO, libc::EBADF] {
            assert_eq!(classify(&os(e)), ErrorClass::Gone, "{}", os(e));
        }
        // What `Tun` answers once torn down.
        let torn = io::Error::new(io::ErrorKind::NotConnected, "TUN device was torn down");
        assert_eq!(classify(&torn), ErrorClass::Gone);
    }

    /// A task that panics while holding the engine stops the driver with an
    /// internal error (needs root for the TUN device; skipped otherwise).
    #[tokio::test]
    // The guard only keeps the other panicking test out, on this one thread.
    #[allow(clippy::await_holding_lock)]
    async fn a_panic_holding_the_engine_stops_the_driver() {
        use crate::socket::Shared;
        use crate::tun::{Tun, TunConfig};
        use mptun_stack::{Config, Stack};
        let root = crate::control::process_ids().is_ok_and(|(uid, _)| uid == 0);
        if !root || !std::path::Path::new("/dev/net/tun").exists() {
            eprintln!("skipped: needs root and /dev/net/tun");
            return;
        }
        let _serial = crate::panics::TEST_SERIAL
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let tun = Tun::create(&TunConfig {
            name: format!("mptp{}", std::process::id()),
            mtu: 1500,
            txqueuelen: 1000,
            routes: vec![],
            add_routes: false,
            offload: false,
            queues: 1,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let handle = Handle::new(Shared::new(Stack::new(Config::default())));
        crate::panics::install(handle.waker());
        let (_stop_tx, stop_rx) = watch::channel(false);
        let mut driver = Driver::new(handle.clone(), tun, None, vec![], None);
        let run = tokio::spawn(async move { driver.run(stop_rx).await });

        let h = handle.clone();
        let bad = tokio::spawn(async move {
            let _engine = h.lock();
            panic!("test panic holding the engine");
        });
        assert!(bad.await.unwrap_err().is_panic());
        assert!(handle.is_poisoned());
        // What any later user of the engine does (e.g. a stream being dropped).
        drop(handle.lock());
        let r = tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("the driver stops")
            .unwrap();
        match r {
            Err(DriverError::Internal(m)) => {
                assert!(m.contains("test panic holding the engine"), "{m}")
            }
            other => panic!("expected an internal error, got {other:?}"),
        }
    }

    #[test]
    fn read_backoff_doubles_up_to_a_limit_and_resets() {
        let mut log = ErrorLog::new("TUN read");
        let e = os(libc::ENOBUFS);
        let mut pauses = Vec::new();
        for _ in 0..12 {
            log.report(&e, "retrying");
            pauses.push(log.backoff().as_millis());
        }
        assert_eq!(pauses, [0, 1, 2, 4, 8, 16, 32, 64, 100, 100, 100, 100]);
        // Logged once, the rest counted.
        assert_eq!(log.suppressed, 11);
        log.ok();
        assert_eq!(log.backoff(), Duration::ZERO);
        for _ in 0..200 {
            log.report(&e, "retrying");
        }
        assert_eq!(log.backoff(), MAX_READ_BACKOFF);
    }
}
