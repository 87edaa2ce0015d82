//! TCP header (RFC 9293) and options: MSS, window scale, SACK (RFC 2018), timestamps
//! (RFC 7323), NOP/EOL, and any other kind kept raw (MPTCP, kind 30, is layered on top).
//!
//! Parsing never panics: [`TcpSegment`] getters are bounds-checked and
//! [`TcpOptionIter`] stops at the first malformed option.

use super::checksum;
use super::ip::{get_u16, get_u32, get_u8, IpRepr, IPPROTO_TCP};
use super::{SeqNumber, WireError};
use std::net::IpAddr;

/// TCP header flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub const fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub const fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub const fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub const fn psh(self) -> bool {
        self.0 & Self::PSH != 0
    }
    pub const fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
    pub const fn urg(self) -> bool {
        self.0 & Self::URG != 0
    }
    pub const fn contains(self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

impl core::fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let names = [
            (Self::SYN, "S"),
            (Self::FIN, "F"),
            (Self::RST, "R"),
            (Self::PSH, "P"),
            (Self::ACK, "."),
            (Self::URG, "U"),
            (Self::ECE, "E"),
            (Self::CWR, "W"),
        ];
        for (bit, n) in names {
            if self.0 & bit != 0 {
                f.write_str(n)?;
            }
        }
        Ok(())
    }
}

/// Up to four SACK blocks `[left, right)`.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct SackBlocks {
    blocks: [(SeqNumber, SeqNumber); 4],
    len: u8,
}

impl SackBlocks {
    pub const fn new() -> Self {
        SackBlocks {
            blocks: [(SeqNumber(0), SeqNumber(0)); 4],
            len: 0,
        }
    }
    /// Append a block; false (and nothing stored) if four are already held.
    pub fn push(&mut self, left: SeqNumber, right: SeqNumber) -> bool {
        if self.len as usize == self.blocks.len() {
            return false;
        }
        self.blocks[self.len as usize] = (left, right);
        self.len += 1;
        true
    }
    pub fn as_slice(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.blocks[..self.len as usize]
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Keep only the first `n` blocks.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n as u8);
    }
}

/// Options of kinds this layer does not interpret, as (kind, bytes after kind and
/// length). At most four are kept per segment; more are dropped on parse.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct RawOptions<'a> {
    items: [(u8, &'a [u8]); 4],
    len: u8,
}

impl<'a> RawOptions<'a> {
    pub const fn new() -> Self {
        RawOptions {
            items: [(0, &[]); 4],
            len: 0,
        }
    }
    pub fn push(&mut self, kind: u8, data: &'a [u8]) -> bool {
        if self.len as usize == self.items.len() {
            return false;
        }
        self.items[self.len as usize] = (kind, data);
        self.len += 1;
        true
    }
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + '_ {
        self.as_slice().iter().copied()
    }
    pub fn as_slice(&self) -> &[(u8, &'a [u8])] {
        &self.items[..self.len as usize]
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One TCP option as it appears on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TcpOption<'a> {
    EndOfList,
    NoOperation,
    MaxSegmentSize(u16),
    WindowScale(u8),
    SackPermitted,
    SackRange(SackBlocks),
    Timestamp { tsval: u32, tsecr: u32 },
    Unknown { kind: u8, data: &'a [u8] },
}

/// Iterates the options area of a TCP header; yields an error (and then stops) on a
/// malformed option.
pub struct TcpOptionIter<'a> {
    bytes: &'a [u8],
    failed: bool,
}

impl<'a> TcpOptionIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        TcpOptionIter {
            bytes,
            failed: false,
        }
    }
}

impl<'a> TcpOptionIter<'a> {
    /// Record a failure: yield it once, then stop.
    fn fail(&mut self, e: WireError) -> Option<Result<TcpOption<'a>, WireError>> {
        self.failed = true;
        self.bytes = &[];
        Some(Err(e))
    }
}

/// Required total length (kind + length byte + data) of known option kinds;
/// `None` for kinds kept raw. SACK (5) is checked separately.
fn known_option_len(kind: u8) -> Option<usize> {
    match kind {
        OPT_MSS => Some(4),
        OPT_WS => Some(3),
        OPT_SACK_PERM => Some(2),
        OPT_TS => Some(10),
        _ => None,
    }
}

const OPT_EOL: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
const OPT_WS: u8 = 3;
const OPT_SACK_PERM: u8 = 4;
const OPT_SACK: u8 = 5;
const OPT_TS: u8 = 8;

/// Largest window shift RFC 7323 allows; larger values are clamped on parse.
pub const MAX_WINDOW_SCALE: u8 = 14;
/// Most option bytes a TCP header can carry.
pub const MAX_OPTIONS_LEN: usize = 40;

