//! Decoding MPTCP options: exact lengths per subtype and segment, never a panic.

use super::*;

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
            subtype::DSS => MptcpOption::Dss(Dss::parse(data)?),
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
}

/// Reads big-endian fields front to back; `None` once the bytes run out.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    /// A DSS sequence number: 8 bytes if `wide`, else 4.
    fn seq(&mut self, wide: bool) -> Option<u64> {
        if wide {
            self.take().map(u64::from_be_bytes)
        } else {
            self.u32().map(u64::from)
        }
    }
}

impl Dss {
    /// Decode `data`, the bytes of a DSS option after kind and length (the
    /// subtype byte first); the DSS arm of [`MptcpOption::parse`].
    ///
    /// The flags select the fields; the only length they allow is exactly their
    /// sum, plus 2 for a checksum after a mapping. Each field is read once with
    /// its own bounds check, so a short option is caught as it is read.
    pub(super) fn parse(data: &[u8]) -> Result<Dss, MptcpError> {
        let bad = MptcpError::BadLength {
            subtype: subtype::DSS,
            len: data.len() + 2,
        };
        let [_, flags, fields @ ..] = data else {
            return Err(bad);
        };
        let mut r = Cursor(fields);
        let data_ack = if flags & Dss::FLAG_A != 0 {
            let is_64bit = flags & Dss::FLAG_ACK64 != 0;
            let value = r.seq(is_64bit).ok_or(bad)?;
            Some(DataAck { value, is_64bit })
        } else {
            None
        };
        let mapping = if flags & Dss::FLAG_M != 0 {
            let dsn_64bit = flags & Dss::FLAG_DSN64 != 0;
            let dsn = r.seq(dsn_64bit).ok_or(bad)?;
            let ssn = r.u32().ok_or(bad)?;
            let data_len = r.u16().ok_or(bad)?;
            // The checksum's presence shows only in the length.
            let checksum = r.u16();
            Some(Mapping {
                dsn,
                dsn_64bit,
                ssn,
                data_len,
                checksum,
            })
        } else {
            None
        };
        if !r.0.is_empty() {
            return Err(bad);
        }
        Ok(Dss {
            data_fin: flags & Dss::FLAG_F != 0,
            data_ack,
            mapping,
        })
    }
}
