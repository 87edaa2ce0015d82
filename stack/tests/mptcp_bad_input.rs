//! Bad multipath input against a live MPTCP connection, rejected the way RFC
//! 8684 says. Two engines are wired back to back at the packet level; packets
//! between them are inspected, rewritten (options re-encoded, checksums valid) or
//! made by hand. Every test moves data both ways before and after the bad input
//! and then checks that the connection lived through it: the transfer completes
//! byte-exact in both directions (FIN included), nothing reset the connection, it
//! did not fall back to TCP, and the counter of that rejection moved.

mod packet;

use core::time::Duration;
use mptun_stack::endpoint::CloseReason;
use mptun_stack::mptcp::crypto::{self, HashAlg};
use mptun_stack::wire::mptcp::{AddAddr, MpJoin, RemoveAddr, TcpRst};
use mptun_stack::wire::{
    emit_packet, mptcp_options, IpRepr, MptcpOption, ParseCtx, SeqNumber, TcpFlags, TcpRepr,
    TCPOPT_MPTCP,
};
use mptun_stack::{Config, ConnId, Counters, EndpointFlags, Error, Event, Instant, Stack, State};
use packet::rewrite_mptcp;
use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};

/// The client's and the server's first and second addresses.
const C0: &str = "10.0.0.1";
const C1: &str = "10.0.1.1";
const S0: &str = "10.0.0.2";
const S1: &str = "10.0.1.2";
/// An address neither engine owns: hand-made subflows come from it, and the
/// client engine ignores what the server answers to it.
const HAND: &str = "10.0.9.9";
const PORT: u16 = 80;
/// Virtual time per step of the simulation.
const STEP: Duration = Duration::from_millis(10);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sock(s: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(s), port)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToServer,
    ToClient,
}

/// What a tap does with each packet: `Some` replaces it.
type Tap<'a> = &'a mut dyn FnMut(Dir, &[u8]) -> Option<Vec<u8>>;

fn pass(_: Dir, _: &[u8]) -> Option<Vec<u8>> {
    None
}

/// The MPTCP options a test looks at, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Join(MpJoin),
    AddAddr(AddAddr),
    TcpRst(TcpRst),
    Other(u8),
}

/// One packet, parsed.
#[derive(Debug, Clone)]
struct Seg {
    src: SocketAddr,
    dst: SocketAddr,
    flags: TcpFlags,
    seq: SeqNumber,
    ack: SeqNumber,
    opts: Vec<Opt>,
}

impl Seg {
    fn parse(pkt: &[u8]) -> Seg {
        let (ipr, tcp) = IpRepr::parse(pkt).unwrap();
        let seg = TcpRepr::parse(ipr.src, ipr.dst, tcp, true).unwrap();
        let ctx = ParseCtx::from_repr(&seg);
        let opts = mptcp_options(&seg)
            .map(|d| match MptcpOption::parse(d, ctx) {
                Ok(MptcpOption::MpJoin(j)) => Opt::Join(j),
                Ok(MptcpOption::AddAddr(a)) => Opt::AddAddr(a),
                Ok(MptcpOption::TcpRst(r)) => Opt::TcpRst(r),
                _ => Opt::Other(d.first().map_or(0xff, |b| b >> 4)),
            })
            .collect();
        Seg {
            src: SocketAddr::new(ipr.src, seg.src_port),
            dst: SocketAddr::new(ipr.dst, seg.dst_port),
            flags: seg.flags,
            seq: seg.seq,
            ack: seg.ack,
            opts,
        }
    }

    fn join(&self) -> Option<MpJoin> {
        self.opts.iter().find_map(|o| match o {
            Opt::Join(j) => Some(*j),
            _ => None,
        })
    }

    fn tcprst(&self) -> Option<TcpRst> {
        self.opts.iter().find_map(|o| match o {
            Opt::TcpRst(r) => Some(*r),
            _ => None,
        })
    }

    fn add_addr(&self) -> Option<AddAddr> {
        self.opts.iter().find_map(|o| match o {
            Opt::AddAddr(a) => Some(*a),
            _ => None,
        })
    }

    fn is_syn_ack(&self) -> bool {
        self.flags.syn() && self.flags.ack()
    }
}

/// `pkt` sent from another source port (TCP checksum recomputed).
fn with_src_port(pkt: &[u8], port: u16) -> Vec<u8> {
    let (ipr, tcp) = IpRepr::parse(pkt).unwrap();
    let mut seg = TcpRepr::parse(ipr.src, ipr.dst, tcp, true).unwrap();
    seg.src_port = port;
    let mut buf = vec![0u8; pkt.len() + 40];
    let n = emit_packet(
        ipr.src,
        ipr.dst,
        ipr.hop_limit,
        &seg,
        &[seg.payload],
        &mut buf,
    )
    .unwrap();
    buf.truncate(n);
    buf
}