/// Iteration rules: EOL yields `EndOfList` once and ends the iteration; NOP is one
/// byte. Any other kind needs a length byte: a missing length byte or a length
/// running past the bytes is `OptionOverrun`; a length < 2, or a known kind (MSS 4,
/// WS 3, SACK-permitted 2, SACK 2+8n with n in 1..=4, timestamps 10) with another
/// length is `BadOptionLength` (checked before overrun). After an error, `None`.
impl<'a> Iterator for TcpOptionIter<'a> {
    type Item = Result<TcpOption<'a>, WireError>;
    // Inlined into `TcpRepr::parse`, which calls it once per option (NOPs
    // included): out of line, each call returned the large `TcpOption` through
    // memory, which cost more than decoding most options.
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let bytes = self.bytes;
        let (&kind, rest) = bytes.split_first()?;
        match kind {
            OPT_EOL => {
                self.bytes = &[];
                return Some(Ok(TcpOption::EndOfList));
            }
            OPT_NOP => {
                self.bytes = rest;
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        let Some(&len_byte) = rest.first() else {
            return self.fail(WireError::OptionOverrun);
        };
        let len = usize::from(len_byte);
        if len < 2 {
            return self.fail(WireError::BadOptionLength);
        }
        let length_ok = match kind {
            OPT_SACK => (10..=34).contains(&len) && (len - 2) % 8 == 0,
            _ => match known_option_len(kind) {
                Some(want) => want == len,
                None => true,
            },
        };
        if !length_ok {
            return self.fail(WireError::BadOptionLength);
        }
        let Some(opt) = bytes.get(..len) else {
            return self.fail(WireError::OptionOverrun);
        };
        self.bytes = bytes.get(len..).unwrap_or(&[]);
        let data = opt.get(2..).unwrap_or(&[]);
        let opt = match kind {
            OPT_MSS => TcpOption::MaxSegmentSize(get_u16(data, 0)),
            OPT_WS => TcpOption::WindowScale(get_u8(data, 0)),
            OPT_SACK_PERM => TcpOption::SackPermitted,
            OPT_SACK => {
                let mut blocks = SackBlocks::new();
                for b in data.chunks_exact(8) {
                    blocks.push(SeqNumber(get_u32(b, 0)), SeqNumber(get_u32(b, 4)));
                }
                TcpOption::SackRange(blocks)
            }
            OPT_TS => TcpOption::Timestamp {
                tsval: get_u32(data, 0),
                tsecr: get_u32(data, 4),
            },
            _ => TcpOption::Unknown { kind, data },
        };
        Some(Ok(opt))
    }
}

/// A zero-copy view over a TCP segment (header + payload).
///
/// Getters are bounds-checked: on a buffer not validated by `new_checked` they
/// return zero / empty slices for missing bytes instead of panicking.
pub struct TcpSegment<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    /// Wrap without validation (getters still never panic).
    pub fn new_unchecked(buffer: T) -> Self {
        TcpSegment { buffer }
    }
    /// Validate length and data offset (>= 5, within the buffer).
    /// Fewer than 20 bytes is `Truncated`; a bad data offset `BadDataOffset`.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let s = TcpSegment { buffer };
        let len = s.buffer.as_ref().len();
        if len < 20 {
            return Err(WireError::Truncated);
        }
        let hl = s.header_len();
        if hl < 20 || hl > len {
            return Err(WireError::BadDataOffset);
        }
        Ok(s)
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }
    pub fn seq(&self) -> SeqNumber {
        SeqNumber(get_u32(self.buffer.as_ref(), 4))
    }
    pub fn ack(&self) -> SeqNumber {
        SeqNumber(get_u32(self.buffer.as_ref(), 8))
    }
    /// The data offset field (header length in 32-bit words).
    pub fn data_offset(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 12) >> 4
    }
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(get_u8(self.buffer.as_ref(), 13))
    }
    pub fn window(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 14)
    }
    /// The checksum field as on the wire.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 16)
    }
    pub fn urgent(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 18)
    }
    /// Data offset * 4 (not clamped to the buffer; `new_checked` guarantees it fits).
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }
    /// The option bytes (between byte 20 and the header length).
    pub fn options(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(20..self.header_len()).unwrap_or(&[])
    }
    /// Bytes after the header.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(self.header_len()..).unwrap_or(&[])
    }
    /// Verify the checksum against the pseudo header for `src` -> `dst`.
    /// The whole buffer is the segment. False if it is too long for a TCP length.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u32::try_from(b.len()) else {
            return false;
        };
        let acc = checksum::accumulate(checksum::pseudo_header(src, dst, IPPROTO_TCP, len), b);
        checksum::fold(u64::from(acc)) == 0xffff
    }
}

