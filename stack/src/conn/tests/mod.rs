//! Segment-in / segment-out tests of the MPTCP level, through one
//! [`Connection`].
//!
//! As in `tcp/tcb/tests.rs`, a [`Harness`] plays the peer: it builds the
//! connection directly (TCBs with fixed ISNs, a `DataLevel` with a fixed key),
//! feeds it hand-made `TcpRepr`s whose MPTCP options are encoded with
//! `MptcpOption::encode` and decoded back by `MptcpOptions::parse` (as the
//! stack does), and parses what `poll_transmit` writes into an owned [`Out`], so
//! that each test asserts the exact segments and options that come out, the
//! [`Effects`] returned, and the state left behind. HMACs, tokens, IDSNs and
//! DSS checksums are computed here independently with `mptcp::crypto`.
//!
//! The peer keeps track of each subflow's sequence numbers (`Path`): what it
//! sent (`snd_nxt`) and what it received from us (`rcv_nxt`), so that tests
//! need to spell out sequence numbers only where they are the point.

mod addr;
mod blind;
mod data_fin;
mod dss;
mod fail;
mod fastclose;
mod handshake;
mod join;

use super::{Connection, Effects, Request, RstOut, SubflowId};
use crate::config::{SchedulerKind, TcpConfig};
use crate::mptcp::crypto::{self, DssChecksum, HashAlg};
use crate::mptcp::join::JoinRequest;
use crate::mptcp::{DataLevel, MptcpSettings, Phase};
use crate::tcp::{State, Tcb};
use crate::time::Instant;
use crate::wire::mptcp::{
    DataAck, Dss, Mapping, MpCapable, MpCapableFlags, MpJoin, MptcpOption, MptcpVersion, TcpRst,
};
use crate::wire::{
    IpRepr, MptcpOptions, ParseCtx, SeqNumber, TcpFlags, TcpRepr, IPPROTO_TCP, TCPOPT_MPTCP,
};
use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Our key and the peer's: fixed, so tokens, IDSNs and HMACs are too.
pub(super) const LOCAL_KEY: u64 = 0x0123_4567_89ab_cdef;
pub(super) const PEER_KEY: u64 = 0xfedc_ba98_7654_3210;
/// Our ISN and the peer's on the initial subflow, and on joined ones.
pub(super) const ISS: u32 = 10_000;
pub(super) const IRS: u32 = 90_000;
pub(super) const JOIN_ISS: u32 = 20_000;
pub(super) const JOIN_IRS: u32 = 70_000;
/// MP_JOIN nonces: ours and the peer's.
pub(super) const LOCAL_NONCE: u32 = 0xa1a2_a3a4;
pub(super) const PEER_NONCE: u32 = 0xb1b2_b3b4;
/// The MSS the peer announces; without timestamps, a full segment's payload.
pub(super) const MSS: usize = 1000;
/// A full segment's payload under a DSS with a 64-bit DATA_ACK and mapping:
/// the options (28 bytes with padding) come out of the MSS, as in Linux.
pub(super) const DSS_SEG: usize = MSS - 28;
/// Our buffers (connection level and subflows alike); 32 KiB needs no window
/// scaling.
pub(super) const BUFFER: usize = 32768;
const HOP: u8 = 64;
pub(super) const T0: Instant = Instant::from_millis(10_000);

pub(super) const SYN: u8 = TcpFlags::SYN;
pub(super) const ACK: u8 = TcpFlags::ACK;
pub(super) const PSH: u8 = TcpFlags::PSH;
pub(super) const RST: u8 = TcpFlags::RST;
pub(super) const FIN: u8 = TcpFlags::FIN;

pub(super) use MptcpVersion::{V0, V1};

