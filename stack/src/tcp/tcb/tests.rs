//! Segment-in / segment-out tests of one TCB.
//!
//! A [`Harness`] plays the peer: it feeds `TcpRepr`s to `on_segment`, and turns what
//! `poll_transmit` writes back into a parsed, owned [`Seg`] so each test can assert
//! the exact segment the TCB emits and the state it is left in.

use super::{RstReply, Tcb, Transmit, Verdict};
use crate::config::{Keepalive, TcpConfig};
use crate::endpoint::CloseReason;
use crate::tcp::autotune::INITIAL_RECV_BUFFER;
use crate::tcp::hooks::{NoHooks, OptionBytes, OutSegment, SegmentHooks};
use crate::tcp::ratelimit::ChallengeQuota;
use crate::tcp::State;
use crate::time::Instant;
use crate::wire::{IpRepr, SeqNumber, TcpFlags, TcpRepr, IPPROTO_TCP};
use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const LOCAL_PORT: u16 = 49152;
const REMOTE_PORT: u16 = 80;
/// Our initial send sequence number.
const ISS: u32 = 10_000;
/// The peer's initial sequence number.
const IRS: u32 = 90_000;
/// Our timestamp clock offset: TSval = now in ms + TS_OFFSET.
const TS_OFFSET: u32 = 7_000;
/// The peer's timestamp clock: TSval = now in ms + PEER_TS.
const PEER_TS: u32 = 500_000;
const HOP: u8 = 64;
const T0: Instant = Instant::from_millis(10_000);

const FIN: u8 = TcpFlags::FIN;
const SYN: u8 = TcpFlags::SYN;
const RST: u8 = TcpFlags::RST;
const PSH: u8 = TcpFlags::PSH;
const ACK: u8 = TcpFlags::ACK;

fn fl(bits: u8) -> TcpFlags {
    TcpFlags(bits)
}

fn local() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)), LOCAL_PORT)
}

fn remote() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)), REMOTE_PORT)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Test config: a 32 KiB receive buffer (so windows need no scaling), every
/// segment acknowledged at once.
fn cfg() -> TcpConfig {
    TcpConfig {
        recv_buffer: 32768,
        send_buffer: 65536,
        delayed_ack: None,
        ..TcpConfig::default()
    }
}

/// An owned copy of the interesting fields of an emitted segment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Seg {
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    window: u16,
    payload: Vec<u8>,
    mss: Option<u16>,
    ws: Option<u8>,
    sack_perm: bool,
    sack: Vec<(u32, u32)>,
    ts: Option<(u32, u32)>,
}

/// What the simulated peer offers in its SYN and puts on its segments.
#[derive(Debug, Clone, Copy)]
struct Peer {
    mss: Option<u16>,
    ws: Option<u8>,
    sack: bool,
    ts: bool,
    window: u16,
}

impl Peer {
    /// MSS 1000, window scale 0, SACK and timestamps.
    fn full() -> Peer {
        Peer {
            mss: Some(1000),
            ws: Some(0),
            sack: true,
            ts: true,
            window: 65535,
        }
    }

    /// MSS 1000 and SACK, no timestamps (segments carry exactly 1000 bytes).
    fn sack() -> Peer {
        Peer {
            ts: false,
            ..Peer::full()
        }
    }

    /// MSS 1000 only: no window scaling, SACK or timestamps.
    fn plain() -> Peer {
        Peer {
            mss: Some(1000),
            ws: None,
            sack: false,
            ts: false,
            window: 65535,
        }
    }
}

struct Harness {
    tcb: Tcb,
    now: Instant,
    peer: Peer,
    buf: Vec<u8>,
    /// The last TSval we saw from the TCB (echoed by the peer).
    last_tsval: u32,
    last_tx: Option<Transmit>,
    /// The stack-wide challenge ACK budget, ample unless a test says so.
    quota: ChallengeQuota,
}

impl Harness {
    fn new(tcb: Tcb, peer: Peer) -> Harness {
        Harness {
            tcb,
            now: T0,
            peer,
            buf: vec![0; 2048],
            last_tsval: 0,
            last_tx: None,
            quota: ChallengeQuota::new(1_000_000, 1),
        }
    }

    /// SYN_SENT, the SYN not yet polled.
    fn connecting(cfg: TcpConfig, peer: Peer) -> Harness {
        let tcb = Tcb::connect(&cfg, local(), remote(), SeqNumber(ISS), TS_OFFSET, T0);
        Harness::new(tcb, peer)
    }

    /// SYN_RECEIVED from the peer's SYN, the SYN/ACK not yet polled.
    fn accepting(cfg: TcpConfig, peer: Peer) -> Harness {
        let mut h = Harness::new(
            Tcb::connect(&cfg, local(), remote(), SeqNumber(ISS), TS_OFFSET, T0),
            peer,
        );
        let syn = h.peer_syn(SYN, IRS, 0);
        h.tcb = Tcb::accept(&cfg, local(), remote(), SeqNumber(ISS), TS_OFFSET, T0, &syn);
        h
    }

    /// An established active opener (the handshake took 10 ms).
    fn client(cfg: TcpConfig, peer: Peer) -> Harness {
        let mut h = Harness::connecting(cfg, peer);
        let syn = h.recv_seg();
        assert_eq!(syn.flags, fl(SYN));
        h.now += ms(10);
        let synack = h.peer_syn(SYN | ACK, IRS, ISS + 1);
        assert_eq!(h.send(&synack), None);
        assert_eq!(h.tcb.state(), State::Established);
        let ack = h.recv_seg();
        assert_eq!((ack.flags, ack.seq, ack.ack), (fl(ACK), ISS + 1, IRS + 1));
        h.assert_no_segment();
        h
    }

    /// An established passive opener.
    fn server(cfg: TcpConfig, peer: Peer) -> Harness {
        let mut h = Harness::accepting(cfg, peer);
        let synack = h.recv_seg();
        assert_eq!(synack.flags, fl(SYN | ACK));
        h.now += ms(10);
        let ack = h.seg(ACK, IRS + 1, ISS + 1);
        assert_eq!(h.send(&ack), None);
        assert_eq!(h.tcb.state(), State::Established);
        h.assert_no_segment();
        h
    }

    fn peer_tsval(&self) -> u32 {
        PEER_TS.wrapping_add(self.now.as_millis() as u32)
    }

