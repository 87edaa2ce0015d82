//! TCP header (RFC 9293) and options: MSS, window scale, SACK (RFC 2018), timestamps
//! (RFC 7323), NOP/EOL, and any other kind kept raw (MPTCP, kind 30, is layered on top).
//!
//! STUB: the wire helper implements these bodies.

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
        self.items[..self.len as usize].iter().copied()
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

impl<'a> Iterator for TcpOptionIter<'a> {
    type Item = Result<TcpOption<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        let _ = (&self.bytes, self.failed);
        todo!()
    }
}

/// A zero-copy view over a TCP segment (header + payload).
pub struct TcpSegment<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    /// Validate length and data offset (>= 5, within the buffer).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let _ = buffer;
        todo!()
    }
    pub fn src_port(&self) -> u16 {
        todo!()
    }
    pub fn dst_port(&self) -> u16 {
        todo!()
    }
    pub fn seq(&self) -> SeqNumber {
        todo!()
    }
    pub fn ack(&self) -> SeqNumber {
        todo!()
    }
    pub fn flags(&self) -> TcpFlags {
        todo!()
    }
    pub fn window(&self) -> u16 {
        todo!()
    }
    pub fn header_len(&self) -> usize {
        todo!()
    }
    pub fn options(&self) -> &[u8] {
        todo!()
    }
    pub fn payload(&self) -> &[u8] {
        let _ = &self.buffer;
        todo!()
    }
    /// Verify the checksum against the pseudo header for `src` -> `dst`.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let _ = (src, dst);
        todo!()
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
    pub fn parse(
        src: IpAddr,
        dst: IpAddr,
        bytes: &'a [u8],
        verify_checksum: bool,
    ) -> Result<TcpRepr<'a>, WireError> {
        let _ = (src, dst, bytes, verify_checksum);
        todo!()
    }

    /// Length of the header this repr emits: 20 + options padded to 4 bytes.
    pub fn header_len(&self) -> usize {
        todo!()
    }

    /// Total option bytes (before padding) this repr would emit.
    pub fn options_len(&self) -> usize {
        todo!()
    }
}

/// Write a complete IP packet carrying `tcp` and the concatenation of `payload`
/// slices into `buf`; fills the IP and TCP checksums. Returns the packet length.
pub fn emit_packet(
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    tcp: &TcpRepr<'_>,
    payload: &[&[u8]],
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let _ = (src, dst, hop_limit, tcp, payload, buf);
    todo!()
}
