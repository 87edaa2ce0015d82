//! MPTCP options (TCP option kind 30): RFC 8684 (v1) and RFC 6824 (v0).
//!
//! The TCP layer keeps MPTCP options raw in [`TcpRepr::unknown`] as
//! `(30, bytes after the kind and length bytes)`. [`MptcpOption::parse`] decodes
//! such a slice and [`MptcpOption::emit`] / [`MptcpOption::encode`] produce one;
//! every slice here therefore starts with the `subtype << 4 | field` byte and
//! the option's length byte on the wire is `data.len() + 2`.
//!
//! Lengths are checked exactly (`docs/PROTOCOL.md` tabulates them). Some depend on the
//! segment (MP_CAPABLE, MP_JOIN), hence [`ParseCtx`]. Reserved bits are ignored
//! on parse and written as zero. Parsing never panics on any input.

use super::tcp::TcpRepr;
use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TCP option kind of MPTCP.
pub const TCPOPT_MPTCP: u8 = 30;

/// Most bytes an MPTCP option can carry after kind and length (40-byte option
/// space minus those two bytes).
pub const MAX_OPTION_DATA_LEN: usize = 38;

/// Most address ids one REMOVE_ADDR can carry (length 3 + n <= 40).
pub const MAX_REMOVE_ADDR_IDS: usize = 37;

/// MPTCP option subtypes (the high nibble of the first data byte).
pub mod subtype {
    pub const MP_CAPABLE: u8 = 0;
    pub const MP_JOIN: u8 = 1;
    pub const DSS: u8 = 2;
    pub const ADD_ADDR: u8 = 3;
    pub const REMOVE_ADDR: u8 = 4;
    pub const MP_PRIO: u8 = 5;
    pub const MP_FAIL: u8 = 6;
    pub const MP_FASTCLOSE: u8 = 7;
    pub const MP_TCPRST: u8 = 8;
}

/// MPTCP protocol version: 0 is RFC 6824, 1 is RFC 8684.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MptcpVersion {
    V0,
    V1,
}

impl MptcpVersion {
    /// The version number as written in MP_CAPABLE.
    pub const fn number(self) -> u8 {
        match self {
            MptcpVersion::V0 => 0,
            MptcpVersion::V1 => 1,
        }
    }
}

/// What the segment carrying the option looks like; MP_CAPABLE and MP_JOIN
/// lengths depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ParseCtx {
    /// The SYN flag is set.
    pub syn: bool,
    /// The ACK flag is set.
    pub ack: bool,
    /// The segment carries payload bytes.
    pub has_payload: bool,
}

impl ParseCtx {
    /// The context of a parsed segment (flags and `payload`).
    pub fn from_repr(repr: &TcpRepr<'_>) -> Self {
        ParseCtx {
            syn: repr.flags.syn(),
            ack: repr.flags.ack(),
            has_payload: !repr.payload.is_empty(),
        }
    }
}

/// Why an MPTCP option could not be parsed or emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MptcpError {
    /// No subtype byte (option length 2).
    Truncated,
    /// The option length (the length byte, i.e. data length + 2) is not one the
    /// subtype allows for this segment and these flags.
    BadLength { subtype: u8, len: usize },
    /// MP_CAPABLE with a version other than 1 outside a SYN (a SYN may offer
    /// higher versions), where the layout is unknown.
    BadVersion { version: u8 },
    /// v0 ADD_ADDR whose IP-version nibble disagrees with its length.
    BadAddressFamily,
    /// The output buffer is shorter than [`MptcpOption::encoded_len`].
    BufferTooSmall,
    /// The value cannot be written: a field combination no wire form has, a
    /// value out of range, or more than [`MAX_OPTION_DATA_LEN`] bytes.
    InvalidRepr(&'static str),
}

impl fmt::Display for MptcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MptcpError::Truncated => f.write_str("MPTCP option without subtype"),
            MptcpError::BadLength { subtype, len } => {
                write!(f, "MPTCP option subtype {subtype} with bad length {len}")
            }
            MptcpError::BadVersion { version } => {
                write!(f, "MP_CAPABLE with unsupported version {version}")
            }
            MptcpError::BadAddressFamily => {
                f.write_str("ADD_ADDR IP version disagrees with its length")
            }
            MptcpError::BufferTooSmall => f.write_str("buffer too small for MPTCP option"),
            MptcpError::InvalidRepr(what) => write!(f, "MPTCP option cannot be encoded: {what}"),
        }
    }
}