    /// A segment from the peer (stamped with a current timestamp if it uses them).
    fn seg(&self, flags: u8, seq: u32, ack: u32) -> TcpRepr<'static> {
        let mut r = TcpRepr::new(REMOTE_PORT, LOCAL_PORT);
        r.flags = fl(flags);
        r.seq = SeqNumber(seq);
        r.ack = SeqNumber(ack);
        r.window = self.peer.window;
        if self.peer.ts {
            r.timestamp = Some((self.peer_tsval(), self.last_tsval));
        }
        r
    }

    /// A SYN or SYN/ACK from the peer with the options it offers.
    fn peer_syn(&self, flags: u8, seq: u32, ack: u32) -> TcpRepr<'static> {
        let mut r = self.seg(flags, seq, ack);
        r.mss = self.peer.mss;
        r.window_scale = self.peer.ws;
        r.sack_permitted = self.peer.sack;
        if self.peer.ts && flags & ACK == 0 {
            r.timestamp = Some((self.peer_tsval(), 0));
        }
        r
    }

    /// A data segment (ACK|PSH) from the peer.
    fn data<'a>(&self, seq: u32, ack: u32, payload: &'a [u8]) -> TcpRepr<'a> {
        TcpRepr {
            payload,
            ..self.seg(ACK | PSH, seq, ack)
        }
    }

    fn send(&mut self, r: &TcpRepr<'_>) -> Option<RstReply> {
        self.verdict(r).rst
    }

    /// Feed a segment; whether the TCB found it acceptable, and its RST.
    fn verdict(&mut self, r: &TcpRepr<'_>) -> Verdict {
        self.tcb.on_segment(self.now, r, &mut self.quota)
    }

    /// Poll one segment out of the TCB and parse it back.
    fn recv(&mut self) -> Option<Seg> {
        let t = self.tcb.poll_transmit(self.now, HOP, &mut self.buf)?;
        let pkt = &self.buf[..t.len];
        let (ip, bytes) = IpRepr::parse(pkt).expect("TCB emitted a bad IP packet");
        assert_eq!(ip.src, local().ip());
        assert_eq!(ip.dst, remote().ip());
        assert_eq!(ip.protocol, IPPROTO_TCP);
        assert_eq!(ip.hop_limit, HOP);
        let r = TcpRepr::parse(ip.src, ip.dst, bytes, true).expect("TCB emitted a bad segment");
        assert_eq!((r.src_port, r.dst_port), (LOCAL_PORT, REMOTE_PORT));
        if let Some((tsval, _)) = r.timestamp {
            self.last_tsval = tsval;
        }
        self.last_tx = Some(t);
        Some(Seg {
            flags: r.flags,
            seq: r.seq.0,
            ack: r.ack.0,
            window: r.window,
            payload: r.payload.to_vec(),
            mss: r.mss,
            ws: r.window_scale,
            sack_perm: r.sack_permitted,
            sack: r
                .sack_blocks
                .as_slice()
                .iter()
                .map(|(a, b)| (a.0, b.0))
                .collect(),
            ts: r.timestamp,
        })
    }

    fn recv_seg(&mut self) -> Seg {
        match self.recv() {
            Some(s) => s,
            None => panic!("expected a segment in state {}", self.tcb.state()),
        }
    }

    fn assert_no_segment(&mut self) {
        if let Some(s) = self.recv() {
            panic!("unexpected segment {s:?}");
        }
    }

    /// Jump to the next timer and run it.
    fn fire_timer(&mut self) -> Option<RstReply> {
        let at = self.tcb.poll_at().expect("a timer is armed");
        assert!(at >= self.now, "timer in the past");
        self.now = at;
        self.tcb.on_timeout(at)
    }

    fn read_all(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.tcb.recv(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// A pure ACK segment from us, as expected after an established handshake.
    fn ack_seg(&self, seq: u32, ack: u32, window: u16) -> Seg {
        Seg {
            flags: fl(ACK),
            seq,
            ack,
            window,
            ..Seg::default()
        }
    }
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

// ----- active open -----

#[test]
fn active_open_syn_carries_options() {
    let mut h = Harness::connecting(cfg(), Peer::full());
    assert_eq!(h.tcb.state(), State::SynSent);
    let syn = h.recv_seg();
    assert_eq!(
        syn,
        Seg {
            flags: fl(SYN),
            seq: ISS,
            ack: 0,
            window: 32768,
            mss: Some(1460),
            ws: Some(0),
            sack_perm: true,
            ts: Some((10_000 + TS_OFFSET, 0)),
            ..Seg::default()
        }
    );
    h.assert_no_segment();
}

#[test]
fn active_open_established_by_syn_ack() {
    let mut h = Harness::connecting(cfg(), Peer::full());
    h.recv_seg();
    h.now += ms(10);
    let synack = h.peer_syn(SYN | ACK, IRS, ISS + 1);
    assert_eq!(h.send(&synack), None);
    assert_eq!(h.tcb.state(), State::Established);
    assert!(h.tcb.take_events().established);
    assert!(h.tcb.timestamps_enabled());
    assert!(h.tcb.sack_enabled());
    // Peer MSS 1000 less 12 bytes of timestamp option.
    assert_eq!(h.tcb.mss(), 988);
    let ack = h.recv_seg();
    assert_eq!(
        ack,
        Seg {
            flags: fl(ACK),
            seq: ISS + 1,
            ack: IRS + 1,
            window: 32768,
            ts: Some((10_010 + TS_OFFSET, PEER_TS + 10_010)),
            ..Seg::default()
        }
    );
    h.assert_no_segment();
    assert_eq!(h.tcb.poll_at(), None);
}

#[test]
fn window_scale_negotiated_when_both_offer() {
    // The default 8 MiB buffer needs a shift of 8.
    let cfg = TcpConfig {
        delayed_ack: None,
        ..TcpConfig::default()
    };
    let peer = Peer {
        ws: Some(7),
        ..Peer::full()
    };
    let mut h = Harness::connecting(cfg, peer);
    let syn = h.recv_seg();
    assert_eq!((syn.ws, syn.window), (Some(8), 65535));
    let synack = h.peer_syn(SYN | ACK, IRS, ISS + 1);
    h.send(&synack);
    // The window of a SYN is never scaled.
    assert_eq!(h.tcb.snd_wnd(), 65535);
    let ack = h.recv_seg();
    // The buffer starts small and grows with use (`tcp::autotune`).
    assert_eq!(ack.window, (INITIAL_RECV_BUFFER >> 8) as u16);
    let mut upd = h.seg(ACK, IRS + 1, ISS + 1);
    upd.window = 100;
    h.send(&upd);
    assert_eq!(h.tcb.snd_wnd(), 100 << 7);
}

#[test]
fn peer_without_options_gets_none() {
    let cfg = TcpConfig {
        delayed_ack: None,
        ..TcpConfig::default()
    };
    let mut h = Harness::connecting(cfg, Peer::plain());
    let syn = h.recv_seg();
    // We offer everything ...
    assert_eq!(syn.ws, Some(8));
    assert!(syn.sack_perm && syn.ts.is_some());
    let synack = h.peer_syn(SYN | ACK, IRS, ISS + 1);
    h.send(&synack);
    assert_eq!(h.tcb.state(), State::Established);
    assert!(!h.tcb.timestamps_enabled());
    assert!(!h.tcb.sack_enabled());
    assert_eq!(h.tcb.mss(), 1000);
    // ... but use nothing: unscaled window (capped at 64 KiB), no timestamps.
    let ack = h.recv_seg();
    assert_eq!(ack, h.ack_seg(ISS + 1, IRS + 1, 65535));
    let mut upd = h.seg(ACK, IRS + 1, ISS + 1);
    upd.window = 100;
    h.send(&upd);
    assert_eq!(h.tcb.snd_wnd(), 100);
    h.tcb.send(b"hi").unwrap();
    let d = h.recv_seg();
    assert_eq!(d.ts, None);
    assert_eq!(d.payload, b"hi");
    assert_eq!(d.window, 65535);
    // Out-of-order data gets no SACK blocks either.
    let late = h.data(IRS + 11, ISS + 3, b"later");
    h.send(&late);
    let dup = h.recv_seg();
    assert_eq!(dup.ack, IRS + 1);
    assert!(dup.sack.is_empty());
}

#[test]
fn peer_mss_bounds_segments() {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.send(&bytes(2500)).unwrap();
    assert_eq!(h.recv_seg().payload.len(), 1000);
    assert_eq!(h.recv_seg().payload.len(), 1000);
    // Nagle holds the small tail while full segments are unacknowledged.
    h.assert_no_segment();
    let ack = h.seg(ACK, IRS + 1, ISS + 2001);
    h.send(&ack);
    let tail = h.recv_seg();
    assert_eq!((tail.seq, tail.payload.len()), (ISS + 2001, 500));
}

/// A client with a 256 KiB send buffer, established with a SACK peer over a
/// 100 µs round trip.
fn established_on_a_fast_path() -> Harness {
    let cfg = TcpConfig {
        send_buffer: 256 * 1024,
        ..cfg()
    };
    let mut h = Harness::connecting(cfg, Peer::sack());
    h.recv_seg();
    h.now += Duration::from_micros(100);
    let synack = h.peer_syn(SYN | ACK, IRS, ISS + 1);
    h.send(&synack);
    assert_eq!(h.recv_seg().flags, fl(ACK));
    h
}

/// With a device that segments (TSO), new data leaves as super-packets of
/// whole segments within the congestion window, without FIN; the short tail
/// (here with the FIN) goes on its own, as it would have without bursts.
#[test]
fn bursts_hold_whole_segments_within_the_congestion_window() {
    // A fast path (100 µs round trips): the window, not the rate, bounds a
    // burst (`burst_segments`).
    let mut h = established_on_a_fast_path();
    let data = bytes(25_500);
    assert_eq!(h.tcb.send(&data).unwrap(), data.len());
    h.tcb.shutdown();
    let mut big = vec![0u8; 70_000];
    let mut burst = |h: &mut Harness| {
        let t = h
            .tcb
            .poll_transmit_with(h.now, HOP, &mut big, &mut NoHooks, 64)?;
        let (ip, bytes) = IpRepr::parse(&big[..t.len]).unwrap();
        let r = TcpRepr::parse(ip.src, ip.dst, bytes, true).unwrap();
        Some((
            r.seq.0,
            r.flags,
            r.payload.to_vec(),
            t.segment_size,
            t.segments,
        ))
    };
    // The initial window: ten segments of 1000 in one super-packet.
    let (seq, flags, payload, size, segs) = burst(&mut h).expect("a burst");
    assert_eq!((seq, flags, size, segs), (ISS + 1, fl(ACK), Some(1000), 10));
    assert_eq!(payload, data[..10_000]);
    assert!(burst(&mut h).is_none(), "the congestion window is full");
    // The SYN, the handshake's ACK, and the ten.
    assert_eq!(h.tcb.stats().segments_out, 2 + 10);
    // One ACK for all ten: slow start opens the window by two segments
    // (RFC 3465's limit), twelve whole segments go at once.
    h.now += Duration::from_micros(100);
    let ack = h.seg(ACK, IRS + 1, ISS + 10_001);
    h.send(&ack);
    let (seq, flags, payload, size, segs) = burst(&mut h).expect("a burst");
    assert_eq!(
        (seq, flags, size, segs),
        (ISS + 10_001, fl(ACK), Some(1000), 12)
    );
    assert_eq!(payload, data[10_000..22_000]);
    assert!(burst(&mut h).is_none(), "the congestion window is full");
    // Then the three whole segments left, and the 500-byte tail with the
    // FIN alone.
    h.now += Duration::from_micros(100);
    let ack = h.seg(ACK, IRS + 1, ISS + 22_001);
    h.send(&ack);
    let (seq, flags, payload, size, segs) = burst(&mut h).expect("a burst");
    assert_eq!(
        (seq, flags, size, segs),
        (ISS + 22_001, fl(ACK), Some(1000), 3)
    );
    assert_eq!(payload, data[22_000..25_000]);
    let (seq, flags, payload, size, segs) = burst(&mut h).expect("the tail");
    assert_eq!(
        (seq, flags, size, segs),
        (ISS + 25_001, fl(ACK | PSH | FIN), None, 1)
    );
    assert_eq!(payload, data[25_000..]);
    assert!(burst(&mut h).is_none());
}

/// A layer above that ends the data at some point (an MPTCP mapping's end)
/// gets the short piece before that point in the burst, as the last of
/// Linux's TSO pieces may be short: held back, it would only go alone next.
#[test]
fn a_burst_cut_by_the_layer_above_takes_its_short_tail() {
    struct CapAt(u32);
    impl SegmentHooks for CapAt {
        fn segment_options(&mut self, seg: &OutSegment, _: usize, _: &mut OptionBytes) -> usize {
            self.0.wrapping_sub(seg.ssn) as usize
        }
    }
    let mut h = established_on_a_fast_path();
    let data = bytes(9_000);
    assert_eq!(h.tcb.send(&data).unwrap(), data.len());
    let mut big = vec![0u8; 70_000];
    // The data up to SSN 3_501 (3_500 bytes) in one: three whole segments
    // and the 500 before the cut.
    let mut hooks = CapAt(3_501);
    let t = h
        .tcb
        .poll_transmit_with(h.now, HOP, &mut big, &mut hooks, 64)
        .expect("a burst");
    assert_eq!((t.segment_size, t.segments), (Some(1000), 4));
    let (ip, seg) = IpRepr::parse(&big[..t.len]).unwrap();
    let r = TcpRepr::parse(ip.src, ip.dst, seg, true).unwrap();
    assert_eq!((r.seq.0, r.payload), (ISS + 1, &data[..3_500]));
    // Uncut, the rest: five whole segments; its own short tail waits
    // (Nagle), as without a layer above.
    let t = h
        .tcb
        .poll_transmit_with(h.now, HOP, &mut big, &mut NoHooks, 64)
        .expect("a burst");
    assert_eq!((t.segment_size, t.segments), (Some(1000), 5));
    assert!(h
        .tcb
        .poll_transmit_with(h.now, HOP, &mut big, &mut NoHooks, 64)
        .is_none());
}

/// A layer above that allows no data at all now, with the FIN queued behind
/// the data: nothing goes (the FIN cannot pass the data). An empty segment
/// sent instead was asked for again at once, for ever (fuzz campaign 18: a
/// subflow fallen back after an MP_FAIL, its data held by the layer above).
#[test]
fn no_empty_segment_when_the_layer_above_holds_data_with_a_fin_behind_it() {
    struct NoData;
    impl SegmentHooks for NoData {
        fn segment_options(&mut self, _: &OutSegment, _: usize, _: &mut OptionBytes) -> usize {
            0
        }
    }
    let mut h = established_on_a_fast_path();
    let data = bytes(3_000);
    assert_eq!(h.tcb.send(&data).unwrap(), data.len());
    h.tcb.shutdown();
    let mut big = vec![0u8; 70_000];
    assert!(h
        .tcb
        .poll_transmit_with(h.now, HOP, &mut big, &mut NoData, 64)
        .is_none());
    // Allowed again, the data and the FIN go.
    let mut sent = 0;
    let mut fin = false;
    while let Some(t) = h
        .tcb
        .poll_transmit_with(h.now, HOP, &mut big, &mut NoHooks, 64)
    {
        let (ip, seg) = IpRepr::parse(&big[..t.len]).unwrap();
        let r = TcpRepr::parse(ip.src, ip.dst, seg, true).unwrap();
        sent += t.segments;
        fin |= r.flags.fin();
    }
    assert!(sent >= 3 && fin);
}

/// On a slow path a super-packet holds about a millisecond of the
/// connection's rate (as Linux's `tcp_tso_autosize`), two segments at least:
/// here ten segments of window per 10 ms round trip, doubled in slow start,
/// make two segments a burst, not the whole window into a router's queue.
#[test]
fn bursts_hold_a_millisecond_of_a_slow_paths_rate() {
    let mut h = Harness::client(cfg(), Peer::sack());
    let data = bytes(10_000);
    assert_eq!(h.tcb.send(&data).unwrap(), data.len());
    let mut big = vec![0u8; 70_000];
    let mut sent = 0;
    while let Some(t) = h
        .tcb
        .poll_transmit_with(h.now, HOP, &mut big, &mut NoHooks, 64)
    {
        assert_eq!((t.segments, t.segment_size), (2, Some(1000)));
        sent += t.segments;
    }
    assert_eq!(sent, 10);
}

// ----- SYN_SENT -----

#[test]
fn icmp_unreachable_fails_only_an_opening_connection_and_only_for_its_isn() {
    let mut h = Harness::connecting(cfg(), Peer::plain());
    h.recv_seg();
    assert!(!h.tcb.icmp_unreachable(SeqNumber(ISS + 1)), "not our SYN");
    assert_eq!(h.tcb.state(), State::SynSent);
    assert!(h.tcb.icmp_unreachable(SeqNumber(ISS)));
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.take_events().closed, Some(CloseReason::Unreachable));
    h.assert_no_segment();

    // Established: a soft error, nothing changes.
    let mut h = Harness::client(cfg(), Peer::plain());
    assert!(!h.tcb.icmp_unreachable(SeqNumber(ISS + 1)));
    assert!(!h.tcb.icmp_unreachable(SeqNumber(ISS)));
    assert_eq!(h.tcb.state(), State::Established);
}

#[test]
fn syn_sent_rst_with_acceptable_ack_refuses() {
    let mut h = Harness::connecting(cfg(), Peer::plain());
    h.recv_seg();
    let rst = h.seg(RST | ACK, 0, ISS + 1);
    assert_eq!(h.send(&rst), None);
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::Refused));
    assert_eq!(h.tcb.take_events().closed, Some(CloseReason::Refused));
    h.assert_no_segment();
    assert_eq!(h.tcb.poll_at(), None);
}

