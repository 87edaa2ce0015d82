//! A blind (off-path) attacker against MPTCP, shared by the blind-injection
//! tests (`mptcp_blind_injection.rs`, `mptcp_blind_sim.rs`).
//!
//! The attacker knows the 4-tuple of every subflow (addresses and ports: what
//! anyone on the Internet can guess or learn from a port scan) and the MPTCP
//! version in use, and nothing else: every sequence number, acknowledgement
//! number, window, timestamp, DSN, DATA_ACK, key and checksum it puts in a
//! packet is drawn uniformly from a seeded generator, never derived from the
//! real connection. [`forge`] makes one such packet of a given [`Kind`].
//!
//! Drawn at random, a field can still hit the right value by chance: a blind
//! segment whose sequence number lies in the receiver's window *and* whose ACK
//! lies in `[SND.UNA - MAX.SND.WND, SND.MAX]` (RFC 5961 §5.2) is acceptable to
//! TCP and no stack can tell it from the peer's own. [`Oracle`] watches the
//! real traffic (which the attacker never sees) and counts how many injected
//! packets were in that case, so that a test can tell an attacker's luck from
//! a stack's fault. It plays no part in making the packets.

#![allow(dead_code)]

/// The attacker's randomness: SplitMix64, the simulation's generator (not
/// shared with `sim/rng.rs`, as a test may load both modules).
pub mod rng {
    fn mix64(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An independent seed from `seed` and a label.
    pub fn derive(seed: u64, label: u64) -> u64 {
        mix64(seed ^ mix64(label.wrapping_add(0x9E37_79B9_7F4A_7C15)))
    }

    #[derive(Debug, Clone)]
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Self {
            Rng(seed)
        }

        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix64(self.0)
        }

        /// Uniform in `0..n` (`n > 0`).
        pub fn below(&mut self, n: u64) -> u64 {
            self.next_u64() % n
        }

        /// Uniform in `lo..=hi`.
        pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
            lo + self.below(hi - lo + 1)
        }

        /// True with probability `p`.
        pub fn chance(&mut self, p: f64) -> bool {
            ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
        }

        /// One element of a non-empty slice.
        pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len() as u64) as usize]
        }
    }
}

use mptun_stack::wire::mptcp::{
    DataAck, Dss, FastClose, Mapping, MpCapable, MpCapableFlags, MpFail, MpPrio, RemoveAddr, TcpRst,
};
use mptun_stack::wire::{
    emit_packet, IpRepr, MptcpOption, MptcpVersion, SeqNumber, TcpFlags, TcpRepr, TCPOPT_MPTCP,
};
use rng::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Address ids the attacker names (REMOVE_ADDR, v0 MP_PRIO): ids are small
/// and handed out in order, so these cover every id of a connection with a
/// few addresses (the tests' use 0, 1 and 2).
pub const ADDR_IDS: u8 = 8;

/// What one spoofed packet tries to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// REMOVE_ADDR naming address ids in use (0 = the initial subflow's
    /// address, 1 = the first endpoint's, ...): closes the peer's subflows.
    RemoveAddr,
    /// MP_FAIL at a random DSN: asks for an infinite mapping (a fallback).
    MpFail,
    /// DSS with only a DATA_ACK, at a random value (32 or 64 bits).
    DataAck,
    /// DSS with a mapping at a random DSN and SSN, no payload.
    Mapping,
    /// DSS with a mapping at a random DSN and SSN, and random payload.
    MappingWithData,
    /// DSS with the DATA_FIN flag on a mapping at a random DSN.
    DataFin,
    /// MP_PRIO, backup on or off, in the v1 form (no address id) or the v0
    /// form (with an address id).
    MpPrio,
    /// MP_FASTCLOSE with a random key (not the receiver's), on an ACK or a RST.
    FastClose,
    /// A RST at a random sequence number.
    Rst,
    /// A RST with MP_TCPRST at a random sequence number.
    RstWithTcpRst,
    /// A SYN/ACK with MP_CAPABLE and the attacker's key, at a random ACK.
    SynAck,
}

