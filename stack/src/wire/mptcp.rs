//! MPTCP options (TCP option kind 30): RFC 8684 (v1) and RFC 6824 (v0).
//!
//! The TCP layer keeps MPTCP options raw in [`TcpRepr::unknown`] as
//! `(30, bytes after the kind and length bytes)`. [`MptcpOption::parse`] decodes
//! such a slice and [`MptcpOption::emit`] / [`MptcpOption::encode`] produce one;
//! every slice here therefore starts with the `subtype << 4 | field` byte and
//! the option's length byte on the wire is `data.len() + 2`.
//!
//! Lengths are checked exactly (see `docs/PROTOCOL.md`). Some depend on the
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

fn be_u16(d: &[u8], off: usize) -> u16 {
    let mut b = [0u8; 2];
    if let Some(s) = d.get(off..off + 2) {
        b.copy_from_slice(s);
    }
    u16::from_be_bytes(b)
}

fn be_u32(d: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = d.get(off..off + 4) {
        b.copy_from_slice(s);
    }
    u32::from_be_bytes(b)
}

fn be_u64(d: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = d.get(off..off + 8) {
        b.copy_from_slice(s);
    }
    u64::from_be_bytes(b)
}

fn read_addr(d: &[u8], off: usize, v6: bool) -> IpAddr {
    if v6 {
        let mut b = [0u8; 16];
        if let Some(s) = d.get(off..off + 16) {
            b.copy_from_slice(s);
        }
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        IpAddr::V4(Ipv4Addr::from(be_u32(d, off)))
    }
}

/// Bounds-checked sequential writer.
struct Writer<'b> {
    out: &'b mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), MptcpError> {
        let end = self.pos + bytes.len();
        self.out
            .get_mut(self.pos..end)
            .ok_or(MptcpError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }
    fn addr(&mut self, addr: &IpAddr) -> Result<(), MptcpError> {
        match addr {
            IpAddr::V4(a) => self.put(&a.octets()),
            IpAddr::V6(a) => self.put(&a.octets()),
        }
    }
}

const fn opt_len<T>(o: &Option<T>, n: usize) -> usize {
    if o.is_some() {
        n
    } else {
        0
    }
}

fn addr_len(addr: &IpAddr) -> usize {
    match addr {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    }
}