pub(super) fn fl(bits: u8) -> TcpFlags {
    TcpFlags(bits)
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// Our address on the initial subflow, and a second one joins come from.
pub(super) fn local_ip() -> IpAddr {
    v4(10, 0, 0, 1)
}
pub(super) fn local_ip2() -> IpAddr {
    v4(10, 0, 1, 1)
}
/// The peer's address on the initial subflow, and a second one.
pub(super) fn remote_ip() -> IpAddr {
    v4(10, 0, 0, 2)
}
pub(super) fn remote_ip2() -> IpAddr {
    v4(10, 0, 1, 2)
}

fn local() -> SocketAddr {
    SocketAddr::new(local_ip(), 49152)
}
fn remote() -> SocketAddr {
    SocketAddr::new(remote_ip(), 80)
}

pub(super) fn alg(v: MptcpVersion) -> HashAlg {
    match v {
        V0 => HashAlg::Sha1,
        V1 => HashAlg::Sha256,
    }
}

/// Every segment acknowledged at once, no Nagle (segment boundaries are the
/// test's), no timestamps (a full segment carries exactly `MSS` bytes and the
/// MPTCP options have the room to themselves).
pub(super) fn cfg() -> TcpConfig {
    TcpConfig {
        recv_buffer: BUFFER,
        send_buffer: 2 * BUFFER,
        delayed_ack: None,
        nagle: false,
        timestamps: false,
        ..TcpConfig::default()
    }
}

/// v1 and v0 allowed, no retry with v0, no checksums, up to 4 joins.
pub(super) fn settings() -> MptcpSettings {
    MptcpSettings {
        allow_v1: true,
        allow_v0: true,
        retry_v0: false,
        scheduler: SchedulerKind::MinRtt,
        max_subflows: 4,
        checksum: false,
        send_buffer: 2 * BUFFER,
        recv_buffer: BUFFER,
        join_attempts: 8,
        join_refill: core::time::Duration::from_secs(10),
        accept_v0_add_addr: true,
        deny_join_id0: false,
    }
}

/// `n` bytes of a recognizable pattern, different for each `salt`.
pub(super) fn bytes(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i % 251) as u8 ^ salt.wrapping_mul(37))
        .collect()
}

// ----- options: building and expecting -----

pub(super) fn data_ack(value: u64) -> Option<DataAck> {
    Some(DataAck {
        value,
        is_64bit: true,
    })
}

/// DSS with a 64-bit DATA_ACK only.
pub(super) fn dss_ack(ack: u64) -> MptcpOption<'static> {
    MptcpOption::Dss(Dss {
        data_fin: false,
        data_ack: data_ack(ack),
        mapping: None,
    })
}

/// DSS with a 64-bit DATA_ACK and a 64-bit mapping.
pub(super) fn dss_map(
    ack: u64,
    dsn: u64,
    ssn: u32,
    len: u16,
    checksum: Option<u16>,
) -> MptcpOption<'static> {
    MptcpOption::Dss(Dss {
        data_fin: false,
        data_ack: data_ack(ack),
        mapping: Some(Mapping {
            dsn,
            dsn_64bit: true,
            ssn,
            data_len: len,
            checksum,
        }),
    })
}

/// A DATA_FIN alone (RFC 8684 §3.3.3): SSN 0, data-level length 1.
pub(super) fn dss_data_fin(ack: u64, dsn: u64, checksum: bool) -> MptcpOption<'static> {
    MptcpOption::Dss(Dss {
        data_fin: true,
        data_ack: data_ack(ack),
        mapping: Some(Mapping {
            dsn,
            dsn_64bit: true,
            ssn: 0,
            data_len: 1,
            checksum: checksum.then(|| DssChecksum::new(dsn, 0, 1).finish()),
        }),
    })
}

/// The DSS checksum of a mapping of `payload` (RFC 8684 §3.3.1).
pub(super) fn dss_checksum(dsn: u64, ssn: u32, payload: &[u8]) -> u16 {
    let mut c = DssChecksum::new(dsn, ssn, payload.len() as u16);
    c.update(payload);
    c.finish()
}

/// MP_TCPRST as we send it (no flags).
pub(super) fn tcprst(reason: u8) -> MptcpOption<'static> {
    MptcpOption::TcpRst(TcpRst { flags: 0, reason })
}