#[test]
fn syn_sent_rst_without_ack_ignored() {
    let mut h = Harness::connecting(cfg(), Peer::plain());
    h.recv_seg();
    let rst = h.seg(RST, IRS, 0);
    assert_eq!(h.send(&rst), None);
    assert_eq!(h.tcb.state(), State::SynSent);
    h.assert_no_segment();
}

#[test]
fn syn_sent_rst_with_bad_ack_ignored() {
    let mut h = Harness::connecting(cfg(), Peer::plain());
    h.recv_seg();
    let rst = h.seg(RST | ACK, 0, ISS + 7);
    assert_eq!(h.send(&rst), None);
    assert_eq!(h.tcb.state(), State::SynSent);
}

#[test]
fn syn_sent_unacceptable_ack_gets_rst() {
    let mut h = Harness::connecting(cfg(), Peer::plain());
    h.recv_seg();
    // Above snd_max.
    let synack = h.peer_syn(SYN | ACK, IRS, ISS + 2);
    assert_eq!(
        h.send(&synack),
        Some(RstReply {
            seq: SeqNumber(ISS + 2),
            ack: None
        })
    );
    assert_eq!(h.tcb.state(), State::SynSent);
    // At the ISS itself (not above it).
    let ack = h.seg(ACK, IRS, ISS);
    assert_eq!(
        h.send(&ack),
        Some(RstReply {
            seq: SeqNumber(ISS),
            ack: None
        })
    );
    assert_eq!(h.tcb.state(), State::SynSent);
    h.assert_no_segment();
}

#[test]
fn syn_sent_ack_without_syn_dropped() {
    let mut h = Harness::connecting(cfg(), Peer::plain());
    h.recv_seg();
    let ack = h.seg(ACK, IRS, ISS + 1);
    assert_eq!(h.send(&ack), None);
    assert_eq!(h.tcb.state(), State::SynSent);
    h.assert_no_segment();
}

#[test]
fn simultaneous_open() {
    let mut h = Harness::connecting(cfg(), Peer::full());
    let syn = h.recv_seg();
    assert_eq!(syn.flags, fl(SYN));
    h.now += ms(5);
    let their_syn = h.peer_syn(SYN, IRS, 0);
    assert_eq!(h.send(&their_syn), None);
    assert_eq!(h.tcb.state(), State::SynReceived);
    let synack = h.recv_seg();
    assert_eq!(
        synack,
        Seg {
            flags: fl(SYN | ACK),
            seq: ISS,
            ack: IRS + 1,
            window: 32768,
            mss: Some(1460),
            ws: Some(0),
            sack_perm: true,
            ts: Some((10_005 + TS_OFFSET, PEER_TS + 10_005)),
            ..Seg::default()
        }
    );
    h.assert_no_segment();
    let ack = h.seg(ACK, IRS + 1, ISS + 1);
    assert_eq!(h.send(&ack), None);
    assert_eq!(h.tcb.state(), State::Established);
    assert!(h.tcb.take_events().established);
    h.assert_no_segment();
}

#[test]
fn simultaneous_open_completed_by_syn_ack() {
    let mut h = Harness::connecting(cfg(), Peer::full());
    let _syn = h.recv_seg();
    h.now += ms(5);
    let their_syn = h.peer_syn(SYN, IRS, 0);
    assert_eq!(h.send(&their_syn), None);
    let _synack = h.recv_seg();
    // The peer answers our SYN with its own SYN/ACK (same ISN as its SYN).
    let their_synack = h.peer_syn(SYN | ACK, IRS, ISS + 1);
    assert_eq!(h.send(&their_synack), None);
    assert_eq!(h.tcb.state(), State::Established);
    assert!(h.tcb.take_events().established);
    let ack = h.recv_seg();
    assert_eq!(ack.flags, fl(ACK));
    assert_eq!((ack.seq, ack.ack), (ISS + 1, IRS + 1));
}

// ----- passive open -----

#[test]
fn passive_open_syn_ack_echoes_options() {
    let mut h = Harness::accepting(cfg(), Peer::full());
    assert_eq!(h.tcb.state(), State::SynReceived);
    let synack = h.recv_seg();
    assert_eq!(
        synack,
        Seg {
            flags: fl(SYN | ACK),
            seq: ISS,
            ack: IRS + 1,
            window: 32768,
            mss: Some(1460),
            ws: Some(0),
            sack_perm: true,
            ts: Some((10_000 + TS_OFFSET, PEER_TS + 10_000)),
            ..Seg::default()
        }
    );
    h.assert_no_segment();
}

#[test]
fn passive_open_plain_peer_syn_ack_has_only_mss() {
    let mut h = Harness::accepting(cfg(), Peer::plain());
    let synack = h.recv_seg();
    assert_eq!(
        synack,
        Seg {
            flags: fl(SYN | ACK),
            seq: ISS,
            ack: IRS + 1,
            window: 32768,
            mss: Some(1460),
            ..Seg::default()
        }
    );
}

#[test]
fn passive_open_third_ack_establishes() {
    let mut h = Harness::accepting(cfg(), Peer::full());
    h.recv_seg();
    let ack = h.seg(ACK, IRS + 1, ISS + 1);
    assert_eq!(h.send(&ack), None);
    assert_eq!(h.tcb.state(), State::Established);
    assert!(h.tcb.take_events().established);
    h.assert_no_segment();
    assert_eq!(h.tcb.poll_at(), None);
}

#[test]
fn passive_open_third_ack_with_data() {
    let mut h = Harness::accepting(cfg(), Peer::plain());
    h.recv_seg();
    let d = h.data(IRS + 1, ISS + 1, b"GET /");
    assert_eq!(h.send(&d), None);
    assert_eq!(h.tcb.state(), State::Established);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 6, 32763));
    assert_eq!(h.read_all(), b"GET /");
}

#[test]
fn syn_received_bad_ack_gets_rst() {
    let mut h = Harness::accepting(cfg(), Peer::plain());
    h.recv_seg();
    let ack = h.seg(ACK, IRS + 1, ISS + 50);
    assert_eq!(
        h.send(&ack),
        Some(RstReply {
            seq: SeqNumber(ISS + 50),
            ack: None
        })
    );
    assert_eq!(h.tcb.state(), State::SynReceived);
    h.assert_no_segment();
}

#[test]
fn syn_received_retransmitted_syn_resends_syn_ack() {
    let mut h = Harness::accepting(cfg(), Peer::plain());
    let first = h.recv_seg();
    h.now += ms(1000);
    let syn = h.peer_syn(SYN, IRS, 0);
    assert_eq!(h.send(&syn), None);
    assert_eq!(h.tcb.state(), State::SynReceived);
    let again = h.recv_seg();
    assert_eq!(again, first);
    h.assert_no_segment();
}

#[test]
fn syn_received_syn_ack_retransmitted_on_rto() {
    let mut h = Harness::accepting(cfg(), Peer::plain());
    let first = h.recv_seg();
    assert_eq!(h.tcb.poll_at(), Some(T0 + ms(1000)));
    assert_eq!(h.fire_timer(), None);
    assert_eq!(h.recv_seg(), first);
    assert_eq!(h.tcb.poll_at(), Some(T0 + ms(3000)));
}

#[test]
fn syn_received_rst_closes() {
    let mut h = Harness::accepting(cfg(), Peer::plain());
    h.recv_seg();
    let rst = h.seg(RST, IRS + 1, 0);
    h.send(&rst);
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::Reset));
}

// ----- data transfer -----

#[test]
fn send_data_goes_out_and_is_acked() {
    let mut h = Harness::client(cfg(), Peer::plain());
    assert_eq!(h.tcb.send(b"hello"), Some(5));
    assert_eq!(h.tcb.send_queued(), 5);
    let d = h.recv_seg();
    assert_eq!(
        d,
        Seg {
            flags: fl(ACK | PSH),
            seq: ISS + 1,
            ack: IRS + 1,
            window: 32768,
            payload: b"hello".to_vec(),
            ..Seg::default()
        }
    );
    assert_eq!(h.last_tx.unwrap().retransmitted, 0);
    h.assert_no_segment();
    assert!(h.tcb.poll_at().is_some(), "retransmission timer armed");
    let ack = h.seg(ACK, IRS + 1, ISS + 6);
    h.send(&ack);
    assert_eq!(h.tcb.send_queued(), 0);
    assert_eq!(h.tcb.stats().bytes_acked, 5);
    assert_eq!(h.tcb.poll_at(), None, "timer stopped once all is acked");
    h.assert_no_segment();
}

#[test]
fn psh_only_on_the_segment_that_empties_the_send_queue() {
    // Peer MSS 1000: 3000 bytes go out as three full segments.
    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.send(&bytes(3000)).unwrap();
    let segs: Vec<Seg> = (0..3).map(|_| h.recv_seg()).collect();
    let lens: Vec<usize> = segs.iter().map(|s| s.payload.len()).collect();
    assert_eq!(lens, [1000, 1000, 1000]);
    assert_eq!(segs[0].flags, fl(ACK));
    assert_eq!(segs[1].flags, fl(ACK));
    assert_eq!(segs[2].flags, fl(ACK | PSH));
    h.assert_no_segment();
}

#[test]
fn in_order_data_acked_at_once_without_delayed_ack() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let d = h.data(IRS + 1, ISS + 1, b"abcdef");
    assert_eq!(h.send(&d), None);
    assert!(h.tcb.take_events().readable);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 7, 32762));
    h.assert_no_segment();
    assert_eq!(h.tcb.recv_available(), 6);
    assert_eq!(h.read_all(), b"abcdef");
}

#[test]
fn delayed_ack_waits_for_second_segment() {
    let cfg = TcpConfig {
        delayed_ack: Some(ms(40)),
        ..cfg()
    };
    let mut h = Harness::client(cfg, Peer::plain());
    let p = bytes(1000);
    let d1 = h.data(IRS + 1, ISS + 1, &p);
    h.send(&d1);
    h.assert_no_segment();
    assert_eq!(h.tcb.poll_at(), Some(h.now + ms(40)));
    h.now += ms(5);
    let d2 = h.data(IRS + 1001, ISS + 1, &p);
    h.send(&d2);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 2001, 30768));
    h.assert_no_segment();
    assert_eq!(h.tcb.poll_at(), None);
}

/// A segment the host's GRO merged (the daemon hands it over whole) counts
/// as the full-sized segments it holds: acknowledged at once.
#[test]
fn delayed_ack_counts_a_merged_segment_as_several() {
    let cfg = TcpConfig {
        delayed_ack: Some(ms(40)),
        ..cfg()
    };
    let mut h = Harness::client(cfg, Peer::plain());
    let p = bytes(3000);
    let d = h.data(IRS + 1, ISS + 1, &p);
    h.send(&d);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 3001, 29768));
    h.assert_no_segment();
    assert_eq!(h.tcb.poll_at(), None);
}

#[test]
fn delayed_ack_timer_sends_ack() {
    let cfg = TcpConfig {
        delayed_ack: Some(ms(40)),
        ..cfg()
    };
    let mut h = Harness::client(cfg, Peer::plain());
    let start = h.now;
    let d = h.data(IRS + 1, ISS + 1, b"x");
    h.send(&d);
    h.assert_no_segment();
    assert_eq!(h.fire_timer(), None);
    assert_eq!(h.now, start + ms(40));
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 2, 32767));
    h.assert_no_segment();
}

#[test]
fn delayed_ack_piggybacks_on_data() {
    let cfg = TcpConfig {
        delayed_ack: Some(ms(40)),
        ..cfg()
    };
    let mut h = Harness::client(cfg, Peer::plain());
    let d = h.data(IRS + 1, ISS + 1, b"ping");
    h.send(&d);
    h.tcb.send(b"pong").unwrap();
    let out = h.recv_seg();
    assert_eq!((out.ack, out.payload.as_slice()), (IRS + 5, &b"pong"[..]));
    h.assert_no_segment();
}