impl std::error::Error for MptcpError {}

/// MP_CAPABLE flag byte (byte 3 of the option), kept raw so reserved bits survive
/// a parse; the receiver decides what to do with unexpected bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MpCapableFlags(pub u8);

impl MpCapableFlags {
    /// A: checksum required.
    pub const A: u8 = 0x80;
    /// B: extensibility (must be 0).
    pub const B: u8 = 0x40;
    /// C: do not join to the initial address/port (v1 only; reserved in v0).
    pub const C: u8 = 0x20;
    /// Reserved bits (v1).
    pub const RESERVED: u8 = 0x1e;
    /// H: HMAC-SHA256 (v1) / HMAC-SHA1 (v0).
    pub const H: u8 = 0x01;

    pub const fn checksum_required(self) -> bool {
        self.0 & Self::A != 0
    }
    pub const fn extensibility(self) -> bool {
        self.0 & Self::B != 0
    }
    pub const fn no_join_initial(self) -> bool {
        self.0 & Self::C != 0
    }
    pub const fn hmac_sha(self) -> bool {
        self.0 & Self::H != 0
    }
}

/// MP_CAPABLE. Which fields are present selects the form:
///
/// | version | sender_key | receiver_key | data_len | checksum | form (length) |
/// |---|---|---|---|---|---|
/// | V1 | - | - | - | - | SYN (4) |
/// | V1 | x | - | - | - | SYN/ACK (12) |
/// | V1 | x | x | - | - | third ACK (20) |
/// | V1 | x | x | x | - | first data (22) |
/// | V1 | x | x | x | x | first data with checksum (24) |
/// | V0 | x | - | - | - | SYN or SYN/ACK (12) |
/// | V0 | x | x | - | - | third ACK (20) |
///
/// `sender_key` is always the key of the segment's sender (in a v0 SYN/ACK, the
/// responder's key), `receiver_key` the other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MpCapable {
    pub version: MptcpVersion,
    pub flags: MpCapableFlags,
    pub sender_key: Option<u64>,
    pub receiver_key: Option<u64>,
    pub data_len: Option<u16>,
    pub checksum: Option<u16>,
}

/// MP_JOIN in its three forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MpJoin {
    /// SYN (length 12): the receiver's token and the sender's nonce.
    Syn {
        backup: bool,
        addr_id: u8,
        token: u32,
        nonce: u32,
    },
    /// SYN/ACK (length 16): leftmost 8 bytes of the sender's HMAC (as a
    /// big-endian u64) and the sender's nonce.
    SynAck {
        backup: bool,
        addr_id: u8,
        hmac: u64,
        nonce: u32,
    },
    /// Third ACK (length 24): leftmost 20 bytes of the sender's HMAC.
    Ack { hmac: [u8; 20] },
}

/// A DSS DATA_ACK. When `is_64bit` is false only the low 32 bits are on the
/// wire (and `value` parses as that 32-bit value); see [`expand_seq32`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataAck {
    pub value: u64,
    pub is_64bit: bool,
}

impl DataAck {
    /// The full 64-bit value: `value` if 64-bit, else the value with these low
    /// 32 bits nearest to `near`.
    pub fn expand(&self, near: u64) -> u64 {
        if self.is_64bit {
            self.value
        } else {
            expand_seq32(self.value as u32, near)
        }
    }
}

/// A DSS mapping. `ssn` is relative (first data byte of the subflow = 1);
/// `data_len` 0 is an infinite mapping. `checksum` is present iff DSS checksums
/// were negotiated on the connection (parse infers it from the length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mapping {
    pub dsn: u64,
    pub dsn_64bit: bool,
    pub ssn: u32,
    pub data_len: u16,
    pub checksum: Option<u16>,
}

impl Mapping {
    /// The full 64-bit DSN: `dsn` if 64-bit, else the value with these low
    /// 32 bits nearest to `near`.
    pub fn expand_dsn(&self, near: u64) -> u64 {
        if self.dsn_64bit {
            self.dsn
        } else {
            expand_seq32(self.dsn as u32, near)
        }
    }
}

/// DSS (Data Sequence Signal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dss {
    pub data_fin: bool,
    pub data_ack: Option<DataAck>,
    pub mapping: Option<Mapping>,
}