/// A parsed TCP segment, or one to emit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNumber,
    /// Meaningful only when `flags.ack()`.
    pub ack: SeqNumber,
    pub flags: TcpFlags,
    /// The raw (unscaled) window field.
    pub window: u16,
    pub urgent: u16,
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub sack_blocks: SackBlocks,
    /// (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    /// Options of other kinds (e.g. MPTCP), emitted after the known ones.
    pub unknown: RawOptions<'a>,
    /// On parse: the payload. Ignored by `emit_packet`, which takes payload slices.
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// An empty segment (no flags, no options) between two ports.
    pub fn new(src_port: u16, dst_port: u16) -> Self {
        TcpRepr {
            src_port,
            dst_port,
            seq: SeqNumber(0),
            ack: SeqNumber(0),
            flags: TcpFlags(0),
            window: 0,
            urgent: 0,
            mss: None,
            window_scale: None,
            sack_permitted: false,
            sack_blocks: SackBlocks::new(),
            timestamp: None,
            unknown: RawOptions::new(),
            payload: &[],
        }
    }

    /// Parse `bytes` (the IP payload) as TCP from `src` to `dst`. With
    /// `verify_checksum`, a wrong checksum is `BadChecksum`. Known options with the
    /// wrong length are `BadOptionLength`; options past the header `OptionOverrun`.
    ///
    /// The checksum is checked before the options are parsed. Repeated options:
    /// the last one wins (SACK blocks are replaced, not merged). Window scale values
    /// above 14 are clamped to 14. More than four unknown options: extras dropped.
    pub fn parse(
        src: IpAddr,
        dst: IpAddr,
        bytes: &'a [u8],
        verify_checksum: bool,
    ) -> Result<TcpRepr<'a>, WireError> {
        let seg = TcpSegment::new_checked(bytes)?;
        if verify_checksum && !seg.verify_checksum(src, dst) {
            return Err(WireError::BadChecksum);
        }
        let mut repr = TcpRepr {
            src_port: seg.src_port(),
            dst_port: seg.dst_port(),
            seq: seg.seq(),
            ack: seg.ack(),
            flags: seg.flags(),
            window: seg.window(),
            urgent: seg.urgent(),
            payload: bytes.get(seg.header_len()..).unwrap_or(&[]),
            ..TcpRepr::new(0, 0)
        };
        let options: &'a [u8] = bytes.get(20..seg.header_len()).unwrap_or(&[]);
        for opt in TcpOptionIter::new(options) {
            match opt? {
                TcpOption::EndOfList => break,
                TcpOption::NoOperation => {}
                TcpOption::MaxSegmentSize(m) => repr.mss = Some(m),
                TcpOption::WindowScale(w) => repr.window_scale = Some(w.min(MAX_WINDOW_SCALE)),
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::SackRange(b) => repr.sack_blocks = b,
                TcpOption::Timestamp { tsval, tsecr } => repr.timestamp = Some((tsval, tsecr)),
                TcpOption::Unknown { kind, data } => {
                    repr.unknown.push(kind, data);
                }
            }
        }
        Ok(repr)
    }

    /// Length of the header this repr emits: 20 + options padded to 4 bytes.
    /// (May exceed 60 when the options do not fit; `emit_packet` then fails.)
    pub fn header_len(&self) -> usize {
        20usize.saturating_add(self.options_len().saturating_add(3) & !3)
    }

    /// Total option bytes (before padding) this repr would emit.
    ///
    /// This is the exact count of the layout `emit_packet` writes, including the
    /// NOPs that are part of it (`NOP NOP TS`, `NOP WS`, `NOP NOP SACK`, ...) but
    /// excluding the trailing NOP padding to a 4-byte boundary. The options fit iff
    /// `options_len() <= 40`.
    pub fn options_len(&self) -> usize {
        let mut n: usize = 0;
        if self.mss.is_some() {
            n += 4;
        }
        n += match (self.sack_permitted, self.timestamp.is_some()) {
            (true, true) => 12,
            (false, true) => 12,
            (true, false) => 4,
            (false, false) => 0,
        };
        if self.window_scale.is_some() {
            n += 4;
        }
        if !self.sack_blocks.is_empty() {
            n += 4 + 8 * self.sack_blocks.len();
        }
        for (_, data) in self.unknown.iter() {
            n = n.saturating_add(data.len().saturating_add(2));
        }
        n
    }

    /// Write the options and their NOP padding into `out`, which must be exactly
    /// `header_len() - 20` bytes long (checked by the caller).
    fn write_options(&self, out: &mut [u8]) -> Result<(), WireError> {
        let mut w = OptWriter { out, pos: 0 };
        if let Some(mss) = self.mss {
            w.put(&[OPT_MSS, 4])?;
            w.put(&mss.to_be_bytes())?;
        }
        match (self.sack_permitted, self.timestamp) {
            (sp, Some((tsval, tsecr))) => {
                if sp {
                    w.put(&[OPT_SACK_PERM, 2, OPT_TS, 10])?;
                } else {
                    w.put(&[OPT_NOP, OPT_NOP, OPT_TS, 10])?;
                }
                w.put(&tsval.to_be_bytes())?;
                w.put(&tsecr.to_be_bytes())?;
            }
            (true, None) => w.put(&[OPT_NOP, OPT_NOP, OPT_SACK_PERM, 2])?,
            (false, None) => {}
        }
        if let Some(ws) = self.window_scale {
            w.put(&[OPT_NOP, OPT_WS, 3, ws])?;
        }
        if !self.sack_blocks.is_empty() {
            let len = 2 + 8 * self.sack_blocks.len() as u8;
            w.put(&[OPT_NOP, OPT_NOP, OPT_SACK, len])?;
            for &(l, r) in self.sack_blocks.as_slice() {
                w.put(&l.0.to_be_bytes())?;
                w.put(&r.0.to_be_bytes())?;
            }
        }
        for (kind, data) in self.unknown.iter() {
            let len = u8::try_from(data.len() + 2).map_err(|_| WireError::BufferTooSmall)?;
            w.put(&[kind, len])?;
            w.put(data)?;
        }
        let OptWriter { out, pos } = w;
        out.get_mut(pos..)
            .ok_or(WireError::BufferTooSmall)?
            .fill(OPT_NOP);
        Ok(())
    }
}