#[test]
fn out_of_order_data_sacked_then_hole_filled() {
    let mut h = Harness::client(cfg(), Peer::sack());
    let p = bytes(300);
    // Second 100 bytes first.
    let d2 = h.data(IRS + 101, ISS + 1, &p[100..200]);
    h.send(&d2);
    let dup = h.recv_seg();
    assert_eq!(
        dup,
        Seg {
            sack: vec![(IRS + 101, IRS + 201)],
            ..h.ack_seg(ISS + 1, IRS + 1, 32768)
        }
    );
    assert_eq!(h.tcb.recv_available(), 0);
    // Then the third: one more duplicate ACK, the newest block first.
    let d3 = h.data(IRS + 201, ISS + 1, &p[200..300]);
    h.send(&d3);
    let dup = h.recv_seg();
    assert_eq!(
        (dup.ack, dup.sack.clone()),
        (IRS + 1, vec![(IRS + 101, IRS + 301)])
    );
    h.assert_no_segment();
    // The hole filled: one ACK covering everything, no SACK blocks left.
    let d1 = h.data(IRS + 1, ISS + 1, &p[..100]);
    h.send(&d1);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 301, 32468));
    h.assert_no_segment();
    assert_eq!(h.read_all(), p);
}

/// Segments reordered within one batch of arrivals (a GSO frame overtaking
/// another): by the time ACKs go out the hole is filled, and duplicate ACKs
/// would only tell the sender of a loss that never happened (Linux fast
/// retransmitted a whole 45-segment frame for them). One ACK covers it.
/// While a hole remains, each out-of-order segment still gets its own.
#[test]
fn a_reordering_healed_within_a_batch_costs_one_ack() {
    let mut h = Harness::client(cfg(), Peer::sack());
    let p = bytes(400);
    for (from, to) in [(100, 200), (200, 300), (300, 400), (0, 100)] {
        let d = h.data(IRS + 1 + from, ISS + 1, &p[from as usize..to as usize]);
        h.send(&d);
    }
    let ack = h.recv_seg();
    assert_eq!((ack.ack, ack.sack.clone()), (IRS + 401, vec![]));
    h.assert_no_segment();
    // Duplicates within a batch: one ACK too.
    for _ in 0..3 {
        let d = h.data(IRS + 1, ISS + 1, &p[..100]);
        h.send(&d);
    }
    assert_eq!(h.recv_seg().ack, IRS + 401);
    h.assert_no_segment();
    // A hole that stays: a duplicate ACK per out-of-order segment.
    let q = bytes(300);
    for from in [100usize, 200] {
        let d = h.data(IRS + 401 + from as u32, ISS + 1, &q[from..from + 100]);
        h.send(&d);
    }
    for _ in 0..2 {
        let dup = h.recv_seg();
        assert_eq!((dup.ack, dup.sack.len()), (IRS + 401, 1));
    }
    h.assert_no_segment();
    assert_eq!(h.read_all(), p);
}

#[test]
fn two_out_of_order_blocks_reported() {
    let mut h = Harness::client(cfg(), Peer::sack());
    let p = bytes(100);
    let a = h.data(IRS + 201, ISS + 1, &p);
    h.send(&a);
    h.recv_seg();
    let b = h.data(IRS + 501, ISS + 1, &p);
    h.send(&b);
    let dup = h.recv_seg();
    assert_eq!(dup.ack, IRS + 1);
    assert_eq!(
        dup.sack,
        vec![(IRS + 501, IRS + 601), (IRS + 201, IRS + 301)]
    );
}

#[test]
fn duplicate_data_acked_not_delivered_twice() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let d = h.data(IRS + 1, ISS + 1, b"once");
    h.send(&d);
    h.recv_seg();
    h.send(&d);
    assert_eq!(h.recv_seg().ack, IRS + 5);
    assert_eq!(h.read_all(), b"once");
}

// ----- closing -----

/// Active close up to FIN_WAIT_2.
fn fin_wait_2(h: &mut Harness) {
    h.tcb.shutdown();
    assert_eq!(h.tcb.state(), State::FinWait1);
    assert_eq!(h.tcb.send(b"late"), None, "no sending after shutdown");
    let fin = h.recv_seg();
    assert_eq!(
        fin,
        Seg {
            flags: fl(FIN | ACK),
            ..h.ack_seg(ISS + 1, IRS + 1, 32768)
        }
    );
    h.assert_no_segment();
    let ack = h.seg(ACK, IRS + 1, ISS + 2);
    h.send(&ack);
    assert_eq!(h.tcb.state(), State::FinWait2);
    h.assert_no_segment();
}

#[test]
fn active_close_through_time_wait() {
    let mut h = Harness::client(cfg(), Peer::plain());
    fin_wait_2(&mut h);
    let fin = h.seg(FIN | ACK, IRS + 1, ISS + 2);
    h.send(&fin);
    assert_eq!(h.tcb.state(), State::TimeWait);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 2, IRS + 2, 32767));
    h.assert_no_segment();
    let entered = h.now;
    assert_eq!(h.tcb.poll_at(), Some(entered + ms(60_000)));
    assert_eq!(h.fire_timer(), None);
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::Normal));
    h.assert_no_segment();
}

#[test]
fn passive_close_through_last_ack() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let fin = TcpRepr {
        payload: b"bye",
        ..h.seg(FIN | ACK | PSH, IRS + 1, ISS + 1)
    };
    h.send(&fin);
    assert_eq!(h.tcb.state(), State::CloseWait);
    // The FIN takes a sequence number but no buffer space: the right edge stays.
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 5, 32764));
    h.assert_no_segment();
    let mut buf = [0u8; 16];
    assert_eq!(h.tcb.recv(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"bye");
    assert_eq!(h.tcb.recv(&mut buf), Err(true));
    // We may still send in CLOSE_WAIT.
    assert_eq!(h.tcb.send(b"ok"), Some(2));
    h.tcb.shutdown();
    assert_eq!(h.tcb.state(), State::LastAck);
    let out = h.recv_seg();
    assert_eq!(
        out,
        Seg {
            flags: fl(FIN | ACK | PSH),
            payload: b"ok".to_vec(),
            ..h.ack_seg(ISS + 1, IRS + 5, 32764)
        }
    );
    let ack = h.seg(ACK, IRS + 5, ISS + 4);
    h.send(&ack);
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::Normal));
    h.assert_no_segment();
}

#[test]
fn simultaneous_close_through_closing() {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.shutdown();
    let fin = h.recv_seg();
    assert_eq!((fin.flags, fin.seq), (fl(FIN | ACK), ISS + 1));
    // Their FIN crosses ours: it does not acknowledge our FIN.
    let their_fin = h.seg(FIN | ACK, IRS + 1, ISS + 1);
    h.send(&their_fin);
    assert_eq!(h.tcb.state(), State::Closing);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 2, IRS + 2, 32767));
    let ack = h.seg(ACK, IRS + 2, ISS + 2);
    h.send(&ack);
    assert_eq!(h.tcb.state(), State::TimeWait);
    h.assert_no_segment();
    assert_eq!(h.tcb.poll_at(), Some(h.now + ms(60_000)));
}

#[test]
fn fin_acking_our_fin_in_fin_wait_1_goes_to_time_wait() {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.shutdown();
    h.recv_seg();
    let fin = h.seg(FIN | ACK, IRS + 1, ISS + 2);
    h.send(&fin);
    assert_eq!(h.tcb.state(), State::TimeWait);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 2, IRS + 2, 32767));
}

#[test]
fn fin_after_queued_data() {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.send(b"last words").unwrap();
    h.tcb.shutdown();
    let out = h.recv_seg();
    assert_eq!(out.flags, fl(FIN | ACK | PSH));
    assert_eq!(
        (out.seq, out.payload.as_slice()),
        (ISS + 1, &b"last words"[..])
    );
    let ack = h.seg(ACK, IRS + 1, ISS + 12);
    h.send(&ack);
    assert_eq!(h.tcb.state(), State::FinWait2);
}

#[test]
fn half_close_still_receives_in_fin_wait_2() {
    let mut h = Harness::client(cfg(), Peer::plain());
    fin_wait_2(&mut h);
    let d = h.data(IRS + 1, ISS + 2, b"more data");
    h.send(&d);
    assert_eq!(h.tcb.state(), State::FinWait2);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 2, IRS + 10, 32759));
    assert_eq!(h.read_all(), b"more data");
    let fin = h.seg(FIN | ACK, IRS + 10, ISS + 2);
    h.send(&fin);
    assert_eq!(h.tcb.state(), State::TimeWait);
    assert_eq!(h.recv_seg().ack, IRS + 11);
    let mut buf = [0u8; 4];
    assert_eq!(h.tcb.recv(&mut buf), Err(true));
}

#[test]
fn half_close_still_receives_in_fin_wait_1() {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.shutdown();
    h.recv_seg();
    let d = h.data(IRS + 1, ISS + 1, b"crossing");
    h.send(&d);
    assert_eq!(h.tcb.state(), State::FinWait1);
    assert_eq!(h.recv_seg().ack, IRS + 9);
    assert_eq!(h.read_all(), b"crossing");
}

#[test]
fn out_of_order_fin_waits_for_the_data() {
    let mut h = Harness::client(cfg(), Peer::sack());
    let fin = TcpRepr {
        payload: b"end",
        ..h.seg(FIN | ACK, IRS + 4, ISS + 1)
    };
    h.send(&fin);
    assert_eq!(h.tcb.state(), State::Established);
    assert_eq!(h.recv_seg().ack, IRS + 1);
    let d = h.data(IRS + 1, ISS + 1, b"the");
    h.send(&d);
    assert_eq!(h.tcb.state(), State::CloseWait);
    assert_eq!(h.recv_seg().ack, IRS + 8);
    assert_eq!(h.read_all(), b"theend");
}

// ----- TIME_WAIT -----

fn time_wait(h: &mut Harness) {
    fin_wait_2(h);
    let fin = h.seg(FIN | ACK, IRS + 1, ISS + 2);
    h.send(&fin);
    assert_eq!(h.tcb.state(), State::TimeWait);
    h.recv_seg();
}

#[test]
fn time_wait_reacks_retransmitted_fin_and_restarts_timer() {
    let mut h = Harness::client(cfg(), Peer::plain());
    time_wait(&mut h);
    h.now += ms(30_000);
    let fin = h.seg(FIN | ACK, IRS + 1, ISS + 2);
    assert_eq!(h.send(&fin), None);
    assert_eq!(h.tcb.state(), State::TimeWait);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 2, IRS + 2, 32767));
    h.assert_no_segment();
    assert_eq!(h.tcb.poll_at(), Some(h.now + ms(60_000)));
}

#[test]
fn time_wait_ignores_rst() {
    let mut h = Harness::client(cfg(), Peer::plain());
    time_wait(&mut h);
    let until = h.tcb.poll_at();
    let rst = h.seg(RST, IRS + 2, 0);
    assert_eq!(h.send(&rst), None);
    assert_eq!(h.tcb.state(), State::TimeWait);
    assert_eq!(h.tcb.poll_at(), until);
    h.assert_no_segment();
}

// ----- RFC 5961 -----

#[test]
fn rst_exactly_at_rcv_nxt_resets() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let rst = h.seg(RST, IRS + 1, 0);
    assert_eq!(h.send(&rst), None);
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::Reset));
    assert_eq!(h.tcb.take_events().closed, Some(CloseReason::Reset));
    let mut buf = [0u8; 4];
    assert_eq!(h.tcb.recv(&mut buf), Err(false));
    h.assert_no_segment();
}

#[test]
fn rst_in_window_but_not_exact_gets_challenge_ack() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let rst = h.seg(RST, IRS + 100, 0);
    assert_eq!(h.send(&rst), None);
    assert_eq!(h.tcb.state(), State::Established);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 1, 32768));
    h.assert_no_segment();
    assert_eq!(h.tcb.stats().challenge_acks, 1);
}