impl<'a> MptcpOption<'a> {
    /// Decode `data`, the bytes of an MPTCP option after kind and length.
    pub fn parse(data: &'a [u8], ctx: ParseCtx) -> Result<MptcpOption<'a>, MptcpError> {
        let Some(&first) = data.first() else {
            return Err(MptcpError::Truncated);
        };
        let st = first >> 4;
        let nibble = first & 0x0f;
        let len = data.len() + 2;
        let bad = MptcpError::BadLength { subtype: st, len };
        let opt = match st {
            subtype::MP_CAPABLE => {
                let v1_form = nibble != 0;
                let ok = match (v1_form, ctx.syn, ctx.ack) {
                    (true, true, false) => len == 4,
                    (true, true, true) => len == 12,
                    (true, false, _) if ctx.has_payload => len == 22 || len == 24,
                    (true, false, _) => len == 20,
                    (false, true, _) => len == 12,
                    (false, false, _) => len == 20,
                };
                if !ok {
                    return Err(bad);
                }
                // A SYN may offer any version >= 1; everything else must say 1.
                let syn_only = ctx.syn && !ctx.ack;
                if nibble > 1 && !syn_only {
                    return Err(MptcpError::BadVersion { version: nibble });
                }
                MptcpOption::MpCapable(MpCapable {
                    version: if v1_form {
                        MptcpVersion::V1
                    } else {
                        MptcpVersion::V0
                    },
                    flags: MpCapableFlags(data[1]),
                    sender_key: (len >= 12).then(|| be_u64(data, 2)),
                    receiver_key: (len >= 20).then(|| be_u64(data, 10)),
                    data_len: (len >= 22).then(|| be_u16(data, 18)),
                    checksum: (len >= 24).then(|| be_u16(data, 20)),
                })
            }
            subtype::MP_JOIN => {
                let backup = nibble & 1 != 0;
                let join = match (ctx.syn, ctx.ack, len) {
                    (true, false, 12) => MpJoin::Syn {
                        backup,
                        addr_id: data[1],
                        token: be_u32(data, 2),
                        nonce: be_u32(data, 6),
                    },
                    (true, true, 16) => MpJoin::SynAck {
                        backup,
                        addr_id: data[1],
                        hmac: be_u64(data, 2),
                        nonce: be_u32(data, 10),
                    },
                    (false, _, 24) => {
                        let mut hmac = [0u8; 20];
                        hmac.copy_from_slice(&data[2..22]);
                        MpJoin::Ack { hmac }
                    }
                    _ => return Err(bad),
                };
                MptcpOption::MpJoin(join)
            }
            subtype::DSS => {
                let Some(&flags) = data.get(1) else {
                    return Err(bad);
                };
                let has_ack = flags & Dss::FLAG_A != 0;
                let ack64 = flags & Dss::FLAG_ACK64 != 0;
                let has_map = flags & Dss::FLAG_M != 0;
                let dsn64 = flags & Dss::FLAG_DSN64 != 0;
                let ack_len = match (has_ack, ack64) {
                    (false, _) => 0,
                    (true, false) => 4,
                    (true, true) => 8,
                };
                let map_len = match (has_map, dsn64) {
                    (false, _) => 0,
                    (true, false) => 10,
                    (true, true) => 14,
                };
                let base = 4 + ack_len + map_len;
                let csum = if len == base {
                    false
                } else if has_map && len == base + 2 {
                    true
                } else {
                    return Err(bad);
                };
                let mut pos = 2;
                let data_ack = has_ack.then(|| {
                    let value = if ack64 {
                        be_u64(data, pos)
                    } else {
                        u64::from(be_u32(data, pos))
                    };
                    pos += ack_len;
                    DataAck {
                        value,
                        is_64bit: ack64,
                    }
                });
                let mapping = has_map.then(|| {
                    let dsn = if dsn64 {
                        be_u64(data, pos)
                    } else {
                        u64::from(be_u32(data, pos))
                    };
                    pos += if dsn64 { 8 } else { 4 };
                    Mapping {
                        dsn,
                        dsn_64bit: dsn64,
                        ssn: be_u32(data, pos),
                        data_len: be_u16(data, pos + 4),
                        checksum: csum.then(|| be_u16(data, pos + 6)),
                    }
                });
                MptcpOption::Dss(Dss {
                    data_fin: flags & Dss::FLAG_F != 0,
                    data_ack,
                    mapping,
                })
            }
            subtype::ADD_ADDR => {
                let addr_id = data.get(1).copied().unwrap_or(0);
                let a = match nibble {
                    4 | 6 => {
                        let (v6, port) = match len {
                            8 => (false, false),
                            10 => (false, true),
                            20 => (true, false),
                            22 => (true, true),
                            _ => return Err(bad),
                        };
                        if v6 != (nibble == 6) {
                            return Err(MptcpError::BadAddressFamily);
                        }
                        let alen = if v6 { 16 } else { 4 };
                        AddAddr::V0 {
                            addr_id,
                            addr: read_addr(data, 2, v6),
                            port: port.then(|| be_u16(data, 2 + alen)),
                        }
                    }
                    _ => {
                        let echo = nibble & 1 != 0;
                        let hmac_len = if echo { 0 } else { 8 };
                        let (v6, port) = match len.checked_sub(hmac_len) {
                            Some(8) => (false, false),
                            Some(10) => (false, true),
                            Some(20) => (true, false),
                            Some(22) => (true, true),
                            _ => return Err(bad),
                        };
                        let alen = if v6 { 16 } else { 4 };
                        let plen = if port { 2 } else { 0 };
                        AddAddr::V1 {
                            echo,
                            addr_id,
                            addr: read_addr(data, 2, v6),
                            port: port.then(|| be_u16(data, 2 + alen)),
                            hmac: (!echo).then(|| be_u64(data, 2 + alen + plen)),
                        }
                    }
                };
                MptcpOption::AddAddr(a)
            }
            subtype::REMOVE_ADDR => {
                let ids = RemoveAddr::new(&data[1..]).ok_or(bad)?;
                MptcpOption::RemoveAddr(ids)
            }
            subtype::MP_PRIO => match len {
                3 | 4 => MptcpOption::MpPrio(MpPrio {
                    backup: nibble & 1 != 0,
                    addr_id: data.get(1).copied(),
                }),
                _ => return Err(bad),
            },
            subtype::MP_FAIL => match len {
                12 => MptcpOption::MpFail(MpFail {
                    dsn: be_u64(data, 2),
                }),
                _ => return Err(bad),
            },
            subtype::MP_FASTCLOSE => match len {
                12 => MptcpOption::FastClose(FastClose {
                    receiver_key: be_u64(data, 2),
                }),
                _ => return Err(bad),
            },
            subtype::MP_TCPRST => match len {
                4 => MptcpOption::TcpRst(TcpRst {
                    flags: nibble,
                    reason: data[1],
                }),
                _ => return Err(bad),
            },
            _ => MptcpOption::Unknown { subtype: st, data },
        };
        Ok(opt)
    }

    /// The subtype number (see [`subtype`]).
    pub fn subtype(&self) -> u8 {
        match self {
            MptcpOption::MpCapable(_) => subtype::MP_CAPABLE,
            MptcpOption::MpJoin(_) => subtype::MP_JOIN,
            MptcpOption::Dss(_) => subtype::DSS,
            MptcpOption::AddAddr(_) => subtype::ADD_ADDR,
            MptcpOption::RemoveAddr(_) => subtype::REMOVE_ADDR,
            MptcpOption::MpPrio(_) => subtype::MP_PRIO,
            MptcpOption::MpFail(_) => subtype::MP_FAIL,
            MptcpOption::FastClose(_) => subtype::MP_FASTCLOSE,
            MptcpOption::TcpRst(_) => subtype::MP_TCPRST,
            MptcpOption::Unknown { subtype, .. } => *subtype,
        }
    }

    /// Bytes [`emit`](Self::emit) writes (after kind and length; the option takes
    /// two more in the TCP header). For values `emit` rejects, the length their
    /// fields would take.
    pub fn encoded_len(&self) -> usize {
        match self {
            MptcpOption::MpCapable(c) => {
                2 + opt_len(&c.sender_key, 8)
                    + opt_len(&c.receiver_key, 8)
                    + opt_len(&c.data_len, 2)
                    + opt_len(&c.checksum, 2)
            }
            MptcpOption::MpJoin(MpJoin::Syn { .. }) => 10,
            MptcpOption::MpJoin(MpJoin::SynAck { .. }) => 14,
            MptcpOption::MpJoin(MpJoin::Ack { .. }) => 22,
            MptcpOption::Dss(d) => {
                let ack = match d.data_ack {
                    None => 0,
                    Some(DataAck { is_64bit: true, .. }) => 8,
                    Some(DataAck {
                        is_64bit: false, ..
                    }) => 4,
                };
                let map = match d.mapping {
                    None => 0,
                    Some(m) => (if m.dsn_64bit { 14 } else { 10 }) + opt_len(&m.checksum, 2),
                };
                2 + ack + map
            }
            MptcpOption::AddAddr(AddAddr::V1 {
                addr, port, hmac, ..
            }) => 2 + addr_len(addr) + opt_len(port, 2) + opt_len(hmac, 8),
            MptcpOption::AddAddr(AddAddr::V0 { addr, port, .. }) => {
                2 + addr_len(addr) + opt_len(port, 2)
            }
            MptcpOption::RemoveAddr(r) => 1 + r.len(),
            MptcpOption::MpPrio(p) => 1 + opt_len(&p.addr_id, 1),
            MptcpOption::MpFail(_) | MptcpOption::FastClose(_) => 10,
            MptcpOption::TcpRst(_) => 2,
            MptcpOption::Unknown { data, .. } => data.len(),
        }
    }

    /// Encode into the start of `buf` (the bytes after kind and length); returns
    /// [`encoded_len`](Self::encoded_len). Reserved bits are written as zero.
    /// A 32-bit DATA_ACK or DSN writes the low 32 bits of the value.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MptcpError> {
        self.validate()?;
        let n = self.encoded_len();
        if n > MAX_OPTION_DATA_LEN {
            return Err(MptcpError::InvalidRepr("longer than the option space"));
        }
        let out = buf.get_mut(..n).ok_or(MptcpError::BufferTooSmall)?;
        let mut w = Writer { out, pos: 0 };
        let st = self.subtype() << 4;
        match self {
            MptcpOption::MpCapable(c) => {
                w.put(&[st | c.version.number(), c.flags.0])?;
                for k in [c.sender_key, c.receiver_key].into_iter().flatten() {
                    w.put(&k.to_be_bytes())?;
                }
                for v in [c.data_len, c.checksum].into_iter().flatten() {
                    w.put(&v.to_be_bytes())?;
                }
            }
            MptcpOption::MpJoin(MpJoin::Syn {
                backup,
                addr_id,
                token,
                nonce,
            }) => {
                w.put(&[st | u8::from(*backup), *addr_id])?;
                w.put(&token.to_be_bytes())?;
                w.put(&nonce.to_be_bytes())?;
            }
            MptcpOption::MpJoin(MpJoin::SynAck {
                backup,
                addr_id,
                hmac,
                nonce,
            }) => {
                w.put(&[st | u8::from(*backup), *addr_id])?;
                w.put(&hmac.to_be_bytes())?;
                w.put(&nonce.to_be_bytes())?;
            }
            MptcpOption::MpJoin(MpJoin::Ack { hmac }) => {
                w.put(&[st, 0])?;
                w.put(hmac)?;
            }
            MptcpOption::Dss(d) => {
                let mut flags = 0;
                if d.data_fin {
                    flags |= Dss::FLAG_F;
                }
                if let Some(a) = d.data_ack {
                    flags |= Dss::FLAG_A;
                    if a.is_64bit {
                        flags |= Dss::FLAG_ACK64;
                    }
                }
                if let Some(m) = d.mapping {
                    flags |= Dss::FLAG_M;
                    if m.dsn_64bit {
                        flags |= Dss::FLAG_DSN64;
                    }
                }
                w.put(&[st, flags])?;
                if let Some(a) = d.data_ack {
                    if a.is_64bit {
                        w.put(&a.value.to_be_bytes())?;
                    } else {
                        w.put(&(a.value as u32).to_be_bytes())?;
                    }
                }
                if let Some(m) = d.mapping {
                    if m.dsn_64bit {
                        w.put(&m.dsn.to_be_bytes())?;
                    } else {
                        w.put(&(m.dsn as u32).to_be_bytes())?;
                    }
                    w.put(&m.ssn.to_be_bytes())?;
                    w.put(&m.data_len.to_be_bytes())?;
                    if let Some(c) = m.checksum {
                        w.put(&c.to_be_bytes())?;
                    }
                }
            }
            MptcpOption::AddAddr(AddAddr::V1 {
                echo,
                addr_id,
                addr,
                port,
                hmac,
            }) => {
                w.put(&[st | u8::from(*echo), *addr_id])?;
                w.addr(addr)?;
                if let Some(p) = port {
                    w.put(&p.to_be_bytes())?;
                }
                if let Some(h) = hmac {
                    w.put(&h.to_be_bytes())?;
                }
            }
            MptcpOption::AddAddr(AddAddr::V0 {
                addr_id,
                addr,
                port,
            }) => {
                let ipver = if addr.is_ipv4() { 4 } else { 6 };
                w.put(&[st | ipver, *addr_id])?;
                w.addr(addr)?;
                if let Some(p) = port {
                    w.put(&p.to_be_bytes())?;
                }
            }
            MptcpOption::RemoveAddr(r) => {
                w.put(&[st])?;
                w.put(r.as_slice())?;
            }
            MptcpOption::MpPrio(p) => {
                w.put(&[st | u8::from(p.backup)])?;
                if let Some(id) = p.addr_id {
                    w.put(&[id])?;
                }
            }
            MptcpOption::MpFail(f) => {
                w.put(&[st, 0])?;
                w.put(&f.dsn.to_be_bytes())?;
            }
            MptcpOption::FastClose(f) => {
                w.put(&[st, 0])?;
                w.put(&f.receiver_key.to_be_bytes())?;
            }
            MptcpOption::TcpRst(r) => w.put(&[st | r.flags, r.reason])?,
            MptcpOption::Unknown { data, .. } => w.put(data)?,
        }
        debug_assert_eq!(w.pos, n);
        Ok(n)
    }

