//! Output: stateless RSTs first, then SYN cookie SYN/ACKs, then ICMP echo
//! replies, then connections, one segment each in turn. Every queue is
//! bounded.

use super::{ConnId, Stack};
use crate::conn::RstOut;
use crate::tcp::tcb::PayloadRef;
use crate::time::Instant;
use crate::wire::{self, TcpFlags, TcpRepr};
use std::collections::VecDeque;
use std::net::IpAddr;

/// RSTs waiting to go out are bounded; past this they are dropped.
const MAX_PENDING_RSTS: usize = 1024;
/// Echo replies waiting to go out are bounded; past this requests are dropped.
pub(super) const MAX_PENDING_ECHO_REPLIES: usize = 256;

/// RSTs waiting to go out.
#[derive(Debug, Default)]
pub(super) struct RstQueue(VecDeque<RstOut>);

impl RstQueue {
    /// Queue `r`; false (dropped) when the queue is full.
    pub(super) fn push(&mut self, r: RstOut) -> bool {
        if self.0.len() >= MAX_PENDING_RSTS {
            return false;
        }
        self.0.push_back(r);
        true
    }

    fn pop(&mut self) -> Option<RstOut> {
        self.0.pop_front()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An echo reply to send: `src` is the address the request was sent to.
#[derive(Debug, Clone)]
pub(super) struct EchoOut {
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) ident: u16,
    pub(super) seq: u16,
    pub(super) data: Vec<u8>,
}

/// A packet [`Stack::poll_transmit_gso`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxPacket {
    /// Its length in bytes.
    pub len: usize,
    /// Set for a TCP super-packet of several segments, which the device (or
    /// [`wire::gso::segment`]) must cut into segments of this many payload
    /// bytes, the last one possibly shorter.
    pub segment_size: Option<usize>,
    /// TCP segments it stands for on the wire (1 unless a super-packet).
    pub segments: usize,
}

/// Where a packet's payload left out of it is: the connection, its
/// subflow, the bytes.
type HeldPayload = (ConnId, usize, PayloadRef);

/// A packet [`Stack::poll_transmit_parts`] wrote: its headers (or all of
/// it) in the buffer, and its payload where the connection holds it, in up
/// to two parts (both empty for a packet written whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxParts<'a> {
    /// `len` counts only what is in the buffer.
    pub packet: TxPacket,
    pub payload: (&'a [u8], &'a [u8]),
}

impl TxParts<'_> {
    /// The packet's whole length.
    pub fn whole_len(&self) -> usize {
        self.packet.len + self.payload.0.len() + self.payload.1.len()
    }
}

