//! Encoding MPTCP options into their wire bytes (after kind and length).

use super::*;

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

impl MptcpOption<'_> {
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