impl Dss {
    /// DSS flag bits (byte 3).
    pub const FLAG_F: u8 = 0x10;
    pub const FLAG_DSN64: u8 = 0x08;
    pub const FLAG_M: u8 = 0x04;
    pub const FLAG_ACK64: u8 = 0x02;
    pub const FLAG_A: u8 = 0x01;
}

/// ADD_ADDR, whose layout differs between the versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddAddr {
    /// RFC 8684: `hmac` (rightmost 8 bytes of the HMAC, big-endian) is present
    /// iff `echo` is false.
    V1 {
        echo: bool,
        addr_id: u8,
        addr: IpAddr,
        port: Option<u16>,
        hmac: Option<u64>,
    },
    /// RFC 6824: IP version in the low nibble of byte 2, no echo, no HMAC.
    V0 {
        addr_id: u8,
        addr: IpAddr,
        port: Option<u16>,
    },
}

/// REMOVE_ADDR: 1 to [`MAX_REMOVE_ADDR_IDS`] address ids, stored inline.
// Slots past `len` are always zero, so the derived comparisons are by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RemoveAddr {
    ids: [u8; MAX_REMOVE_ADDR_IDS],
    len: u8,
}

impl RemoveAddr {
    /// None if `ids` is empty or longer than [`MAX_REMOVE_ADDR_IDS`].
    pub fn new(ids: &[u8]) -> Option<Self> {
        if ids.is_empty() || ids.len() > MAX_REMOVE_ADDR_IDS {
            return None;
        }
        let mut r = RemoveAddr {
            ids: [0; MAX_REMOVE_ADDR_IDS],
            len: ids.len() as u8,
        };
        r.ids[..ids.len()].copy_from_slice(ids);
        Some(r)
    }
    /// Append an id; false (nothing stored) when full.
    pub fn push(&mut self, id: u8) -> bool {
        let Some(slot) = self.ids.get_mut(usize::from(self.len)) else {
            return false;
        };
        *slot = id;
        self.len += 1;
        true
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.ids[..usize::from(self.len)]
    }
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// MP_PRIO: length 3, or 4 with an address id (v0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MpPrio {
    pub backup: bool,
    pub addr_id: Option<u8>,
}

/// MP_FAIL: the DSN where the checksum failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MpFail {
    pub dsn: u64,
}

/// MP_FASTCLOSE: the option's receiver's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FastClose {
    pub receiver_key: u64,
}

/// MP_TCPRST: flags U V W T (low 4 bits) and a reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRst {
    pub flags: u8,
    pub reason: u8,
}

impl TcpRst {
    pub const FLAG_U: u8 = 0x8;
    pub const FLAG_V: u8 = 0x4;
    pub const FLAG_W: u8 = 0x2;
    /// T: the error is transient.
    pub const FLAG_T: u8 = 0x1;

    pub const REASON_UNSPECIFIED: u8 = 0;
    pub const REASON_MPTCP_ERROR: u8 = 1;
    pub const REASON_LACK_OF_RESOURCES: u8 = 2;
    pub const REASON_ADMIN_PROHIBITED: u8 = 3;
    pub const REASON_TOO_MUCH_OUTSTANDING: u8 = 4;
    pub const REASON_UNACCEPTABLE_PERFORMANCE: u8 = 5;
    pub const REASON_MIDDLEBOX_INTERFERENCE: u8 = 6;

    pub const fn transient(self) -> bool {
        self.flags & Self::FLAG_T != 0
    }
}

/// One MPTCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MptcpOption<'a> {
    MpCapable(MpCapable),
    MpJoin(MpJoin),
    Dss(Dss),
    AddAddr(AddAddr),
    RemoveAddr(RemoveAddr),
    MpPrio(MpPrio),
    MpFail(MpFail),
    FastClose(FastClose),
    TcpRst(TcpRst),
    /// Any other subtype (9..=15, incl. MP_EXPERIMENTAL). `data` is the whole
    /// option after kind and length, subtype byte included, and is emitted
    /// verbatim (its high nibble must equal `subtype`).
    Unknown {
        subtype: u8,
        data: &'a [u8],
    },
}