impl Kind {
    /// Every kind that targets an established connection.
    pub const ESTABLISHED: [Kind; 10] = [
        Kind::RemoveAddr,
        Kind::MpFail,
        Kind::DataAck,
        Kind::Mapping,
        Kind::MappingWithData,
        Kind::DataFin,
        Kind::MpPrio,
        Kind::FastClose,
        Kind::Rst,
        Kind::RstWithTcpRst,
    ];
}

/// A random 32-bit sequence number.
fn seq(rng: &mut Rng) -> SeqNumber {
    SeqNumber(rng.next_u64() as u32)
}

/// A DSN or DATA_ACK: random, on the wire as 64 bits or as 32 (which the
/// receiver expands near its own value: the low half is random either way).
fn dsn(rng: &mut Rng) -> (u64, bool) {
    let v = rng.next_u64();
    if rng.chance(0.5) {
        (v, true)
    } else {
        (v & 0xffff_ffff, false)
    }
}

/// A random DSS mapping (`data_len` at least `min_len`), with a random
/// checksum present when `checksum` (the DSS option's length says which).
fn mapping(rng: &mut Rng, min_len: u16, checksum: bool) -> Mapping {
    let (d, dsn_64bit) = dsn(rng);
    Mapping {
        dsn: d,
        dsn_64bit,
        ssn: rng.next_u64() as u32,
        data_len: rng.range(u64::from(min_len.max(1)), 0xffff) as u16,
        checksum: checksum.then(|| rng.next_u64() as u16),
    }
}

/// One spoofed packet of kind `kind` from `src` (the address and port of the
/// peer it impersonates) to `dst` (the target), for a connection of MPTCP
/// `version` (0 or 1) whose use of DSS checksums is `checksum` (a blind
/// attacker may as well know it; the option's length gives it away anyway).
/// Everything else is drawn from `rng`.
pub fn forge(
    rng: &mut Rng,
    kind: Kind,
    src: SocketAddr,
    dst: SocketAddr,
    version: u8,
    checksum: bool,
) -> Vec<u8> {
    let mut t = TcpRepr::new(src.port(), dst.port());
    t.seq = seq(rng);
    t.ack = seq(rng);
    t.window = rng.next_u64() as u16;
    t.flags = TcpFlags(TcpFlags::ACK);
    // Timestamps are random too; half the packets carry none (which RFC 7323
    // receivers, Linux among them, accept on a connection that uses them).
    if rng.chance(0.5) {
        t.timestamp = Some((rng.next_u64() as u32, rng.next_u64() as u32));
    }
    let mut payload = Vec::new();
    let opt: Option<MptcpOption<'_>> = match kind {
        Kind::RemoveAddr => {
            // Mostly one id at a time, sometimes every id at once.
            let ids: Vec<u8> = if rng.chance(0.25) {
                (0..ADDR_IDS).collect()
            } else {
                vec![rng.below(u64::from(ADDR_IDS)) as u8]
            };
            Some(MptcpOption::RemoveAddr(RemoveAddr::new(&ids).unwrap()))
        }
        Kind::MpFail => Some(MptcpOption::MpFail(MpFail {
            dsn: rng.next_u64(),
        })),
        Kind::DataAck => {
            let (value, is_64bit) = dsn(rng);
            Some(MptcpOption::Dss(Dss {
                data_fin: false,
                data_ack: Some(DataAck { value, is_64bit }),
                mapping: None,
            }))
        }
        Kind::Mapping | Kind::MappingWithData => {
            if kind == Kind::MappingWithData {
                payload = (0..rng.range(1, 1200))
                    .map(|_| rng.next_u64() as u8)
                    .collect();
                t.flags = TcpFlags(TcpFlags::ACK | TcpFlags::PSH);
            }
            let data_ack = rng.chance(0.5).then(|| {
                let (value, is_64bit) = dsn(rng);
                DataAck { value, is_64bit }
            });
            Some(MptcpOption::Dss(Dss {
                data_fin: false,
                data_ack,
                mapping: Some(mapping(rng, payload.len() as u16, checksum)),
            }))
        }
        Kind::DataFin => {
            // A DATA_FIN alone (SSN 0, data-level length 1) or at the end of a
            // mapping of data.
            let mut m = mapping(rng, 1, checksum);
            if rng.chance(0.5) {
                m.ssn = 0;
                m.data_len = 1;
            }
            Some(MptcpOption::Dss(Dss {
                data_fin: true,
                data_ack: None,
                mapping: Some(m),
            }))
        }
        Kind::MpPrio => Some(MptcpOption::MpPrio(MpPrio {
            backup: rng.chance(0.5),
            addr_id: rng
                .chance(0.5)
                .then(|| rng.below(u64::from(ADDR_IDS)) as u8),
        })),
        Kind::FastClose => {
            if rng.chance(0.5) {
                t.flags = TcpFlags(TcpFlags::RST | TcpFlags::ACK);
            }
            Some(MptcpOption::FastClose(FastClose {
                receiver_key: rng.next_u64(),
            }))
        }
        Kind::Rst | Kind::RstWithTcpRst => {
            t.flags = TcpFlags(if rng.chance(0.5) {
                TcpFlags::RST
            } else {
                TcpFlags::RST | TcpFlags::ACK
            });
            (kind == Kind::RstWithTcpRst).then(|| {
                MptcpOption::TcpRst(TcpRst {
                    flags: rng.below(16) as u8,
                    reason: rng.below(7) as u8,
                })
            })
        }
        Kind::SynAck => {
            t.flags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
            t.mss = Some(1460);
            t.window_scale = Some(7);
            t.sack_permitted = true;
            let (v, flags) = if version == 0 {
                (
                    MptcpVersion::V0,
                    MpCapableFlags(MpCapableFlags::A | MpCapableFlags::H),
                )
            } else {
                (
                    MptcpVersion::V1,
                    MpCapableFlags(
                        MpCapableFlags::H | if checksum { MpCapableFlags::A } else { 0 },
                    ),
                )
            };
            Some(MptcpOption::MpCapable(MpCapable {
                version: v,
                flags,
                sender_key: Some(rng.next_u64()),
                receiver_key: None,
                data_len: None,
                checksum: None,
            }))
        }
    };
    emit(t, opt, &payload, src, dst)
}