struct OptWriter<'b> {
    out: &'b mut [u8],
    pos: usize,
}

impl OptWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let end = self.pos.saturating_add(bytes.len());
        self.out
            .get_mut(self.pos..end)
            .ok_or(WireError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }
}

/// Write a complete IP packet carrying `tcp` and the concatenation of `payload`
/// slices into `buf`; fills the IP and TCP checksums. Returns the packet length.
///
/// `tcp.payload` is ignored. Errors: `BufferTooSmall` if the options exceed 40
/// bytes or `buf` is too short; from [`IpRepr::emit`]: `BadVersion` on mixed
/// address families, `BadTotalLength` if the packet exceeds the IP length field.
pub fn emit_packet(
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    tcp: &TcpRepr<'_>,
    payload: &[&[u8]],
    buf: &mut [u8],
) -> Result<usize, WireError> {
    emit_packet_with(src, dst, hop_limit, tcp, payload, buf, TxChecksum::Full)
}

/// How [`emit_packet_with`] fills the TCP checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxChecksum {
    /// The complete checksum.
    #[default]
    Full,
    /// Only the pseudo-header's sum (folded, not complemented), for a device
    /// that completes it (a TUN with checksum offload, Linux's
    /// CHECKSUM_PARTIAL): the segment's bytes are not summed at all.
    Partial,
}

/// [`emit_packet`] with the TCP checksum filled as `csum` says.
pub fn emit_packet_with(
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    tcp: &TcpRepr<'_>,
    payload: &[&[u8]],
    buf: &mut [u8],
    csum: TxChecksum,
) -> Result<usize, WireError> {
    emit(src, dst, hop_limit, tcp, Body::Bytes(payload), buf, csum)
}

/// The IP and TCP headers of a packet whose `payload_len` bytes of payload
/// the caller writes after them itself (a gather write from where they are
/// held): the lengths count the payload, the checksum is the pseudo-header's
/// sum only ([`TxChecksum::Partial`]; nothing here sees the payload to sum
/// it). Returns the headers' length.
pub fn emit_headers(
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    tcp: &TcpRepr<'_>,
    payload_len: usize,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    emit(
        src,
        dst,
        hop_limit,
        tcp,
        Body::Omitted(payload_len),
        buf,
        TxChecksum::Partial,
    )
}

/// A packet's payload: copied in after the headers, or left to the caller.
enum Body<'a> {
    Bytes(&'a [&'a [u8]]),
    Omitted(usize),
}