#[test]
fn rst_out_of_window_ignored() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let rst = h.seg(RST, IRS + 1 + 40_000, 0);
    h.send(&rst);
    let old = h.seg(RST, IRS - 5, 0);
    h.send(&old);
    assert_eq!(h.tcb.state(), State::Established);
    h.assert_no_segment();
}

#[test]
fn syn_in_established_gets_challenge_ack() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let syn = h.peer_syn(SYN, IRS + 50, 0);
    assert_eq!(h.send(&syn), None);
    assert_eq!(h.tcb.state(), State::Established);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 1, 32768));
    h.assert_no_segment();
    assert_eq!(h.tcb.stats().challenge_acks, 1);
}

#[test]
fn ack_of_unsent_data_dropped_and_acked() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let d = h.data(IRS + 1, ISS + 500, b"injected");
    assert_eq!(h.send(&d), None);
    assert_eq!(h.tcb.state(), State::Established);
    assert_eq!(h.tcb.recv_available(), 0);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 1, 32768));
    h.assert_no_segment();
}

#[test]
fn challenge_acks_rate_limited() {
    let mut h = Harness::client(cfg(), Peer::plain());
    for i in 0..10 {
        let rst = h.seg(RST, IRS + 100 + i, 0);
        h.send(&rst);
        assert_eq!(
            h.recv_seg(),
            h.ack_seg(ISS + 1, IRS + 1, 32768),
            "challenge {i}"
        );
    }
    for i in 0..3 {
        let rst = h.seg(RST, IRS + 200 + i, 0);
        h.send(&rst);
        h.assert_no_segment();
    }
    assert_eq!(h.tcb.stats().challenge_acks, 10);
    // A second later the budget is back.
    h.now += ms(1000);
    let rst = h.seg(RST, IRS + 300, 0);
    h.send(&rst);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 1, 32768));
    assert_eq!(h.tcb.state(), State::Established);
}

// ----- PAWS and window checks -----

#[test]
fn paws_drops_old_timestamp() {
    let mut h = Harness::client(cfg(), Peer::full());
    h.now += ms(100);
    let fresh = h.data(IRS + 1, ISS + 1, b"new");
    h.send(&fresh);
    let ack = h.recv_seg();
    assert_eq!(ack.ack, IRS + 4);
    assert_eq!(ack.ts.map(|t| t.1), Some(h.peer_tsval()));
    h.read_all();
    // A segment stamped before the last one: an old duplicate.
    let mut stale = h.data(IRS + 4, ISS + 1, b"old");
    stale.timestamp = Some((h.peer_tsval() - 50, h.last_tsval));
    assert_eq!(h.send(&stale), None);
    assert_eq!(h.tcb.recv_available(), 0);
    assert_eq!(h.tcb.stats().drop_paws, 1);
    let ack = h.recv_seg();
    assert_eq!(ack.ack, IRS + 4);
    assert_eq!(ack.ts.map(|t| t.1), Some(h.peer_tsval()), "TS.Recent kept");
    h.assert_no_segment();
}

/// A duplicate pure ACK overtaken by a later one still counts (it may carry
/// an MPTCP signal); one that would move anything, or is older than an RTO,
/// does not (Linux's `tcp_disordered_ack`).
#[test]
fn paws_spares_a_reordered_duplicate_ack() {
    let mut h = Harness::client(cfg(), Peer::full());
    h.now += ms(100);
    let mut fresh = h.seg(ACK, IRS + 1, ISS + 1);
    fresh.window -= 100;
    assert!(h.verdict(&fresh).acceptable);
    h.assert_no_segment();
    let in_force = h.tcb.snd_wnd();
    let tsval = h.peer_tsval();
    let mut reordered = fresh;
    reordered.timestamp = Some((tsval - 5, h.last_tsval));
    assert!(
        h.verdict(&reordered).acceptable,
        "a reordered duplicate ACK"
    );
    assert_eq!(h.tcb.stats().drop_paws, 0);
    h.assert_no_segment();

    // Stamped long before TS.Recent: no reorder explains it.
    let mut ancient = reordered;
    ancient.timestamp = Some((tsval - 60_000, h.last_tsval));
    assert!(!h.verdict(&ancient).acceptable);
    assert_eq!(h.tcb.stats().drop_paws, 1);
    // Another window is not a duplicate: neither a wider one, nor an older
    // smaller or zero one the peer has since reopened.
    for window in [fresh.window + 1, fresh.window - 1, 0] {
        let mut other = reordered;
        other.window = window;
        assert!(!h.verdict(&other).acceptable, "window {window}");
    }
    assert_eq!(h.tcb.snd_wnd(), in_force, "the window in force stays");
    // Nor is data.
    let mut data = h.data(IRS + 1, ISS + 1, b"x");
    data.timestamp = reordered.timestamp;
    assert!(!h.verdict(&data).acceptable);
    assert_eq!(h.tcb.stats().drop_paws, 5);
    assert_eq!(h.tcb.recv_available(), 0);
}

#[test]
fn out_of_window_data_dropped_and_acked() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let far = h.data(IRS + 1 + 40_000, ISS + 1, b"far away");
    assert_eq!(h.send(&far), None);
    assert_eq!(h.tcb.stats().drop_out_of_window, 1);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 1, 32768));
    h.assert_no_segment();
    let old = h.data(IRS - 100, ISS + 1, b"long ago");
    h.send(&old);
    assert_eq!(h.tcb.stats().drop_out_of_window, 2);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 1, 32768));
    assert_eq!(h.tcb.recv_available(), 0);
}

// ----- retransmission -----

#[test]
fn rto_resends_and_backs_off() {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.send(&bytes(100)).unwrap();
    let sent = h.now;
    let first = h.recv_seg();
    let rto = h.tcb.rto();
    assert_eq!(h.tcb.poll_at(), Some(sent + rto));
    assert_eq!(h.fire_timer(), None);
    let again = h.recv_seg();
    assert_eq!(again, first);
    assert_eq!(h.last_tx.unwrap().retransmitted, 100);
    assert_eq!(h.tcb.stats().segments_retransmitted, 1);
    h.assert_no_segment();
    assert_eq!(h.tcb.poll_at(), Some(sent + rto + rto * 2));
    h.fire_timer();
    assert_eq!(h.recv_seg(), first);
    assert_eq!(h.tcb.poll_at(), Some(sent + rto * 7));
    // An ACK of new data resets the backoff.
    let ack = h.seg(ACK, IRS + 1, ISS + 101);
    h.send(&ack);
    assert_eq!(h.tcb.poll_at(), None);
    assert_eq!(h.tcb.rto(), h.tcb.rtt.rto());
}

#[test]
fn rto_exhausted_times_out_with_rst() {
    let cfg = TcpConfig {
        max_retries: 2,
        ..cfg()
    };
    let mut h = Harness::client(cfg, Peer::plain());
    h.tcb.send(&bytes(100)).unwrap();
    h.recv_seg();
    for _ in 0..2 {
        assert_eq!(h.fire_timer(), None);
        assert_eq!(h.recv_seg().seq, ISS + 1);
    }
    assert_eq!(
        h.fire_timer(),
        Some(RstReply {
            seq: SeqNumber(ISS + 101),
            ack: None
        })
    );
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::TimedOut));
    h.assert_no_segment();
    assert_eq!(h.tcb.poll_at(), None);
}

#[test]
fn syn_retransmitted_then_times_out() {
    let cfg = TcpConfig {
        syn_retries: 2,
        ..cfg()
    };
    let mut h = Harness::connecting(cfg, Peer::plain());
    let syn = h.recv_seg();
    assert_eq!(h.tcb.poll_at(), Some(T0 + ms(1000)));
    assert_eq!(h.fire_timer(), None);
    let again = h.recv_seg();
    assert_eq!((again.flags, again.seq), (fl(SYN), ISS));
    assert_eq!(again.mss, syn.mss);
    assert_eq!(h.tcb.poll_at(), Some(T0 + ms(3000)));
    assert_eq!(h.fire_timer(), None);
    assert_eq!(h.recv_seg().seq, ISS);
    assert_eq!(h.tcb.poll_at(), Some(T0 + ms(7000)));
    // SYN_SENT has nobody to reset.
    assert_eq!(h.fire_timer(), None);
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::TimedOut));
    h.assert_no_segment();
}

#[test]
fn synack_retransmitted_synack_retries_times_then_dropped_with_rst() {
    let cfg = TcpConfig {
        synack_retries: 2,
        syn_retries: 9,
        ..cfg()
    };
    let mut h = Harness::accepting(cfg, Peer::plain());
    assert_eq!(h.recv_seg().flags, fl(SYN | ACK));
    for _ in 0..2 {
        assert_eq!(h.fire_timer(), None);
        let again = h.recv_seg();
        assert_eq!((again.flags, again.seq), (fl(SYN | ACK), ISS));
    }
    assert_eq!(
        h.fire_timer(),
        Some(RstReply {
            seq: SeqNumber(ISS + 1),
            ack: None
        })
    );
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::TimedOut));
}

/// A TCB rebuilt from a SYN cookie's third ACK: what the cookie remembers
/// (MSS, window scale, SACK, the peer's TSval) is in force and data flows.
#[test]
fn cookie_tcb_is_established_by_the_third_ack() {
    let mut h = Harness::new(
        Tcb::connect(&cfg(), local(), remote(), SeqNumber(ISS), TS_OFFSET, T0),
        Peer::full(),
    );
    let mut syn = h.peer_syn(SYN, IRS, 0);
    syn.mss = Some(536);
    h.tcb = Tcb::accept_cookie(
        &cfg(),
        local(),
        remote(),
        SeqNumber(ISS),
        TS_OFFSET,
        T0,
        &syn,
    );
    assert_eq!(h.tcb.state(), State::SynReceived);
    // The SYN/ACK counts as sent: nothing to send, a timer armed for it.
    h.assert_no_segment();
    assert!(h.tcb.poll_at().is_some());
    h.now += ms(10);
    h.last_tsval = TS_OFFSET.wrapping_add(T0.as_millis() as u32);
    let ack = h.data(IRS + 1, ISS + 1, b"hello");
    assert_eq!(h.send(&ack), None);
    assert_eq!(h.tcb.state(), State::Established);
    assert_eq!(h.read_all(), b"hello");
    let a = h.recv_seg();
    assert_eq!((a.flags, a.seq, a.ack), (fl(ACK), ISS + 1, IRS + 6));
    assert!(a.ts.is_some() && a.sack.is_empty());
    h.tcb.send(&bytes(2000)).unwrap();
    assert_eq!(h.recv_seg().payload.len(), 536 - 12);
}

/// With the stack's memory exhausted, out-of-order data is not kept (it was
/// never SACKed, the sender sends it again) while in-order data still is;
/// under pressure the buffers are back at their starting size.
#[test]
fn exhausted_memory_keeps_no_out_of_order_data() {
    use crate::memory::Pressure;
    let mut h = Harness::server(cfg(), Peer::full());
    h.tcb.set_pressure(Pressure::Exhausted);
    h.send(&h.data(IRS + 1 + 1000, ISS + 1, b"later"));
    assert_eq!(h.tcb.memory(), 0);
    assert_eq!(h.tcb.stats().drop_ooo_memory, 1);
    let ack = h.recv_seg();
    assert_eq!(ack.ack, IRS + 1);
    assert!(ack.sack.is_empty(), "{:?}", ack.sack);
    h.send(&h.data(IRS + 1, ISS + 1, b"now"));
    assert_eq!(h.read_all(), b"now");
    h.tcb.set_pressure(Pressure::None);
    h.send(&h.data(IRS + 1 + 1000, ISS + 1, b"later"));
    assert!(h.tcb.memory() > 0);
}