    /// Encode into an inline buffer, e.g. to keep the bytes alive while a
    /// `TcpRepr` borrows them: `repr.unknown.push(TCPOPT_MPTCP, enc.as_slice())`.
    pub fn encode(&self) -> Result<EncodedOption, MptcpError> {
        let mut e = EncodedOption {
            buf: [0; MAX_OPTION_DATA_LEN],
            len: 0,
        };
        let n = self.emit(&mut e.buf)?;
        e.len = n as u8;
        Ok(e)
    }

    /// Reject values no wire form can carry.
    fn validate(&self) -> Result<(), MptcpError> {
        match self {
            MptcpOption::MpCapable(c) => {
                let present = (
                    c.sender_key.is_some(),
                    c.receiver_key.is_some(),
                    c.data_len.is_some(),
                    c.checksum.is_some(),
                );
                let ok = match c.version {
                    MptcpVersion::V1 => matches!(
                        present,
                        (false, false, false, false)
                            | (true, false, false, false)
                            | (true, true, false, false)
                            | (true, true, true, false)
                            | (true, true, true, true)
                    ),
                    MptcpVersion::V0 => matches!(
                        present,
                        (true, false, false, false) | (true, true, false, false)
                    ),
                };
                if !ok {
                    return Err(MptcpError::InvalidRepr("MP_CAPABLE field combination"));
                }
            }
            MptcpOption::AddAddr(AddAddr::V1 { echo, hmac, .. }) if *echo == hmac.is_some() => {
                return Err(MptcpError::InvalidRepr(
                    "ADD_ADDR v1 carries an HMAC iff it is not an echo",
                ));
            }
            MptcpOption::RemoveAddr(r) if r.is_empty() => {
                return Err(MptcpError::InvalidRepr("REMOVE_ADDR without ids"));
            }
            MptcpOption::TcpRst(r) if r.flags > 0x0f => {
                return Err(MptcpError::InvalidRepr("MP_TCPRST flags exceed 4 bits"));
            }
            MptcpOption::Unknown { subtype, data } => match data.first() {
                Some(&b) if b >> 4 == *subtype && *subtype > subtype::MP_TCPRST => {}
                _ => {
                    return Err(MptcpError::InvalidRepr(
                        "unknown subtype must match its data and be > 8",
                    ))
                }
            },
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{emit_packet, IpRepr, SeqNumber, TcpFlags};
    use proptest::prelude::*;

    const SYN: ParseCtx = ParseCtx {
        syn: true,
        ack: false,
        has_payload: false,
    };
    const SYNACK: ParseCtx = ParseCtx {
        syn: true,
        ack: true,
        has_payload: false,
    };
    const ACK: ParseCtx = ParseCtx {
        syn: false,
        ack: true,
        has_payload: false,
    };
    const DATA: ParseCtx = ParseCtx {
        syn: false,
        ack: true,
        has_payload: true,
    };
    const ALL_CTX: [ParseCtx; 4] = [SYN, SYNACK, ACK, DATA];

    /// Emit, check the length bookkeeping, parse back in `ctx` and compare.
    fn rt(opt: MptcpOption<'_>, ctx: ParseCtx) -> Vec<u8> {
        let mut buf = [0xeeu8; 64];
        let n = opt.emit(&mut buf).unwrap();
        assert_eq!(n, opt.encoded_len(), "{opt:?}");
        assert!(n <= MAX_OPTION_DATA_LEN);
        assert_eq!(buf[n], 0xee, "wrote past encoded_len");
        assert_eq!(buf[0] >> 4, opt.subtype());
        assert_eq!(MptcpOption::parse(&buf[..n], ctx), Ok(opt), "{opt:?}");
        assert_eq!(opt.encode().unwrap().as_slice(), &buf[..n]);
        let mut short = [0u8; 64];
        assert_eq!(
            opt.emit(&mut short[..n - 1]),
            Err(MptcpError::BufferTooSmall)
        );
        buf[..n].to_vec()
    }

    fn parse(data: &[u8], ctx: ParseCtx) -> Result<MptcpOption<'_>, MptcpError> {
        MptcpOption::parse(data, ctx)
    }

    fn cap(
        version: MptcpVersion,
        sk: Option<u64>,
        rk: Option<u64>,
        dl: Option<u16>,
        cs: Option<u16>,
    ) -> MptcpOption<'static> {
        MptcpOption::MpCapable(MpCapable {
            version,
            flags: MpCapableFlags(MpCapableFlags::A | MpCapableFlags::H),
            sender_key: sk,
            receiver_key: rk,
            data_len: dl,
            checksum: cs,
        })
    }