fn emit(
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    tcp: &TcpRepr<'_>,
    body: Body<'_>,
    buf: &mut [u8],
    csum: TxChecksum,
) -> Result<usize, WireError> {
    if tcp.options_len() > MAX_OPTIONS_LEN {
        return Err(WireError::BufferTooSmall);
    }
    let tcp_hl = tcp.header_len();
    let payload_len = match body {
        Body::Bytes(payload) => payload
            .iter()
            .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
            .ok_or(WireError::BufferTooSmall)?,
        Body::Omitted(n) => n,
    };
    let tcp_len = tcp_hl
        .checked_add(payload_len)
        .ok_or(WireError::BufferTooSmall)?;
    let ip = IpRepr {
        src,
        dst,
        protocol: IPPROTO_TCP,
        hop_limit,
        payload_len: tcp_len,
    };
    let ip_hl = ip.header_len();
    let total = ip_hl
        .checked_add(tcp_len)
        .ok_or(WireError::BufferTooSmall)?;
    let tcp_len32 = u32::try_from(tcp_len).map_err(|_| WireError::BadTotalLength)?;
    let written = match body {
        Body::Bytes(_) => total,
        Body::Omitted(_) => ip_hl + tcp_hl,
    };
    let out = buf.get_mut(..written).ok_or(WireError::BufferTooSmall)?;
    let (ip_buf, seg) = out.split_at_mut(ip_hl);
    ip.emit(ip_buf)?;

    let (hdr, body_buf) = seg.split_at_mut(tcp_hl);
    let (fixed, opts) = hdr.split_at_mut(20);
    fixed[0..2].copy_from_slice(&tcp.src_port.to_be_bytes());
    fixed[2..4].copy_from_slice(&tcp.dst_port.to_be_bytes());
    fixed[4..8].copy_from_slice(&tcp.seq.0.to_be_bytes());
    fixed[8..12].copy_from_slice(&tcp.ack.0.to_be_bytes());
    fixed[12] = ((tcp_hl / 4) as u8) << 4;
    fixed[13] = tcp.flags.0;
    fixed[14..16].copy_from_slice(&tcp.window.to_be_bytes());
    fixed[16..18].copy_from_slice(&[0, 0]);
    fixed[18..20].copy_from_slice(&tcp.urgent.to_be_bytes());
    tcp.write_options(opts)?;

    if let Body::Bytes(payload) = body {
        let mut pos = 0;
        for p in payload {
            body_buf[pos..pos + p.len()].copy_from_slice(p);
            pos += p.len();
        }
    }

    let pseudo = checksum::pseudo_header(src, dst, IPPROTO_TCP, tcp_len32);
    let c = match csum {
        TxChecksum::Partial => checksum::fold(u64::from(pseudo)),
        // Sum over the contiguous output so odd-length slices need no
        // special care.
        TxChecksum::Full => !checksum::fold(u64::from(checksum::accumulate(pseudo, seg))),
    };
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4() -> (IpAddr, IpAddr) {
        (
            Ipv4Addr::new(192, 0, 2, 1).into(),
            Ipv4Addr::new(198, 51, 100, 7).into(),
        )
    }

    fn v6() -> (IpAddr, IpAddr) {
        (
            "2001:db8::a".parse::<Ipv6Addr>().unwrap().into(),
            "2001:db8::b".parse::<Ipv6Addr>().unwrap().into(),
        )
    }

    fn base() -> TcpRepr<'static> {
        TcpRepr {
            seq: SeqNumber(0xdead_beef),
            ack: SeqNumber(0x0102_0304),
            flags: TcpFlags(TcpFlags::ACK | TcpFlags::PSH),
            window: 0xfedc,
            urgent: 0,
            ..TcpRepr::new(40000, 443)
        }
    }

    /// Emit over IPv4 and IPv6, parse back with checksum verification, and compare.
    fn roundtrip(repr: &TcpRepr<'_>, payload: &[&[u8]]) {
        let want: Vec<u8> = payload.concat();
        for (src, dst) in [v4(), v6()] {
            let mut buf = vec![0u8; 2000];
            let n = emit_packet(src, dst, 61, repr, payload, &mut buf).unwrap();
            let ip_hl = if src.is_ipv4() { 20 } else { 40 };
            assert_eq!(n, ip_hl + repr.header_len() + want.len());
            assert_eq!(repr.header_len() % 4, 0);
            assert!(repr.options_len() <= repr.header_len() - 20);
            assert!(repr.options_len() + 3 >= repr.header_len() - 20);
            let (ip, seg) = crate::wire::IpRepr::parse(&buf[..n]).unwrap();
            assert_eq!(
                (ip.src, ip.dst, ip.protocol, ip.hop_limit),
                (src, dst, 6, 61)
            );
            assert_eq!(ip.payload_len, seg.len());
            let parsed = TcpRepr::parse(src, dst, seg, true).unwrap();
            let mut expect = *repr;
            expect.payload = &want;
            assert_eq!(parsed, expect);
            let view = TcpSegment::new_checked(seg).unwrap();
            assert_eq!(view.header_len(), repr.header_len());
            assert!(view.verify_checksum(src, dst));
            assert_eq!(view.payload(), &want[..]);
        }
    }

    fn emit_v4(repr: &TcpRepr<'_>, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = v4();
        let mut buf = vec![0u8; 1500];
        let n = emit_packet(src, dst, 64, repr, &[payload], &mut buf).unwrap();
        buf.truncate(n);
        buf.drain(..20);
        buf
    }

    #[test]
    fn wire_tcp_headers_alone_are_the_packets_own() {
        // What a gather write sends: emit_headers' bytes, then the payload,
        // is the packet emit_packet_with builds with a partial checksum.
        let mut r = base();
        r.sack_permitted = true;
        r.timestamp = Some((7, 9));
        let big: Vec<u8> = (0..3001u32).map(|i| (i * 7) as u8).collect();
        for payload in [&big[..0], &big[..1], &big[..]] {
            for (src, dst) in [v4(), v6()] {
                let mut whole = vec![0u8; 4000];
                let n = emit_packet_with(
                    src,
                    dst,
                    64,
                    &r,
                    &[&payload[..payload.len() / 2], &payload[payload.len() / 2..]],
                    &mut whole,
                    TxChecksum::Partial,
                )
                .unwrap();
                // Only the headers' room is needed.
                let ip_hl = if src.is_ipv4() { 20 } else { 40 };
                let mut hdr = vec![0u8; ip_hl + r.header_len()];
                let h = emit_headers(src, dst, 64, &r, payload.len(), &mut hdr).unwrap();
                assert_eq!(h, hdr.len());
                assert_eq!([&hdr[..], payload].concat(), &whole[..n]);
                let short = &mut vec![0u8; h - 1];
                assert!(emit_headers(src, dst, 64, &r, payload.len(), short).is_err());
            }
        }
    }

    #[test]
    fn wire_tcp_plain_roundtrip() {
        roundtrip(&base(), &[]);
        roundtrip(&base(), &[b"hello, ", b"world"]);
        roundtrip(&base(), &[b"odd", b"x"]);
        roundtrip(&base(), &[b"a", b"bcd", b"", b"efghi"]);
        let big: Vec<u8> = (0..1401u32).map(|i| (i * 31) as u8).collect();
        roundtrip(&base(), &[&big[..777], &big[777..]]);
        let mut r = base();
        r.flags = TcpFlags(0xff);
        r.urgent = 0x1234;
        roundtrip(&r, &[b"u"]);
    }

    #[test]
    fn wire_tcp_each_option_roundtrips() {
        let mut r = base();
        r.mss = Some(1460);
        roundtrip(&r, &[b"x"]);

        let mut r = base();
        r.window_scale = Some(7);
        roundtrip(&r, &[]);
        r.window_scale = Some(0);
        roundtrip(&r, &[]);
        r.window_scale = Some(14);
        roundtrip(&r, &[]);

        let mut r = base();
        r.sack_permitted = true;
        roundtrip(&r, &[]);

        let mut r = base();
        r.timestamp = Some((0xffff_ffff, 7));
        roundtrip(&r, &[b"ab", b"c"]);

        for n in 1..=4u32 {
            let mut r = base();
            for i in 0..n {
                r.sack_blocks
                    .push(SeqNumber(i * 1000), SeqNumber(i * 1000 + 500 + i));
            }
            assert_eq!(r.options_len(), 4 + 8 * n as usize);
            roundtrip(&r, &[b"sack"]);
            if n <= 3 {
                r.timestamp = Some((1, 2));
                roundtrip(&r, &[]);
            }
        }

        let data = [
            0x10u8, 0x81, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05,
        ];
        let mut r = base();
        r.unknown.push(30, &data);
        roundtrip(&r, &[b"mptcp"]);
        let mut r = base();
        r.unknown.push(30, &[]);
        r.unknown.push(30, &data[..3]);
        r.unknown.push(253, &data[..6]);
        roundtrip(&r, &[]);
    }

    #[test]
    fn wire_tcp_syn_options_layout() {
        let mut r = base();
        r.flags = TcpFlags(TcpFlags::SYN);
        r.mss = Some(1460);
        r.sack_permitted = true;
        r.timestamp = Some((0x0a0b_0c0d, 0));
        r.window_scale = Some(7);
        assert_eq!(r.options_len(), 20);
        assert_eq!(r.header_len(), 40);
        let seg = emit_v4(&r, &[]);
        assert_eq!(seg[12], 10 << 4);
        assert_eq!(
            &seg[20..40],
            &[2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 0, 1, 3, 3, 7]
        );
        roundtrip(&r, &[]);

        // SYN with MPTCP MP_CAPABLE (kind 30, 12 bytes): 32 bytes of options.
        let key = [0u8, 0x81, 1, 2, 3, 4, 5, 6, 7, 8];
        r.unknown.push(30, &key);
        assert_eq!(r.options_len(), 32);
        assert_eq!(r.header_len(), 52);
        roundtrip(&r, &[]);

        // TS without SACK-permitted, and SACK-permitted without TS.
        let mut r = base();
        r.timestamp = Some((5, 6));
        assert_eq!(&emit_v4(&r, &[])[20..24], &[1, 1, 8, 10]);
        let mut r = base();
        r.sack_permitted = true;
        assert_eq!(&emit_v4(&r, &[])[20..24], &[1, 1, 4, 2]);
    }

    #[test]
    fn wire_tcp_unknown_option_padding() {
        let mut r = base();
        r.unknown.push(30, &[1, 2, 3]); // 5 bytes -> padded to 8 with NOPs
        assert_eq!(r.options_len(), 5);
        assert_eq!(r.header_len(), 28);
        let seg = emit_v4(&r, b"p");
        assert_eq!(&seg[20..28], &[30, 5, 1, 2, 3, 1, 1, 1]);
        assert_eq!(&seg[28..], b"p");
        roundtrip(&r, &[b"p"]);
    }

    #[test]
    fn wire_tcp_options_too_long() {
        let mut r = base();
        r.mss = Some(1);
        r.timestamp = Some((1, 1));
        for i in 0..3u32 {
            r.sack_blocks.push(SeqNumber(i), SeqNumber(i + 1));
        }
        // 4 + 12 + 28 = 44 > 40
        assert_eq!(r.options_len(), 44);
        let (s, d) = v4();
        let mut buf = [0u8; 200];
        assert_eq!(
            emit_packet(s, d, 64, &r, &[], &mut buf),
            Err(WireError::BufferTooSmall)
        );
        let big = [0u8; 300];
        let mut r = base();
        r.unknown.push(99, &big);
        assert_eq!(
            emit_packet(s, d, 64, &r, &[], &mut buf),
            Err(WireError::BufferTooSmall)
        );
        // Exactly 40 fits.
        let mut r = base();
        r.unknown.push(99, &big[..38]);
        assert_eq!(r.header_len(), 60);
        roundtrip(&r, &[]);
    }

    #[test]
    fn wire_tcp_emit_buffer_too_small() {
        let (s, d) = v4();
        let mut r = base();
        r.mss = Some(536);
        let mut buf = [0u8; 64];
        assert_eq!(
            emit_packet(s, d, 1, &r, &[b"abc"], &mut buf[..46]),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(emit_packet(s, d, 1, &r, &[b"abc"], &mut buf[..47]), Ok(47));
        let (s6, d6) = v6();
        assert_eq!(
            emit_packet(s6, d6, 1, &r, &[], &mut buf[..63]),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(
            emit_packet(s, d6, 1, &r, &[], &mut buf),
            Err(WireError::BadVersion)
        );
    }

    #[test]
    fn wire_tcp_window_scale_clamped() {
        let mut r = base();
        r.window_scale = Some(15);
        let seg = emit_v4(&r, &[]);
        let (s, d) = v4();
        let p = TcpRepr::parse(s, d, &seg, true).unwrap();
        assert_eq!(p.window_scale, Some(14));
        r.window_scale = Some(255);
        let seg = emit_v4(&r, &[]);
        assert_eq!(
            TcpRepr::parse(s, d, &seg, true).unwrap().window_scale,
            Some(14)
        );
    }

    /// A raw 20-byte header with the given options (data offset set accordingly;
    /// options must be a multiple of 4 unless `doff` overrides).
    fn raw_segment(opts: &[u8], doff: Option<u8>, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 20];
        b[0..2].copy_from_slice(&1234u16.to_be_bytes());
        b[2..4].copy_from_slice(&80u16.to_be_bytes());
        b[12] = doff.unwrap_or(((20 + opts.len()) / 4) as u8) << 4;
        b[13] = TcpFlags::ACK;
        b.extend_from_slice(opts);
        b.extend_from_slice(payload);
        b
    }

    fn parse_raw(b: &[u8]) -> Result<TcpRepr<'_>, WireError> {
        let (s, d) = v4();
        TcpRepr::parse(s, d, b, false)
    }

    #[test]
    fn wire_tcp_segment_errors() {
        let (s, d) = v4();
        let b = raw_segment(&[], None, b"data");
        assert!(parse_raw(&b).is_ok());
        assert_eq!(parse_raw(&b[..19]).err(), Some(WireError::Truncated));
        assert_eq!(parse_raw(&[]).err(), Some(WireError::Truncated));
        for doff in 0..5 {
            let b = raw_segment(&[], Some(doff), b"data");
            assert_eq!(parse_raw(&b).err(), Some(WireError::BadDataOffset));
            assert_eq!(
                TcpSegment::new_checked(&b[..]).err(),
                Some(WireError::BadDataOffset)
            );
        }
        // Data offset 7 (28 bytes) with only 24 bytes.
        let b = raw_segment(&[1, 1, 1, 1], Some(7), &[]);
        assert_eq!(parse_raw(&b).err(), Some(WireError::BadDataOffset));
        let b = raw_segment(&[], Some(15), &[0; 39]);
        assert_eq!(parse_raw(&b).err(), Some(WireError::BadDataOffset));
        let b = raw_segment(&[], Some(15), &[1; 40]);
        assert!(parse_raw(&b).is_ok());

        // Checksum: good, then a flipped payload byte.
        let mut r = base();
        r.mss = Some(1400);
        let mut seg = emit_v4(&r, b"payload!");
        assert!(TcpRepr::parse(s, d, &seg, true).is_ok());
        let last = seg.len() - 1;
        seg[last] ^= 0x40;
        assert_eq!(
            TcpRepr::parse(s, d, &seg, true).err(),
            Some(WireError::BadChecksum)
        );
        assert!(TcpRepr::parse(s, d, &seg, false).is_ok());
        // Wrong pseudo header (other destination) also fails.
        seg[last] ^= 0x40;
        let other: IpAddr = Ipv4Addr::new(198, 51, 100, 8).into();
        assert_eq!(
            TcpRepr::parse(s, other, &seg, true).err(),
            Some(WireError::BadChecksum)
        );
        assert!(!TcpSegment::new_checked(&seg[..])
            .unwrap()
            .verify_checksum(s, other));
    }

    #[test]
    fn wire_tcp_option_errors() {
        // Option length 0 and 1.
        for len in [0u8, 1] {
            let b = raw_segment(&[30, len, 0, 0], None, &[]);
            assert_eq!(parse_raw(&b).err(), Some(WireError::BadOptionLength));
            let b = raw_segment(&[2, len, 0, 0], None, &[]);
            assert_eq!(parse_raw(&b).err(), Some(WireError::BadOptionLength));
        }
        // Unknown option running past the header.
        let b = raw_segment(&[30, 6, 0, 0], None, &[0, 0, 0, 0]);
        assert_eq!(parse_raw(&b).err(), Some(WireError::OptionOverrun));
        // Timestamps (correct length) running past the header.
        let b = raw_segment(&[1, 1, 8, 10, 0, 0, 0, 0], None, &[0, 0]);
        assert_eq!(parse_raw(&b).err(), Some(WireError::OptionOverrun));
        // Last byte is a kind with no length byte.
        let b = raw_segment(&[1, 1, 1, 2], None, &[]);
        assert_eq!(parse_raw(&b).err(), Some(WireError::OptionOverrun));
        // MSS with length 5.
        let b = raw_segment(&[2, 5, 1, 2, 3, 1, 1, 1], None, &[]);
        assert_eq!(parse_raw(&b).err(), Some(WireError::BadOptionLength));
        // Other known kinds with wrong lengths.
        for opt in [
            &[3u8, 4, 7, 1][..],
            &[4, 3, 0, 1],
            &[8, 8, 0, 0, 0, 0, 0, 0],
            &[5, 2, 1, 1],
            &[5, 9, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
            &[5, 42, 0, 0],
        ] {
            let mut o = opt.to_vec();
            while o.len() % 4 != 0 {
                o.push(1);
            }
            let b = raw_segment(&o, None, &[]);
            assert_eq!(
                parse_raw(&b).err(),
                Some(WireError::BadOptionLength),
                "{opt:?}"
            );
        }
    }

    #[test]
    fn wire_tcp_option_iter() {
        let bytes = [1, 2, 4, 0x05, 0xb4, 3, 3, 9, 0, 0xff, 0xff];
        let opts: Vec<_> = TcpOptionIter::new(&bytes).collect();
        assert_eq!(
            opts,
            vec![
                Ok(TcpOption::NoOperation),
                Ok(TcpOption::MaxSegmentSize(1460)),
                Ok(TcpOption::WindowScale(9)),
                Ok(TcpOption::EndOfList),
            ]
        );
        let bytes = [30, 4, 0xaa, 0xbb, 1, 0, 1];
        let mut it = TcpOptionIter::new(&bytes);
        assert_eq!(
            it.next(),
            Some(Ok(TcpOption::Unknown {
                kind: 30,
                data: &[0xaa, 0xbb]
            }))
        );
        assert_eq!(it.next(), Some(Ok(TcpOption::NoOperation)));
        assert_eq!(it.next(), Some(Ok(TcpOption::EndOfList)));
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);

        let bytes = [1, 30, 1, 1, 1];
        let mut it = TcpOptionIter::new(&bytes);
        assert_eq!(it.next(), Some(Ok(TcpOption::NoOperation)));
        assert_eq!(it.next(), Some(Err(WireError::BadOptionLength)));
        assert_eq!(it.next(), None);
        assert_eq!(TcpOptionIter::new(&[]).next(), None);

        let bytes = [5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4];
        let mut blocks = SackBlocks::new();
        blocks.push(SeqNumber(1), SeqNumber(2));
        blocks.push(SeqNumber(3), SeqNumber(4));
        assert_eq!(
            TcpOptionIter::new(&bytes).next(),
            Some(Ok(TcpOption::SackRange(blocks)))
        );
    }

    #[test]
    fn wire_tcp_parse_eol_and_extra_unknowns() {
        // Options after EOL are ignored, even if malformed.
        let b = raw_segment(&[2, 4, 1, 0, 0, 30, 0, 0], None, b"z");
        let r = parse_raw(&b).unwrap();
        assert_eq!(r.mss, Some(256));
        assert!(r.unknown.is_empty());
        assert_eq!(r.payload, b"z");
        // Six unknown options: four kept.
        let mut o = Vec::new();
        for k in 30..36u8 {
            o.extend_from_slice(&[k, 3, k]);
        }
        o.extend_from_slice(&[0, 0]);
        let b = raw_segment(&o, None, &[]);
        let r = parse_raw(&b).unwrap();
        let kinds: Vec<u8> = r.unknown.iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, vec![30, 31, 32, 33]);
        assert!(r.unknown.iter().all(|(k, d)| d == [k]));
    }

    #[test]
    fn wire_tcp_checksum_known_answer() {
        // Checksum written by emit_packet equals an independent computation.
        let (s, d) = v4();
        let mut r = base();
        r.timestamp = Some((10, 20));
        let seg = emit_v4(&r, b"abc");
        let mut copy = seg.clone();
        copy[16..18].copy_from_slice(&[0, 0]);
        let mut ph = Vec::new();
        if let (IpAddr::V4(a), IpAddr::V4(b)) = (s, d) {
            ph.extend_from_slice(&a.octets());
            ph.extend_from_slice(&b.octets());
        }
        ph.extend_from_slice(&[0, 6]);
        ph.extend_from_slice(&(seg.len() as u16).to_be_bytes());
        ph.extend_from_slice(&copy);
        assert_eq!(checksum::checksum(&ph).to_be_bytes(), [seg[16], seg[17]]);
    }
}