/// Two bytes far ahead of the in-order point cost two bytes, not storage for
/// the megabytes in between; once the hole fills they are read in order.
#[test]
fn out_of_order_bytes_cost_what_they_hold() {
    let cfg = TcpConfig {
        recv_buffer: 8 << 20,
        ..cfg()
    };
    let mut h = Harness::server(cfg, Peer::full());
    // A window update opens the whole buffer (the SYN/ACK's was unscaled);
    // auto-tuning starts it at INITIAL_RECV_BUFFER.
    h.tcb.force_ack();
    let w = (h.recv_seg().window as usize) << 8;
    assert!(w >= INITIAL_RECV_BUFFER / 2, "window {w}");
    let far = IRS + 1 + (w as u32 - 1);
    h.send(&h.data(far, ISS + 1, b"x"));
    h.send(&h.data(IRS + 1 + 100, ISS + 1, b"y"));
    assert!(h.tcb.memory() < 1024, "{} bytes", h.tcb.memory());
    let sack = h.recv_seg().sack;
    assert_eq!(sack.len(), 2, "{sack:?}");
    h.send(&h.data(IRS + 1, ISS + 1, &[b'a'; 100]));
    let mut got = h.read_all();
    assert_eq!(got.len(), 101);
    assert_eq!(got.pop(), Some(b'y'));
}

#[test]
fn rto_go_back_n_resends_following_segments() {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.send(&bytes(3000)).unwrap();
    for i in 0..3 {
        assert_eq!(h.recv_seg().seq, ISS + 1 + 1000 * i);
    }
    h.fire_timer();
    assert_eq!(h.recv_seg().seq, ISS + 1);
    // The window after an RTO is one segment.
    h.assert_no_segment();
    let ack = h.seg(ACK, IRS + 1, ISS + 1001);
    h.send(&ack);
    let seqs: Vec<u32> = core::iter::from_fn(|| h.recv()).map(|s| s.seq).collect();
    assert_eq!(seqs, [ISS + 1001, ISS + 2001]);
}

// ----- fast retransmit -----

/// `n` full segments in flight.
fn in_flight(h: &mut Harness, n: u32) -> Vec<u8> {
    let data = bytes(1000 * n as usize);
    h.tcb.send(&data).unwrap();
    for i in 0..n {
        let s = h.recv_seg();
        assert_eq!((s.seq, s.payload.len()), (ISS + 1 + 1000 * i, 1000));
    }
    h.assert_no_segment();
    data
}

fn sack_ack(h: &Harness, ack: u32, blocks: &[(u32, u32)]) -> TcpRepr<'static> {
    let mut r = h.seg(ACK, IRS + 1, ack);
    for &(a, b) in blocks {
        r.sack_blocks.push(SeqNumber(a), SeqNumber(b));
    }
    r
}

#[test]
fn sack_three_dupacks_fast_retransmit() {
    let mut h = Harness::client(cfg(), Peer::sack());
    let data = in_flight(&mut h, 5);
    let rto_at = h.tcb.poll_at().unwrap();
    h.now += ms(20);
    for end in [2001, 3001] {
        let d = sack_ack(&h, ISS + 1, &[(ISS + 1001, ISS + end)]);
        h.send(&d);
        h.assert_no_segment();
    }
    let d = sack_ack(&h, ISS + 1, &[(ISS + 1001, ISS + 4001)]);
    h.send(&d);
    let rtx = h.recv_seg();
    assert!(h.now < rto_at);
    assert_eq!((rtx.seq, rtx.payload.as_slice()), (ISS + 1, &data[..1000]));
    assert_eq!(h.last_tx.unwrap().retransmitted, 1000);
    h.assert_no_segment();
}

#[test]
fn sack_blocks_above_two_mss_trigger_retransmit_at_once() {
    let mut h = Harness::client(cfg(), Peer::sack());
    let data = in_flight(&mut h, 5);
    h.now += ms(20);
    // One ACK SACKing three segments above the hole: more than (3-1) * MSS.
    let d = sack_ack(&h, ISS + 1, &[(ISS + 1001, ISS + 4001)]);
    h.send(&d);
    let rtx = h.recv_seg();
    assert_eq!((rtx.seq, rtx.payload.as_slice()), (ISS + 1, &data[..1000]));
    h.assert_no_segment();
}

#[test]
fn sack_recovery_retransmits_only_holes() {
    let mut h = Harness::client(cfg(), Peer::sack());
    let data = in_flight(&mut h, 6);
    h.now += ms(20);
    // Segments 1 and 3 lost; each has more than 2 MSS SACKed above it.
    let d = sack_ack(
        &h,
        ISS + 1,
        &[(ISS + 3001, ISS + 6001), (ISS + 1001, ISS + 2001)],
    );
    h.send(&d);
    let mut rtx = Vec::new();
    while let Some(s) = h.recv() {
        assert_eq!(s.payload, data[(s.seq - ISS - 1) as usize..][..1000]);
        rtx.push(s.seq);
    }
    assert_eq!(rtx, [ISS + 1, ISS + 2001]);
}

#[test]
fn newreno_three_dupacks_then_partial_ack() {
    let cfg = TcpConfig {
        sack: false,
        ..cfg()
    };
    let mut h = Harness::client(cfg, Peer::plain());
    let data = in_flight(&mut h, 5);
    h.now += ms(20);
    for _ in 0..2 {
        let d = h.seg(ACK, IRS + 1, ISS + 1);
        h.send(&d);
        h.assert_no_segment();
    }
    let d = h.seg(ACK, IRS + 1, ISS + 1);
    h.send(&d);
    let rtx = h.recv_seg();
    assert_eq!((rtx.seq, rtx.payload.as_slice()), (ISS + 1, &data[..1000]));
    h.assert_no_segment();
    // Partial ACK: segments 1 and 2 arrived, 3 is missing too.
    let partial = h.seg(ACK, IRS + 1, ISS + 2001);
    h.send(&partial);
    let rtx = h.recv_seg();
    assert_eq!(
        (rtx.seq, rtx.payload.as_slice()),
        (ISS + 2001, &data[2000..3000])
    );
    h.assert_no_segment();
    // Everything acknowledged: recovery over, timer stopped.
    let full = h.seg(ACK, IRS + 1, ISS + 5001);
    h.send(&full);
    assert_eq!(h.tcb.poll_at(), None);
    assert_eq!(h.tcb.send_queued(), 0);
}

#[test]
fn window_update_is_not_a_dupack() {
    let cfg = TcpConfig {
        sack: false,
        ..cfg()
    };
    let mut h = Harness::client(cfg, Peer::plain());
    in_flight(&mut h, 5);
    for w in [60000, 50000, 40000, 30000] {
        let mut d = h.seg(ACK, IRS + 1, ISS + 1);
        d.window = w;
        h.send(&d);
        h.assert_no_segment();
    }
}

// ----- zero window, Nagle, receive window -----

/// A client whose peer closed its window, with `data` waiting behind it:
/// nothing goes out, the persist timer runs.
fn closed_window_with(data: &[u8]) -> Harness {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.peer.window = 0;
    let closed = h.seg(ACK, IRS + 1, ISS + 1);
    h.send(&closed);
    h.tcb.send(data).unwrap();
    h.assert_no_segment();
    h
}

#[test]
fn zero_window_persist_probe_then_reopen() {
    let data = bytes(100);
    let mut h = closed_window_with(&data);
    assert_eq!(h.tcb.snd_wnd(), 0);
    let armed = h.tcb.poll_at().expect("persist timer armed");
    assert_eq!(armed, h.now + h.tcb.rto());
    assert_eq!(h.fire_timer(), None);
    let probe = h.recv_seg();
    assert_eq!((probe.seq, probe.payload.as_slice()), (ISS + 1, &data[..1]));
    h.assert_no_segment();
    // Still closed: the probe is repeated with backoff, the connection never dies.
    let still = h.seg(ACK, IRS + 1, ISS + 1);
    h.send(&still);
    h.fire_timer();
    let probe2 = h.recv_seg();
    assert_eq!((probe2.seq, probe2.payload.len()), (ISS + 1, 1));
    assert_eq!(h.tcb.state(), State::Established);
    // The window opens, taking the probe byte.
    h.peer.window = 65535;
    let open = h.seg(ACK, IRS + 1, ISS + 2);
    h.send(&open);
    let rest = h.recv_seg();
    assert_eq!((rest.seq, rest.payload.as_slice()), (ISS + 2, &data[1..]));
}

/// Probing a closed window backs off, but that says nothing about the path:
/// once the window opens, data lost then is retransmitted after the base RTO,
/// not after the probes' last interval (which reaches the maximum RTO).
#[test]
fn a_reopened_window_ends_the_probes_backoff() {
    let data = bytes(100);
    let mut h = closed_window_with(&data);
    for _ in 0..6 {
        h.fire_timer();
        let _probe = h.recv_seg();
        let still = h.seg(ACK, IRS + 1, ISS + 1);
        h.send(&still);
    }
    assert!(h.tcb.rto_backoff() >= 6);
    // A window update that does not take the probe byte (Linux drops it).
    h.peer.window = 65535;
    let open = h.seg(ACK, IRS + 1, ISS + 1);
    h.send(&open);
    let sent = h.recv_seg();
    assert_eq!((sent.seq, sent.payload.as_slice()), (ISS + 1, &data[..]));
    assert_eq!(h.tcb.rto_backoff(), 0);
    assert_eq!(h.tcb.poll_at(), Some(h.now + h.tcb.base_rto()));
}

/// The probe's byte lies beyond the peer's zero window, so the peer drops it.
/// Everything else sent until the window opens must be acceptable to a
/// receiver with a zero window (RFC 9293 §3.10.7.4: SEG.SEQ = RCV.NXT), or
/// the peer discards it whole, ACK field included: a relay whose reader
/// stalled stopped acknowledging the other direction, whose sender then sat
/// out retransmission timeouts (seen against Linux).
#[test]
fn after_a_zero_window_probe_acks_and_rsts_stay_acceptable() {
    let mut h = closed_window_with(&bytes(100));
    h.fire_timer();
    let probe = h.recv_seg();
    assert_eq!((probe.seq, probe.payload.len()), (ISS + 1, 1));
    // The peer still sends us data, acknowledging none of the probe.
    let from_peer = h.data(IRS + 1, ISS + 1, b"still talking");
    h.send(&from_peer);
    let ack = h.recv_seg();
    assert_eq!((ack.seq, ack.ack), (ISS + 1, IRS + 1 + 13));
    assert!(ack.payload.is_empty());
    assert_eq!(
        h.tcb.abort(),
        Some(RstReply {
            seq: SeqNumber(ISS + 1),
            ack: None
        })
    );
}

#[test]
fn zero_window_probe_answers_are_not_duplicate_acks() {
    let mut h = closed_window_with(&bytes(100));
    h.fire_timer();
    let _probe = h.recv_seg();
    let cwnd = h.tcb.cwnd();
    // Four identical answers (same ACK, window still 0) must not start recovery.
    for _ in 0..4 {
        let still = h.seg(ACK, IRS + 1, ISS + 1);
        h.send(&still);
    }
    h.assert_no_segment();
    assert_eq!(h.tcb.cwnd(), cwnd);
    assert!(!h.tcb.in_recovery);
}

/// A bulk transfer in rounds: each sends what the windows allow and the
/// peer acknowledges all of it `rtt` later. `queued(round)`: whether the
/// host queues what arrives in that round; in round `rto` the ACK is lost
/// and the retransmission timer fires first. The congestion window and
/// slow-start threshold after each round. The handshake took 10 ms: the
/// least round trip.
fn cwnd_by_round(
    queued: impl Fn(usize) -> bool,
    rtt: Duration,
    rounds: usize,
    rto: Option<usize>,
) -> Vec<(usize, usize)> {
    let cfg = TcpConfig {
        send_buffer: 16 << 20,
        ..cfg()
    };
    let peer = Peer {
        ws: Some(8),
        ..Peer::sack()
    };
    let mut h = Harness::client(cfg, peer);
    let chunk = bytes(64 * 1024);
    let mut acked = ISS + 1;
    (0..rounds)
        .map(|round| {
            h.tcb.set_host_queue(queued(round));
            while h.tcb.send(&chunk).unwrap_or(0) > 0 {}
            let mut end = acked;
            while let Some(s) = h.recv() {
                end = end.max(s.seq.wrapping_add(s.payload.len() as u32));
            }
            if rto == Some(round) {
                h.fire_timer();
                while h.recv().is_some() {}
            }
            h.now += rtt;
            acked = end;
            let ack = h.seg(ACK, IRS + 1, acked);
            h.send(&ack);
            (h.tcb.cwnd(), h.tcb.cc.ssthresh())
        })
        .collect()
}