    const KA: u64 = 0x0102_0304_0506_0708;
    const KB: u64 = 0x1112_1314_1516_1718;

    #[test]
    fn mptcp_mp_capable_roundtrip_all_forms() {
        use MptcpVersion::{V0, V1};
        let v1 = [
            (cap(V1, None, None, None, None), SYN, 4),
            (cap(V1, Some(KA), None, None, None), SYNACK, 12),
            (cap(V1, Some(KA), Some(KB), None, None), ACK, 20),
            (cap(V1, Some(KA), Some(KB), Some(1400), None), DATA, 22),
            (cap(V1, Some(KA), Some(KB), Some(7), Some(0xbeef)), DATA, 24),
            (cap(V0, Some(KA), None, None, None), SYN, 12),
            (cap(V0, Some(KB), None, None, None), SYNACK, 12),
            (cap(V0, Some(KA), Some(KB), None, None), ACK, 20),
            (cap(V0, Some(KA), Some(KB), None, None), DATA, 20),
        ];
        for (opt, ctx, len) in v1 {
            let bytes = rt(opt, ctx);
            assert_eq!(bytes.len() + 2, len);
            // Segment types whose lengths do not include this one reject it.
            let nibble = bytes[0] & 0x0f;
            for other in ALL_CTX {
                if !allowed(0, nibble, other).unwrap().contains(&len) {
                    assert_eq!(
                        parse(&bytes, other),
                        Err(MptcpError::BadLength { subtype: 0, len }),
                        "{opt:?} in {other:?}"
                    );
                }
            }
        }
        // Flag byte kept raw, including reserved and B bits.
        for flags in [0u8, 0xff, MpCapableFlags::C | MpCapableFlags::H] {
            rt(
                MptcpOption::MpCapable(MpCapable {
                    version: V1,
                    flags: MpCapableFlags(flags),
                    sender_key: Some(u64::MAX),
                    receiver_key: None,
                    data_len: None,
                    checksum: None,
                }),
                SYNACK,
            );
        }
        // Field combinations no form has.
        for bad in [
            cap(V1, None, Some(KA), None, None),
            cap(V1, Some(KA), None, Some(1), None),
            cap(V1, Some(KA), Some(KB), None, Some(1)),
            cap(V0, None, None, None, None),
            cap(V0, Some(KA), Some(KB), Some(1), None),
        ] {
            assert!(matches!(
                bad.emit(&mut [0; 40]),
                Err(MptcpError::InvalidRepr(_))
            ));
        }
    }

    #[test]
    fn mptcp_mp_capable_versions() {
        // A SYN may offer a higher version: read as a v1 offer.
        let o = parse(&[0x05, 0x81], SYN).unwrap();
        assert!(matches!(o, MptcpOption::MpCapable(c) if c.version == MptcpVersion::V1));
        // Anywhere else, version 2+ is refused.
        let mut d = [0u8; 22];
        d[0] = 0x02;
        assert_eq!(
            parse(&d[..10], SYNACK),
            Err(MptcpError::BadVersion { version: 2 })
        );
        assert_eq!(
            parse(&d[..18], ACK),
            Err(MptcpError::BadVersion { version: 2 })
        );
        assert_eq!(
            parse(&d[..20], DATA),
            Err(MptcpError::BadVersion { version: 2 })
        );
        // Length is checked first.
        assert_eq!(
            parse(&d[..12], ACK),
            Err(MptcpError::BadLength {
                subtype: 0,
                len: 14
            })
        );
    }

    #[test]
    fn mptcp_mp_join_roundtrip() {
        for backup in [false, true] {
            let b = rt(
                MptcpOption::MpJoin(MpJoin::Syn {
                    backup,
                    addr_id: 3,
                    token: 0x6684_0dda,
                    nonce: 0x0102_0304,
                }),
                SYN,
            );
            assert_eq!(b.len() + 2, 12);
            let b = rt(
                MptcpOption::MpJoin(MpJoin::SynAck {
                    backup,
                    addr_id: 255,
                    hmac: 0x65ee_0968_33f6_61d9,
                    nonce: 0x0506_0708,
                }),
                SYNACK,
            );
            assert_eq!(b.len() + 2, 16);
        }
        let mut hmac = [0u8; 20];
        for (i, h) in hmac.iter_mut().enumerate() {
            *h = 0xa0 + i as u8;
        }
        for ctx in [ACK, DATA] {
            let b = rt(MptcpOption::MpJoin(MpJoin::Ack { hmac }), ctx);
            assert_eq!(b.len() + 2, 24);
        }
    }

