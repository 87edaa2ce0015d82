//! Every MPTCP option we send. On segments, in functions named as in Linux:
//! `syn_options` (MP_CAPABLE on the first subflow), `synack_options` (MP_CAPABLE
//! with our key), `established_options` (the keys again until the peer has
//! acknowledged them, then DSS with DATA_ACK, mapping and DATA_FIN, and the
//! address, priority and MP_FAIL options that ride along), MP_JOIN on joined
//! subflows; and on RSTs (`reset_options`, `fastclose_options`).
//!
//! The TCB calls in through [`SubflowHooks`] for every segment it builds, with
//! the room its own options left; a segment never carries data beyond its
//! mapping.

use super::action::rst_reason;
use super::crypto::DssChecksum;
use super::level::{DataLevel, Phase, Role};
use super::mapping::Mapping;
use super::pm::AddrOption;
use super::subflow::SubflowMp;
use crate::tcp::hooks::{OptionBytes, OutSegment, SegmentHooks, SegmentKind};
use crate::wire::mptcp::{
    DataAck, Dss, EncodedOption, FastClose, Mapping as DssMapping, MpCapable, MpCapableFlags,
    MpFail, MpPrio, MptcpOption, MptcpVersion, TcpRst, TCPOPT_MPTCP,
};
use crate::wire::Dsn;

/// No limit on the payload.
const ANY: usize = usize::MAX;

/// Put `opt` into `out` if it fits within `room` option bytes; whether it did.
pub(super) fn push(out: &mut OptionBytes, room: usize, opt: MptcpOption<'_>) -> bool {
    // Written in place: an option on every segment.
    let len = opt.encoded_len();
    if len + 2 + out.wire_len() > room {
        return false;
    }
    out.push_with(TCPOPT_MPTCP, len, |b| opt.emit(b) == Ok(len))
}

/// Put `dss` into `out` like [`push`], its bytes taken from `last` when it
/// is the DSS sent last: the segments of one mapping carry the same one (RFC
/// 8684 §3.3: each may repeat the whole mapping), the DATA_ACK moving only as
/// data arrives. Not a DSS without a mapping: a receiver's ACKs each
/// acknowledge more.
fn push_dss(
    out: &mut OptionBytes,
    room: usize,
    dss: Dss,
    last: &mut Option<(Dss, EncodedOption)>,
) -> bool {
    if dss.mapping.is_none() {
        return push(out, room, MptcpOption::Dss(dss));
    }
    let bytes = match last {
        Some((known, bytes)) if *known == dss => bytes,
        _ => {
            let Ok(bytes) = MptcpOption::Dss(dss).encode() else {
                return false;
            };
            &last.insert((dss, bytes)).1
        }
    };
    let bytes = bytes.as_slice();
    if bytes.len() + 2 + out.wire_len() > room {
        return false;
    }
    out.push(TCPOPT_MPTCP, bytes)
}

/// The options hook of one subflow: what its outgoing segments carry.
pub struct SubflowHooks<'a> {
    pub level: &'a mut DataLevel,
    pub sf: &'a mut SubflowMp,
    /// The mapping the segment being built carries (its DSS), where its
    /// payload is then taken from.
    mapping: Option<Mapping>,
}

impl<'a> SubflowHooks<'a> {
    pub fn new(level: &'a mut DataLevel, sf: &'a mut SubflowMp) -> Self {
        SubflowHooks {
            level,
            sf,
            mapping: None,
        }
    }
}