impl Stack {
    /// Write the next packet to send into `buf` (at least the MTU long); its length.
    /// RSTs go first, then cookie SYN/ACKs, echo replies, connection traffic.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.poll_transmit_gso(now, buf, 1).map(|t| t.len)
    }

    /// As [`poll_transmit`](Self::poll_transmit), for a device that segments
    /// TCP itself (TSO, a TUN with virtio-net headers): a connection's new
    /// data may come as one super-packet of up to `max_segments` segments (and
    /// at most 64 KiB, or `buf`'s length) with identical headers, so that its
    /// per-segment work is done once. The device sets each segment's
    /// sequence number, IP length and ID and checksums, and PSH and FIN on the
    /// last only, as for Linux's own TCP.
    pub fn poll_transmit_gso(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        max_segments: usize,
    ) -> Option<TxPacket> {
        self.next_packet(now, buf, max_segments, false)
            .map(|(t, _)| t)
    }

    /// As [`poll_transmit_gso`](Self::poll_transmit_gso), for a driver
    /// that writes a packet from several buffers (a gather write): a
    /// connection's data segment comes as its headers, written into `buf`
    /// (`TxParts::packet.len` their length), and its payload, borrowed from
    /// where the connection holds it, to be written after them — one copy
    /// of every byte sent fewer. Only with TCP checksums left to the device
    /// (`TxChecksum::Partial`); other packets are written whole, with no
    /// payload part.
    pub fn poll_transmit_parts(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        max_segments: usize,
    ) -> Option<TxParts<'_>> {
        loop {
            let (packet, held) = self.next_packet(now, buf, max_segments, true)?;
            let Some((id, sf, r)) = held else {
                return Some(TxParts {
                    packet,
                    payload: (&[], &[]),
                });
            };
            // Nothing changed the connection's buffers since it wrote the
            // headers: the same bytes are there. (Looked up twice: a borrow
            // kept on the path that loops would hold `self` for good.)
            let whole = |(a, b): (&[u8], &[u8])| a.len() + b.len() == r.len;
            if self.sent_payload(id, sf, r).is_some_and(whole) {
                return self
                    .sent_payload(id, sf, r)
                    .map(|payload| TxParts { packet, payload });
            }
            // Never: the segment would be lost (and sent again).
            debug_assert!(false, "no payload for {r:?} of {id:?}");
        }
    }

    fn sent_payload(&self, id: ConnId, sf: usize, r: PayloadRef) -> Option<(&[u8], &[u8])> {
        self.conns.get(id)?.conn.sent_payload(sf, r)
    }

    /// The next packet; with `by_ref`, a connection's data segment without
    /// its payload, and where that is.
    fn next_packet(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        max_segments: usize,
        by_ref: bool,
    ) -> Option<(TxPacket, Option<HeldPayload>)> {
        let one = |len| {
            let t = TxPacket {
                len,
                segment_size: None,
                segments: 1,
            };
            (t, None)
        };
        self.tick(now);
        let hop = self.config.hop_limit;
        while let Some(rst) = self.rsts.pop() {
            if let Some(len) = emit_rst(&rst, hop, buf) {
                self.counters.resets_sent += 1;
                self.count_out(1);
                return Some(one(len));
            }
        }
        if let Some(s) = self.synacks.pop() {
            let len = s.bytes().len();
            buf[..len].copy_from_slice(s.bytes());
            self.count_out(1);
            return Some(one(len));
        }
        while let Some(e) = self.echoes.pop_front() {
            match wire::emit_echo_reply(e.src, e.dst, hop, e.ident, e.seq, &e.data, buf) {
                Ok(len) => {
                    self.counters.icmp_echo_replies_sent += 1;
                    self.counters.packets_out += 1;
                    return Some(one(len));
                }
                // Only a `buf` shorter than the MTU gets here; the reply is lost.
                Err(_) => self.counters.drop_icmp_too_big += 1,
            }
        }
        if let Some(len) = self.time_wait.poll_transmit(now, hop, buf) {
            self.count_out(1);
            return Some(one(len));
        }
        while let Some(id) = self.ready.pop_front() {
            let Some(slot) = self.conns.get_mut(id) else {
                continue;
            };
            let sent = match by_ref {
                true => slot.conn.poll_transmit_by_ref(now, hop, buf, max_segments),
                false => slot
                    .conn
                    .poll_transmit(now, hop, buf, max_segments)
                    .map(|t| (t, 0)),
            };
            slot.queued = sent.is_some();
            if let Some((t, sf)) = sent {
                self.arm(id);
                self.account(id);
                self.ready.push_back(id);
                self.count_out(t.segments);
                let packet = TxPacket {
                    len: t.len,
                    segment_size: t.segment_size,
                    segments: t.segments,
                };
                return Some((packet, t.payload.map(|r| (id, sf, r))));
            }
            if !self.reduce_to_time_wait(id) {
                self.arm(id);
                self.account(id);
            }
        }
        None
    }

    /// A released connection whose subflows all wait out TIME_WAIT with
    /// nothing left to send becomes TIME_WAIT records (`time_wait.rs`), or
    /// goes at once if the table is full. Whether it went.
    fn reduce_to_time_wait(&mut self, id: ConnId) -> bool {
        let Some(states) = self.conns.get(id).and_then(|s| s.conn.time_wait_states()) else {
            return false;
        };
        let msl = self.config.tcp.msl;
        for st in &states {
            if !self.time_wait.insert(st, msl, self.config.max_time_wait) {
                self.counters.time_wait_overflow += 1;
            }
        }
        self.remove(id);
        true
    }

    /// A packet went out: as its segments on the wire, as for what comes in.
    fn count_out(&mut self, segments: usize) {
        self.counters.packets_out += segments as u64;
        self.counters.segments_out += segments as u64;
        self.counters.super_packets_out += u64::from(segments > 1);
    }

    /// Whether `poll_transmit` may have something to send (a driver need not be
    /// woken otherwise).
    pub fn wants_transmit(&self) -> bool {
        !self.ready.is_empty()
            || self.time_wait.wants_transmit()
            || !self.rsts.is_empty()
            || !self.synacks.is_empty()
            || !self.echoes.is_empty()
    }
}

fn emit_rst(rst: &RstOut, hop: u8, buf: &mut [u8]) -> Option<usize> {
    let (local, remote) = (rst.tuple.local, rst.tuple.remote);
    let mut r = TcpRepr::new(local.port(), remote.port());
    r.seq = rst.reply.seq;
    r.flags = TcpFlags(TcpFlags::RST);
    if let Some(ack) = rst.reply.ack {
        r.ack = ack;
        r.flags = TcpFlags(TcpFlags::RST | TcpFlags::ACK);
    }
    for (kind, data) in rst.extra.iter() {
        r.unknown.push(kind, data);
    }
    wire::emit_packet(local.ip(), remote.ip(), hop, &r, &[], buf).ok()
}
