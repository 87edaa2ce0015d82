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

use crate::gso::{self, Coalescer, Commit};
use crate::pcap::PcapWriter;
use crate::socket::{Handle, Shared};
use crate::tun::Tun;
use mptun_stack::impair::{Link, LinkParams};
use mptun_stack::Instant;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tracing::{debug, warn};

/// Packets read per wake-up (segments of super-packets count one by one) before
/// the engine's output is flushed, so a flood in one direction cannot starve the
/// other.
const MAX_BATCH: usize = 256;

/// Packets written between two readings of the clock.
const CLOCK_EVERY: usize = 64;

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

pub struct Driver {
    handle: Handle,
    tun: Tun,
    pcap: Option<PcapWriter>,
    impairments: Vec<Impairment>,
    /// One frame read from the device.
    rx: Vec<u8>,
    /// The frame being built for the device out of the engine's packets.
    out: Coalescer,
}

fn capture(pcap: &mut Option<PcapWriter>, pkt: &[u8]) {
    if let Some(p) = pcap {
        if let Err(e) = p.write_packet(SystemTime::now(), pkt) {
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
        pcap: Option<PcapWriter>,
        impairments: Vec<Impairment>,
    ) -> Self {
        // Room for the largest frame the device can hand us.
        let mtu = usize::from(tun.mtu());
        let size = if tun.offload() {
            gso::MAX_FRAME
        } else {
            mtu.max(1500) + 64
        };
        let out = Coalescer::new(tun.offload(), mtu);
        Driver {
            handle,
            tun,
            pcap,
            impairments,
            rx: vec![0; size],
            out,
        }
    }

    pub fn tun_mut(&mut self) -> &mut Tun {
        &mut self.tun
    }

    /// Run until `stop` turns true.
    pub async fn run(&mut self, mut stop: watch::Receiver<bool>) -> io::Result<()> {
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
    pub async fn drain(&mut self, grace: Duration) -> io::Result<()> {
        let end = tokio::time::Instant::now() + grace;
        while self.handle.lock().stack.active_connection_count() > 0 {
            if !self.turn(tokio::time::sleep_until(end)).await? {
                break;
            }
        }
        Ok(())
    }

    /// One turn: wait for a packet, a timer, a stream's news or `stop`, then serve
    /// the engine. False when `stop` completed first.
    async fn turn(&mut self, stop: impl std::future::Future<Output = ()>) -> io::Result<bool> {
        let deadline = self.next_deadline();
        tokio::select! {
            r = self.tun.recv(&mut self.rx) => {
                let n = r?;
                self.drain_tun(n)?;
            }
            _ = sleep_until(deadline) => {}
            _ = self.handle.notified() => {}
            _ = stop => return Ok(false),
        }
        self.service().await?;
        Ok(true)
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
    fn drain_tun(&mut self, first: usize) -> io::Result<()> {
        let handle = self.handle.clone();
        let mut s = handle.lock();
        let now = s.now();
        let mut n = first;
        let mut packets = 0;
        loop {
            packets += self.inbound(&mut s, now, n);
            if packets >= MAX_BATCH {
                return Ok(());
            }
            n = match self.tun.try_recv(&mut self.rx) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
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
            ..
        } = self;
        if !tun.offload() {
            Self::deliver(s, pcap, impairments, now, &rx[..n], false);
            return 1;
        }
        // The capture and the fault injector need packets as on a wire, with
        // complete checksums; the engine alone can take the kernel's partial ones.
        let full = pcap.is_some() || !impairments.is_empty();
        let r = gso::split(&mut rx[..n], full, |pkt, checksum_ok| {
            Self::deliver(s, pcap, impairments, now, pkt, checksum_ok)
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
        pcap: &mut Option<PcapWriter>,
        impairments: &mut [Impairment],
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
        if checksum_ok {
            s.stack.handle_packet_checksum_offloaded(now, pkt);
        } else {
            s.stack.handle_packet(now, pkt);
        }
    }

    /// Timers, delayed packets, events, then every packet the engine wants to send.
    async fn service(&mut self) -> io::Result<()> {
        let now = self.handle.lock().now();
        self.deliver_impaired(now).await?;
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
            self.tun.send(self.out.frame()).await?;
            self.out.clear();
        }
    }

    /// Everything the engine wants to send, packet by packet into `self.out` and
    /// frame by frame to the device. True when the device could not take a frame
    /// (it is still in `self.out`, to be written once the device is writable).
    fn transmit(&mut self, s: &mut Shared, now: Instant) -> io::Result<bool> {
        let mut t = now;
        for sent in 1usize.. {
            if self.out.is_full() && !self.flush()? {
                return Ok(true);
            }
            // A fresh clock reading now and then (for timestamps and timers) on a
            // long run of packets; one per packet cost ~3 % of the CPU.
            if sent % CLOCK_EVERY == 0 {
                t = s.now();
            }
            let Some(n) = s.stack.poll_transmit(t, self.out.slot()) else {
                break;
            };
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
            if self.out.commit(n) == Commit::Rejected && !self.flush()? {
                return Ok(true);
            }
        }
        Ok(!self.out.is_empty() && !self.flush()?)
    }

    /// Write the frame in `self.out`. False when the device cannot take it now.
    fn flush(&mut self) -> io::Result<bool> {
        match self.tun.try_send(self.out.frame()) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            // One frame the kernel refuses (e.g. no route back) must not stop the
            // daemon; TCP retransmits.
            Err(e) => debug!("TUN write failed: {e}"),
        }
        self.out.clear();
        Ok(true)
    }

    async fn deliver_impaired(&mut self, now: Instant) -> io::Result<()> {
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
            let mut s = self.handle.lock();
            for p in &inbound {
                s.stack.handle_packet(now, p);
            }
        }
        for p in outbound {
            capture(&mut self.pcap, &p);
            self.write(&p).await?;
        }
        Ok(())
    }

    async fn write(&mut self, pkt: &[u8]) -> io::Result<()> {
        match self.tun.try_send_packet(pkt) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.tun.send_packet(pkt).await.map(|_| ())
            }
            // The kernel refusing one packet (e.g. no route back) must not stop
            // the daemon; TCP will retransmit.
            Err(e) => {
                debug!("TUN write failed: {e}");
                Ok(())
            }
        }
    }
}

async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