impl SegmentHooks for SubflowHooks<'_> {
    fn segment_options(&mut self, seg: &OutSegment, room: usize, out: &mut OptionBytes) -> usize {
        self.mapping = None;
        options_for(self.level, self.sf, seg, room, out, &mut self.mapping)
    }

    fn window_cap(&mut self) -> Option<usize> {
        self.level.window_cap_now()
    }

    /// The server before the client's key: the segment that teaches it (the
    /// third ACK or the first data, with MP_CAPABLE) was lost or overtaken,
    /// and a bare duplicate ACK for the data that overtook it would make
    /// Linux's client fall back (`check_fully_established`), where its
    /// retransmission of the first data would have carried the keys.
    fn options_required(&self) -> bool {
        self.level.role() == Role::Server && self.level.phase() == Phase::Handshake
    }

    /// Every segment of a super-packet carries the same options: right for
    /// a DSS mapping, which covers them all, not for the client's first data
    /// (MP_CAPABLE with its length), the answer to an MP_FAIL, or an option
    /// meant to go once (MP_FAIL, MP_PRIO).
    fn may_burst(&self) -> bool {
        matches!(self.level.phase(), Phase::Established | Phase::Fallback)
            && !self.level.infinite_map_pending()
            && !self.level.mp_fail_pending()
            && self.sf.prio_pending.is_none()
    }

    fn payload(&self, ssn: u32, len: usize) -> Option<(&[u8], &[u8])> {
        self.level.payload(self.sf, self.mapping.as_ref(), ssn, len)
    }
}

/// Options for a RST we send to reset a subflow or connection: MP_FAIL at
/// `fail` after a DSS checksum failure, and MP_TCPRST with `reason`.
pub fn reset_options(reason: u8, fail: Option<Dsn>) -> OptionBytes {
    let mut out = OptionBytes::default();
    if let Some(dsn) = fail {
        push(&mut out, ANY, MptcpOption::MpFail(MpFail { dsn: dsn.0 }));
    }
    push(
        &mut out,
        ANY,
        MptcpOption::TcpRst(TcpRst { flags: 0, reason }),
    );
    out
}

/// Options for a RST that aborts the connection: MP_FASTCLOSE with the peer's
/// key (so it drops the whole connection) and MP_TCPRST (RFC 8684 §3.5, §3.6).
/// Nothing after a fallback.
pub fn fastclose_options(c: &DataLevel) -> OptionBytes {
    let mut out = OptionBytes::default();
    if c.phase() == Phase::Fallback {
        return out;
    }
    if let Some(key) = c.remote_key() {
        let close = MptcpOption::FastClose(FastClose { receiver_key: key });
        push(&mut out, ANY, close);
    }
    let rst = TcpRst {
        flags: 0,
        reason: rst_reason::UNSPECIFIED,
    };
    push(&mut out, ANY, MptcpOption::TcpRst(rst));
    out
}

fn flags(c: &DataLevel) -> MpCapableFlags {
    let mut f = MpCapableFlags::H;
    if c.checksum() {
        f |= MpCapableFlags::A;
    }
    if c.deny_join_id0 {
        f |= MpCapableFlags::C;
    }
    MpCapableFlags(f)
}

/// Options of the segment `seg`, and the largest payload it may carry.
fn options_for(
    c: &mut DataLevel,
    sf: &mut SubflowMp,
    seg: &OutSegment,
    room: usize,
    out: &mut OptionBytes,
    mapping: &mut Option<Mapping>,
) -> usize {
    if !sf.is_initial() {
        return join_subflow_options(c, sf, seg, room, out, mapping);
    }
    match seg.kind {
        SegmentKind::Syn => syn_options(c, room, out),
        SegmentKind::SynAck => synack_options(c, room, out),
        SegmentKind::Established => established_options(c, sf, seg, room, out, mapping),
    }
}

/// A joined subflow: MP_JOIN during its handshake (no data until it is done),
/// then DSS like any subflow.
fn join_subflow_options(
    c: &mut DataLevel,
    sf: &mut SubflowMp,
    seg: &OutSegment,
    room: usize,
    out: &mut OptionBytes,
    mapping: &mut Option<Mapping>,
) -> usize {
    let syn = seg.kind != SegmentKind::Established;
    let ack = seg.kind != SegmentKind::Syn;
    if let Some(join) = c.join_option(sf, syn, ack) {
        push(out, room, join);
        return if seg.payload > 0 { 0 } else { ANY };
    }
    if !sf.join_established() || c.phase() == Phase::Fallback {
        return if seg.payload > 0 { 0 } else { ANY };
    }
    dss_options(c, sf, seg, room, out, mapping)
}