fn cwnds(v: &[(usize, usize)]) -> Vec<usize> {
    v.iter().map(|&(c, _)| c).collect()
}

/// While the host queues what arrives and the round trip is several of
/// the least, the time is our own queue's: the congestion window stops
/// growing, where it grows on without that queue, or when the round trip
/// is the path's own, or once the queue is gone.
#[test]
fn no_congestion_window_growth_for_our_own_queue() {
    let rounds = 40;
    let queued = cwnds(&cwnd_by_round(|_| true, ms(80), rounds, None));
    let free = cwnds(&cwnd_by_round(|_| false, ms(80), rounds, None));
    let path = cwnds(&cwnd_by_round(|_| true, ms(30), rounds, None));
    let gone = cwnds(&cwnd_by_round(|r| r < 20, ms(80), rounds, None));
    // The smoothed round trip passes four of the least (40 ms) within a
    // few rounds; from then on the window stays where it was.
    let held = queued[12];
    assert!(queued[12..].iter().all(|&c| c == held), "{queued:?}");
    assert!(free[rounds - 1] > 2 * held, "{free:?} against {queued:?}");
    assert!(path[rounds - 1] > 2 * held, "{path:?} against {queued:?}");
    assert_eq!(gone[19], held, "{gone:?}");
    assert!(gone[rounds - 1] > 2 * held, "{gone:?}");
}

/// A path whose round trip rose for good (from the handshake's 10 ms to
/// 1 s, here) reads as our own queue only until the least round trip
/// remembered (the last 300 s) is the new one; then the window grows on.
#[test]
fn a_lasting_rise_of_the_round_trip_is_not_held_for_good() {
    let v = cwnds(&cwnd_by_round(|_| true, ms(1000), 330, None));
    let held = v[12];
    assert!(v[12..295].iter().all(|&c| c == held), "{v:?}");
    assert!(v[329] > 2 * held, "{v:?}");
}

/// A window a timeout took is regained while the host queues: slow start
/// runs up to the threshold the timeout set, congestion avoidance on to
/// the window before it, and only growth beyond that is held (the flag is
/// the whole host's; a window held small would stay small).
#[test]
fn a_window_lost_to_a_timeout_is_regained_while_the_host_queues() {
    let v = cwnd_by_round(|_| true, ms(80), 200, Some(20));
    let before = v[19].0;
    let (after, ssthresh) = v[20];
    assert!(after < ssthresh && ssthresh < before, "{v:?}");
    let back = v[21..].iter().position(|&(c, _)| c >= before);
    let back = back.expect("the window grew back") + 21;
    assert!(
        v[back..].iter().all(|&(c, _)| c == v[back].0),
        "held: {v:?}"
    );
    assert!(v[back].0 < before + 1000, "{v:?}");
}

#[test]
fn nagle_holds_second_small_segment() {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.send(b"a").unwrap();
    assert_eq!(h.recv_seg().payload, b"a");
    h.tcb.send(b"b").unwrap();
    h.tcb.send(b"c").unwrap();
    h.assert_no_segment();
    let ack = h.seg(ACK, IRS + 1, ISS + 2);
    h.send(&ack);
    let s = h.recv_seg();
    assert_eq!((s.seq, s.payload.as_slice()), (ISS + 2, &b"bc"[..]));
}

#[test]
fn nagle_off_sends_small_segments_at_once() {
    let cfg = TcpConfig {
        nagle: false,
        ..cfg()
    };
    let mut h = Harness::client(cfg, Peer::plain());
    h.tcb.send(b"a").unwrap();
    assert_eq!(h.recv_seg().payload, b"a");
    h.tcb.send(b"b").unwrap();
    let s = h.recv_seg();
    assert_eq!((s.seq, s.payload.as_slice()), (ISS + 2, &b"b"[..]));
}

#[test]
fn receive_window_closes_without_shrinking_then_reopens() {
    let cfg = TcpConfig {
        recv_buffer: 4096,
        ..cfg()
    };
    let mut h = Harness::client(cfg, Peer::plain());
    let edge = IRS + 1 + 4096;
    let data = bytes(4096);
    let mut seq = IRS + 1;
    for chunk in data.chunks(1000) {
        let d = h.data(seq, ISS + 1, chunk);
        h.send(&d);
        seq += chunk.len() as u32;
        let ack = h.recv_seg();
        assert_eq!(ack.ack, seq);
        assert_eq!(
            ack.ack + ack.window as u32,
            edge,
            "right edge never moves left"
        );
    }
    assert_eq!(seq, edge);
    // A zero window: more data is dropped, the ACK repeats the zero window.
    let more = h.data(seq, ISS + 1, b"!");
    h.send(&more);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, edge, 0));
    assert_eq!(h.tcb.recv_available(), 4096);
    // Reading a sliver does not open the window (silly window avoidance).
    let mut buf = vec![0u8; 100];
    assert_eq!(h.tcb.recv(&mut buf), Ok(100));
    h.assert_no_segment();
    // Reading the rest does, with a window update.
    let rest = h.read_all();
    assert_eq!(rest.len(), 3996);
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, edge, 4096));
    h.assert_no_segment();
}

// ----- keepalive -----

fn keepalive_cfg() -> TcpConfig {
    TcpConfig {
        keepalive: Some(Keepalive {
            idle: Duration::from_secs(10),
            interval: Duration::from_secs(2),
            probes: 3,
        }),
        ..cfg()
    }
}

#[test]
fn keepalive_probes_then_times_out() {
    let mut h = Harness::client(keepalive_cfg(), Peer::plain());
    let start = h.now;
    assert_eq!(h.tcb.poll_at(), Some(start + Duration::from_secs(10)));
    for i in 0..3u64 {
        assert_eq!(h.fire_timer(), None);
        assert_eq!(h.now, start + Duration::from_secs(10 + 2 * i));
        assert_eq!(h.recv_seg(), h.ack_seg(ISS, IRS + 1, 32768), "probe {i}");
        h.assert_no_segment();
    }
    assert_eq!(
        h.fire_timer(),
        Some(RstReply {
            seq: SeqNumber(ISS + 1),
            ack: None
        })
    );
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::TimedOut));
}

#[test]
fn keepalive_answer_rearms_idle_timer() {
    let mut h = Harness::client(keepalive_cfg(), Peer::plain());
    h.fire_timer();
    h.recv_seg();
    h.fire_timer();
    h.recv_seg();
    let answer = h.seg(ACK, IRS + 1, ISS + 1);
    h.send(&answer);
    assert_eq!(h.tcb.poll_at(), Some(h.now + Duration::from_secs(10)));
    // The probe count starts over: three more probes before giving up.
    for _ in 0..3 {
        assert_eq!(h.fire_timer(), None);
        assert_eq!(h.recv_seg().seq, ISS);
    }
    assert!(h.fire_timer().is_some());
    assert_eq!(h.tcb.state(), State::Closed);
}

/// Half-closed (our FIN acknowledged) and still reading, with a peer that
/// vanished (its RST lost): keepalive probes in FIN_WAIT_2 as Linux's does,
/// and ends what nothing else would.
#[test]
fn keepalive_ends_a_half_closed_connection_whose_peer_vanished() {
    let mut h = Harness::client(keepalive_cfg(), Peer::plain());
    fin_wait_2(&mut h);
    let start = h.now;
    assert_eq!(h.tcb.poll_at(), Some(start + Duration::from_secs(10)));
    for i in 0..3u64 {
        assert_eq!(h.fire_timer(), None);
        assert_eq!(h.now, start + Duration::from_secs(10 + 2 * i));
        assert_eq!(
            h.recv_seg(),
            h.ack_seg(ISS + 1, IRS + 1, 32768),
            "probe {i}"
        );
    }
    assert!(h.fire_timer().is_some());
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::TimedOut));
}

// ----- application calls -----

#[test]
fn abort_returns_rst_at_snd_max() {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.send(b"abc").unwrap();
    h.recv_seg();
    assert_eq!(
        h.tcb.abort(),
        Some(RstReply {
            seq: SeqNumber(ISS + 4),
            ack: None
        })
    );
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::Aborted));
    h.assert_no_segment();
}

#[test]
fn abort_in_syn_sent_sends_nothing() {
    let mut h = Harness::connecting(cfg(), Peer::plain());
    h.recv_seg();
    assert_eq!(h.tcb.abort(), None);
    assert_eq!(h.tcb.state(), State::Closed);
}

#[test]
fn release_with_unread_data_resets() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let d = h.data(IRS + 1, ISS + 1, b"unread");
    h.send(&d);
    h.recv_seg();
    assert_eq!(
        h.tcb.release(h.now),
        Some(RstReply {
            seq: SeqNumber(ISS + 1),
            ack: None
        })
    );
    assert_eq!(h.tcb.state(), State::Closed);
}

#[test]
fn release_without_unread_data_closes_gracefully() {
    let mut h = Harness::client(cfg(), Peer::plain());
    assert_eq!(h.tcb.release(h.now), None);
    assert_eq!(h.tcb.state(), State::FinWait1);
    assert_eq!(h.recv_seg().flags, fl(FIN | ACK));
    let ack = h.seg(ACK, IRS + 1, ISS + 2);
    h.send(&ack);
    assert_eq!(h.tcb.state(), State::FinWait2);
    // A released connection does not wait forever for the peer's FIN.
    assert_eq!(h.tcb.poll_at(), Some(h.now + ms(60_000)));
    // Data arriving for nobody is answered with a RST.
    let d = h.data(IRS + 1, ISS + 2, b"hello?");
    assert_eq!(
        h.send(&d),
        Some(RstReply {
            seq: SeqNumber(ISS + 2),
            ack: None
        })
    );
    assert_eq!(h.tcb.state(), State::Closed);
}

#[test]
fn shutdown_in_syn_sent_sends_fin_after_handshake() {
    let mut h = Harness::connecting(cfg(), Peer::plain());
    h.recv_seg();
    h.tcb.shutdown();
    assert_eq!(h.tcb.state(), State::SynSent);
    let synack = h.peer_syn(SYN | ACK, IRS, ISS + 1);
    h.send(&synack);
    assert_eq!(h.tcb.state(), State::FinWait1);
    let out = h.recv_seg();
    assert_eq!(
        (out.flags, out.seq, out.ack),
        (fl(FIN | ACK), ISS + 1, IRS + 1)
    );
}

#[test]
fn passive_opener_sends_and_closes() {
    let mut h = Harness::server(cfg(), Peer::full());
    assert!(h.tcb.timestamps_enabled() && h.tcb.sack_enabled());
    h.tcb.send(b"welcome").unwrap();
    h.tcb.shutdown();
    let out = h.recv_seg();
    assert_eq!(out.flags, fl(FIN | ACK | PSH));
    assert_eq!((out.seq, out.ack), (ISS + 1, IRS + 1));
    assert_eq!(out.payload, b"welcome");
    assert_eq!(
        out.ts,
        Some((h.now.as_millis() as u32 + TS_OFFSET, h.peer_tsval()))
    );
    let fin = h.seg(FIN | ACK, IRS + 1, ISS + 9);
    h.send(&fin);
    assert_eq!(h.tcb.state(), State::TimeWait);
    assert_eq!(h.recv_seg().ack, IRS + 2);
}

// ----- acceptability verdicts (what a layered protocol may act on) -----

fn accepted(v: Verdict) -> bool {
    v.acceptable
}