    /// Every DSS flag combination (A, a, M, m, F; a and m also without A/M) with
    /// and without checksum: hand-built bytes parse to the expected value, and the
    /// value round-trips.
    #[test]
    fn mptcp_dss_all_flag_combinations() {
        for flags in 0u8..32 {
            for csum in [false, true] {
                let a = flags & 0x01 != 0;
                let a64 = flags & 0x02 != 0;
                let m = flags & 0x04 != 0;
                let m64 = flags & 0x08 != 0;
                let f = flags & 0x10 != 0;
                let ack_val: u64 = if a64 {
                    0x8877_6655_4433_2211
                } else {
                    0x4433_2211
                };
                let dsn: u64 = if m64 {
                    0xf5a1_01d3_d29d_6f73
                } else {
                    0xd29d_6f73
                };
                let mut d = vec![0x20, flags];
                if a {
                    if a64 {
                        d.extend_from_slice(&ack_val.to_be_bytes());
                    } else {
                        d.extend_from_slice(&(ack_val as u32).to_be_bytes());
                    }
                }
                if m {
                    if m64 {
                        d.extend_from_slice(&dsn.to_be_bytes());
                    } else {
                        d.extend_from_slice(&(dsn as u32).to_be_bytes());
                    }
                    d.extend_from_slice(&1u32.to_be_bytes());
                    d.extend_from_slice(&1400u16.to_be_bytes());
                }
                if csum {
                    d.extend_from_slice(&0x01aeu16.to_be_bytes());
                }
                let len = d.len() + 2;
                if csum && !m {
                    // A checksum without a mapping is a bad length.
                    assert_eq!(
                        parse(&d, ACK),
                        Err(MptcpError::BadLength { subtype: 2, len })
                    );
                    continue;
                }
                let want = Dss {
                    data_fin: f,
                    data_ack: a.then_some(DataAck {
                        value: ack_val,
                        is_64bit: a64,
                    }),
                    mapping: m.then_some(Mapping {
                        dsn,
                        dsn_64bit: m64,
                        ssn: 1,
                        data_len: 1400,
                        checksum: csum.then_some(0x01ae),
                    }),
                };
                assert_eq!(
                    len,
                    4 + [0, 4, 0, 8][usize::from(flags & 3)]
                        + if m {
                            if m64 {
                                14
                            } else {
                                10
                            }
                        } else {
                            0
                        }
                        + if csum { 2 } else { 0 }
                );
                for ctx in ALL_CTX {
                    assert_eq!(parse(&d, ctx), Ok(MptcpOption::Dss(want)), "{flags:#x}");
                }
                let out = rt(MptcpOption::Dss(want), DATA);
                // Re-emitted bytes equal the input except meaningless a/m bits.
                let mut expect = d.clone();
                expect[1] &= !(if a { 0 } else { 0x02 } | if m { 0 } else { 0x08 });
                assert_eq!(out, expect, "{flags:#x} csum {csum}");
                // One byte more or less is rejected (except the checksum step).
                for bad in [len - 1, len + 1, len + 3] {
                    let mut b = d.clone();
                    b.resize(bad - 2, 0);
                    assert_eq!(
                        parse(&b, ACK),
                        Err(MptcpError::BadLength {
                            subtype: 2,
                            len: bad
                        }),
                        "{flags:#x} len {bad}"
                    );
                }
            }
        }
        // Reserved bits in byte 2 and the flag byte are ignored.
        assert_eq!(
            parse(&[0x2f, 0xe0], ACK),
            Ok(MptcpOption::Dss(Dss {
                data_fin: false,
                data_ack: None,
                mapping: None
            }))
        );
        assert_eq!(
            parse(&[0x20], ACK),
            Err(MptcpError::BadLength { subtype: 2, len: 3 })
        );
    }

    #[test]
    fn mptcp_dss_32bit_truncates_and_expands() {
        let d = Dss {
            data_fin: false,
            data_ack: Some(DataAck {
                value: 0x1_0000_0005,
                is_64bit: false,
            }),
            mapping: Some(Mapping {
                dsn: 0xabcd_ffff_fff0,
                dsn_64bit: false,
                ssn: 9,
                data_len: 4,
                checksum: None,
            }),
        };
        let enc = MptcpOption::Dss(d).encode().unwrap();
        let MptcpOption::Dss(p) = parse(enc.as_slice(), ACK).unwrap() else {
            panic!()
        };
        let (ack, map) = (p.data_ack.unwrap(), p.mapping.unwrap());
        assert_eq!(ack.value, 5);
        assert_eq!(map.dsn, 0xffff_fff0);
        assert_eq!(ack.expand(0x1_0000_0000), 0x1_0000_0005);
        assert_eq!(ack.expand(0xffff_fff0), 0x1_0000_0005);
        assert_eq!(map.expand_dsn(0xabce_0000_0010), 0xabcd_ffff_fff0);
        assert_eq!(expand_seq32(7, 0x5_0000_0007), 0x5_0000_0007);
        assert_eq!(expand_seq32(0, u64::MAX), 0);
        assert_eq!(expand_seq32(u32::MAX, 0), u64::MAX);
        let full = DataAck {
            value: 42,
            is_64bit: true,
        };
        assert_eq!(full.expand(1 << 40), 42);
    }

    fn v4() -> IpAddr {
        Ipv4Addr::new(10, 0, 2, 1).into()
    }
    fn v6() -> IpAddr {
        "dead:beef:2::1".parse::<Ipv6Addr>().unwrap().into()
    }

    #[test]
    fn mptcp_add_addr_roundtrip() {
        for addr in [v4(), v6()] {
            for port in [None, Some(10100)] {
                for echo in [false, true] {
                    let hmac = (!echo).then_some(0x014b_3007_310c_639c);
                    let o = MptcpOption::AddAddr(AddAddr::V1 {
                        echo,
                        addr_id: 7,
                        addr,
                        port,
                        hmac,
                    });
                    let len = rt(o, ACK).len() + 2;
                    let want = match (addr.is_ipv4(), echo) {
                        (true, false) => 16,
                        (true, true) => 8,
                        (false, false) => 28,
                        (false, true) => 20,
                    } + if port.is_some() { 2 } else { 0 };
                    assert_eq!(len, want);
                    // echo and hmac must agree.
                    let bad = MptcpOption::AddAddr(AddAddr::V1 {
                        echo: !echo,
                        addr_id: 7,
                        addr,
                        port,
                        hmac,
                    });
                    assert!(matches!(
                        bad.emit(&mut [0; 40]),
                        Err(MptcpError::InvalidRepr(_))
                    ));
                }
                let o = MptcpOption::AddAddr(AddAddr::V0 {
                    addr_id: 2,
                    addr,
                    port,
                });
                let b = rt(o, SYNACK);
                let want = if addr.is_ipv4() { 8 } else { 20 } + if port.is_some() { 2 } else { 0 };
                assert_eq!(b.len() + 2, want);
                assert_eq!(b[0], 0x30 | if addr.is_ipv4() { 4 } else { 6 });
                // The IP-version nibble must agree with the length.
                let mut flipped = b.clone();
                flipped[0] ^= 4 ^ 6;
                assert_eq!(parse(&flipped, ACK), Err(MptcpError::BadAddressFamily));
            }
        }
    }