/// MP_CAPABLE v1 with our flags and whichever keys and data length the segment
/// carries.
fn mp_capable(
    c: &DataLevel,
    sender_key: Option<u64>,
    receiver_key: Option<u64>,
    data_len: Option<u16>,
    checksum: Option<u16>,
) -> MptcpOption<'static> {
    MptcpOption::MpCapable(MpCapable {
        version: c.version(),
        flags: flags(c),
        sender_key,
        receiver_key,
        data_len,
        checksum,
    })
}

/// The first subflow's SYN: MP_CAPABLE v1 carries no key, only the flags; v0
/// carries the sender's key (as the seed's `mptcp_syn_options` puts it in).
pub fn syn_options(c: &DataLevel, room: usize, out: &mut OptionBytes) -> usize {
    if c.phase() != Phase::Fallback {
        let key = (c.version() == MptcpVersion::V0).then(|| c.local_key());
        push(out, room, mp_capable(c, key, None, None, None));
    }
    ANY
}

/// The SYN/ACK: MP_CAPABLE with our key.
pub fn synack_options(c: &DataLevel, room: usize, out: &mut OptionBytes) -> usize {
    if c.phase() != Phase::Fallback {
        push(
            out,
            room,
            mp_capable(c, Some(c.local_key()), None, None, None),
        );
    }
    ANY
}

/// Any segment of a synchronized subflow.
pub fn established_options(
    c: &mut DataLevel,
    sf: &mut SubflowMp,
    seg: &OutSegment,
    room: usize,
    out: &mut OptionBytes,
    mapping: &mut Option<Mapping>,
) -> usize {
    if c.take_v0_keys() {
        // The v0 third ACK: both keys (RFC 6824 §3.1), without data even if
        // some is waiting (keys and a DSS do not fit together): a server
        // that kept no state (SYN cookies) learns our key only from it.
        push(
            out,
            room,
            mp_capable(c, Some(c.local_key()), c.remote_key(), None, None),
        );
        return 0;
    }
    match c.phase() {
        // Fallen back, a subflow may still send from the data level's buffer
        // until it takes its own copy (`send_mapped.rs`): a segment's bytes
        // come from one mapping at a time.
        Phase::Fallback if seg.payload > 0 => sf
            .tx_map
            .find(seg.ssn)
            .map_or(ANY, |m| m.ssn_end().wrapping_sub(seg.ssn) as usize),
        Phase::Fallback | Phase::Handshake => ANY,
        Phase::PreEstablished if c.role() == Role::Client && c.version() == MptcpVersion::V1 => {
            client_key_echo(c, sf, seg, room, out)
        }
        _ => dss_options(c, sf, seg, room, out, mapping),
    }
}

/// The client repeats both keys until the server has acknowledged them (its
/// first DSS): on the third ACK and every segment without data (length 20), and
/// on its first data with the data-level length (and checksum) standing in for
/// a DSS mapping; only that one segment of data goes out before.
fn client_key_echo(
    c: &mut DataLevel,
    sf: &SubflowMp,
    seg: &OutSegment,
    room: usize,
    out: &mut OptionBytes,
) -> usize {
    let keys =
        |data_len, checksum| mp_capable(c, Some(c.local_key()), c.remote_key(), data_len, checksum);
    if seg.payload == 0 {
        // Every segment without data repeats the keys: a server that lost the
        // third ACK learns them from whichever arrives.
        push(out, room, keys(None, None));
        return ANY;
    }
    match sf.tx_map.find(seg.ssn) {
        Some(m) => {
            push(out, room, keys(Some(m.len), m.checksum));
            m.ssn_end().wrapping_sub(seg.ssn) as usize
        }
        None => ANY,
    }
}

