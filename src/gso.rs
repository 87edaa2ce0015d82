//! TUN offloads: the virtio-net header, splitting the kernel's TCP super-packets
//! into segments (receive), and coalescing the engine's segments into super-packets
//! (transmit).
//!
//! With `IFF_VNET_HDR` and `TUNSETOFFLOAD` (TSO4, TSO6, CSUM), every frame read from
//! or written to the TUN device starts with a 10-byte `virtio_net_hdr`. The kernel
//! then hands us TCP packets of up to 64 KiB that it did not segment (`gso_type`
//! TCPV4/TCPV6, `gso_size` = MSS) and packets whose transport checksum is only
//! partial (`NEEDS_CSUM`: the field holds the pseudo-header sum, the rest was never
//! computed because the packet was built on this machine). In the other direction
//! it accepts such packets from us and segments them itself, only when and where
//! it has to (often not at all: a veth forwards them whole).
//!
//! The engine never sees any of this: [`split`] turns a received frame back into
//! ordinary MTU-sized segments, in place, and [`Coalescer`] builds super-packets
//! out of the segments the engine emits, without copying their payloads. The pcap
//! capture and the fault injector see ordinary per-segment packets with complete
//! checksums.
//!
//! Pure functions and buffers: no I/O, no `unsafe`.