    #[test]
    fn mptcp_remove_addr_prio_fail_fastclose_rst_roundtrip() {
        let ids: Vec<u8> = (1..=MAX_REMOVE_ADDR_IDS as u8).collect();
        for n in 1..=MAX_REMOVE_ADDR_IDS {
            let r = RemoveAddr::new(&ids[..n]).unwrap();
            assert_eq!(r.as_slice(), &ids[..n]);
            assert_eq!(rt(MptcpOption::RemoveAddr(r), ACK).len() + 2, 3 + n);
        }
        assert!(RemoveAddr::new(&[]).is_none());
        assert!(RemoveAddr::new(&[0; MAX_REMOVE_ADDR_IDS + 1]).is_none());
        let mut r = RemoveAddr::new(&[9]).unwrap();
        assert!(r.push(10));
        assert_eq!(r, RemoveAddr::new(&[9, 10]).unwrap());
        let mut full = RemoveAddr::new(&ids).unwrap();
        assert!(!full.push(1));
        assert_eq!(full.len(), MAX_REMOVE_ADDR_IDS);

        for backup in [false, true] {
            for addr_id in [None, Some(0), Some(200)] {
                let b = rt(MptcpOption::MpPrio(MpPrio { backup, addr_id }), ACK);
                assert_eq!(b.len() + 2, if addr_id.is_some() { 4 } else { 3 });
            }
        }
        for dsn in [0, 1, u64::MAX, 0xf5a1_01d3_d29d_6f77] {
            assert_eq!(rt(MptcpOption::MpFail(MpFail { dsn }), ACK).len(), 10);
            let fc = MptcpOption::FastClose(FastClose { receiver_key: dsn });
            assert_eq!(rt(fc, ACK).len(), 10);
        }
        for flags in 0..16 {
            for reason in [0, 1, 6, 255] {
                assert_eq!(
                    rt(MptcpOption::TcpRst(TcpRst { flags, reason }), ACK).len(),
                    2
                );
            }
        }
        assert!(matches!(
            MptcpOption::TcpRst(TcpRst {
                flags: 0x10,
                reason: 0
            })
            .emit(&mut [0; 4]),
            Err(MptcpError::InvalidRepr(_))
        ));
    }

    #[test]
    fn mptcp_unknown_subtypes() {
        for st in 9u8..16 {
            let data = [st << 4 | 3, 1, 2, 3];
            let o = parse(&data, ACK).unwrap();
            assert_eq!(
                o,
                MptcpOption::Unknown {
                    subtype: st,
                    data: &data
                }
            );
            assert_eq!(o.subtype(), st);
            assert_eq!(rt(o, ACK), data);
        }
        let bad = MptcpOption::Unknown {
            subtype: 9,
            data: &[0xa0],
        };
        assert!(matches!(
            bad.emit(&mut [0; 4]),
            Err(MptcpError::InvalidRepr(_))
        ));
        let bad = MptcpOption::Unknown {
            subtype: 2,
            data: &[0x20, 0],
        };
        assert!(matches!(
            bad.emit(&mut [0; 4]),
            Err(MptcpError::InvalidRepr(_))
        ));
        let long = [0x90u8; 39];
        let bad = MptcpOption::Unknown {
            subtype: 9,
            data: &long,
        };
        assert!(matches!(
            bad.emit(&mut [0; 64]),
            Err(MptcpError::InvalidRepr(_))
        ));
        assert_eq!(parse(&[], ACK), Err(MptcpError::Truncated));
    }