/// The `MptcpOptions` a segment carrying exactly `opts` decodes to.
pub(super) fn expect(opts: &[MptcpOption<'_>]) -> MptcpOptions {
    let mut o = MptcpOptions {
        any: !opts.is_empty(),
        ..MptcpOptions::default()
    };
    for opt in opts {
        match *opt {
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

/// Decode `raw` MPTCP option data as found on a segment like `ctx`.
fn decode<'a>(raw: impl Iterator<Item = (u8, &'a [u8])>, ctx: ParseCtx) -> (MptcpOptions, usize) {
    let mut repr = TcpRepr::new(1, 2);
    repr.flags = TcpFlags(if ctx.syn { SYN } else { 0 } | if ctx.ack { ACK } else { 0 });
    let mut n = 0;
    for (kind, data) in raw {
        assert_eq!(kind, TCPOPT_MPTCP, "only MPTCP options are added");
        assert!(repr.unknown.push(kind, data), "at most four options");
        n += 1;
    }
    let filler = [0u8; 1];
    if ctx.has_payload {
        repr.payload = &filler;
    }
    let o = MptcpOptions::parse(&repr);
    assert_eq!(o.malformed, 0, "a malformed MPTCP option went out");
    (o, n)
}

/// The MPTCP options of a RST the connection asked the stack to send.
pub(super) fn rst_options(r: &RstOut) -> MptcpOptions {
    let (o, n) = decode(r.extra.iter(), ParseCtx::default());
    assert_eq!(n, count(&o), "an MPTCP option appears twice on a RST");
    o
}

fn count(o: &MptcpOptions) -> usize {
    [
        o.capable.is_some(),
        o.join.is_some(),
        o.dss.is_some(),
        o.add_addr.is_some(),
        o.remove_addr.is_some(),
        o.prio.is_some(),
        o.fail.is_some(),
        o.fastclose.is_some(),
        o.tcprst.is_some(),
    ]
    .into_iter()
    .filter(|&b| b)
    .count()
}

// ----- what comes out -----

/// An owned copy of an emitted segment: the subflow it went on (the harness's
/// path index), its TCP fields and every MPTCP option decoded.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Out {
    pub path: usize,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub payload: Vec<u8>,
    pub mp: MptcpOptions,
    /// How many MPTCP options it carried (each kind once, so `mp` holds them all).
    pub n_mp: usize,
}

impl Out {
    /// Assert that the segment carries exactly `opts`.
    #[track_caller]
    pub fn assert_opts(&self, opts: &[MptcpOption<'_>]) {
        assert_eq!(self.mp, expect(opts), "MPTCP options of {self:?}");
        assert_eq!(self.n_mp, opts.len(), "MPTCP option count of {self:?}");
    }

    /// Assert the TCP part: flags, seq, ack and payload length.
    #[track_caller]
    pub fn assert_tcp(&self, flags: u8, seq: u32, ack: u32, len: usize) {
        assert_eq!(
            (self.flags, self.seq, self.ack, self.payload.len()),
            (fl(flags), seq, ack, len),
            "TCP fields of {self:?}"
        );
    }

    pub fn dss(&self) -> Dss {
        self.mp.dss.unwrap_or_else(|| panic!("no DSS on {self:?}"))
    }
}

/// Assert that `fx` holds exactly one RST, on path `path`'s 4-tuple, with
/// exactly the MPTCP options `opts`; returns it.
#[track_caller]
pub(super) fn assert_one_rst(
    h: &Harness,
    fx: &Effects,
    path: usize,
    opts: &[MptcpOption<'_>],
) -> RstOut {
    assert_eq!(fx.rsts.len(), 1, "RSTs: {:?}", fx.rsts);
    let r = fx.rsts[0];
    h.assert_rst(&r, path, opts);
    r
}

// ----- the peer -----

/// One subflow as the peer sees it.
#[derive(Debug, Clone)]
pub(super) struct Path {
    pub id: SubflowId,
    /// Our side's addresses (the connection's local and remote).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Our ISN and the peer's.
    pub iss: u32,
    pub irs: u32,
    /// The peer's next sequence number, and what it acknowledges: everything
    /// we sent it.
    pub snd_nxt: u32,
    pub rcv_nxt: u32,
}

pub(super) struct Harness {
    pub conn: Connection,
    pub now: Instant,
    pub version: MptcpVersion,
    /// DSS checksums are in use: the peer puts them on its mappings.
    pub checksum: bool,
    pub paths: Vec<Path>,
    pub cfg: TcpConfig,
    /// The window scale the peer offers on its SYNs (none: no scaling).
    pub wscale: Option<u8>,
    /// The DSN just past the highest of our data (or DATA_FIN) the peer has
    /// seen in our mappings: what it acknowledges.
    pub data_seen: u64,
    buf: Vec<u8>,
}

impl Harness {
    fn with(conn: Connection, version: MptcpVersion, path: Path) -> Harness {
        Harness {
            conn,
            now: T0,
            version,
            checksum: false,
            paths: vec![path],
            cfg: cfg(),
            wscale: None,
            data_seen: crypto::idsn(alg(version), LOCAL_KEY).wrapping_add(1),
            buf: vec![0; 2048],
        }
    }

    /// Client in SYN_SENT offering `version`, its SYN not yet polled.
    pub fn connecting(version: MptcpVersion, s: MptcpSettings) -> Harness {
        Harness::connecting_cfg(version, s, cfg())
    }

    fn connecting_cfg(version: MptcpVersion, s: MptcpSettings, cfg: TcpConfig) -> Harness {
        let tcb = Tcb::connect(&cfg, local(), remote(), SeqNumber(ISS), 0, T0);
        let conn = Connection::mptcp(tcb, DataLevel::client(version, LOCAL_KEY, &s));
        let path = Path {
            id: SubflowId::INITIAL,
            local: local(),
            remote: remote(),
            iss: ISS,
            irs: IRS,
            snd_nxt: IRS,
            rcv_nxt: ISS,
        };
        let mut h = Harness::with(conn, version, path);
        h.checksum = s.checksum || version == V0;
        h.cfg = cfg;
        h
    }

    /// Server in SYN_RECEIVED from the peer's MP_CAPABLE SYN offering
    /// `version` (v0: with the peer's key; `csum`: the A bit), its SYN/ACK not
    /// yet polled.
    pub fn accepting(version: MptcpVersion, csum: bool, s: MptcpSettings) -> Harness {
        let mut flags = MpCapableFlags::H;
        if csum {
            flags |= MpCapableFlags::A;
        }
        let cap = MpCapable {
            version,
            flags: MpCapableFlags(flags),
            sender_key: (version == V0).then_some(PEER_KEY),
            receiver_key: None,
            data_len: None,
            checksum: None,
        };
        let path = Path {
            id: SubflowId::INITIAL,
            local: SocketAddr::new(local_ip(), 80),
            remote: SocketAddr::new(remote_ip(), 49152),
            iss: ISS,
            irs: IRS,
            snd_nxt: IRS,
            rcv_nxt: ISS,
        };
        let mut syn = syn_repr(&path, SYN, 0);
        let enc = MptcpOption::MpCapable(cap).encode().unwrap();
        syn.unknown.push(TCPOPT_MPTCP, enc.as_slice());
        let cap = MptcpOptions::parse(&syn)
            .capable
            .expect("MP_CAPABLE decodes");
        let v = DataLevel::syn_version(&cap, &s).expect("the version is allowed");
        let tcb = Tcb::accept(&cfg(), path.local, path.remote, SeqNumber(ISS), 0, T0, &syn);
        let conn = Connection::mptcp(tcb, DataLevel::server(&cap, v, LOCAL_KEY, &s));
        let mut h = Harness::with(conn, version, path);
        h.paths[0].snd_nxt = IRS + 1;
        h.checksum = s.checksum || csum || version == V0;
        h
    }

    /// A client whose MP_CAPABLE handshake is done and which has seen the
    /// server's first DATA_ACK: fully established, one subflow.
    pub fn client(version: MptcpVersion) -> Harness {
        Harness::client_with(version, settings())
    }

    pub fn client_with(version: MptcpVersion, s: MptcpSettings) -> Harness {
        Harness::establish_client(Harness::connecting(version, s))
    }

    /// As [`Self::client_with`], with subflow buffers of `buffer` bytes and
    /// window scaling on both sides (the peer's shift is 7, as Linux's).
    pub fn client_scaled(version: MptcpVersion, s: MptcpSettings, buffer: usize) -> Harness {
        let cfg = TcpConfig {
            recv_buffer: buffer,
            send_buffer: buffer,
            ..cfg()
        };
        let mut h = Harness::connecting_cfg(version, s, cfg);
        h.wscale = Some(7);
        Harness::establish_client(h)
    }

    fn establish_client(mut h: Harness) -> Harness {
        let syn = h.recv_seg();
        assert_eq!(syn.flags, fl(SYN));
        h.now += ms(10);
        let fx = h.feed(0, SYN | ACK, &[h.synack_capable()]);
        assert!(fx.is_empty(), "{fx:?}");
        let third = h.recv_seg();
        assert_eq!(
            third.mp.capable.map(|c| c.receiver_key),
            Some(Some(PEER_KEY))
        );
        // The server's first DATA_ACK (as on its first data, or a window update).
        let fx = h.feed(0, ACK, &[h.peer_dss_ack()]);
        assert_eq!(fx.requests, vec![Request::StartPathManager]);
        assert_eq!(h.phase(), Phase::Established);
        h.assert_no_segment();
        h
    }

    /// A server whose MP_CAPABLE handshake is done (the client's third ACK
    /// arrived with both keys): fully established, one subflow.
    pub fn server(version: MptcpVersion) -> Harness {
        Harness::server_with(version, settings())
    }

    pub fn server_with(version: MptcpVersion, s: MptcpSettings) -> Harness {
        let mut h = Harness::accepting(version, false, s);
        let synack = h.recv_seg();
        assert_eq!(synack.flags, fl(SYN | ACK));
        h.now += ms(10);
        let fx = h.feed(0, ACK, &[h.third_ack_capable()]);
        assert_eq!(fx.requests, vec![Request::StartPathManager]);
        assert_eq!(h.phase(), Phase::Established);
        h.assert_no_segment();
        h
    }

    /// Every fully established set-up with one subflow: both roles, both
    /// versions, each named for failure messages.
    pub fn all() -> Vec<(&'static str, Harness)> {
        vec![
            ("v1 client", Harness::client(V1)),
            ("v0 client", Harness::client(V0)),
            ("v1 server", Harness::server(V1)),
            ("v0 server", Harness::server(V0)),
        ]
    }

    // ----- keys and sequence spaces -----

    pub fn alg(&self) -> HashAlg {
        alg(self.version)
    }

    /// The DSN of our data byte `offset` (0 is the first), and the peer's.
    pub fn local_dsn(&self, offset: u64) -> u64 {
        crypto::idsn(self.alg(), LOCAL_KEY).wrapping_add(1 + offset)
    }
    pub fn peer_dsn(&self, offset: u64) -> u64 {
        crypto::idsn(self.alg(), PEER_KEY).wrapping_add(1 + offset)
    }

    pub fn local_token(&self) -> u32 {
        crypto::token(self.alg(), LOCAL_KEY)
    }

    /// MP_CAPABLE flags as we send them: H, and A with checksums.
    pub fn our_capable_flags(&self) -> MpCapableFlags {
        let mut f = MpCapableFlags::H;
        if self.checksum {
            f |= MpCapableFlags::A;
        }
        MpCapableFlags(f)
    }

    /// The server's MP_CAPABLE in its SYN/ACK (its key).
    pub fn synack_capable(&self) -> MptcpOption<'static> {
        MptcpOption::MpCapable(MpCapable {
            version: self.version,
            flags: MpCapableFlags(MpCapableFlags::H),
            sender_key: Some(PEER_KEY),
            receiver_key: None,
            data_len: None,
            checksum: None,
        })
    }

    /// The client's MP_CAPABLE on its third ACK (both keys).
    pub fn third_ack_capable(&self) -> MptcpOption<'static> {
        MptcpOption::MpCapable(MpCapable {
            version: self.version,
            flags: MpCapableFlags(MpCapableFlags::H),
            sender_key: Some(PEER_KEY),
            receiver_key: Some(LOCAL_KEY),
            data_len: None,
            checksum: None,
        })
    }

    /// The client's MP_CAPABLE on its first data (both keys and the
    /// data-level length of the `len` bytes it carries).
    pub fn first_data_capable(&self, len: u16) -> MptcpOption<'static> {
        match self.third_ack_capable() {
            MptcpOption::MpCapable(c) => MptcpOption::MpCapable(MpCapable {
                data_len: Some(len),
                ..c
            }),
            _ => unreachable!(),
        }
    }

    /// The peer's DSS acknowledging all our data it has seen, and nothing more.
    pub fn peer_dss_ack(&self) -> MptcpOption<'static> {
        dss_ack(self.data_seen)
    }

    /// The peer's mapping of `payload` at data offset `off`, subflow byte `ssn`,
    /// with a DATA_ACK of all our data (and the DSS checksum when in use).
    pub fn peer_map(&self, off: u64, ssn: u32, payload: &[u8]) -> MptcpOption<'static> {
        let dsn = self.peer_dsn(off);
        let csum = self.checksum.then(|| dss_checksum(dsn, ssn, payload));
        dss_map(self.data_seen, dsn, ssn, payload.len() as u16, csum)
    }

    /// The DATA_ACK we owe for the peer's data received in order (its
    /// DATA_FIN not counted).
    pub fn our_data_ack(&self) -> u64 {
        let mp = self.conn.data_level().expect("an MPTCP connection");
        self.peer_dsn(mp.data_bytes_received())
    }

    // ----- state -----

    pub fn phase(&self) -> Phase {
        self.conn.data_level().expect("an MPTCP connection").phase()
    }

    pub fn stats(&self) -> crate::mptcp::stats::MptcpStats {
        self.conn.mptcp_stats().expect("an MPTCP connection")
    }

    /// The TCP state of path `p`'s subflow, `None` once it was freed.
    pub fn path_state(&self, p: usize) -> Option<State> {
        let id = self.paths[p].id;
        self.conn
            .subflows
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.tcb.state())
    }

    pub fn subflow(&self, p: usize) -> &super::Subflow {
        let id = self.paths[p].id;
        self.conn
            .subflows
            .iter()
            .find(|s| s.id == id)
            .expect("the subflow is held")
    }

    /// The 4-tuple of path `p` as the stack names it.
    pub fn tuple(&self, p: usize) -> crate::demux::FourTuple {
        crate::demux::FourTuple {
            local: self.paths[p].local,
            remote: self.paths[p].remote,
        }
    }

    // ----- the peer's segments -----

    /// A segment from the peer on path `p` at its next sequence number,
    /// acknowledging everything we sent on it.
    pub fn seg(&self, p: usize, flags: u8) -> TcpRepr<'static> {
        let path = &self.paths[p];
        let mut r = syn_repr(path, flags, path.rcv_nxt);
        if flags & SYN == 0 {
            r.seq = SeqNumber(path.snd_nxt);
        } else {
            r.window_scale = self.wscale;
        }
        r
    }

    /// Feed a segment `flags` on path `p` at the peer's next sequence number
    /// with `opts`; the peer's sequence number advances.
    pub fn feed(&mut self, p: usize, flags: u8, opts: &[MptcpOption<'_>]) -> Effects {
        let seg = self.seg(p, flags);
        self.feed_seg(p, &seg, opts)
    }

    /// Feed `payload` (ACK|PSH) on path `p` in order, with `opts`.
    pub fn feed_data(&mut self, p: usize, payload: &[u8], opts: &[MptcpOption<'_>]) -> Effects {
        let seg = TcpRepr {
            payload,
            ..self.seg(p, ACK | PSH)
        };
        self.feed_seg(p, &seg, opts)
    }

    /// Feed `seg` on path `p` with `opts` added; the peer's next sequence
    /// number moves past it if it was in order.
    pub fn feed_seg(&mut self, p: usize, seg: &TcpRepr<'_>, opts: &[MptcpOption<'_>]) -> Effects {
        let encoded: Vec<_> = opts
            .iter()
            .map(|o| o.encode().expect("the option encodes"))
            .collect();
        let mut seg = *seg;
        for e in &encoded {
            assert!(seg.unknown.push(TCPOPT_MPTCP, e.as_slice()));
        }
        let parsed = MptcpOptions::parse(&seg);
        assert_eq!(parsed.malformed, 0, "the test built a malformed option");
        let path = &mut self.paths[p];
        let len = seg.payload.len() as u32 + seg.flags.syn() as u32 + seg.flags.fin() as u32;
        if seg.seq.0 == path.snd_nxt || seg.flags.syn() {
            path.snd_nxt = seg.seq.0.wrapping_add(len);
        }
        let id = path.id;
        let mut quota = crate::tcp::ratelimit::ChallengeQuota::new(1_000_000, 1);
        self.conn
            .on_segment(self.now, id, &seg, &parsed, &mut quota)
    }

    // ----- what the connection sends -----

    /// Poll one segment and parse it back.
    pub fn recv(&mut self) -> Option<Out> {
        let t = self.conn.poll_transmit(self.now, HOP, &mut self.buf, 1)?;
        let pkt = self.buf[..t.len].to_vec();
        let (ip, bytes) = IpRepr::parse(&pkt).expect("a good IP packet");
        assert_eq!((ip.protocol, ip.hop_limit), (IPPROTO_TCP, HOP));
        let r = TcpRepr::parse(ip.src, ip.dst, bytes, true).expect("a good segment");
        let (src, dst) = (
            SocketAddr::new(ip.src, r.src_port),
            SocketAddr::new(ip.dst, r.dst_port),
        );
        let path = self
            .paths
            .iter()
            .position(|p| p.local == src && p.remote == dst)
            .unwrap_or_else(|| panic!("a segment from {src} to {dst} on no known path"));
        let (mp, n_mp) = decode(r.unknown.iter(), ParseCtx::from_repr(&r));
        self.saw_data(path, &r, &mp);
        let p = &mut self.paths[path];
        let len = r.payload.len() as u32 + r.flags.syn() as u32 + r.flags.fin() as u32;
        let end = r.seq.0.wrapping_add(len);
        if (end.wrapping_sub(p.rcv_nxt) as i32) > 0 {
            p.rcv_nxt = end;
        }
        Some(Out {
            path,
            flags: r.flags,
            seq: r.seq.0,
            ack: r.ack.0,
            window: r.window,
            payload: r.payload.to_vec(),
            mp,
            n_mp,
        })
    }

    /// The peer takes note of the data-level range a segment of ours carries.
    fn saw_data(&mut self, path: usize, r: &TcpRepr<'_>, mp: &MptcpOptions) {
        let ssn = r.seq.0.wrapping_sub(self.paths[path].iss);
        let end = match (mp.dss, mp.capable) {
            (Some(d), _) => match d.mapping {
                Some(m) if d.data_fin && m.ssn == 0 => Some(m.dsn.wrapping_add(1)),
                Some(m) if m.data_len > 0 && !r.payload.is_empty() => {
                    let off = ssn.wrapping_sub(m.ssn) as u64;
                    let fin = d.data_fin as u64;
                    Some(m.dsn.wrapping_add(off + r.payload.len() as u64 + fin))
                }
                _ => None,
            },
            (None, Some(c)) if c.data_len.is_some() && !r.payload.is_empty() => {
                Some(self.local_dsn(0) + (ssn as u64 - 1) + r.payload.len() as u64)
            }
            _ => None,
        };
        if let Some(end) = end {
            if end.wrapping_sub(self.data_seen) as i64 > 0 {
                self.data_seen = end;
            }
        }
    }

    #[track_caller]
    pub fn recv_seg(&mut self) -> Out {
        match self.recv() {
            Some(s) => s,
            None => panic!("expected a segment, state {}", self.conn.state()),
        }
    }

    /// Every segment the connection sends now.
    pub fn recv_all(&mut self) -> Vec<Out> {
        let mut v = Vec::new();
        while let Some(o) = self.recv() {
            v.push(o);
            assert!(v.len() < 100, "the connection does not stop sending");
        }
        v
    }

    #[track_caller]
    pub fn assert_no_segment(&mut self) {
        if let Some(s) = self.recv() {
            panic!("unexpected segment {s:?}");
        }
    }

    /// Jump to the next timer and run it.
    pub fn fire_timer(&mut self) -> Effects {
        let at = self.conn.poll_at().expect("a timer is armed");
        assert!(at >= self.now, "timer in the past");
        self.now = at;
        self.conn.on_timeout(at)
    }

    /// Read everything the application can; `true` when the peer's data ended.
    pub fn read_all(&mut self) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let (r, fx) = self.conn.recv(self.now, &mut buf);
            assert!(fx.is_empty(), "reading had effects: {fx:?}");
            match r {
                Ok(0) => return (out, false),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(finished) => {
                    assert!(finished, "the connection was reset");
                    return (out, true);
                }
            }
        }
    }

    /// Assert `r` is a RST on path `p` (at our next sequence number there)
    /// carrying exactly `opts`.
    #[track_caller]
    pub fn assert_rst(&self, r: &RstOut, p: usize, opts: &[MptcpOption<'_>]) {
        assert_eq!(r.tuple, self.tuple(p), "RST on the wrong subflow: {r:?}");
        assert_eq!(r.reply.seq, SeqNumber(self.paths[p].rcv_nxt), "{r:?}");
        let o = rst_options(r);
        assert_eq!(o, expect(opts), "options of {r:?}");
    }

    // ----- joins -----

    /// Open a subflow from our `local` address (id `local_id`) to the peer's
    /// initial address (id 0): our SYN with MP_JOIN waits to be polled.
    pub fn open_join(&mut self, local: IpAddr, local_id: u8, backup: bool) -> usize {
        assert!(self.conn.join_allowed());
        let n = self.paths.len() as u32;
        let (l, r) = (
            SocketAddr::new(local, 49152 + n as u16),
            self.paths[0].remote,
        );
        let iss = JOIN_ISS + 1000 * n;
        let tcb = Tcb::connect(&self.cfg, l, r, SeqNumber(iss), 0, self.now);
        let id = self
            .conn
            .add_active_join(tcb, LOCAL_NONCE, local_id, 0, backup)
            .expect("an MPTCP connection");
        self.paths.push(Path {
            id,
            local: l,
            remote: r,
            iss,
            irs: JOIN_IRS + 1000 * n,
            snd_nxt: JOIN_IRS + 1000 * n,
            rcv_nxt: iss,
        });
        self.paths.len() - 1
    }

    /// The peer's MP_JOIN SYN/ACK answering our SYN (nonce `LOCAL_NONCE`)
    /// from its address id `addr_id`, with the HMAC it computes.
    pub fn join_synack(&self, addr_id: u8, backup: bool) -> MptcpOption<'static> {
        MptcpOption::MpJoin(MpJoin::SynAck {
            backup,
            addr_id,
            hmac: crypto::join_synack_hmac(
                self.alg(),
                PEER_KEY,
                LOCAL_KEY,
                PEER_NONCE,
                LOCAL_NONCE,
            ),
            nonce: PEER_NONCE,
        })
    }

    /// Our third ACK's MP_JOIN, as the peer expects it.
    pub fn our_join_ack(&self) -> MptcpOption<'static> {
        MptcpOption::MpJoin(MpJoin::Ack {
            hmac: crypto::join_ack_hmac(self.alg(), LOCAL_KEY, PEER_KEY, LOCAL_NONCE, PEER_NONCE),
        })
    }

    /// A joined subflow of ours to the peer's address id 2, handshake done
    /// (the peer's fourth ACK arrived).
    pub fn active_join(&mut self) -> usize {
        let p = self.open_join(local_ip2(), 1, false);
        let syn = self.recv_seg();
        assert_eq!((syn.path, syn.flags), (p, fl(SYN)));
        let fx = self.feed(p, SYN | ACK, &[self.join_synack(2, false)]);
        assert!(fx.is_empty(), "{fx:?}");
        let third = self.recv_seg();
        third.assert_opts(&[self.our_join_ack()]);
        let fx = self.feed(p, ACK, &[self.peer_dss_ack()]);
        assert!(fx.is_empty(), "{fx:?}");
        assert!(self.subflow(p).mp.join_established());
        self.assert_no_segment();
        p
    }

    /// The peer joins from its address `remote` (id `remote_id`) to our
    /// initial address: its SYN arrived and the subflow was added (what the
    /// stack does on a SYN naming our token); our SYN/ACK waits.
    pub fn accept_join(&mut self, remote: IpAddr, remote_id: u8, backup: bool) -> usize {
        self.accept_join_at(self.paths[0].local.ip(), 0, remote, remote_id, backup)
    }

    /// As [`Self::accept_join`], to our address `local` (id `local_id`).
    pub fn accept_join_at(
        &mut self,
        local: IpAddr,
        local_id: u8,
        remote: IpAddr,
        remote_id: u8,
        backup: bool,
    ) -> usize {
        assert!(self.conn.join_allowed());
        let n = self.paths.len() as u32;
        let path = Path {
            id: SubflowId(u32::MAX),
            local: SocketAddr::new(local, self.paths[0].local.port()),
            remote: SocketAddr::new(remote, 50000 + n as u16),
            iss: JOIN_ISS + 1000 * n,
            irs: JOIN_IRS + 1000 * n,
            snd_nxt: JOIN_IRS + 1000 * n,
            rcv_nxt: JOIN_ISS + 1000 * n,
        };
        let mut syn = syn_repr(&path, SYN, 0);
        let join = MptcpOption::MpJoin(MpJoin::Syn {
            backup,
            addr_id: remote_id,
            token: self.local_token(),
            nonce: PEER_NONCE,
        });
        let enc = join.encode().unwrap();
        syn.unknown.push(TCPOPT_MPTCP, enc.as_slice());
        let (token, remote_nonce, remote_id, remote_backup) =
            crate::mptcp::join::syn_join(MptcpOptions::parse(&syn).join).expect("MP_JOIN SYN");
        assert_eq!(token, self.local_token());
        let tcb = Tcb::accept(
            &self.cfg,
            path.local,
            path.remote,
            SeqNumber(path.iss),
            0,
            self.now,
            &syn,
        );
        let req = JoinRequest {
            remote_nonce,
            remote_id,
            remote_backup,
            local_nonce: LOCAL_NONCE,
            local_id,
            local_backup: false,
        };
        let id = self
            .conn
            .add_passive_join(self.now, tcb, &req)
            .expect("an MPTCP connection");
        self.paths.push(Path {
            id,
            snd_nxt: path.irs + 1,
            ..path
        });
        self.paths.len() - 1
    }

    /// Our SYN/ACK's MP_JOIN from our address id `addr_id`, as the peer
    /// expects it.
    pub fn our_join_synack(&self, addr_id: u8) -> MptcpOption<'static> {
        MptcpOption::MpJoin(MpJoin::SynAck {
            backup: false,
            addr_id,
            hmac: crypto::join_synack_hmac(
                self.alg(),
                LOCAL_KEY,
                PEER_KEY,
                LOCAL_NONCE,
                PEER_NONCE,
            ),
            nonce: LOCAL_NONCE,
        })
    }

    /// The peer's third ACK's MP_JOIN, with the HMAC it computes.
    pub fn peer_join_ack(&self) -> MptcpOption<'static> {
        MptcpOption::MpJoin(MpJoin::Ack {
            hmac: crypto::join_ack_hmac(self.alg(), PEER_KEY, LOCAL_KEY, PEER_NONCE, LOCAL_NONCE),
        })
    }

    /// A subflow the peer joined from its second address (id 2), handshake
    /// done (our fourth ACK went out).
    pub fn passive_join(&mut self) -> usize {
        let p = self.accept_join(remote_ip2(), 2, false);
        self.finish_passive_join(p)
    }

    /// The rest of a passive join whose SYN was taken: SYN/ACK, the peer's
    /// third ACK, our fourth ACK.
    pub fn finish_passive_join(&mut self, p: usize) -> usize {
        let synack = self.recv_seg();
        assert_eq!((synack.path, synack.flags), (p, fl(SYN | ACK)));
        let fx = self.feed(p, ACK, &[self.peer_join_ack()]);
        assert!(fx.is_empty(), "{fx:?}");
        let fourth = self.recv_seg();
        assert_eq!((fourth.path, fourth.flags), (p, fl(ACK)));
        assert!(self.subflow(p).mp.join_established());
        self.assert_no_segment();
        p
    }
}

/// A bare segment on `path` from the peer's side, at its ISN (a SYN also
/// announces the MSS).
fn syn_repr(path: &Path, flags: u8, ack: u32) -> TcpRepr<'static> {
    let mut r = TcpRepr::new(path.remote.port(), path.local.port());
    r.flags = fl(flags);
    r.seq = SeqNumber(path.irs);
    r.ack = SeqNumber(ack);
    r.window = 65535;
    if flags & SYN != 0 {
        r.mss = Some(MSS as u16);
    }
    r
}