/// The 64-bit sequence number whose low 32 bits are `low` and which is nearest
/// to `near` (ties go forward), wrapping modulo 2^64. Use it to expand 32-bit
/// DSNs / DATA_ACKs against the current 64-bit value.
pub fn expand_seq32(low: u32, near: u64) -> u64 {
    let delta = low.wrapping_sub(near as u32) as i32;
    near.wrapping_add(i64::from(delta) as u64)
}

/// The data of every MPTCP option (kind 30) in `repr.unknown`, in order.
pub fn mptcp_options<'a>(repr: &TcpRepr<'a>) -> impl Iterator<Item = &'a [u8]> {
    let mut found: [&'a [u8]; 4] = [&[]; 4];
    let mut n = 0;
    for (kind, data) in repr.unknown.iter() {
        if kind == TCPOPT_MPTCP {
            if let Some(slot) = found.get_mut(n) {
                *slot = data;
                n += 1;
            }
        }
    }
    found.into_iter().take(n)
}

/// Every MPTCP option of one segment, decoded once where the segment enters
/// the engine. A segment carries at most four; should one kind repeat, the last
/// counts. Options that do not decode are ignored (RFC 8684 §3: an unknown or
/// malformed option is not acted on) and counted in `malformed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MptcpOptions {
    pub capable: Option<MpCapable>,
    pub join: Option<MpJoin>,
    pub dss: Option<Dss>,
    pub add_addr: Option<AddAddr>,
    pub remove_addr: Option<RemoveAddr>,
    pub prio: Option<MpPrio>,
    pub fail: Option<MpFail>,
    pub fastclose: Option<FastClose>,
    pub tcprst: Option<TcpRst>,
    /// At least one MPTCP option decoded (of any subtype, unknown ones too).
    pub any: bool,
    pub malformed: u8,
}

impl MptcpOptions {
    pub fn parse(repr: &TcpRepr<'_>) -> MptcpOptions {
        match repr.unknown.as_slice() {
            // Plain TCP: nothing to look at.
            [] => MptcpOptions::default(),
            [(TCPOPT_MPTCP, data)] if data.first().map(|b| b >> 4) == Some(subtype::DSS) => {
                Self::only_dss(data)
            }
            _ => Self::parse_each(repr),
        }
    }

    /// A segment whose only MPTCP option is a DSS, as nearly every segment of
    /// a transfer is: the result is built in one go, without a pass through
    /// [`MptcpOption`] and the copying of the whole struct that costs.
    fn only_dss(data: &[u8]) -> MptcpOptions {
        match Dss::parse(data) {
            Ok(dss) => MptcpOptions {
                dss: Some(dss),
                any: true,
                ..MptcpOptions::default()
            },
            Err(_) => MptcpOptions {
                malformed: 1,
                ..MptcpOptions::default()
            },
        }
    }

    /// Any other set of options, one at a time. Kept out of line so that its
    /// large frame does not weigh on the DSS path.
    #[inline(never)]
    fn parse_each(repr: &TcpRepr<'_>) -> MptcpOptions {
        let mut o = MptcpOptions::default();
        let ctx = ParseCtx::from_repr(repr);
        for data in mptcp_options(repr) {
            let Ok(opt) = MptcpOption::parse(data, ctx) else {
                o.malformed += 1;
                continue;
            };
            o.any = true;
            match opt {
                MptcpOption::MpCapable(c) => o.capable = Some(c),
                MptcpOption::MpJoin(j) => o.join = Some(j),
                MptcpOption::Dss(d) => o.dss = Some(d),
                MptcpOption::AddAddr(a) => o.add_addr = Some(a),
                MptcpOption::RemoveAddr(r) => o.remove_addr = Some(r),
                MptcpOption::MpPrio(p) => o.prio = Some(p),
                MptcpOption::MpFail(f) => o.fail = Some(f),
                MptcpOption::FastClose(f) => o.fastclose = Some(f),
                MptcpOption::TcpRst(r) => o.tcprst = Some(r),
                MptcpOption::Unknown { .. } => {}
            }
        }
        o
    }
}

/// The encoded bytes (after kind and length) of one option, without heap.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncodedOption {
    buf: [u8; MAX_OPTION_DATA_LEN],
    len: u8,
}

impl EncodedOption {
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl fmt::Debug for EncodedOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EncodedOption")
            .field(&self.as_slice())
            .finish()
    }
}

mod emit;
mod parse;
#[cfg(test)]
mod tests;