use mptun_stack::wire::checksum::{accumulate, checksum, fold, pseudo_header};
use mptun_stack::wire::gso::set_piece_headers;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Length of `struct virtio_net_hdr` (the TUN default; no `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;

/// Largest IP packet the TUN device may hand us with offloads on (64 KiB GSO
/// packets, IPv6's 40-byte header on top of a 65535-byte payload).
pub const MAX_FRAME: usize = VNET_HDR_LEN + 40 + 65_535;

/// Largest super-packet we build: an IPv4 total length (and, to keep one rule, an
/// IPv6 packet) of at most 65535 bytes, the kernel's default GSO limit.
const MAX_SUPER: usize = 65_535;

/// Longest IP + TCP header handled when splitting (IPv4 with options: 60 + 60).
const MAX_HDR: usize = 128;

pub const F_NEEDS_CSUM: u8 = 1;
pub const F_DATA_VALID: u8 = 2;
pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_TCPV6: u8 = 4;
pub const GSO_ECN: u8 = 0x80;

const IPPROTO_TCP: u8 = 6;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

/// `struct virtio_net_hdr`; its 16-bit fields are in the host's byte order (the
/// legacy virtio layout TUN uses unless told otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; VNET_HDR_LEN] = b.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let u = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }

    pub fn write(&self, b: &mut [u8]) {
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
    }
}

/// Why a received frame could not be split; it is dropped (TCP retransmits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    /// Shorter than a virtio-net header.
    NoHeader,
    /// A GSO type other than TCP over IPv4/IPv6 (e.g. UDP), which we never asked for.
    UnsupportedGso(u8),
    /// Lengths or offsets in the header do not fit the packet.
    Malformed,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SplitError::NoHeader => f.write_str("frame shorter than the virtio-net header"),
            SplitError::UnsupportedGso(t) => write!(f, "unsupported GSO type {t}"),
            SplitError::Malformed => f.write_str("GSO header does not match the packet"),
        }
    }
}

fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Source and destination address of an IPv4/IPv6 header (the caller checked the
/// version and that the fixed header is there).
fn ip_addrs(p: &[u8]) -> (IpAddr, IpAddr) {
    if p[0] >> 4 == 4 {
        let s: [u8; 4] = p[12..16].try_into().expect("4 bytes");
        let d: [u8; 4] = p[16..20].try_into().expect("4 bytes");
        (Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into())
    } else {
        let s: [u8; 16] = p[8..24].try_into().expect("16 bytes");
        let d: [u8; 16] = p[24..40].try_into().expect("16 bytes");
        (Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into())
    }
}

/// Recompute the IPv4 header checksum of `p` (header length from IHL).
fn fix_ipv4_checksum(p: &mut [u8]) {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    put_u16(p, 10, 0);
    let c = checksum(&p[..ihl]);
    put_u16(p, 10, c);
}

/// Complete TCP checksum of the segment `p` whose TCP header starts at `l4`.
fn fill_tcp_checksum(p: &mut [u8], l4: usize) {
    let (src, dst) = ip_addrs(p);
    put_u16(p, l4 + 16, 0);
    let len = (p.len() - l4) as u32;
    let acc = accumulate(pseudo_header(src, dst, IPPROTO_TCP, len), &p[l4..]);
    put_u16(p, l4 + 16, !fold(u64::from(acc)));
}

/// Is the transport protocol of the IP packet `p` (L4 header at `l4`) TCP?
fn is_tcp(p: &[u8], l4: usize) -> bool {
    match p.first().map(|b| b >> 4) {
        Some(4) => p.len() >= 20 && p[9] == IPPROTO_TCP && usize::from(p[0] & 0x0f) * 4 == l4,
        Some(6) => p.len() >= 40 && p[6] == IPPROTO_TCP && l4 == 40,
        _ => false,
    }
}

/// Turn one frame read from an offloading TUN device (virtio-net header first) into
/// ordinary IP packets and hand each to `deliver(packet, checksum_ok)`.
///
/// `checksum_ok` says the packet's TCP checksum need not be verified: the kernel
/// built the packet on this machine (`NEEDS_CSUM`) or checked it (`DATA_VALID`).
/// With `full_checksums` every packet leaves with a complete, valid checksum (for
/// the pcap capture and the fault injector, which must see packets as on a wire);
/// otherwise a TCP packet may keep its partial checksum field, flagged as ok.
/// Partial checksums of anything but TCP are always completed, so the engine can
/// verify them.
///
/// A TCP super-packet is split the way the kernel's own segmentation would: each
/// segment gets `gso_size` bytes of payload (the last one the rest), its sequence
/// number, IP length, IPv4 identification (+1 per segment) and header checksum; FIN
/// and PSH stay on the last segment, CWR on the first. The split works in place:
/// segment `i`'s headers are written over the tail of segment `i - 1`'s payload,
/// which `deliver` has finished with. Returns the number of packets delivered.
pub fn split(
    frame: &mut [u8],
    full_checksums: bool,
    mut deliver: impl FnMut(&[u8], bool),
) -> Result<usize, SplitError> {
    let hdr = VnetHdr::parse(frame).ok_or(SplitError::NoHeader)?;
    let pkt = &mut frame[VNET_HDR_LEN..];
    let gso = hdr.gso_type & !GSO_ECN;
    if gso == GSO_NONE {
        if hdr.flags & F_NEEDS_CSUM == 0 {
            deliver(pkt, hdr.flags & F_DATA_VALID != 0);
            return Ok(1);
        }
        let start = usize::from(hdr.csum_start);
        let field = start + usize::from(hdr.csum_offset);
        if field + 2 > pkt.len() {
            return Err(SplitError::Malformed);
        }
        if full_checksums || !is_tcp(pkt, start) || hdr.csum_offset != 16 {
            // The field holds the pseudo-header sum: summing from csum_start over
            // it and the rest completes the checksum (the kernel's CHECKSUM_PARTIAL).
            let c = !fold(u64::from(accumulate(0, &pkt[start..])));
            put_u16(pkt, field, c);
        }
        deliver(pkt, true);
        return Ok(1);
    }
    let Layout { l4, hlen, gso_size } = layout(gso, &hdr, pkt)?;
    let payload = pkt.len() - hlen;
    if payload <= gso_size {
        // Nothing to split: just this packet, with its checksum completed if asked.
        if full_checksums {
            fill_tcp_checksum(pkt, l4);
        }
        deliver(pkt, true);
        return Ok(1);
    }
    let mut head = [0u8; MAX_HDR];
    head[..hlen].copy_from_slice(&pkt[..hlen]);
    let seq0 = u32::from_be_bytes(head[l4 + 4..l4 + 8].try_into().expect("4 bytes"));
    let id0 = get_u16(&head, 4);
    let flags = head[l4 + 13];
    let n = payload.div_ceil(gso_size);
    for i in 0..n {
        let at = i * gso_size;
        let plen = gso_size.min(payload - at);
        let seg = &mut pkt[at..at + hlen + plen];
        if i > 0 {
            seg[..hlen].copy_from_slice(&head[..hlen]);
        }
        set_piece_headers(seg, l4, i, n, seq0.wrapping_add(at as u32), id0, flags);
        if full_checksums {
            fill_tcp_checksum(seg, l4);
        }
        deliver(seg, true);
    }
    Ok(n)
}

/// Where a TCP super-packet's headers end and how it is cut.
struct Layout {
    /// Where the TCP header starts.
    l4: usize,
    /// IP + TCP header length.
    hlen: usize,
    /// Payload per segment.
    gso_size: usize,
}

/// Check a TCP super-packet's virtio-net header (`gso`: its GSO type without
/// the ECN bit) against the packet.
fn layout(gso: u8, hdr: &VnetHdr, pkt: &[u8]) -> Result<Layout, SplitError> {
    let v6 = match gso {
        GSO_TCPV4 => false,
        GSO_TCPV6 => true,
        t => return Err(SplitError::UnsupportedGso(t)),
    };
    // The transport header starts at csum_start; its length is in the TCP header
    // (hdr_len is only a hint, often the whole linear part of the kernel's skb).
    let l4 = usize::from(hdr.csum_start);
    let version = if v6 { 6 } else { 4 };
    if pkt.first().map(|b| b >> 4) != Some(version)
        || !is_tcp(pkt, l4)
        || hdr.csum_offset != 16
        || pkt.len() < l4 + 20
    {
        return Err(SplitError::Malformed);
    }
    let tcph = usize::from(pkt[l4 + 12] >> 4) * 4;
    let hlen = l4 + tcph;
    let gso_size = usize::from(hdr.gso_size);
    if tcph < 20 || hlen > MAX_HDR || hlen > pkt.len() || gso_size == 0 {
        return Err(SplitError::Malformed);
    }
    // The IP length must cover exactly what was read.
    let ip_len = if v6 {
        usize::from(get_u16(pkt, 4)) + 40
    } else {
        usize::from(get_u16(pkt, 2))
    };
    if ip_len != pkt.len() {
        return Err(SplitError::Malformed);
    }
    Ok(Layout { l4, hlen, gso_size })
}

/// The TCP super-packet in `frame`, if it is one, for the engine to take
/// whole, as Linux's TCP takes what GRO merged: the kernel merges only
/// segments that continue one another with identical headers and options
/// (checked by its GRO, each segment's checksum verified first), so one
/// segment with all of their payload says the same to the engine at a
/// fraction of the per-segment cost. Not for the capture or the fault
/// injector, which must see packets as on the wire (`split`).
/// Also returns how many segments it holds.
pub fn whole(frame: &[u8]) -> Option<(&[u8], usize)> {
    let hdr = VnetHdr::parse(frame)?;
    let gso = hdr.gso_type & !GSO_ECN;
    if gso == GSO_NONE {
        return None;
    }
    let pkt = &frame[VNET_HDR_LEN..];
    let l = layout(gso, &hdr, pkt).ok()?;
    let payload = pkt.len() - l.hlen;
    (payload > l.gso_size).then(|| (pkt, payload.div_ceil(l.gso_size)))
}

/// The flow and header layout of the super-packet being built.
#[derive(Debug, Clone, Copy)]
struct Super {
    /// IP header length: where the TCP header starts.
    l4: usize,
    /// IP + TCP header length of every segment.
    hlen: usize,
    /// Payload of the first segment (or the engine's segment size for its
    /// own super-packet): every segment but the last has exactly this.
    gso_size: usize,
    /// Sequence number the next segment must start at.
    next_seq: u32,
    segs: usize,
    /// More segments may join (no short segment, PSH or size limit yet).
    open: bool,
}

/// What [`Coalescer::commit`] did with the packet the engine just wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// It started a new frame (the coalescer was empty).
    Started,
    /// It was appended to the super-packet being built.
    Joined,
    /// It cannot join: write out [`Coalescer::frame`], then [`Coalescer::clear`],
    /// which starts the next frame with it (it is kept aside meanwhile).
    Rejected,
}

/// Builds the frames written to the TUN device out of the engine's packets.
///
/// The engine writes each packet straight into [`Coalescer::slot`]. While a TCP
/// super-packet is being built, the slot starts `hlen` bytes before the end of it,
/// so a new segment's payload lands exactly where it belongs; its headers overwrite
/// the end of the previous payload, which is saved before and put back after. A
/// segment of the same flow that continues the sequence with identical headers
/// (ACK, window, options, IP fields; PSH allowed on the last) therefore joins
/// without a copy. A packet that cannot join is moved aside, and the frame must be
/// written before it starts the next one.
///
/// Without offloads (`offload == false`) every packet is its own frame, with no
/// virtio-net header: the device's plain `IFF_TUN | IFF_NO_PI` framing.
pub struct Coalescer {
    offload: bool,
    /// The engine leaves TCP checksums partial (`TxChecksum::Partial`): every
    /// TCP frame, alone or not, asks the kernel to complete its checksum.
    partial: bool,
    mtu: usize,
    /// `[virtio-net header | packet(s) | room for one more packet]`.
    buf: Vec<u8>,
    /// Bytes of IP packet after the header; 0 when empty.
    len: usize,
    /// Where the engine's last packet was written (index into `buf`).
    slot_at: usize,
    /// The bytes the slot's packet headers overwrote.
    saved: [u8; MAX_HDR],
    saved_len: usize,
    cur: Option<Super>,
    /// A rejected packet, waiting for the frame to be written, and its
    /// segment size if the engine made it a super-packet.
    spill: Vec<u8>,
    spill_segment_size: Option<usize>,
    /// The frame's packet came as its headers alone, this long
    /// ([`commit_headers`](Self::commit_headers)): its payload is written
    /// from where the engine holds it.
    headers_only: Option<usize>,
}

impl Coalescer {
    /// `mtu`: the largest packet the engine writes.
    pub fn new(offload: bool, mtu: usize) -> Coalescer {
        let size = VNET_HDR_LEN + MAX_SUPER + mtu.max(1500) + 64;
        Coalescer {
            offload,
            partial: false,
            mtu: mtu.max(1500) + 64,
            buf: vec![0; size],
            len: 0,
            slot_at: VNET_HDR_LEN,
            saved: [0; MAX_HDR],
            saved_len: 0,
            cur: None,
            spill: Vec::new(),
            spill_segment_size: None,
            headers_only: None,
        }
    }

    /// Whether the engine's TCP segments carry only the pseudo-header sum in
    /// their checksum field (with offloads only: the kernel completes it).
    pub fn set_partial_checksums(&mut self, partial: bool) {
        self.partial = partial && self.offload;
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the frame can take no further packet: write it out first.
    pub fn is_full(&self) -> bool {
        self.len > 0 && !self.cur.is_some_and(|c| c.open)
    }

    /// Where the engine writes the next packet: at least the MTU long, and room
    /// for a whole super-packet (`Stack::poll_transmit_gso`) when the
    /// coalescer is empty. Must not be called while [`is_full`](Self::is_full).
    pub fn slot(&mut self) -> &mut [u8] {
        debug_assert!(!self.is_full());
        match self.cur {
            Some(c) if self.len > 0 => {
                let at = VNET_HDR_LEN + self.len - c.hlen;
                self.saved[..c.hlen].copy_from_slice(&self.buf[at..at + c.hlen]);
                self.saved_len = c.hlen;
                self.slot_at = at;
            }
            _ => {
                self.saved_len = 0;
                self.slot_at = VNET_HDR_LEN;
                if self.len == 0 {
                    return &mut self.buf[VNET_HDR_LEN..];
                }
            }
        }
        let end = self.slot_at + self.mtu;
        &mut self.buf[self.slot_at..end]
    }

    /// The packet the engine just wrote into the slot (`n` bytes).
    pub fn packet(&self, n: usize) -> &[u8] {
        &self.buf[self.slot_at..self.slot_at + n]
    }

    /// Forget the packet in the slot (it went elsewhere, e.g. to the fault injector).
    pub fn discard(&mut self) {
        self.restore();
    }

    fn restore(&mut self) {
        let (at, k) = (self.slot_at, self.saved_len);
        self.buf[at..at + k].copy_from_slice(&self.saved[..k]);
        self.saved_len = 0;
    }

    /// Take the `n`-byte packet the engine wrote into the slot;
    /// `segment_size` when the engine made it a super-packet of segments of
    /// that payload size (`TxPacket::segment_size`), which only an empty
    /// coalescer's slot has room for.
    pub fn commit(&mut self, n: usize, segment_size: Option<usize>) -> Commit {
        if self.len == 0 {
            self.start(n, segment_size);
            return Commit::Started;
        }
        let cur = self.cur.expect("an open frame has a flow");
        let (head, pkt) = self.buf.split_at(self.slot_at);
        let first = &head[VNET_HDR_LEN..];
        let pkt = &pkt[..n];
        // (A super-packet never joins; only an empty coalescer's slot has room
        // for one anyway.)
        match joins(first, pkt, &cur, self.len).filter(|_| segment_size.is_none()) {
            Some(plen) => {
                let psh = pkt[cur.l4 + 13] & TCP_PSH != 0;
                // The payload is in place; put back what the headers covered.
                self.restore();
                self.len += plen;
                let c = self.cur.as_mut().expect("checked above");
                c.segs += 1;
                c.next_seq = c.next_seq.wrapping_add(plen as u32);
                if psh {
                    self.buf[VNET_HDR_LEN + c.l4 + 13] |= TCP_PSH;
                }
                if plen < c.gso_size || psh || self.len + c.gso_size > MAX_SUPER {
                    c.open = false;
                }
                Commit::Joined
            }
            None => {
                self.spill.clear();
                self.spill.extend_from_slice(pkt);
                self.spill_segment_size = segment_size;
                self.restore();
                Commit::Rejected
            }
        }
    }

    /// Take the headers the engine wrote into an empty coalescer's slot
    /// (`Stack::poll_transmit_parts`) of a packet whose `payload_len` bytes
    /// of payload stay where the engine holds them: the frame is
    /// [`frame_headers`](Self::frame_headers) and that payload, written
    /// together; it takes no other packet.
    pub fn commit_headers(&mut self, hlen: usize, payload_len: usize, segment_size: Option<usize>) {
        assert!(self.len == 0, "headers alone start a frame");
        self.start(hlen + payload_len, segment_size);
        if let Some(c) = self.cur.as_mut() {
            c.open = false;
        }
        self.headers_only = Some(hlen);
    }

    /// The frame up to the end of its packet's headers, after
    /// [`commit_headers`](Self::commit_headers): what goes before the
    /// payload.
    pub fn frame_headers(&mut self) -> &[u8] {
        let hlen = self.headers_only.expect("headers alone were committed");
        self.finish();
        let start = if self.offload { 0 } else { VNET_HDR_LEN };
        &self.buf[start..VNET_HDR_LEN + hlen]
    }

    /// The payload of a frame of headers alone copied in after them: the
    /// frame is whole ([`frame`](Self::frame)), to be written later.
    pub fn fill_payload(&mut self, parts: &[&[u8]]) {
        let hlen = self
            .headers_only
            .take()
            .expect("headers alone were committed");
        let mut at = VNET_HDR_LEN + hlen;
        for p in parts {
            self.buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        debug_assert_eq!(at, VNET_HDR_LEN + self.len, "the payload's length");
    }

    /// Whether the frame waits for its payload
    /// ([`commit_headers`](Self::commit_headers)).
    pub fn headers_only(&self) -> bool {
        self.headers_only.is_some()
    }

    /// Start the next frame with the packet kept aside by a `Rejected` commit.
    fn restart(&mut self) {
        let n = self.spill.len();
        self.buf[VNET_HDR_LEN..VNET_HDR_LEN + n].copy_from_slice(&self.spill);
        self.spill.clear();
        self.slot_at = VNET_HDR_LEN;
        let segment_size = self.spill_segment_size.take();
        self.start(n, segment_size);
    }

    fn start(&mut self, n: usize, segment_size: Option<usize>) {
        self.len = n;
        self.cur = None;
        if !self.offload {
            return;
        }
        let p = &self.buf[VNET_HDR_LEN..VNET_HDR_LEN + n];
        self.cur = first_segment(p).map(|(l4, hlen)| {
            let plen = n - hlen;
            let seq = u32::from_be_bytes(p[l4 + 4..l4 + 8].try_into().expect("4 bytes"));
            // The engine's super-packet: whole segments but maybe the last.
            let gso_size = segment_size.filter(|&g| g > 0).unwrap_or(plen);
            Super {
                l4,
                hlen,
                gso_size,
                next_seq: seq.wrapping_add(plen as u32),
                segs: if gso_size == 0 {
                    1
                } else {
                    plen.div_ceil(gso_size)
                },
                // Later segments' headers are written over the end of the
                // payload before them, never over the first segment's headers.
                // (A segment without payload has `gso_size` 0: never open.)
                open: pkt_flags(p, l4) & TCP_PSH == 0
                    && gso_size >= hlen
                    && plen.is_multiple_of(gso_size)
                    && n + gso_size <= MAX_SUPER,
            }
        });
    }

    /// Packets in the frame (0 when empty).
    pub fn segments(&self) -> usize {
        match self.cur {
            Some(c) if self.len > 0 => c.segs,
            _ => usize::from(self.len > 0),
        }
    }

    /// Finish the frame and return the bytes to write: the virtio-net header (with
    /// offloads) and the packet or super-packet. For a super-packet the header
    /// asks the kernel for TCP segmentation and checksums (`NEEDS_CSUM`, the
    /// pseudo-header sum in the checksum field), and the IP length covers all.
    pub fn frame(&mut self) -> &[u8] {
        assert!(
            self.headers_only.is_none(),
            "the frame's payload is elsewhere"
        );
        self.finish()
    }

    fn finish(&mut self) -> &[u8] {
        assert!(self.len > 0, "no frame to write");
        if !self.offload {
            return &self.buf[VNET_HDR_LEN..VNET_HDR_LEN + self.len];
        }
        let mut hdr = VnetHdr::default();
        let gso = self.cur.filter(|c| c.segs > 1);
        let p = &mut self.buf[VNET_HDR_LEN..VNET_HDR_LEN + self.len];
        let l4 = match gso {
            Some(c) => Some(c.l4),
            // A segment alone (a pure ACK, a FIN, a short one) whose checksum
            // the engine left partial: the kernel completes it too.
            None if self.partial => tcp_l4(p),
            None => None,
        };
        if let Some(l4) = l4 {
            let v6 = p[0] >> 4 == 6;
            if v6 {
                put_u16(p, 4, (self.len - 40) as u16);
            } else {
                put_u16(p, 2, self.len as u16);
                fix_ipv4_checksum(p);
            }
            let (src, dst) = ip_addrs(p);
            let psum = fold(u64::from(pseudo_header(
                src,
                dst,
                IPPROTO_TCP,
                (self.len - l4) as u32,
            )));
            put_u16(p, l4 + 16, psum);
            hdr = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: match gso {
                    None => GSO_NONE,
                    Some(_) if v6 => GSO_TCPV6,
                    Some(_) => GSO_TCPV4,
                },
                hdr_len: gso.map_or(0, |c| c.hlen as u16),
                gso_size: gso.map_or(0, |c| c.gso_size as u16),
                csum_start: l4 as u16,
                csum_offset: 16,
            };
        }
        if let Some(c) = gso {
            // No further segment may join a finished frame.
            self.cur = Some(Super { open: false, ..c });
        }
        hdr.write(&mut self.buf[..VNET_HDR_LEN]);
        &self.buf[..VNET_HDR_LEN + self.len]
    }

    /// The frame was written (or dropped): start afresh, with the packet a
    /// `Rejected` commit kept aside if there is one.
    pub fn clear(&mut self) {
        self.len = 0;
        self.cur = None;
        self.headers_only = None;
        if !self.spill.is_empty() {
            self.restart();
        }
    }
}

/// Where the TCP header of an unfragmented IPv4 (no options) or IPv6 (no
/// extension header) TCP packet starts: what the engine sends.
fn tcp_l4(p: &[u8]) -> Option<usize> {
    match p.first()? >> 4 {
        4 if p.len() >= 40 && p[0] == 0x45 && p[9] == IPPROTO_TCP => {
            (get_u16(p, 6) & 0x3fff == 0).then_some(20)
        }
        6 if p.len() >= 60 && p[6] == IPPROTO_TCP => Some(40),
        _ => None,
    }
}

fn pkt_flags(p: &[u8], l4: usize) -> u8 {
    p[l4 + 13]
}

/// If `p` can start a super-packet: a TCP segment without IP options or extension
/// headers and not a fragment, with payload, flags ACK (PSH allowed), no urgent
/// pointer. Returns (IP header length, IP + TCP header length).
fn first_segment(p: &[u8]) -> Option<(usize, usize)> {
    let l4 = match p.first()? >> 4 {
        4 if p.len() >= 20 && p[0] == 0x45 && p[9] == IPPROTO_TCP => {
            // Neither MF nor a fragment offset.
            if get_u16(p, 6) & 0x3fff != 0 || usize::from(get_u16(p, 2)) != p.len() {
                return None;
            }
            20
        }
        6 if p.len() >= 40 && p[6] == IPPROTO_TCP => {
            if usize::from(get_u16(p, 4)) + 40 != p.len() {
                return None;
            }
            40
        }
        _ => return None,
    };
    if p.len() < l4 + 20 {
        return None;
    }
    let hlen = l4 + usize::from(p[l4 + 12] >> 4) * 4;
    let flags = pkt_flags(p, l4);
    if hlen < l4 + 20
        || hlen >= p.len()
        || flags & !TCP_PSH != TCP_ACK
        || get_u16(p, l4 + 18) != 0
        || hlen > MAX_HDR
    {
        return None;
    }
    Some((l4, hlen))
}

/// Can `pkt` be appended to the super-packet `first` (its headers are the first
/// segment's, `len` its current length)? Its payload length if so.
fn joins(first: &[u8], pkt: &[u8], c: &Super, len: usize) -> Option<usize> {
    if !c.open || pkt.len() <= c.hlen {
        return None;
    }
    let (l4, hlen) = first_segment(pkt)?;
    if l4 != c.l4 || hlen != c.hlen {
        return None;
    }
    let plen = pkt.len() - hlen;
    if plen > c.gso_size || len + plen > MAX_SUPER {
        return None;
    }
    // IP: everything but the length, identification and header checksum (v4), or
    // but the payload length (v6).
    let ip_same = if l4 == 20 {
        first[..2] == pkt[..2] && first[6..10] == pkt[6..10] && first[12..20] == pkt[12..20]
    } else {
        first[..4] == pkt[..4] && first[6..40] == pkt[6..40]
    };
    let seq = u32::from_be_bytes(pkt[l4 + 4..l4 + 8].try_into().expect("4 bytes"));
    let t = &first[l4..];
    let u = &pkt[l4..];
    // TCP: ports, ACK, header length, flags (but PSH), window, urgent, options.
    (ip_same
        && seq == c.next_seq
        && t[..4] == u[..4]
        && t[8..13] == u[8..13]
        && (t[13] & !TCP_PSH) == (u[13] & !TCP_PSH)
        && t[14..16] == u[14..16]
        && t[18..hlen - l4] == u[18..hlen - l4])
        .then_some(plen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mptun_stack::wire::{emit_packet_with, IpRepr, SeqNumber, TcpFlags, TcpRepr, TxChecksum};

    fn v4(a: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, a))
    }

    fn v6(a: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, a))
    }

    /// A segment as the engine would emit it, with timestamps.
    fn segment(src: IpAddr, dst: IpAddr, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        segment_with(src, dst, seq, flags, payload, TxChecksum::Full)
    }

    /// [`segment`] with its TCP checksum filled as `csum` says.
    fn segment_with(
        src: IpAddr,
        dst: IpAddr,
        seq: u32,
        flags: u8,
        payload: &[u8],
        csum: TxChecksum,
    ) -> Vec<u8> {
        let mut r = TcpRepr::new(5000, 80);
        r.seq = SeqNumber(seq);
        r.ack = SeqNumber(77);
        r.flags = TcpFlags(flags);
        r.window = 1000;
        r.timestamp = Some((1, 2));
        let mut buf = vec![0u8; 70_000];
        let n = emit_packet_with(src, dst, 64, &r, &[payload], &mut buf, csum).unwrap();
        buf.truncate(n);
        buf
    }

    fn payload(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|k| (i * 31 + k * 7) as u8).collect()
    }

    fn valid(p: &[u8]) -> bool {
        let (ip, body) = IpRepr::parse(p).expect("IP parses");
        TcpRepr::parse(ip.src, ip.dst, body, true).is_ok()
    }

    /// Feeds `pkts` through a coalescer; returns the frames it writes.
    fn coalesce(offload: bool, pkts: &[Vec<u8>]) -> Vec<Vec<u8>> {
        coalesce_in(Coalescer::new(offload, 1500), pkts)
    }

    /// [`coalesce`] through `c`.
    fn coalesce_in(mut c: Coalescer, pkts: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for p in pkts {
            if c.is_full() {
                frames.push(c.frame().to_vec());
                c.clear();
            }
            c.slot()[..p.len()].copy_from_slice(p);
            assert_eq!(c.packet(p.len()), &p[..]);
            if c.commit(p.len(), None) == Commit::Rejected {
                frames.push(c.frame().to_vec());
                c.clear();
            }
        }
        if !c.is_empty() {
            frames.push(c.frame().to_vec());
        }
        frames
    }

    /// The engine's own super-packet (`Stack::poll_transmit_gso`) starts a
    /// frame with its segment size, and a short segment that continues it
    /// joins: split, they give back the segments one by one.
    #[test]
    fn an_engine_super_packet_starts_a_frame_that_its_tail_joins() {
        const ACK: u8 = TcpFlags::ACK;
        const PSH: u8 = TcpFlags::PSH;
        for (a, b) in [(v4(1), v4(2)), (v6(1), v6(2))] {
            let data = payload(9, 3400);
            let one_by_one: Vec<Vec<u8>> = (0..4)
                .map(|i| {
                    let end = (1000 * (i + 1)).min(3400);
                    let flags = if i == 3 { ACK | PSH } else { ACK };
                    segment(a, b, 100 + 1000 * i as u32, flags, &data[1000 * i..end])
                })
                .collect();
            let sup = segment(a, b, 100, ACK, &data[..3000]);
            let tail = &one_by_one[3];

            let mut c = Coalescer::new(true, 1500);
            c.slot()[..sup.len()].copy_from_slice(&sup);
            assert_eq!(c.commit(sup.len(), Some(1000)), Commit::Started);
            assert_eq!(c.segments(), 3);
            assert!(!c.is_full());
            c.slot()[..tail.len()].copy_from_slice(tail);
            assert_eq!(c.commit(tail.len(), None), Commit::Joined);
            assert_eq!(c.segments(), 4);
            let got = split_all(c.frame(), true);
            assert_eq!(got.len(), 4);
            for (g, want) in got.iter().zip(&one_by_one) {
                assert!(g.1 && same_but_ip_id(&g.0, want));
            }
        }
    }

    /// A packet committed as its headers alone (`Stack::poll_transmit_parts`)
    /// makes, with its payload written after `frame_headers`, the frame the
    /// whole packet makes; filled in after a refused write, it is that frame.
    #[test]
    fn headers_alone_and_their_payload_make_the_whole_frame() {
        const ACK: u8 = TcpFlags::ACK;
        for (a, b) in [(v4(1), v4(2)), (v6(1), v6(2))] {
            for (len, size) in [(3000, Some(1000)), (700, None)] {
                for offload in [true, false] {
                    let data = payload(4, len);
                    let whole = segment(a, b, 100, ACK, &data);
                    let hlen = whole.len() - len;
                    let mut c = Coalescer::new(offload, 1500);
                    c.set_partial_checksums(true);
                    c.slot()[..whole.len()].copy_from_slice(&whole);
                    c.commit(whole.len(), size);
                    let want = c.frame().to_vec();

                    let mut c = Coalescer::new(offload, 1500);
                    c.set_partial_checksums(true);
                    c.slot()[..hlen].copy_from_slice(&whole[..hlen]);
                    c.commit_headers(hlen, len, size);
                    assert!(c.is_full(), "headers alone take no other packet");
                    let (x, y) = data.split_at(len / 3);
                    assert_eq!([c.frame_headers(), x, y].concat(), want);
                    c.fill_payload(&[x, y]);
                    assert!(!c.headers_only());
                    assert_eq!(c.frame(), &want[..]);
                    c.clear();
                    assert!(c.is_empty() && !c.headers_only());
                }
            }
        }
    }

    fn split_all(frame: &[u8], full: bool) -> Vec<(Vec<u8>, bool)> {
        let mut f = frame.to_vec();
        let mut out = Vec::new();
        split(&mut f, full, |p, ok| out.push((p.to_vec(), ok))).unwrap();
        out
    }

    /// Equal but for the IPv4 identification and header checksum, which the
    /// kernel's segmentation numbers up.
    fn same_but_ip_id(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        if a[0] >> 4 == 4 {
            a[..4] == b[..4] && a[6..10] == b[6..10] && a[12..] == b[12..]
        } else {
            a == b
        }
    }

    #[test]
    fn vnet_header_round_trip() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6,
            hdr_len: 72,
            gso_size: 1428,
            csum_start: 40,
            csum_offset: 16,
        };
        let mut b = [0u8; VNET_HDR_LEN];
        h.write(&mut b);
        assert_eq!(VnetHdr::parse(&b), Some(h));
        assert_eq!(VnetHdr::parse(&b[..9]), None);
    }

    #[test]
    fn coalesce_then_split_gives_back_the_segments() {
        for (src, dst) in [(v4(1), v4(2)), (v6(1), v6(2))] {
            let mss = 1000;
            let mut pkts = Vec::new();
            let mut seq = 1000u32;
            // 70 full segments and a short one with PSH: more than one super-packet.
            for i in 0..71 {
                let len = if i == 70 { 333 } else { mss };
                let flags = if i == 70 {
                    TcpFlags::ACK | TcpFlags::PSH
                } else {
                    TcpFlags::ACK
                };
                pkts.push(segment(src, dst, seq, flags, &payload(i, len)));
                seq += len as u32;
            }
            let frames = coalesce(true, &pkts);
            assert_eq!(frames.len(), 2, "65535-byte limit: two super-packets");
            let mut back = Vec::new();
            for f in &frames {
                let h = VnetHdr::parse(f).unwrap();
                assert_eq!(h.flags, F_NEEDS_CSUM);
                assert_eq!(usize::from(h.gso_size), mss);
                assert!(f.len() - VNET_HDR_LEN <= 65_535);
                for (p, ok) in split_all(f, true) {
                    assert!(ok);
                    assert!(valid(&p), "complete checksums after the split");
                    back.push(p);
                }
            }
            assert_eq!(back.len(), pkts.len());
            for (a, b) in pkts.iter().zip(&back) {
                assert!(same_but_ip_id(a, b));
            }
            // Without full checksums the TCP checksum is left alone but flagged ok.
            let lazy = split_all(&frames[0], false);
            assert!(lazy.iter().all(|(_, ok)| *ok));
            assert_eq!(lazy.len(), frames[0].len() / mss);
        }
    }

    /// The engine leaves checksums partial (pseudo-header sum only): every
    /// TCP frame, super-packet or segment alone (pure ACK, FIN, short), asks
    /// the kernel to complete it, and what the kernel makes of it is what
    /// the engine would have sent with complete checksums.
    #[test]
    fn partial_checksums_are_completed_for_every_tcp_frame() {
        for (src, dst) in [(v4(1), v4(2)), (v6(1), v6(2))] {
            let ack = TcpFlags::ACK;
            let plan = [
                (1000, ack, 0),
                (1000, ack, 1000),
                (2000, ack, 1000),
                (3000, ack | TcpFlags::PSH, 10),
                (3010, ack | TcpFlags::FIN, 0),
            ];
            let emit = |csum| -> Vec<Vec<u8>> {
                plan.iter()
                    .map(|&(q, f, l)| segment_with(src, dst, q, f, &payload(q as usize, l), csum))
                    .collect()
            };
            let (partial, full) = (emit(TxChecksum::Partial), emit(TxChecksum::Full));
            assert!(!valid(&partial[1]), "partial: not a complete checksum");
            let mut c = Coalescer::new(true, 1500);
            c.set_partial_checksums(true);
            let frames = coalesce_in(c, &partial);
            assert_eq!(
                frames.len(),
                3,
                "the ACK, three segments (PSH on the last), the FIN"
            );
            let mut back = Vec::new();
            for f in &frames {
                let h = VnetHdr::parse(f).unwrap();
                assert_eq!(h.flags, F_NEEDS_CSUM);
                back.extend(split_all(f, true).into_iter().map(|(p, _)| p));
            }
            assert_eq!(back.len(), full.len());
            for (a, b) in full.iter().zip(&back) {
                assert!(valid(b), "complete after the kernel's part");
                assert!(same_but_ip_id(a, b));
            }
        }
    }

    #[test]
    fn only_continuing_identical_segments_join() {
        let (a, b) = (v4(1), v4(2));
        let s = |seq, flags, len| segment(a, b, seq, flags, &payload(1, len));
        let ack = TcpFlags::ACK;
        let mut other_ack = s(1100, ack, 100);
        // A different ACK number (offset 20 + 8), then fix the checksum.
        other_ack[31] ^= 1;
        fill_tcp_checksum(&mut other_ack, 20);
        let cases: Vec<(Vec<Vec<u8>>, usize)> = vec![
            // Contiguous: one frame.
            (
                vec![s(1000, ack, 100), s(1100, ack, 100), s(1200, ack, 50)],
                1,
            ),
            // After a short segment nothing joins.
            (
                vec![s(1000, ack, 100), s(1100, ack, 50), s(1150, ack, 100)],
                2,
            ),
            // A gap.
            (vec![s(1000, ack, 100), s(1200, ack, 100)], 2),
            // A longer segment cannot follow.
            (vec![s(1000, ack, 100), s(1100, ack, 200)], 2),
            // PSH ends a frame.
            (
                vec![s(1000, ack | TcpFlags::PSH, 100), s(1100, ack, 100)],
                2,
            ),
            (
                vec![
                    s(1000, ack, 100),
                    s(1100, ack | TcpFlags::PSH, 100),
                    s(1200, ack, 100),
                ],
                2,
            ),
            // FIN, pure ACKs and other ACK numbers stay separate.
            (
                vec![s(1000, ack, 100), s(1100, ack | TcpFlags::FIN, 100)],
                2,
            ),
            (vec![s(1000, ack, 0), s(1000, ack, 100)], 2),
            (vec![s(1000, ack, 100), other_ack], 2),
            // Another flow.
            (
                vec![
                    s(1000, ack, 100),
                    segment(a, v4(3), 1100, ack, &payload(1, 100)),
                ],
                2,
            ),
        ];
        for (i, (pkts, frames)) in cases.iter().enumerate() {
            let got = coalesce(true, pkts);
            assert_eq!(got.len(), *frames, "case {i}");
            // Whatever was coalesced, splitting restores every packet.
            let back: Vec<Vec<u8>> = got
                .iter()
                .flat_map(|f| split_all(f, true))
                .map(|(p, _)| p)
                .collect();
            assert_eq!(back.len(), pkts.len(), "case {i}");
            for (x, y) in pkts.iter().zip(&back) {
                assert!(same_but_ip_id(x, y), "case {i}");
                assert!(valid(y), "case {i}");
            }
        }
    }

    #[test]
    fn single_packets_get_a_plain_header_and_no_offload_means_raw() {
        let p = segment(v4(1), v4(2), 1, TcpFlags::ACK, &payload(0, 10));
        let f = coalesce(true, std::slice::from_ref(&p));
        assert_eq!(f.len(), 1);
        assert_eq!(VnetHdr::parse(&f[0]), Some(VnetHdr::default()));
        assert_eq!(&f[0][VNET_HDR_LEN..], &p[..]);
        let q = segment(v4(1), v4(2), 11, TcpFlags::ACK, &payload(1, 10));
        let raw = coalesce(false, &[p.clone(), q.clone()]);
        assert_eq!(raw, vec![p, q]);
    }

    #[test]
    fn partial_checksums_are_completed_or_flagged() {
        let p = segment(v4(1), v4(2), 1, TcpFlags::ACK, &payload(0, 99));
        // What the kernel hands over: only the pseudo-header sum in the field.
        let mut partial = p.clone();
        let psum = fold(u64::from(pseudo_header(
            v4(1),
            v4(2),
            IPPROTO_TCP,
            (p.len() - 20) as u32,
        )));
        put_u16(&mut partial, 36, psum);
        let mut frame = vec![0u8; VNET_HDR_LEN];
        VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 20,
            csum_offset: 16,
            ..VnetHdr::default()
        }
        .write(&mut frame);
        frame.extend_from_slice(&partial);
        let full = split_all(&frame, true);
        assert_eq!(full, vec![(p.clone(), true)]);
        let lazy = split_all(&frame, false);
        assert_eq!(lazy, vec![(partial, true)]);
        // A plain frame is passed through for the engine to verify.
        let mut plain = vec![0u8; VNET_HDR_LEN];
        plain.extend_from_slice(&p);
        assert_eq!(split_all(&plain, false), vec![(p, false)]);
    }

    #[test]
    fn split_rejects_bad_frames_without_panicking() {
        let mut short = vec![0u8; 5];
        assert_eq!(
            split(&mut short, true, |_, _| {}),
            Err(SplitError::NoHeader)
        );
        let p = segment(v4(1), v4(2), 1, TcpFlags::ACK, &payload(0, 300));
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 52,
            gso_size: 100,
            csum_start: 20,
            csum_offset: 16,
        };
        let frame = |h: VnetHdr, p: &[u8]| {
            let mut f = vec![0u8; VNET_HDR_LEN];
            h.write(&mut f);
            f.extend_from_slice(p);
            f
        };
        assert_eq!(split_all(&frame(hdr, &p), true).len(), 3);
        for bad in [
            VnetHdr { gso_type: 5, ..hdr },
            VnetHdr {
                gso_type: GSO_TCPV6,
                ..hdr
            },
            VnetHdr { gso_size: 0, ..hdr },
            VnetHdr {
                csum_start: 24,
                ..hdr
            },
            VnetHdr {
                csum_offset: 6,
                ..hdr
            },
            VnetHdr {
                gso_type: GSO_NONE,
                csum_start: 400,
                ..hdr
            },
        ] {
            let mut f = frame(bad, &p);
            assert!(split(&mut f, true, |_, _| {}).is_err(), "{bad:?}");
        }
        // Every truncation of a GSO frame is handled without a panic.
        let full = frame(hdr, &p);
        for n in 0..full.len() {
            let mut f = full[..n].to_vec();
            let _ = split(&mut f, true, |_, _| {});
            assert!(whole(&f).is_none(), "a truncated frame is not taken whole");
        }
    }

    #[test]
    fn a_super_packet_is_taken_whole_only_when_well_formed() {
        for (src, dst) in [(v4(1), v4(2)), (v6(1), v6(2))] {
            let pkts: Vec<_> = (0..5u32)
                .map(|i| {
                    segment(
                        src,
                        dst,
                        1000 + 700 * i,
                        TcpFlags::ACK,
                        &payload(i as usize, 700),
                    )
                })
                .collect();
            let frames = coalesce(true, &pkts);
            assert_eq!(frames.len(), 1);
            let (pkt, segments) = whole(&frames[0]).expect("a TCP super-packet");
            assert_eq!(segments, 5);
            assert_eq!(pkt, &frames[0][VNET_HDR_LEN..]);
            // The engine reads it as one segment with every byte.
            let (ip, bytes) = IpRepr::parse(pkt).expect("a valid IP packet");
            let tcp = TcpRepr::parse(ip.src, ip.dst, bytes, false).expect("a valid TCP header");
            let all: Vec<u8> = (0..5).flat_map(|i| payload(i, 700)).collect();
            assert_eq!(tcp.payload, &all[..]);
            assert_eq!(tcp.seq.0, 1000);
            // One segment alone, or no virtio-net GSO at all: split as before.
            let one = coalesce(true, &pkts[..1]);
            assert!(whole(&one[0]).is_none());
            let plain = coalesce(false, &pkts);
            assert!(plain.iter().all(|f| whole(f).is_none()));
            // An IP length that does not cover the frame.
            let mut short = frames[0].clone();
            short.pop();
            assert!(whole(&short).is_none());
        }
    }
}
