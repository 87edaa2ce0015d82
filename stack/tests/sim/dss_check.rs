//! A watcher of the DSS mappings on the wire (install with [`DssCheck::tap`]):
//! on each subflow, two mappings of the same subflow bytes must be the same
//! mapping (Linux counts anything else as DSSNotMatching and resets), a
//! segment's data must lie within the mapping it carries, and every byte a
//! host sends for a DSN — first time, retransmission or reinjection on
//! another subflow — must be the same byte. The receiver's byte-exact check
//! cannot see the last: a wrong byte for a DSN it already has is dropped as
//! a duplicate.

use super::{HostId, Tap};
use mptun_stack::wire::{mptcp_options, IpRepr, MptcpOption, ParseCtx, TcpRepr};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::rc::Rc;

/// DSNs per block of recorded bytes.
const BLOCK: u64 = 4096;
/// Problems kept (the first ones tell the story).
const MAX_PROBLEMS: usize = 20;

#[derive(Default)]
struct Flow {
    /// The ISN, from the subflow's SYN (subflow sequence numbers are relative
    /// to it, RFC 8684 §3.3).
    isn: Option<u32>,
    /// Mappings seen: subflow sequence number → (DSN, length).
    maps: BTreeMap<u32, (u64, u16)>,
}

#[derive(Default)]
pub struct DssCheck {
    flows: HashMap<(SocketAddr, SocketAddr), Flow>,
    /// Per sending host: the byte seen for each DSN (0x100 | byte).
    bytes: HashMap<HostId, BTreeMap<u64, Vec<u16>>>,
    pub mappings: u64,
    pub problems: Vec<String>,
}

impl DssCheck {
    /// A shared check and the tap that feeds it.
    pub fn tap() -> (Rc<RefCell<DssCheck>>, Tap) {
        let check = Rc::new(RefCell::new(DssCheck::default()));
        let c = Rc::clone(&check);
        (check, Box::new(move |h, pkt| c.borrow_mut().packet(h, pkt)))
    }

    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }

    pub fn packet(&mut self, host: HostId, packet: &[u8]) {
        let Ok((ip, tcp)) = IpRepr::parse(packet) else {
            return;
        };
        let Ok(seg) = TcpRepr::parse(ip.src, ip.dst, tcp, false) else {
            return;
        };
        let key = (
            SocketAddr::new(ip.src, seg.src_port),
            SocketAddr::new(ip.dst, seg.dst_port),
        );
        if seg.flags.syn() {
            self.flows.entry(key).or_default().isn = Some(seg.seq.0);
            return;
        }
        let ctx = ParseCtx::from_repr(&seg);
        let Some(dss) = mptcp_options(&seg).find_map(|d| match MptcpOption::parse(d, ctx) {
            Ok(MptcpOption::Dss(d)) => Some(d),
            _ => None,
        }) else {
            return;
        };
        let Some(m) = dss.mapping else {
            return;
        };
        // A bare DATA_FIN (SSN 0), an infinite mapping (length 0) or a 32-bit
        // DSN maps no bytes to check here.
        let len = m.data_len.saturating_sub(dss.data_fin as u16);
        if m.ssn == 0 || len == 0 || !m.dsn_64bit {
            return;
        }
        let Some(isn) = self.flows.get(&key).and_then(|f| f.isn) else {
            return;
        };
        self.mappings += 1;
        let new = (m.dsn, len);
        let flow = self.flows.get_mut(&key).expect("seen");
        let end = m.ssn as u64 + len as u64;
        let before = flow.maps.range(..=m.ssn).next_back().map(|(&s, &v)| (s, v));
        let after = flow.maps.range(m.ssn + 1..).next().map(|(&s, &v)| (s, v));
        let mut conflict = None;
        if let Some((s, v)) = before {
            if s + v.1 as u32 > m.ssn && (s, v) != (m.ssn, new) {
                conflict = Some((s, v));
            }
        }
        if let Some((s, v)) = after {
            if (s as u64) < end {
                conflict = Some((s, v));
            }
        }
        if before.is_none_or(|(s, _)| s != m.ssn) && conflict.is_none() {
            flow.maps.insert(m.ssn, new);
        }
        if let Some((s, (dsn, l))) = conflict {
            self.problem(format!(
                "{} > {}: mapping ssn {} dsn {:#x} len {len} conflicts with ssn {s} dsn {dsn:#x} len {l} sent before",
                key.0, key.1, m.ssn, m.dsn
            ));
        }
        if seg.payload.is_empty() {
            return;
        }
        let ssn = seg.seq.0.wrapping_sub(isn);
        let off = ssn.wrapping_sub(m.ssn) as u64;
        if ssn.wrapping_sub(m.ssn) as i32 <= -1 || off + seg.payload.len() as u64 > len as u64 {
            self.problem(format!(
                "{} > {}: {} bytes at ssn {ssn} outside their mapping ssn {} len {len}",
                key.0,
                key.1,
                seg.payload.len(),
                m.ssn
            ));
            return;
        }
        let first = m.dsn.wrapping_add(off);
        let blocks = self.bytes.entry(host).or_default();
        let mut differ = None;
        for (i, &b) in seg.payload.iter().enumerate() {
            let dsn = first.wrapping_add(i as u64);
            let block = blocks
                .entry(dsn / BLOCK)
                .or_insert_with(|| vec![0; BLOCK as usize]);
            let slot = &mut block[(dsn % BLOCK) as usize];
            if *slot == 0 {
                *slot = 0x100 | b as u16;
            } else if *slot != 0x100 | b as u16 && differ.is_none() {
                differ = Some(dsn);
            }
        }
        if let Some(dsn) = differ {
            self.problem(format!(
                "{} > {}: the byte for dsn {dsn:#x} (ssn {ssn} + {}) differs from the one sent before",
                key.0,
                key.1,
                dsn.wrapping_sub(first)
            ));
        }
    }
}