/// A segment made by hand, with at most one MPTCP option.
fn craft(
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    seq: SeqNumber,
    ack: SeqNumber,
    opt: Option<MptcpOption<'_>>,
) -> Vec<u8> {
    let mut t = TcpRepr::new(src.port(), dst.port());
    t.flags = TcpFlags(flags);
    t.seq = seq;
    t.ack = ack;
    t.window = 65535;
    if flags & TcpFlags::SYN != 0 {
        t.mss = Some(1460);
    }
    let enc = opt.map(|o| o.encode().unwrap());
    if let Some(e) = &enc {
        t.unknown.push(TCPOPT_MPTCP, e.as_slice());
    }
    let mut buf = vec![0u8; 200];
    let n = emit_packet(src.ip(), dst.ip(), 64, &t, &[], &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// One direction of the application's byte stream.
#[derive(Default)]
struct Stream {
    data: Vec<u8>,
    sent: usize,
    got: Vec<u8>,
    fin: bool,
}

impl Stream {
    /// Queue `n` more bytes of this direction's pattern.
    fn extend(&mut self, n: usize, salt: usize) {
        let start = self.data.len();
        self.data
            .extend((start..start + n).map(|i| (i * 7 + (i >> 9) + salt) as u8));
    }

    fn done(&self) -> bool {
        self.got.len() == self.data.len()
    }
}

/// An MPTCP connection between two engines, with the application on both ends.
struct Pair {
    c: Stack,
    s: Stack,
    cid: ConnId,
    sid: ConnId,
    now: Instant,
    /// Every packet delivered, as delivered, in order.
    log: Vec<(Dir, Vec<u8>)>,
    up: Stream,
    down: Stream,
    events_c: Vec<Event>,
    events_s: Vec<Event>,
}

fn config(seed: u64) -> Config {
    let mut c = Config {
        seed: seed.into(),
        ..Config::default()
    };
    c.mptcp.enabled = true;
    // A correct ADD_ADDR is acted on (a join opened to it).
    c.mptcp.max_add_addr_accepted = 1;
    c
}

impl Pair {
    /// Connect the client (10.0.0.1) to the server (10.0.0.2:80), and move
    /// some data both ways over the first subflow.
    fn new() -> Pair {
        Pair::with(|_| {})
    }

    /// [`Pair::new`] with the server's configuration changed by `f`.
    fn with(f: impl Fn(&mut Config)) -> Pair {
        let mut c = Stack::new(config(1));
        let mut server_config = config(2);
        f(&mut server_config);
        let mut s = Stack::new(server_config);
        c.add_address(ip(C0));
        s.add_address(ip(S0));
        s.listen(PORT).unwrap();
        let now = Instant::from_millis(1);
        let cid = c.connect(now, Some(sock(C0, 0)), sock(S0, PORT)).unwrap();
        let mut p = Pair {
            c,
            s,
            cid,
            sid: cid,
            now,
            log: Vec::new(),
            up: Stream::default(),
            down: Stream::default(),
            events_c: Vec::new(),
            events_s: Vec::new(),
        };
        p.pump(&mut pass);
        // The server accepts once the client's first data arrives.
        p.up.extend(1000, 0);
        p.feed();
        p.pump(&mut pass);
        p.events_s.extend(std::iter::from_fn(|| p.s.poll_event()));
        p.sid = p
            .events_s
            .iter()
            .find_map(|e| match e {
                Event::Accepted { id, .. } => Some(*id),
                _ => None,
            })
            .expect("the server accepted");
        p.transfer(30_000, &mut pass);
        let m = p.c.info(cid).unwrap().mptcp.unwrap();
        assert!(!m.fallback, "no MPTCP to begin with: {m:?}");
        p
    }

    /// Deliver packets both ways, through `tap`, until neither side sends.
    fn pump(&mut self, tap: Tap<'_>) {
        let mut buf = vec![0u8; 2048];
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(n) = self.c.poll_transmit(self.now, &mut buf) {
                let pkt = tap(Dir::ToServer, &buf[..n]).unwrap_or_else(|| buf[..n].to_vec());
                self.s.handle_packet(self.now, &pkt);
                self.log.push((Dir::ToServer, pkt));
                moved = true;
            }
            while let Some(n) = self.s.poll_transmit(self.now, &mut buf) {
                let pkt = tap(Dir::ToClient, &buf[..n]).unwrap_or_else(|| buf[..n].to_vec());
                self.c.handle_packet(self.now, &pkt);
                self.log.push((Dir::ToClient, pkt));
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("the engines never went quiet");
    }

    /// Hand the engines what the applications still have to send.
    fn feed(&mut self) {
        for (st, id, s) in [
            (&mut self.c, self.cid, &mut self.up),
            (&mut self.s, self.sid, &mut self.down),
        ] {
            if s.sent < s.data.len() {
                if let Ok(n) = st.send(id, &s.data[s.sent..]) {
                    s.sent += n;
                }
            }
        }
    }

    /// Read what arrived, and the events.
    fn drain(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        for (st, id, s) in [
            (&mut self.s, self.sid, &mut self.up),
            (&mut self.c, self.cid, &mut self.down),
        ] {
            loop {
                match st.recv(id, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => s.got.extend_from_slice(&buf[..n]),
                    Err(Error::Finished) => {
                        s.fin = true;
                        break;
                    }
                    Err(e) => panic!("recv: {e:?}"),
                }
            }
        }
        self.events_c
            .extend(std::iter::from_fn(|| self.c.poll_event()));
        self.events_s
            .extend(std::iter::from_fn(|| self.s.poll_event()));
    }

    /// One step: send, deliver, read, advance the clock, fire due timers.
    fn step(&mut self, tap: Tap<'_>) {
        self.feed();
        self.pump(tap);
        self.drain();
        self.now += STEP;
        for st in [&mut self.c, &mut self.s] {
            if st.poll_timeout().is_some_and(|t| t <= self.now) {
                st.handle_timeout(self.now);
            }
        }
    }

    /// Steps for `d` of virtual time.
    fn run_for(&mut self, d: Duration, tap: Tap<'_>) {
        for _ in 0..d.as_millis() / STEP.as_millis() {
            self.step(tap);
        }
    }

    /// Send `n` more bytes each way and wait until all of it arrived; check it
    /// byte for byte.
    fn transfer(&mut self, n: usize, tap: Tap<'_>) {
        self.up.extend(n, 0);
        self.down.extend(n, 0x55);
        for _ in 0..2_000 {
            if self.up.done() && self.down.done() {
                break;
            }
            self.step(tap);
        }
        assert_eq!(self.up.got.len(), self.up.data.len(), "client to server");
        assert_eq!(
            self.down.got.len(),
            self.down.data.len(),
            "server to client"
        );
        assert!(self.up.got == self.up.data, "client to server corrupted");
        assert!(
            self.down.got == self.down.data,
            "server to client corrupted"
        );
    }

    /// The connection is alive and well: established on both ends, still
    /// MPTCP, never closed.
    fn assert_live(&self) {
        for (st, id, evs, who) in [
            (&self.c, self.cid, &self.events_c, "client"),
            (&self.s, self.sid, &self.events_s, "server"),
        ] {
            assert_eq!(st.state(id), Some(State::Established), "{who}");
            let m = st.info(id).unwrap().mptcp.expect("MPTCP");
            assert!(!m.fallback, "{who} fell back: {:?}", m.fallback_reason);
            assert!(
                !evs.iter().any(|e| matches!(e, Event::Closed { .. })),
                "{who}: {evs:?}"
            );
        }
    }

    /// Finish: more data both ways, then both sides close; every byte and
    /// both FINs arrive, and nothing closes by reset.
    fn finish(mut self) {
        self.transfer(50_000, &mut pass);
        self.assert_live();
        self.c.shutdown(self.cid).unwrap();
        self.s.shutdown(self.sid).unwrap();
        for _ in 0..2_000 {
            if self.up.fin && self.down.fin {
                break;
            }
            self.step(&mut pass);
        }
        assert!(self.up.fin && self.down.fin, "the close did not complete");
        assert!(self.up.got == self.up.data && self.down.got == self.down.data);
        for evs in [&self.events_c, &self.events_s] {
            assert!(
                evs.iter().all(|e| !matches!(
                    e,
                    Event::Closed { reason, .. } if *reason != CloseReason::Normal
                )),
                "{evs:?}"
            );
        }
        for st in [&self.c, &self.s] {
            assert_eq!(st.counters().mptcp_fallbacks, 0);
        }
    }

    fn server_info(&self) -> mptun_stack::endpoint::MptcpInfo {
        self.s.info(self.sid).unwrap().mptcp.unwrap()
    }

    fn client_info(&self) -> mptun_stack::endpoint::MptcpInfo {
        self.c.info(self.cid).unwrap().mptcp.unwrap()
    }

    /// Packets delivered from index `from` of the log on, parsed.
    fn since(&self, from: usize) -> Vec<(Dir, Seg)> {
        self.log[from..]
            .iter()
            .map(|(d, p)| (*d, Seg::parse(p)))
            .collect()
    }
}

/// Subflows of connection `id` not closed.
fn live_subflows(st: &Stack, id: ConnId) -> usize {
    st.info(id)
        .unwrap()
        .subflows
        .iter()
        .filter(|s| s.state != State::Closed)
        .count()
}

/// The MPTCP join and address counters, for before/after comparisons.
fn mp_counters(c: &Counters) -> [u64; 8] {
    [
        c.mptcp_join_syn_rx,
        c.mptcp_join_rejected,
        c.mptcp_joins_established,
        c.mptcp_join_hmac_failures,
        c.mptcp_add_addr_rx,
        c.mptcp_add_addr_echo_rx,
        c.mptcp_add_addr_hmac_failures,
        c.mptcp_fallbacks,
    ]
}

/// RFC 8684 §3.2: a SYN with MP_JOIN whose token names no connection of the
/// receiver must be answered with a RST (and §3.6: MP_TCPRST says why, here
/// "MPTCP-specific error"). Guessing tokens is what an off-path attacker does,
/// so the refusal must cost the live connection nothing: no subflow, no state,
/// and the transfer goes on.
#[test]
fn join_syn_with_unknown_token_is_refused_with_mp_tcprst() {
    let mut p = Pair::new();
    let token = p.server_info().local_token;
    let before = p.s.counters();
    let conns = p.s.connection_count();
    let from = p.log.len();

    let src = sock(HAND, 45000);
    let syn = craft(
        src,
        sock(S0, PORT),
        TcpFlags::SYN,
        SeqNumber(0x1234_5678),
        SeqNumber(0),
        Some(MptcpOption::MpJoin(MpJoin::Syn {
            backup: false,
            addr_id: 5,
            token: token.wrapping_add(1),
            nonce: 0xdead_beef,
        })),
    );
    p.s.handle_packet(p.now, &syn);
    p.pump(&mut pass);

    let answers: Vec<Seg> = p
        .since(from)
        .into_iter()
        .filter(|(d, s)| *d == Dir::ToClient && s.dst == src)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(answers.len(), 1, "one answer to the SYN: {answers:?}");
    let rst = &answers[0];
    assert!(rst.flags.rst() && !rst.flags.syn(), "{rst:?}");
    assert_eq!(
        rst.ack,
        SeqNumber(0x1234_5679),
        "the RST acknowledges the SYN"
    );
    let r = rst.tcprst().expect("the RST carries MP_TCPRST");
    assert_eq!(r.reason, TcpRst::REASON_MPTCP_ERROR);

    let after = p.s.counters();
    assert_eq!(after.mptcp_join_rejected, before.mptcp_join_rejected + 1);
    assert_eq!(after.mptcp_join_syn_rx, before.mptcp_join_syn_rx);
    assert_eq!(p.s.connection_count(), conns);
    assert_eq!(p.s.info(p.sid).unwrap().subflows.len(), 1);

    p.assert_live();
    p.finish();
}

/// A subflow joined by hand to the server's connection (we are the initiator
/// A, the server is B), from `src`, with nonce `nonce_a`.
struct HandJoin {
    src: SocketAddr,
    dst: SocketAddr,
    isn: SeqNumber,
    nonce_a: u32,
}

impl HandJoin {
    fn syn(&self, token: u32) -> Vec<u8> {
        craft(
            self.src,
            self.dst,
            TcpFlags::SYN,
            self.isn,
            SeqNumber(0),
            Some(MptcpOption::MpJoin(MpJoin::Syn {
                backup: false,
                addr_id: 5,
                token,
                nonce: self.nonce_a,
            })),
        )
    }

    /// The third ACK, carrying `hmac`, answering `synack`.
    fn third_ack(&self, synack: &Seg, hmac: [u8; 20]) -> Vec<u8> {
        craft(
            self.src,
            self.dst,
            TcpFlags::ACK,
            self.isn + 1,
            synack.seq + 1,
            Some(MptcpOption::MpJoin(MpJoin::Ack { hmac })),
        )
    }

    /// Send the SYN; return the server's SYN/ACK (checked: its truncated HMAC
    /// proves the server knows both keys) and the server's nonce.
    fn open(&self, p: &mut Pair, token: u32, key_a: u64, key_b: u64) -> (Seg, u32) {
        let from = p.log.len();
        p.s.handle_packet(p.now, &self.syn(token));
        p.pump(&mut pass);
        let synack = p
            .since(from)
            .into_iter()
            .map(|(_, s)| s)
            .find(|s| s.dst == self.src && s.is_syn_ack())
            .expect("the server answers the join SYN with a SYN/ACK");
        let Some(MpJoin::SynAck { hmac, nonce, .. }) = synack.join() else {
            panic!("no MP_JOIN in the SYN/ACK: {synack:?}");
        };
        let expect = crypto::join_synack_hmac(HashAlg::Sha256, key_b, key_a, nonce, self.nonce_a);
        assert_eq!(hmac, expect, "the server's SYN/ACK HMAC");
        (synack, nonce)
    }

    /// Send the SYN; the server's SYN/ACK and nonce, or `None` if it refused
    /// the join with a RST.
    fn try_open(&self, p: &mut Pair, token: u32) -> Option<(Seg, u32)> {
        let from = p.log.len();
        p.s.handle_packet(p.now, &self.syn(token));
        p.pump(&mut pass);
        let answer = p
            .since(from)
            .into_iter()
            .map(|(_, s)| s)
            .find(|s| s.dst == self.src)
            .expect("the server answers the join SYN");
        if answer.flags.rst() {
            return None;
        }
        let Some(MpJoin::SynAck { nonce, .. }) = answer.join() else {
            panic!("no MP_JOIN in the SYN/ACK: {answer:?}");
        };
        Some((answer, nonce))
    }
}

/// RFC 8684 §3.2: the responder accepts a joined subflow only when the third
/// ACK carries the initiator's HMAC (HMAC(Key_A ‖ Key_B, R_A ‖ R_B)); with the
/// wrong one it "MUST close the subflow with a RST" (and MP_TCPRST says why).
/// Only a holder of both keys may add a subflow: a wrong HMAC must add none and
/// leave the connection itself alone. A second hand-made join with the right
/// HMAC is then accepted: the packets were right but for the HMAC.
#[test]
fn join_third_ack_with_wrong_hmac_resets_the_subflow() {
    let mut p = Pair::new();
    let key_a = p.client_info().local_key;
    let key_b = p.server_info().local_key;
    let token = p.server_info().local_token;
    assert_eq!(token, crypto::token(HashAlg::Sha256, key_b));
    let before = p.s.counters();

    let j = HandJoin {
        src: sock(HAND, 45000),
        dst: sock(S0, PORT),
        isn: SeqNumber(0x4000_0000),
        nonce_a: 0x0a0a_0a0a,
    };
    let (synack, nonce_b) = j.open(&mut p, token, key_a, key_b);
    assert_eq!(live_subflows(&p.s, p.sid), 2, "the join is pending");
    let good = crypto::join_ack_hmac(HashAlg::Sha256, key_a, key_b, j.nonce_a, nonce_b);
    let mut bad = good;
    bad[0] ^= 0x01;
    let from = p.log.len();
    p.s.handle_packet(p.now, &j.third_ack(&synack, bad));
    p.pump(&mut pass);

    let to_hand: Vec<Seg> = p
        .since(from)
        .into_iter()
        .filter(|(_, s)| s.dst == j.src)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(to_hand.len(), 1, "{to_hand:?}");
    assert!(to_hand[0].flags.rst(), "{to_hand:?}");
    let r = to_hand[0].tcprst().expect("the RST carries MP_TCPRST");
    assert_eq!(r.reason, TcpRst::REASON_MPTCP_ERROR);
    let after = p.s.counters();
    assert_eq!(
        after.mptcp_join_hmac_failures,
        before.mptcp_join_hmac_failures + 1
    );
    assert_eq!(after.mptcp_join_syn_rx, before.mptcp_join_syn_rx + 1);
    assert_eq!(
        after.mptcp_joins_established,
        before.mptcp_joins_established
    );
    assert_eq!(live_subflows(&p.s, p.sid), 1, "no subflow was added");
    p.transfer(20_000, &mut pass);
    p.assert_live();

    // The same join with the right HMAC is accepted (and then reset by us).
    let j2 = HandJoin {
        src: sock(HAND, 45001),
        isn: SeqNumber(0x5000_0000),
        nonce_a: 0x0b0b_0b0b,
        ..j
    };
    let (synack, nonce_b) = j2.open(&mut p, token, key_a, key_b);
    let good = crypto::join_ack_hmac(HashAlg::Sha256, key_a, key_b, j2.nonce_a, nonce_b);
    p.s.handle_packet(p.now, &j2.third_ack(&synack, good));
    p.pump(&mut pass);
    let after2 = p.s.counters();
    assert_eq!(
        after2.mptcp_joins_established,
        after.mptcp_joins_established + 1
    );
    assert_eq!(
        after2.mptcp_join_hmac_failures,
        after.mptcp_join_hmac_failures
    );
    assert_eq!(live_subflows(&p.s, p.sid), 2);
    let rst = craft(
        j2.src,
        j2.dst,
        TcpFlags::RST,
        j2.isn + 1,
        SeqNumber(0),
        None,
    );
    p.s.handle_packet(p.now, &rst);
    p.pump(&mut pass);
    assert_eq!(live_subflows(&p.s, p.sid), 1);
    p.finish();
}

/// The client joins from its second address (a `subflow` endpoint added to the
/// live connection); `tap` sees the packets of the whole run.
fn client_joins(p: &mut Pair, tap: Tap<'_>) {
    p.c.add_endpoint(
        ip(C1),
        EndpointFlags {
            subflow: true,
            ..EndpointFlags::default()
        },
    );
    p.run_for(Duration::from_millis(100), tap);
}

/// RFC 8684 §3.2: the initiator checks the responder's truncated HMAC in the
/// SYN/ACK (HMAC(Key_B ‖ Key_A, R_B ‖ R_A)) and, if it is wrong, "MUST close
/// the subflow with a RST" (MP_TCPRST: "MPTCP-specific error"). Whoever forged
/// the SYN/ACK does not know the keys and must not get a subflow of ours; the
/// connection itself goes on. (The uncorrupted run is the next test's.)
#[test]
fn join_synack_with_wrong_hmac_is_reset_by_the_client() {
    let mut p = Pair::new();
    let before = p.c.counters();
    let from = p.log.len();
    let mut corrupted = 0;
    client_joins(&mut p, &mut |d, pkt| {
        if d != Dir::ToClient {
            return None;
        }
        rewrite_mptcp(pkt, |o| match o {
            MptcpOption::MpJoin(MpJoin::SynAck {
                backup,
                addr_id,
                hmac,
                nonce,
            }) => {
                corrupted += 1;
                Some(MptcpOption::MpJoin(MpJoin::SynAck {
                    backup,
                    addr_id,
                    hmac: hmac ^ 1,
                    nonce,
                }))
            }
            _ => None,
        })
    });
    assert_eq!(corrupted, 1, "one join SYN/ACK");

    let segs = p.since(from);
    let join_syn = segs
        .iter()
        .find(|(d, s)| *d == Dir::ToServer && s.flags.syn())
        .map(|(_, s)| s.clone())
        .expect("the client opened a join");
    assert_eq!(join_syn.src.ip(), ip(C1));
    let from_join: Vec<&Seg> = segs
        .iter()
        .filter(|(d, s)| *d == Dir::ToServer && s.src == join_syn.src)
        .map(|(_, s)| s)
        .collect();
    assert!(
        !from_join
            .iter()
            .any(|s| matches!(s.join(), Some(MpJoin::Ack { .. }))),
        "the client must not complete the join: {from_join:?}"
    );
    let rst = from_join
        .iter()
        .find(|s| s.flags.rst())
        .expect("the client resets the subflow");
    let r = rst.tcprst().expect("the RST carries MP_TCPRST");
    assert_eq!(r.reason, TcpRst::REASON_MPTCP_ERROR);

    let after = p.c.counters();
    assert_eq!(
        after.mptcp_join_hmac_failures,
        before.mptcp_join_hmac_failures + 1
    );
    assert_eq!(
        after.mptcp_joins_established,
        before.mptcp_joins_established
    );
    assert_eq!(live_subflows(&p.c, p.cid), 1);
    assert_eq!(
        live_subflows(&p.s, p.sid),
        1,
        "the server's half is gone too"
    );
    p.assert_live();
    p.finish();
}

/// RFC 8684 §3.2: a subflow is identified by its 4-tuple; the HMAC of a third
/// ACK authenticates that subflow's handshake and nothing else. Replayed on
/// its own subflow after the join completed, it is an old duplicate ACK and
/// must change nothing (no reset, no second subflow, no counter). Replayed from
/// another source port, it belongs to no subflow and no connection, so it is
/// refused with a RST (RFC 9293 §3.10.7.1) and adds no subflow: a captured
/// third ACK must not let anyone add a path to the connection.
#[test]
fn replayed_join_third_ack_adds_nothing() {
    let mut p = Pair::new();
    let before_s = p.s.counters();
    let from = p.log.len();
    client_joins(&mut p, &mut pass);
    let third_ack = p.log[from..]
        .iter()
        .find(|(d, pkt)| {
            let s = Seg::parse(pkt);
            *d == Dir::ToServer && !s.flags.syn() && matches!(s.join(), Some(MpJoin::Ack { .. }))
        })
        .map(|(_, pkt)| pkt.clone())
        .expect("the client's third ACK");
    let sf = Seg::parse(&third_ack);
    assert_eq!(sf.src.ip(), ip(C1));
    let established = p.s.counters();
    assert_eq!(
        established.mptcp_joins_established,
        before_s.mptcp_joins_established + 1,
        "the join completed"
    );
    assert_eq!(live_subflows(&p.s, p.sid), 2);
    assert_eq!(live_subflows(&p.c, p.cid), 2);
    // Data over both subflows.
    p.transfer(100_000, &mut pass);
    p.assert_live();
    let on_join = p.s.info(p.sid).unwrap().subflows[1].bytes_received;
    assert!(on_join > 0, "the joined subflow carried no data");

    // (a) The same third ACK again, on its own subflow.
    let before = p.s.counters();
    let from = p.log.len();
    p.s.handle_packet(p.now, &third_ack);
    p.pump(&mut pass);
    let after = p.s.counters();
    assert_eq!(mp_counters(&after), mp_counters(&before));
    assert_eq!(after.resets_sent, before.resets_sent);
    assert!(
        !p.since(from).iter().any(|(_, s)| s.flags.rst()),
        "no reset for a replay on the subflow"
    );
    assert_eq!(p.s.info(p.sid).unwrap().subflows.len(), 2);
    assert_eq!(live_subflows(&p.s, p.sid), 2);
    p.transfer(20_000, &mut pass);
    p.assert_live();

    // (b) The same third ACK from another source port: no such subflow.
    let before = p.s.counters();
    let conns = p.s.connection_count();
    let from = p.log.len();
    let port = sf.src.port().wrapping_add(1000).max(1024);
    p.s.handle_packet(p.now, &with_src_port(&third_ack, port));
    p.pump(&mut pass);
    let after = p.s.counters();
    let rsts: Vec<Seg> = p
        .since(from)
        .into_iter()
        .filter(|(d, s)| *d == Dir::ToClient && s.flags.rst())
        .map(|(_, s)| s)
        .collect();
    assert_eq!(rsts.len(), 1, "{rsts:?}");
    assert_eq!(rsts[0].dst, SocketAddr::new(sf.src.ip(), port));
    assert_eq!(rsts[0].seq, sf.ack, "RST for an ACK: SEQ = SEG.ACK");
    assert_eq!(mp_counters(&after), mp_counters(&before));
    assert_eq!(after.drop_no_listener, before.drop_no_listener + 1);
    assert_eq!(p.s.connection_count(), conns);
    assert_eq!(p.s.info(p.sid).unwrap().subflows.len(), 2);
    assert_eq!(live_subflows(&p.s, p.sid), 2);
    assert_eq!(live_subflows(&p.c, p.cid), 2);
    p.finish();
}

/// RFC 8684 §3.4.1: an ADD_ADDR carries a truncated HMAC (keyed with both
/// connection keys) so that only the peer can announce an address; a receiver
/// that finds it wrong "MUST silently ignore" the option. Here the server
/// announces its second address (a `signal` endpoint) and the first ADD_ADDR
/// reaches the client with its HMAC altered: no echo, no join, nothing
/// remembered. The server's repeat, unaltered, is then echoed and acted on (a
/// join to the announced address): one bad option poisons nothing.
#[test]
fn add_addr_with_wrong_hmac_is_ignored() {
    let mut p = Pair::new();
    let before = p.c.counters();
    let from = p.log.len();
    p.s.add_endpoint(
        ip(S1),
        EndpointFlags {
            signal: true,
            ..EndpointFlags::default()
        },
    );
    let id = p.s.endpoint(ip(S1)).expect("endpoint").0;
    let corrupted = Cell::new(0);
    let mut tap = |d: Dir, pkt: &[u8]| {
        if d != Dir::ToClient || corrupted.get() > 0 {
            return None;
        }
        rewrite_mptcp(pkt, |o| match o {
            MptcpOption::AddAddr(AddAddr::V1 {
                echo: false,
                addr_id,
                addr,
                port,
                hmac: Some(h),
            }) => {
                corrupted.set(corrupted.get() + 1);
                Some(MptcpOption::AddAddr(AddAddr::V1 {
                    echo: false,
                    addr_id,
                    addr,
                    port,
                    hmac: Some(h ^ 1 << 40),
                }))
            }
            _ => None,
        })
    };
    // Less than the server's first ADD_ADDR repeat (1 s).
    p.run_for(Duration::from_millis(500), &mut tap);
    assert_eq!(corrupted.get(), 1, "the server announced its address");
    let segs = p.since(from);
    let announcements = segs
        .iter()
        .filter(|(d, s)| {
            *d == Dir::ToClient && matches!(s.add_addr(), Some(AddAddr::V1 { echo: false, .. }))
        })
        .count();
    assert_eq!(announcements, 1);
    assert!(
        !segs
            .iter()
            .any(|(d, s)| *d == Dir::ToServer && s.add_addr().is_some()),
        "the client echoed a bad ADD_ADDR"
    );
    assert!(
        !segs
            .iter()
            .any(|(d, s)| *d == Dir::ToServer && s.flags.syn()),
        "the client joined to a bad ADD_ADDR"
    );
    let after = p.c.counters();
    assert_eq!(
        after.mptcp_add_addr_hmac_failures,
        before.mptcp_add_addr_hmac_failures + 1
    );
    assert_eq!(after.mptcp_add_addr_rx, before.mptcp_add_addr_rx);
    assert!(p.client_info().remote_addrs.is_empty());
    assert_eq!(p.server_info().announced, vec![(id, ip(S1), false)]);
    assert_eq!(live_subflows(&p.c, p.cid), 1);
    p.transfer(20_000, &mut tap);
    p.assert_live();

    // The server repeats it (unaltered now): echoed, remembered, joined.
    let from = p.log.len();
    p.run_for(Duration::from_millis(2_000), &mut tap);
    assert_eq!(corrupted.get(), 1);
    let echo = p
        .since(from)
        .into_iter()
        .find_map(|(d, s)| match s.add_addr() {
            Some(a @ AddAddr::V1 { echo: true, .. }) if d == Dir::ToServer => Some(a),
            _ => None,
        });
    assert!(
        matches!(echo, Some(AddAddr::V1 { addr, .. }) if addr == ip(S1)),
        "the client echoes the good ADD_ADDR: {echo:?}"
    );
    let after2 = p.c.counters();
    assert_eq!(after2.mptcp_add_addr_rx, after.mptcp_add_addr_rx + 1);
    assert_eq!(
        after2.mptcp_add_addr_hmac_failures,
        after.mptcp_add_addr_hmac_failures
    );
    assert_eq!(p.server_info().announced, vec![(id, ip(S1), true)]);
    assert_eq!(p.client_info().remote_addrs, vec![(id, ip(S1), None)]);
    assert_eq!(
        after2.mptcp_joins_established,
        after.mptcp_joins_established + 1,
        "the client joined to the announced address"
    );
    assert_eq!(live_subflows(&p.c, p.cid), 2);
    p.finish();
}

/// A peer that holds both keys opens joins and resets them, over and over,
/// and leaves half-open ones behind. A closed subflow is freed at once (its
/// record, its buffers and its 4-tuple, which then answers with a plain RST
/// like any unknown one), so the connection never holds more subflow records
/// than its limit allows — 1 + `max_subflows` — however many joins come and
/// go.
#[test]
fn joins_opened_and_reset_in_a_loop_leave_no_records() {
    // A budget of join attempts large enough not to be the limit here (the
    // next test is about the budget).
    let mut p = Pair::with(|c| c.mptcp.join_attempts = 1000);
    let key_a = p.client_info().local_key;
    let key_b = p.server_info().local_key;
    let token = p.server_info().local_token;
    let limit = 1 + p.s.config().mptcp.max_subflows;
    for i in 0..200u32 {
        let j = HandJoin {
            src: sock(HAND, 20000 + i as u16),
            dst: sock(S0, PORT),
            isn: SeqNumber(0x1000_0000u32.wrapping_mul(i + 1)),
            nonce_a: 0x0c0c_0000 + i,
        };
        let records = |p: &Pair| p.s.info(p.sid).unwrap().subflows.len();
        if i == 7 {
            // Half-open: a SYN only, never completed; it holds one of the two
            // join slots until it times out.
            let syn = j.syn(token);
            p.s.handle_packet(p.now, &syn);
            p.pump(&mut pass);
            assert!(records(&p) <= limit, "join {i}: {} records", records(&p));
            continue;
        }
        let (synack, nonce_b) = j.try_open(&mut p, token).expect("a join slot is free");
        let hmac = crypto::join_ack_hmac(HashAlg::Sha256, key_a, key_b, j.nonce_a, nonce_b);
        p.s.handle_packet(p.now, &j.third_ack(&synack, hmac));
        p.pump(&mut pass);
        assert!(records(&p) <= limit, "join {i}: {} records", records(&p));
        let rst = craft(j.src, j.dst, TcpFlags::RST, j.isn + 1, SeqNumber(0), None);
        p.s.handle_packet(p.now, &rst);
        p.pump(&mut pass);
        assert!(records(&p) <= limit, "join {i}: {} records", records(&p));
        if i % 10 == 0 {
            p.transfer(5_000, &mut pass);
        }
    }
    // Every completed join took the one free slot and gave it back.
    assert!(p.s.counters().mptcp_joins_established >= 199);
    assert_eq!(p.s.counters().mptcp_join_rejected, 0);
    // The half-open join times out in the end; the connection lives on.
    p.run_for(Duration::from_secs(200), &mut pass);
    assert_eq!(p.s.info(p.sid).unwrap().subflows.len(), 1);
    p.finish();
}

/// The address id the server knows the client's second address (path 1) by.
fn path_1_id(p: &Pair) -> u8 {
    let info = p.s.info(p.sid).unwrap();
    let sub = info.subflows.iter().find(|s| s.remote.ip() == ip(C1));
    sub.expect("a subflow on path 1").remote_id
}

/// Append REMOVE_ADDR naming the client's address `id` to the first client
/// segment on path 0 that has room for it: what an attacker who sees path 0
/// (but not path 1) can do. The segment stays acceptable: it is genuine.
fn remove_addr_on_path_0(id: u8, done: &Cell<bool>, d: Dir, pkt: &[u8]) -> Option<Vec<u8>> {
    let seg = Seg::parse(pkt);
    if done.get() || d != Dir::ToServer || seg.src.ip() != ip(C0) {
        return None;
    }
    let rm = MptcpOption::RemoveAddr(RemoveAddr::new(&[id]).unwrap());
    let enc = rm.encode().unwrap();
    let out = packet::rewrite_options(pkt, |opts, _| {
        opts.push((TCPOPT_MPTCP, enc.as_slice().to_vec()));
        true
    })?;
    done.set(true);
    Some(out)
}

/// Packets of path 1 (the client's second address) are lost.
fn path_1_down(pkt: &[u8]) -> Option<Vec<u8>> {
    let seg = Seg::parse(pkt);
    (seg.src.ip() == ip(C1) || seg.dst.ip() == ip(C1)).then(Vec::new)
}

/// RFC 8684 §3.4.2: a host receiving REMOVE_ADDR "must ensure the affected
/// path(s) are no longer in use before it instigates closure": it probes the
/// path (a keepalive), and a path that answers is not removed. A REMOVE_ADDR
/// put on path 0 by someone who sees only path 0 must not take down path 1.
#[test]
fn remove_addr_for_a_working_path_keeps_it() {
    let mut p = Pair::new();
    client_joins(&mut p, &mut pass);
    p.transfer(20_000, &mut pass);
    assert_eq!(live_subflows(&p.s, p.sid), 2);
    let done = Cell::new(false);
    let rm_before = p.s.counters().mptcp_rm_addr_rx;
    let id = path_1_id(&p);
    assert_ne!(id, 0);
    // Data one way only: the client's ACKs have room for one more option.
    p.down.extend(60_000, 0x33);
    p.run_for(Duration::from_millis(300), &mut |d, pkt| {
        remove_addr_on_path_0(id, &done, d, pkt)
    });
    assert!(done.get(), "no client segment on path 0 to carry it");
    p.run_for(Duration::from_secs(2), &mut pass);
    assert_eq!(p.s.counters().mptcp_rm_addr_rx, rm_before + 1);
    assert_eq!(live_subflows(&p.s, p.sid), 2, "the path answered: kept");
    assert_eq!(live_subflows(&p.c, p.cid), 2);
    p.finish();
}

/// The same REMOVE_ADDR for a path that no longer answers: the subflow on it
/// is reset once the probe goes unanswered (within about an RTO, long before
/// its own retransmissions would give up), and the data goes on path 0.
#[test]
fn remove_addr_for_a_dead_path_closes_it() {
    let mut p = Pair::new();
    client_joins(&mut p, &mut pass);
    p.transfer(20_000, &mut pass);
    assert_eq!(live_subflows(&p.s, p.sid), 2);
    let done = Cell::new(false);
    let id = path_1_id(&p);
    p.down.extend(60_000, 0x33);
    p.run_for(Duration::from_millis(300), &mut |d, pkt| {
        path_1_down(pkt).or_else(|| remove_addr_on_path_0(id, &done, d, pkt))
    });
    assert!(done.get(), "no client segment on path 0 to carry it");
    p.run_for(Duration::from_secs(1), &mut |_, pkt| path_1_down(pkt));
    assert_eq!(live_subflows(&p.s, p.sid), 1, "the unanswered path is gone");
    p.transfer(20_000, &mut |_, pkt| path_1_down(pkt));
    p.assert_live();
}

/// The peer's join attempts, live or not, are budgeted per connection: a
/// burst (`join_attempts`, 8), then one every `join_refill` (10 s). Past it a
/// join SYN gets the same RST with MP_TCPRST "MPTCP-specific error" as one
/// naming an unknown token, so the refusals tell a scanner nothing.
#[test]
fn join_attempts_beyond_the_budget_are_refused_like_unknown_tokens() {
    let mut p = Pair::new();
    let key_a = p.client_info().local_key;
    let key_b = p.server_info().local_key;
    let token = p.server_info().local_token;
    let join = |i: u32| HandJoin {
        src: sock(HAND, 30000 + i as u16),
        dst: sock(S0, PORT),
        isn: SeqNumber(0x2000_0000u32.wrapping_mul(i + 1)),
        nonce_a: 0x0d0d_0000 + i,
    };
    let open_and_reset = |p: &mut Pair, j: &HandJoin| -> bool {
        let Some((synack, nonce_b)) = j.try_open(p, token) else {
            return false;
        };
        let hmac = crypto::join_ack_hmac(HashAlg::Sha256, key_a, key_b, j.nonce_a, nonce_b);
        p.s.handle_packet(p.now, &j.third_ack(&synack, hmac));
        let rst = craft(j.src, j.dst, TcpFlags::RST, j.isn + 1, SeqNumber(0), None);
        p.s.handle_packet(p.now, &rst);
        p.pump(&mut pass);
        true
    };
    let taken = (0..20)
        .filter(|&i| open_and_reset(&mut p, &join(i)))
        .count();
    assert_eq!(taken, 8, "the burst");
    assert_eq!(p.s.counters().mptcp_join_rejected, 12);
    // The refusal is the one an unknown token gets.
    let from = p.log.len();
    p.s.handle_packet(p.now, &join(50).syn(token));
    p.s.handle_packet(p.now, &join(51).syn(token ^ 0x5a5a_5a5a));
    p.pump(&mut pass);
    let answers: Vec<Seg> = p
        .since(from)
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.dst.ip() == ip(HAND))
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    for a in &answers {
        assert!(a.flags.rst() && a.flags.ack(), "{a:?}");
        assert_eq!(
            a.tcprst().map(|r| r.reason),
            Some(TcpRst::REASON_MPTCP_ERROR)
        );
    }
    // Ten seconds later, one more.
    p.run_for(Duration::from_secs(10), &mut pass);
    assert!(open_and_reset(&mut p, &join(60)));
    assert!(!open_and_reset(&mut p, &join(61)));
    p.finish();
}

/// A peer's announcements are joined only to addresses a host can have: not
/// to one of ours (a loop through ourselves), not to loopback, multicast or
/// the like. Here the server (holding the keys, so the HMACs are right)
/// announces 127.0.0.1 and then the client's own address: both are echoed,
/// neither is joined.
#[test]
fn announced_addresses_of_no_host_are_not_joined() {
    let mut p = Pair::new();
    p.s.add_endpoint(
        ip(S1),
        EndpointFlags {
            signal: true,
            ..EndpointFlags::default()
        },
    );
    let key_a = p.client_info().local_key;
    let key_b = p.server_info().local_key;
    let fakes = [ip("127.0.0.1"), ip(C0)];
    let next = Cell::new(0usize);
    let mut tap = |d: Dir, pkt: &[u8]| {
        if d != Dir::ToClient || next.get() >= fakes.len() {
            return None;
        }
        rewrite_mptcp(pkt, |o| match o {
            MptcpOption::AddAddr(AddAddr::V1 {
                echo: false,
                addr_id,
                port,
                ..
            }) => {
                let addr = fakes[next.get()];
                next.set(next.get() + 1);
                let hmac =
                    crypto::add_addr_hmac(HashAlg::Sha256, key_b, key_a, addr_id, addr, port);
                Some(MptcpOption::AddAddr(AddAddr::V1 {
                    echo: false,
                    addr_id,
                    addr,
                    port,
                    hmac: Some(hmac),
                }))
            }
            _ => None,
        })
    };
    let from = p.log.len();
    // The first announcement and its repeat a second later.
    p.run_for(Duration::from_millis(1_500), &mut tap);
    assert_eq!(next.get(), 2);
    let c = p.c.counters();
    assert_eq!(c.mptcp_add_addr_rx, 2, "both HMACs were right");
    assert_eq!(c.mptcp_add_addr_refused, 2);
    let segs = p.since(from);
    assert!(
        !segs.iter().any(|(_, s)| s.flags.syn()),
        "no join was opened"
    );
    assert_eq!(live_subflows(&p.c, p.cid), 1);
    p.finish();
}