#[test]
fn verdict_syn_ack_acceptable_only_when_it_acknowledges_our_syn() {
    let mut h = Harness::connecting(cfg(), Peer::full());
    h.recv_seg();
    let forged = h.peer_syn(SYN | ACK, IRS, ISS + 5000);
    let v = h.verdict(&forged);
    assert!(!v.acceptable && v.rst.is_some(), "{v:?}");
    assert_eq!(h.tcb.state(), State::SynSent);
    let bare_syn = h.peer_syn(SYN, IRS, 0);
    let mut h2 = Harness::connecting(cfg(), Peer::full());
    h2.recv_seg();
    assert!(
        !accepted(h2.verdict(&bare_syn)),
        "a bare SYN vouches for nothing"
    );
    let synack = h.peer_syn(SYN | ACK, IRS, ISS + 1);
    assert!(accepted(h.verdict(&synack)));
    assert_eq!(h.tcb.state(), State::Established);
}

#[test]
fn verdict_drops_what_a_blind_sender_can_send() {
    let mut h = Harness::client(cfg(), Peer::full());
    // Out of the receive window.
    let v = h.verdict(&h.data(IRS + 1 + 1_000_000, ISS + 1, b"x"));
    assert!(!v.acceptable);
    // An ACK for data never sent, and one far below snd_una.
    assert!(!accepted(h.verdict(&h.seg(ACK, IRS + 1, ISS + 100))));
    assert!(!accepted(h.verdict(&h.seg(
        ACK,
        IRS + 1,
        ISS.wrapping_sub(200_000)
    ))));
    // No ACK flag at all.
    assert!(!accepted(h.verdict(&h.seg(PSH, IRS + 1, 0))));
    // A RST in the window but not at rcv_nxt (RFC 5961 §3.2) and a SYN.
    assert!(!accepted(h.verdict(&h.seg(RST | ACK, IRS + 10, ISS + 1))));
    assert!(!accepted(h.verdict(&h.seg(SYN, IRS + 1, 0))));
    // An old timestamp (PAWS).
    let mut old = h.seg(ACK, IRS + 1, ISS + 1);
    old.timestamp = Some((PEER_TS.wrapping_sub(100_000), h.last_tsval));
    assert!(!accepted(h.verdict(&old)));
    assert_eq!(h.tcb.state(), State::Established);
    // The genuine article.
    assert!(accepted(h.verdict(&h.data(IRS + 1, ISS + 1, b"hello"))));
    assert!(accepted(h.verdict(&h.seg(RST, IRS + 6, ISS + 1))));
    assert_eq!(h.tcb.state(), State::Closed);
}

#[test]
fn verdict_time_wait_and_retransmitted_syn_are_not_news() {
    let mut h = Harness::accepting(cfg(), Peer::full());
    h.recv_seg();
    let syn = h.peer_syn(SYN, IRS, 0);
    assert!(!accepted(h.verdict(&syn)), "a retransmitted SYN");
    let ack = h.seg(ACK, IRS + 1, ISS + 1);
    assert!(accepted(h.verdict(&ack)), "the third ACK");
}

// ----- resets and orphans decided by a layered protocol (MPTCP) -----

/// A reset decided above the TCB (MPTCP giving up a subflow) must reach the
/// peer in CLOSING too: our FIN may be lost, the peer's side waiting for it in
/// FIN_WAIT_2 with no timer (ABORT, by RFC 9293, is silent there).
#[test]
fn reset_in_closing_sends_rst_at_snd_max() {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.send(b"abc").unwrap();
    h.tcb.shutdown();
    let out = h.recv_seg();
    assert_eq!((out.flags, out.seq), (fl(FIN | ACK | PSH), ISS + 1));
    // Their FIN acknowledges none of it (our data and FIN were lost).
    let their_fin = h.seg(FIN | ACK, IRS + 1, ISS + 1);
    h.send(&their_fin);
    assert_eq!(h.tcb.state(), State::Closing);
    let rst = RstReply {
        seq: SeqNumber(ISS + 5),
        ack: None,
    };
    assert_eq!(h.tcb.reset(), Some(rst));
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::Reset));
}

#[test]
fn reset_in_last_ack_sends_rst() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let fin = h.seg(FIN | ACK, IRS + 1, ISS + 1);
    h.send(&fin);
    h.recv_seg();
    h.tcb.shutdown();
    assert_eq!(h.tcb.state(), State::LastAck);
    h.recv_seg();
    let rst = RstReply {
        seq: SeqNumber(ISS + 2),
        ack: None,
    };
    assert_eq!(h.tcb.reset(), Some(rst));
}

/// A connection the layer above no longer waits for (an MPTCP subflow after
/// both DATA_FINs) does not stay in FIN_WAIT_2 for ever, whether it got there
/// before or after being told; unlike a released one, data on it is no error.
#[test]
fn orphan_bounds_fin_wait_2() {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.shutdown();
    assert_eq!(h.recv_seg().flags, fl(FIN | ACK));
    let ack = h.seg(ACK, IRS + 1, ISS + 2);
    h.send(&ack);
    assert_eq!(h.tcb.state(), State::FinWait2);
    assert_eq!(h.tcb.poll_at(), None);
    h.tcb.orphan(h.now);
    assert_eq!(h.tcb.poll_at(), Some(h.now + ms(60_000)));
    let d = h.data(IRS + 1, ISS + 2, b"late");
    assert_eq!(h.send(&d), None);
    assert_eq!(h.fire_timer(), None);
    assert_eq!(h.tcb.state(), State::Closed);
    assert_eq!(h.tcb.close_reason(), Some(CloseReason::Normal));

    let mut h = Harness::client(cfg(), Peer::plain());
    h.tcb.orphan(h.now);
    h.tcb.shutdown();
    assert_eq!(h.recv_seg().flags, fl(FIN | ACK));
    let ack = h.seg(ACK, IRS + 1, ISS + 2);
    h.send(&ack);
    assert_eq!(h.tcb.state(), State::FinWait2);
    assert_eq!(h.tcb.poll_at(), Some(h.now + ms(60_000)));
}

// ----- what others can make us send -----

/// Out-of-window segments without data get one duplicate ACK per 500 ms at
/// most (a blind spray gets little back); one with data always gets its ACK
/// (a retransmission whose ACK was lost).
#[test]
fn out_of_window_acks_without_data_are_rate_limited() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let far = IRS + 1 + 1_000_000;
    h.send(&h.seg(ACK, far, ISS + 1));
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 1, 32768));
    for i in 0..50 {
        h.send(&h.seg(ACK, far + i, ISS + 1));
    }
    h.assert_no_segment();
    assert_eq!(h.tcb.stats().oow_acks_limited, 50);
    // Data out of the window (here: old data) is acknowledged every time.
    h.send(&h.data(IRS - 100, ISS + 1, b"old"));
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 1, 32768));
    // Half a second later, one more.
    h.now += ms(500);
    h.send(&h.seg(ACK, far, ISS + 1));
    assert_eq!(h.recv_seg(), h.ack_seg(ISS + 1, IRS + 1, 32768));
    h.send(&h.seg(ACK, far, ISS + 1));
    h.assert_no_segment();
}

/// The stack-wide challenge ACK quota: when it is spent, a connection within
/// its own limit sends none either.
#[test]
fn challenge_acks_respect_the_stack_wide_quota() {
    let mut h = Harness::client(cfg(), Peer::plain());
    h.quota = ChallengeQuota::new(2, 3);
    let mut sent = 0;
    for i in 0..5 {
        h.send(&h.seg(RST, IRS + 100 + i, 0));
        if h.recv().is_some() {
            sent += 1;
        }
    }
    // This second's quota is drawn between 1 and 3.
    assert!((1..=3).contains(&sent), "{sent}");
    assert_eq!(h.tcb.stats().challenge_acks, sent);
    assert_eq!(h.tcb.stats().challenge_acks_limited, 5 - sent);
}

/// RFC 2883: data that arrives a second time (a retransmission the sender
/// did not need) is reported once, as the first SACK block of the next ACK,
/// before the ordinary blocks; the ACK after it has none.
#[test]
fn a_duplicate_is_reported_once_as_a_dsack_block() {
    let mut h = Harness::client(cfg(), Peer::sack());
    let p = bytes(300);
    let d1 = h.data(IRS + 1, ISS + 1, &p[..100]);
    h.send(&d1);
    assert_eq!(h.recv_seg().ack, IRS + 101);
    // The same bytes again: a duplicate ACK carrying them as a D-SACK block.
    h.send(&d1);
    let ack = h.recv_seg();
    assert_eq!(
        (ack.ack, ack.sack.clone()),
        (IRS + 101, vec![(IRS + 1, IRS + 101)])
    );
    h.assert_no_segment();
    // With a hole open: the D-SACK block first, then the out-of-order one.
    let d3 = h.data(IRS + 201, ISS + 1, &p[200..300]);
    h.send(&d3);
    assert_eq!(h.recv_seg().sack, vec![(IRS + 201, IRS + 301)]);
    h.send(&d1);
    let ack = h.recv_seg();
    assert_eq!(
        (ack.ack, ack.sack.clone()),
        (
            IRS + 101,
            vec![(IRS + 1, IRS + 101), (IRS + 201, IRS + 301)]
        )
    );
    // Reported once: the next ACK has only the ordinary block.
    let d2 = h.data(IRS + 101, ISS + 1, &p[100..200]);
    h.send(&d2);
    let ack = h.recv_seg();
    assert_eq!((ack.ack, ack.sack.clone()), (IRS + 301, vec![]));
    h.assert_no_segment();
    assert_eq!(h.read_all(), p);
}

/// Without SACK negotiated there is no D-SACK either, and a segment from far
/// below the window (a stray, not a retransmission) is not reported.
#[test]
fn no_dsack_without_sack_or_for_strays() {
    let mut h = Harness::client(cfg(), Peer::plain());
    let p = bytes(100);
    let d1 = h.data(IRS + 1, ISS + 1, &p);
    h.send(&d1);
    h.recv_seg();
    h.send(&d1);
    assert!(h.recv_seg().sack.is_empty());
    let mut h = Harness::client(cfg(), Peer::sack());
    let d1 = h.data(IRS + 1, ISS + 1, &p);
    h.send(&d1);
    h.recv_seg();
    let far = h.data((IRS + 1).wrapping_sub(1 << 24), ISS + 1, &p);
    h.send(&far);
    assert!(h.recv_seg().sack.is_empty());
}

/// A segment that straddles rcv_nxt (a retransmission the sender's or a
/// receiver's GRO coalesced with new data) has its old part reported as a
/// D-SACK block (RFC 2883 §4.1.2, as Linux's `tcp_data_queue`), its new
/// part taken.
#[test]
fn the_old_part_of_a_straddling_segment_is_a_dsack_block() {
    let mut h = Harness::client(cfg(), Peer::sack());
    let p = bytes(300);
    let d1 = h.data(IRS + 1, ISS + 1, &p[..100]);
    h.send(&d1);
    assert_eq!(h.recv_seg().ack, IRS + 101);
    let both = h.data(IRS + 51, ISS + 1, &p[50..300]);
    h.send(&both);
    let ack = h.recv_seg();
    assert_eq!(
        (ack.ack, ack.sack.clone()),
        (IRS + 301, vec![(IRS + 51, IRS + 101)])
    );
    h.assert_no_segment();
    assert_eq!(h.read_all(), p);
}

/// A burst of duplicates before the next ACK goes out is one D-SACK block
/// covering them all; a duplicate elsewhere replaces it.
#[test]
fn a_run_of_duplicates_is_one_dsack_block() {
    let mut h = Harness::client(cfg(), Peer::sack());
    let p = bytes(300);
    let all = h.data(IRS + 1, ISS + 1, &p);
    h.send(&all);
    assert_eq!(h.recv_seg().ack, IRS + 301);
    let (d1, d2) = (
        h.data(IRS + 1, ISS + 1, &p[..100]),
        h.data(IRS + 101, ISS + 1, &p[100..200]),
    );
    h.send(&d1);
    h.send(&d2);
    let ack = h.recv_seg();
    assert_eq!(ack.sack, vec![(IRS + 1, IRS + 201)]);
    h.assert_no_segment();
}