/// A segment from `ISN + ssn` carrying `payload` under the mapping
/// (`dsn`, `map_ssn`, `len`), or a SYN when `syn`: for the check's own tests.
#[cfg(test)]
fn segment(syn: bool, ssn: u32, map: Option<(u64, u32, u16)>, payload: &[u8]) -> Vec<u8> {
    use mptun_stack::wire::mptcp::{Dss, Mapping};
    use mptun_stack::wire::{emit_packet, SeqNumber, TcpFlags, TCPOPT_MPTCP};
    const ISN: u32 = 1_000_000;
    let mut r = TcpRepr::new(40000, 5001);
    r.seq = SeqNumber(ISN.wrapping_add(ssn));
    r.flags = TcpFlags(if syn { TcpFlags::SYN } else { TcpFlags::ACK });
    let dss = map.map(|(dsn, map_ssn, len)| {
        MptcpOption::Dss(Dss {
            data_fin: false,
            data_ack: None,
            mapping: Some(Mapping {
                dsn,
                dsn_64bit: true,
                ssn: map_ssn,
                data_len: len,
                checksum: None,
            }),
        })
        .encode()
        .expect("encodes")
    });
    if let Some(e) = &dss {
        assert!(r.unknown.push(TCPOPT_MPTCP, e.as_slice()));
    }
    let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    let mut buf = vec![0u8; 2048];
    let n = emit_packet(a, b, 64, &r, &[payload], &mut buf).expect("emits");
    buf.truncate(n);
    buf
}

/// What the check is for: a mapping that conflicts with an earlier one for
/// the same subflow bytes (the DSSNotMatching Linux once counted from
/// mptun), and other bytes sent again for a DSN, are reported; repeats are
/// not.
#[test]
fn conflicting_mappings_and_other_bytes_for_a_dsn_are_reported() {
    let mut c = DssCheck::default();
    c.packet(0, &segment(true, 0, None, &[]));
    c.packet(0, &segment(false, 1, Some((5000, 1, 8)), b"abcd"));
    c.packet(0, &segment(false, 5, Some((5000, 1, 8)), b"efgh"));
    // The same again (a retransmission), and a reinjection of the same bytes
    // under another mapping later in the subflow: fine.
    c.packet(0, &segment(false, 1, Some((5000, 1, 8)), b"abcd"));
    c.packet(0, &segment(false, 9, Some((5000, 9, 4)), b"abcd"));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    // The first bytes again under a longer mapping: what Linux refuses.
    c.packet(0, &segment(false, 1, Some((5000, 1, 12)), b"abcd"));
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert!(c.problems[0].contains("conflicts"), "{:?}", c.problems);
    // Other bytes for DSNs sent before.
    c.packet(0, &segment(false, 13, Some((5004, 13, 4)), b"EFGH"));
    assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
    assert!(c.problems[1].contains("differs"), "{:?}", c.problems);
}