/// DSS: DATA_ACK always, the mapping of the segment's data (also left in
/// `mapping`), or a DATA_FIN on a segment without data.
fn dss_options(
    c: &mut DataLevel,
    sf: &mut SubflowMp,
    seg: &OutSegment,
    room: usize,
    out: &mut OptionBytes,
    mapping: &mut Option<Mapping>,
) -> usize {
    let data_ack = Some(DataAck {
        value: c.data_ack().0,
        is_64bit: true,
    });
    c.offered(seg.window);
    let mut dss = Dss {
        data_fin: false,
        data_ack,
        mapping: None,
    };
    // ADD_ADDR and REMOVE_ADDR go on pure ACKs, as Linux sends them (with data
    // and its mapping there is no room): a data segment gives way to one. The
    // DSS follows if there is room left.
    let mut pure = seg.payload == 0;
    let mut with_addr = false;
    if let Some(o) = c.take_addr_option() {
        let opt = match o {
            AddrOption::Add(a) => MptcpOption::AddAddr(a),
            AddrOption::Remove(r) => MptcpOption::RemoveAddr(r),
        };
        if push(out, room, opt) {
            pure = true;
            with_addr = true;
        } else {
            c.untake_addr_option(o);
        }
    }
    let gave_way = pure && seg.payload > 0;
    let mut cap = if gave_way { 0 } else { ANY };
    let mut infinite = false;
    if gave_way {
        // Sent without its data, so without a mapping.
    } else if seg.payload > 0 && c.infinite_map_pending() {
        // The answer to the peer's MP_FAIL (RFC 8684 §3.7): data-level length 0
        // from this segment's DSN on; everything after is plain TCP.
        let known = sf.tx_map.find(seg.ssn);
        let dsn = known.and_then(|m| m.dsn_of(seg.ssn)).unwrap_or(c.snd_una);
        if let Some(m) = known {
            // Its bytes still come from one mapping (`send_mapped.rs`).
            cap = m.ssn_end().wrapping_sub(seg.ssn) as usize;
        }
        dss.mapping = Some(DssMapping {
            dsn: dsn.0,
            dsn_64bit: true,
            // As Linux: the segment's own relative sequence number.
            ssn: seg.ssn,
            data_len: 0,
            checksum: c.checksum().then_some(0),
        });
        infinite = true;
    } else if seg.payload > 0 {
        if let Some(m) = sf.tx_map.find(seg.ssn) {
            *mapping = Some(*m);
            dss.mapping = Some(DssMapping {
                dsn: m.dsn.0,
                dsn_64bit: true,
                ssn: m.ssn,
                data_len: m.len,
                checksum: m.checksum,
            });
            cap = m.ssn_end().wrapping_sub(seg.ssn) as usize;
        }
    } else if let Some(fin) = c.pending_data_fin() {
        // A DATA_FIN alone: SSN 0, data-level length 1 (RFC 8684 §3.3.3).
        let checksum = c.checksum().then(|| DssChecksum::new(fin.0, 0, 1).finish());
        dss.data_fin = true;
        dss.mapping = Some(DssMapping {
            dsn: fin.0,
            dsn_64bit: true,
            ssn: 0,
            data_len: 1,
            checksum,
        });
    }
    if let Some(dsn) = c.take_mp_fail() {
        push(out, room, MptcpOption::MpFail(MpFail { dsn: dsn.0 }));
    }
    if let Some(backup) = sf.prio_pending.take() {
        c.stats.mp_prio_tx += 1;
        push(
            out,
            room,
            MptcpOption::MpPrio(MpPrio {
                backup,
                // v0 names the address (RFC 6824 §3.3.8): every subflow of
                // ours on it is meant, as our endpoints' flags are per address.
                addr_id: (c.version() == MptcpVersion::V0).then_some(sf.local_id),
            }),
        );
    }
    if !push_dss(out, room, dss, &mut sf.last_dss) {
        // The address option took the DSS's room (an IPv6 ADD_ADDR echo
        // with timestamps): a pure ACK with the DATA_ACK follows at once.
        // Without it a peer with nothing more to send would never see its
        // data acknowledged, and would send it again at the data level on
        // this subflow, which a fallback could then deliver twice.
        sf.data_ack_owed |= with_addr;
        // No room for the mapping: the segment must not carry unmapped data.
        return if seg.payload > 0 { 0 } else { ANY };
    }
    if infinite {
        c.infinite_map_sent();
    }
    if dss.data_fin {
        c.data_fin_sent = true;
    }
    cap
}