/// The packet, with `opt` as its one MPTCP option; a timestamp that leaves no
/// room for the option is dropped (the attacker would do the same).
fn emit(
    t: TcpRepr<'_>,
    opt: Option<MptcpOption<'_>>,
    payload: &[u8],
    src: SocketAddr,
    dst: SocketAddr,
) -> Vec<u8> {
    let enc = opt.map(|o| o.encode().expect("a valid option"));
    let mut t = t;
    if let Some(e) = &enc {
        t.unknown.push(TCPOPT_MPTCP, e.as_slice());
    }
    let mut buf = vec![0u8; 1600];
    let n = match emit_packet(src.ip(), dst.ip(), 64, &t, &[payload], &mut buf) {
        Ok(n) => n,
        Err(_) => {
            t.timestamp = None;
            emit_packet(src.ip(), dst.ip(), 64, &t, &[payload], &mut buf).expect("room")
        }
    };
    buf.truncate(n);
    buf
}

/// What the oracle knows of one direction of one subflow, from the packets
/// its sender sent.
#[derive(Debug, Default, Clone, Copy)]
struct Half {
    /// The window scale the sender announced in its SYN (0 if none).
    wscale: u8,
    /// The sender's last acknowledgement (its RCV.NXT) and advertised window.
    rcv_nxt: Option<SeqNumber>,
    wnd: u32,
    /// The highest sequence number the sender has used (its SND.MAX).
    snd_max: Option<SeqNumber>,
    /// The largest window the sender advertised (the other side's MAX.SND.WND).
    max_wnd: u32,
    /// The sender's last TSval (the other side's TS.Recent, roughly).
    tsval: Option<u32>,
}

/// Watches real packets and judges injected ones: see the module doc. Its
/// verdict is deliberately generous (a window is taken at its largest), so a
/// count of zero means no injected packet could have been acceptable.
#[derive(Debug, Default)]
pub struct Oracle {
    halves: HashMap<(SocketAddr, SocketAddr), Half>,
    /// Injected packets that may have been acceptable to their target's TCP.
    pub lucky: u64,
    /// Injected packets judged.
    pub judged: u64,
}