    /// Allowed option lengths (kind and length included) per subtype, first-byte
    /// low nibble and segment, written out from PROTOCOL.md; `None` for DSS,
    /// whose lengths depend on the flags (tested above).
    fn allowed(st: u8, nibble: u8, ctx: ParseCtx) -> Option<&'static [usize]> {
        Some(match st {
            0 => match (nibble, ctx.syn, ctx.ack, ctx.has_payload) {
                (1, true, false, _) => &[4],
                (1, true, true, _) => &[12],
                (1, false, _, false) => &[20],
                (1, false, _, true) => &[22, 24],
                (0, true, _, _) => &[12],
                (0, false, _, _) => &[20],
                _ => unreachable!(),
            },
            1 => match (ctx.syn, ctx.ack) {
                (true, false) => &[12],
                (true, true) => &[16],
                _ => &[24],
            },
            2 => return None,
            3 => match nibble {
                0 => &[16, 18, 28, 30],
                1 => &[8, 10, 20, 22],
                // v0: the other family's lengths are BadAddressFamily.
                4 => &[8, 10, 20, 22],
                6 => &[8, 10, 20, 22],
                _ => unreachable!(),
            },
            4 => &[
                4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
                26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
            ],
            5 => &[3, 4],
            6 | 7 => &[12],
            8 => &[4],
            _ => unreachable!(),
        })
    }

    #[test]
    fn mptcp_every_bad_length_rejected() {
        let mut checked = 0;
        for st in 0u8..=8 {
            let nibbles: &[u8] = match st {
                0 => &[0, 1],
                3 => &[0, 1, 4, 6],
                _ => &[0, 1],
            };
            for &nib in nibbles {
                for ctx in ALL_CTX {
                    let Some(ok) = allowed(st, nib, ctx) else {
                        continue;
                    };
                    for len in 3..=MAX_OPTION_DATA_LEN + 2 {
                        let mut d = vec![0x5au8; len - 2];
                        d[0] = st << 4 | nib;
                        let r = parse(&d, ctx);
                        if ok.contains(&len) {
                            if st == 3 && nib >= 4 {
                                let v6_len = len >= 20;
                                if v6_len != (nib == 6) {
                                    assert_eq!(r, Err(MptcpError::BadAddressFamily));
                                    continue;
                                }
                            }
                            assert!(r.is_ok(), "st {st} nib {nib} {ctx:?} len {len}: {r:?}");
                        } else {
                            assert_eq!(
                                r,
                                Err(MptcpError::BadLength { subtype: st, len }),
                                "st {st} nib {nib} {ctx:?} len {len}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 500);
    }

    /// Bytes laid out by hand from PROTOCOL.md, one or more per subtype
    /// (kind 0x1e and length included, then stripped for the codec).
    #[test]
    fn mptcp_known_bytes() {
        fn check(wire: &[u8], ctx: ParseCtx, want: MptcpOption<'_>) {
            assert_eq!(wire[0], TCPOPT_MPTCP);
            assert_eq!(usize::from(wire[1]), wire.len());
            assert_eq!(parse(&wire[2..], ctx), Ok(want), "{wire:02x?}");
            assert_eq!(want.encode().unwrap().as_slice(), &wire[2..]);
        }
        // v1 MP_CAPABLE SYN (A, H), SYN/ACK (H) with key A, data form with checksum.
        check(
            &[0x1e, 0x04, 0x01, 0x81],
            SYN,
            cap(MptcpVersion::V1, None, None, None, None),
        );
        check(
            &[0x1e, 0x0c, 0x01, 0x01, 1, 2, 3, 4, 5, 6, 7, 8],
            SYNACK,
            MptcpOption::MpCapable(MpCapable {
                version: MptcpVersion::V1,
                flags: MpCapableFlags(MpCapableFlags::H),
                sender_key: Some(KA),
                receiver_key: None,
                data_len: None,
                checksum: None,
            }),
        );
        check(
            &[
                0x1e, 0x18, 0x01, 0x81, 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
                0x17, 0x18, 0x00, 0x04, 0x01, 0xae,
            ],
            DATA,
            cap(MptcpVersion::V1, Some(KA), Some(KB), Some(4), Some(0x01ae)),
        );
        // v0 MP_CAPABLE SYN carries the key.
        check(
            &[0x1e, 0x0c, 0x00, 0x81, 1, 2, 3, 4, 5, 6, 7, 8],
            SYN,
            cap(MptcpVersion::V0, Some(KA), None, None, None),
        );
        // MP_JOIN SYN: backup, id 2, token(B) v1, nonce R_A.
        check(
            &[0x1e, 0x0c, 0x11, 0x02, 0xcc, 0xad, 0x45, 0xac, 1, 2, 3, 4],
            SYN,
            MptcpOption::MpJoin(MpJoin::Syn {
                backup: true,
                addr_id: 2,
                token: 0xccad_45ac,
                nonce: 0x0102_0304,
            }),
        );
        // MP_JOIN SYN/ACK: B's truncated HMAC and R_B.
        check(
            &[
                0x1e, 0x10, 0x10, 0x00, 0x65, 0xee, 0x09, 0x68, 0x33, 0xf6, 0x61, 0xd9, 5, 6, 7, 8,
            ],
            SYNACK,
            MptcpOption::MpJoin(MpJoin::SynAck {
                backup: false,
                addr_id: 0,
                hmac: 0x65ee_0968_33f6_61d9,
                nonce: 0x0506_0708,
            }),
        );
        // MP_JOIN third ACK with A's HMAC.
        let h: [u8; 20] = [
            0x24, 0xbd, 0xde, 0x08, 0xdf, 0xc5, 0x5c, 0x9b, 0x41, 0x85, 0xe1, 0xb5, 0x6b, 0x2f,
            0x89, 0xdb, 0x24, 0x1a, 0xc0, 0xf2,
        ];
        let mut w = vec![0x1e, 24, 0x10, 0x00];
        w.extend_from_slice(&h);
        check(&w, ACK, MptcpOption::MpJoin(MpJoin::Ack { hmac: h }));
        // DSS: 64-bit DSN f5a101d3d29d6f73, SSN 1, DLL 4, checksum 0x01ae, 32-bit ack.
        check(
            &[
                0x1e, 0x18, 0x20, 0x0d, 0x53, 0x5b, 0xee, 0xa4, 0xf5, 0xa1, 0x01, 0xd3, 0xd2, 0x9d,
                0x6f, 0x73, 0, 0, 0, 1, 0, 4, 0x01, 0xae,
            ],
            DATA,
            MptcpOption::Dss(Dss {
                data_fin: false,
                data_ack: Some(DataAck {
                    value: 0x535b_eea4,
                    is_64bit: false,
                }),
                mapping: Some(Mapping {
                    dsn: 0xf5a1_01d3_d29d_6f73,
                    dsn_64bit: true,
                    ssn: 1,
                    data_len: 4,
                    checksum: Some(0x01ae),
                }),
            }),
        );
        // DSS: DATA_FIN-only mapping, 64-bit ack, no checksum.
        check(
            &[
                0x1e, 0x1a, 0x20, 0x1f, 0x53, 0x5b, 0xee, 0xa3, 0x8e, 0x08, 0x7c, 0x8f, 0xf5, 0xa1,
                0x01, 0xd3, 0xd2, 0x9d, 0x6f, 0x77, 0, 0, 0, 0, 0, 1,
            ][..],
            ACK,
            MptcpOption::Dss(Dss {
                data_fin: true,
                data_ack: Some(DataAck {
                    value: 0x535b_eea3_8e08_7c8f,
                    is_64bit: true,
                }),
                mapping: Some(Mapping {
                    dsn: 0xf5a1_01d3_d29d_6f77,
                    dsn_64bit: true,
                    ssn: 0,
                    data_len: 1,
                    checksum: None,
                }),
            }),
        );
        // ADD_ADDR v1 from PROTOCOL.md's vectors: id 1, 10.0.2.1, with and without port.
        check(
            &[
                0x1e, 0x10, 0x30, 0x01, 10, 0, 2, 1, 0x01, 0x4b, 0x30, 0x07, 0x31, 0x0c, 0x63, 0x9c,
            ],
            ACK,
            MptcpOption::AddAddr(AddAddr::V1 {
                echo: false,
                addr_id: 1,
                addr: v4(),
                port: None,
                hmac: Some(0x014b_3007_310c_639c),
            }),
        );
        check(
            &[
                0x1e, 0x12, 0x30, 0x01, 10, 0, 2, 1, 0x27, 0x74, 0x20, 0xdd, 0xbe, 0x46, 0x68,
                0xd5, 0xc1, 0xbd,
            ],
            ACK,
            MptcpOption::AddAddr(AddAddr::V1 {
                echo: false,
                addr_id: 1,
                addr: v4(),
                port: Some(10100),
                hmac: Some(0x20dd_be46_68d5_c1bd),
            }),
        );
        // ADD_ADDR v1 echo of an IPv6 address, id 2.
        let mut w = vec![0x1e, 20, 0x31, 0x02];
        w.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        check(
            &w,
            ACK,
            MptcpOption::AddAddr(AddAddr::V1 {
                echo: true,
                addr_id: 2,
                addr: v6(),
                port: None,
                hmac: None,
            }),
        );
        // ADD_ADDR v0, IPv4 with port.
        check(
            &[0x1e, 0x0a, 0x34, 0x03, 10, 0, 2, 1, 0x1f, 0x90],
            ACK,
            MptcpOption::AddAddr(AddAddr::V0 {
                addr_id: 3,
                addr: v4(),
                port: Some(8080),
            }),
        );
        check(
            &[0x1e, 0x06, 0x40, 1, 2, 3],
            ACK,
            MptcpOption::RemoveAddr(RemoveAddr::new(&[1, 2, 3]).unwrap()),
        );
        check(
            &[0x1e, 0x03, 0x51],
            ACK,
            MptcpOption::MpPrio(MpPrio {
                backup: true,
                addr_id: None,
            }),
        );
        check(
            &[0x1e, 0x04, 0x50, 0x07],
            ACK,
            MptcpOption::MpPrio(MpPrio {
                backup: false,
                addr_id: Some(7),
            }),
        );
        check(
            &[
                0x1e, 0x0c, 0x60, 0x00, 0xf5, 0xa1, 0x01, 0xd3, 0xd2, 0x9d, 0x6f, 0x73,
            ],
            ACK,
            MptcpOption::MpFail(MpFail {
                dsn: 0xf5a1_01d3_d29d_6f73,
            }),
        );
        check(
            &[
                0x1e, 0x0c, 0x70, 0x00, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
            ],
            ACK,
            MptcpOption::FastClose(FastClose { receiver_key: KB }),
        );
        check(
            &[0x1e, 0x04, 0x81, 0x02],
            ACK,
            MptcpOption::TcpRst(TcpRst {
                flags: TcpRst::FLAG_T,
                reason: TcpRst::REASON_LACK_OF_RESOURCES,
            }),
        );
    }

    #[test]
    fn mptcp_end_to_end_through_tcp_repr() {
        let capable = cap(MptcpVersion::V1, Some(KA), Some(KB), Some(5), None);
        let dss = MptcpOption::Dss(Dss {
            data_fin: false,
            data_ack: Some(DataAck {
                value: 0x535b_eea3_8e08_7c8f,
                is_64bit: true,
            }),
            mapping: Some(Mapping {
                dsn: 0xf5a1_01d3_d29d_6f73,
                dsn_64bit: true,
                ssn: 1,
                data_len: 5,
                checksum: None,
            }),
        });
        let (e1, e2) = (capable.encode().unwrap(), dss.encode().unwrap());
        let mut repr = TcpRepr {
            seq: SeqNumber(1000),
            ack: SeqNumber(2000),
            flags: TcpFlags(TcpFlags::ACK | TcpFlags::PSH),
            window: 500,
            ..TcpRepr::new(40000, 80)
        };
        repr.unknown.push(TCPOPT_MPTCP, e1.as_slice());
        repr.unknown.push(253, &[1, 2]);
        repr.unknown.push(TCPOPT_MPTCP, e2.as_slice());
        // MP_CAPABLE (22) + kind 253 (4) + DSS with 64-bit ack and DSN (26) = 52 > 40:
        // the budget forces a DSS without the DATA_ACK and no other option.
        assert!(repr.options_len() > 40);
        let dss = MptcpOption::Dss(Dss {
            data_fin: false,
            data_ack: None,
            mapping: match dss {
                MptcpOption::Dss(d) => d.mapping,
                _ => unreachable!(),
            },
        });
        let e2 = dss.encode().unwrap();
        let mut repr2 = TcpRepr {
            unknown: Default::default(),
            ..repr
        };
        repr2.unknown.push(TCPOPT_MPTCP, e1.as_slice());
        repr2.unknown.push(TCPOPT_MPTCP, e2.as_slice());
        assert_eq!(
            repr2.options_len(),
            2 + e1.as_slice().len() + 2 + dss.encoded_len()
        );
        assert!(repr2.options_len() <= 40);

        let src: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
        let dst: IpAddr = Ipv4Addr::new(198, 51, 100, 7).into();
        let mut buf = [0u8; 200];
        let n = emit_packet(src, dst, 64, &repr2, &[b"hello"], &mut buf).unwrap();
        let (_, seg) = IpRepr::parse(&buf[..n]).unwrap();
        let parsed = TcpRepr::parse(src, dst, seg, true).unwrap();
        assert_eq!(parsed.payload, b"hello");
        let ctx = ParseCtx::from_repr(&parsed);
        assert_eq!(ctx, DATA);
        let opts: Vec<_> = mptcp_options(&parsed)
            .map(|d| MptcpOption::parse(d, ctx))
            .collect();
        assert_eq!(opts, vec![Ok(capable), Ok(dss)]);

        // Other kinds are skipped by the iterator.
        let kinds: Vec<_> = mptcp_options(&repr).map(|d| d.len()).collect();
        assert_eq!(kinds, vec![e1.as_slice().len(), 24]);
    }

    #[test]
    fn mptcp_error_display() {
        assert_eq!(
            MptcpError::BadLength { subtype: 2, len: 7 }.to_string(),
            "MPTCP option subtype 2 with bad length 7"
        );
        for e in [
            MptcpError::Truncated,
            MptcpError::BadVersion { version: 3 },
            MptcpError::BadAddressFamily,
            MptcpError::BufferTooSmall,
            MptcpError::InvalidRepr("x"),
        ] {
            assert!(!e.to_string().is_empty());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn mptcp_parse_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..=64),
            syn in any::<bool>(),
            ack in any::<bool>(),
            has_payload in any::<bool>(),
        ) {
            let ctx = ParseCtx { syn, ack, has_payload };
            let parsed = MptcpOption::parse(&data, ctx);
            if let (Ok(opt), true) = (parsed, data.len() <= MAX_OPTION_DATA_LEN) {
                // Whatever parses re-emits (within the option space) and parses
                // back to the same value.
                let mut buf = [0u8; 64];
                let n = opt.emit(&mut buf).unwrap();
                prop_assert_eq!(n, opt.encoded_len());
                prop_assert!(n <= MAX_OPTION_DATA_LEN);
                prop_assert_eq!(MptcpOption::parse(&buf[..n], ctx), Ok(opt));
            }
        }

        #[test]
        fn mptcp_parse_subtype_prefixed_never_panics(
            st in 0u8..16,
            nibble in 0u8..16,
            rest in proptest::collection::vec(any::<u8>(), 0..=38),
            syn in any::<bool>(),
            ack in any::<bool>(),
            has_payload in any::<bool>(),
        ) {
            let mut data = vec![st << 4 | nibble];
            data.extend_from_slice(&rest);
            data.truncate(MAX_OPTION_DATA_LEN);
            let ctx = ParseCtx { syn, ack, has_payload };
            if let Ok(opt) = MptcpOption::parse(&data, ctx) {
                prop_assert_eq!(opt.subtype(), st);
                prop_assert_eq!(opt.encoded_len(), data.len());
                let enc = opt.encode().unwrap();
                prop_assert_eq!(MptcpOption::parse(enc.as_slice(), ctx), Ok(opt));
            }
        }
    }
}