fn parse(pkt: &[u8]) -> Option<(SocketAddr, SocketAddr, TcpRepr<'_>)> {
    let (ip, tcp) = IpRepr::parse(pkt).ok()?;
    let seg = TcpRepr::parse(ip.src, ip.dst, tcp, false).ok()?;
    Some((
        SocketAddr::new(ip.src, seg.src_port),
        SocketAddr::new(ip.dst, seg.dst_port),
        seg,
    ))
}

fn seg_len(seg: &TcpRepr<'_>) -> u32 {
    seg.payload.len() as u32 + u32::from(seg.flags.syn()) + u32::from(seg.flags.fin())
}

impl Oracle {
    /// A real packet, as sent by one of the engines.
    pub fn observe(&mut self, pkt: &[u8]) {
        let Some((src, dst, seg)) = parse(pkt) else {
            return;
        };
        let h = self.halves.entry((src, dst)).or_default();
        if seg.flags.syn() {
            h.wscale = seg.window_scale.unwrap_or(0);
        }
        let end = seg.seq + seg_len(&seg) as usize;
        h.snd_max = Some(h.snd_max.map_or(end, |m| m.max(end)));
        if seg.flags.ack() && !seg.flags.rst() {
            let scale = if seg.flags.syn() { 0 } else { h.wscale };
            h.rcv_nxt = Some(seg.ack);
            h.wnd = u32::from(seg.window) << scale;
            h.max_wnd = h.max_wnd.max(h.wnd);
        }
        if let Some((tsval, _)) = seg.timestamp {
            h.tsval = Some(tsval);
        }
    }

    /// An injected packet about to reach its target: could the target's TCP
    /// have taken it for the peer's (RFC 9293 §3.10.7.4, RFC 5961, PAWS)?
    pub fn judge(&mut self, pkt: &[u8]) -> bool {
        let Some((src, dst, seg)) = parse(pkt) else {
            return false;
        };
        self.judged += 1;
        // What the target sent on this subflow, and what the peer sent.
        let target = self.halves.get(&(dst, src)).copied().unwrap_or_default();
        let peer = self.halves.get(&(src, dst)).copied().unwrap_or_default();
        let f = seg.flags;
        let lucky = match (target.rcv_nxt, target.snd_max) {
            // SYN_SENT: only an ACK of our SYN is acceptable.
            (None, Some(snd_max)) => f.ack() && seg.ack == snd_max,
            (Some(rcv_nxt), Some(snd_max)) => {
                let wnd = target.wnd.max(target.max_wnd).max(1) as usize;
                let len = seg_len(&seg) as usize;
                let in_window = |s: SeqNumber| s.in_range(rcv_nxt, rcv_nxt + wnd);
                let seq_ok = if f.rst() {
                    // Only an exact match resets; anything else in the window
                    // is answered by a challenge ACK and changes nothing.
                    seg.seq == rcv_nxt
                } else {
                    in_window(seg.seq) || (len > 0 && in_window(seg.seq + (len - 1)))
                };
                let lower = snd_max - (peer.max_wnd.max(target.max_wnd) as usize).max(1 << 16);
                let ack_ok =
                    f.rst() || (f.ack() && seg.ack.diff(lower) >= 0 && seg.ack.diff(snd_max) <= 0);
                let paws_ok = match (seg.timestamp, peer.tsval) {
                    (Some((tsval, _)), Some(recent)) if !f.rst() => {
                        (tsval.wrapping_sub(recent) as i32) >= 0
                    }
                    _ => true,
                };
                seq_ok && ack_ok && paws_ok
            }
            _ => false,
        };
        if lucky {
            self.lucky += 1;
            if std::env::var_os("BLIND_TRACE").is_some() {
                eprintln!(
                    "possibly acceptable: {src} > {dst} flags {:#x} seq {} ack {} ts {:?} len {}; target {target:?}; peer {peer:?}",
                    f.0,
                    seg.seq,
                    seg.ack,
                    seg.timestamp,
                    seg.payload.len()
                );
            }
        }
        lucky
    }
}
