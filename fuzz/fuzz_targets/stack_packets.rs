//! One `Stack` ("A", the stack under test) fed structure-aware packets.
//!
//! A listens on port 80 and, unless the input says otherwise, has a live
//! connection with a real peer stack ("B"): plain TCP or MPTCP v1 / v1 with DSS
//! checksums / v0, A as client or as server, IPv4 or IPv6. The fuzzer then
//! plays a sequence of steps: forged segments from B's addresses (flags, seq
//! and ack relative to what A really expects and sent, TCP options, MPTCP
//! options built from the connection's real keys, tokens and DSNs, payload),
//! real traffic between A and B, the applications' calls, and time. Every
//! forged segment is emitted with valid IP and TCP checksums (and DSS
//! checksums when the fuzzer asks for a correct one), so it reaches the
//! engine's logic rather than its checksum check.
//!
//! Asserted: no panic; A's output per step is bounded; every packet A emits
//! parses (IP and TCP checksums valid, options well-formed, every MPTCP
//! option decodes); and afterwards A still answers a fresh SYN with a SYN/ACK.
#![no_main]

use arbitrary::Arbitrary;
use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use mptun_fuzz::sim::addr;
use mptun_stack::mptcp::crypto::{self, DssChecksum, HashAlg};
use mptun_stack::wire::mptcp::{
    AddAddr, DataAck, Dss, FastClose, Mapping, MpCapable, MpCapableFlags, MpFail, MpJoin, MpPrio,
    RemoveAddr, TcpRst,
};
use mptun_stack::wire::{
    emit_packet, mptcp_options, IpRepr, MptcpOption, MptcpVersion, ParseCtx, RawOptions,
    SackBlocks, SeqNumber, TcpFlags, TcpRepr, IPPROTO_TCP,
};
use mptun_stack::{Config, ConnId, EndpointFlags, Event, Instant, Stack, SynCookies};
use std::net::{IpAddr, SocketAddr};

const PORT: u16 = 80;
/// Packets A may emit in answer to one step: far more than any legitimate
/// burst here (an initial window of data, a few dozen answers).
const MAX_OUT_PER_STEP: usize = 2000;

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Mode {
    Tcp,
    V1,
    V1Checksum,
    V0,
}

#[derive(Arbitrary, Debug)]
struct Input {
    mode: Mode,
    /// A opened the connection (else B did, and A accepted it).
    a_client: bool,
    ipv6: bool,
    /// No connection: the steps hit A's listener only.
    listen_only: bool,
    /// A answers every SYN with a cookie.
    cookies: bool,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Forge(Seg),
    /// Deliver the real traffic queued between A and B, both ways.
    Exchange,
    /// Time passes: 2^(n % 17) ms (1 ms .. 65 s).
    Advance(u8),
    ASend(u16),
    BSend(u16),
    ARead,
    AShutdown,
    BShutdown,
    ARelease,
}

/// A value relative to the one the connection really has now.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Rel {
    Exact,
    Plus(i16),
    /// Far away: offsets in units of 64 KiB.
    Far(i8),
    Raw(u32),
}

impl Rel {
    fn apply32(self, real: u32) -> u32 {
        match self {
            Rel::Exact => real,
            Rel::Plus(d) => real.wrapping_add(d as i32 as u32),
            Rel::Far(d) => real.wrapping_add((d as i32 as u32) << 16),
            Rel::Raw(v) => v,
        }
    }
    fn apply64(self, real: u64) -> u64 {
        match self {
            Rel::Exact => real,
            Rel::Plus(d) => real.wrapping_add(d as i64 as u64),
            Rel::Far(d) => real.wrapping_add((d as i64 as u64) << 16),
            Rel::Raw(v) => real & !0xffff_ffff | u64::from(v),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum From {
    /// B's side of the live connection (or of the last one A talked to).
    Conn,
    /// B's first address, another port.
    Port(u8),
    /// B's second address (an MP_JOIN source).
    Second(u8),
}

#[derive(Arbitrary, Debug)]
struct Seg {
    from: From,
    /// To A's second address instead of the first.
    to_second: bool,
    flags: u8,
    seq: Rel,
    ack: Rel,
    window: u16,
    mss: Option<u16>,
    wscale: Option<u8>,
    sack_permitted: bool,
    /// (TSval relative to B's last, TSecr relative to A's last).
    ts: Option<(Rel, Rel)>,
    /// Blocks relative to A's snd_nxt: (start, length).
    sack: Vec<(i16, u16)>,
    mptcp: Vec<MpOpt>,
    payload_len: u16,
    payload_byte: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Key {
    /// The key this field should hold.
    Right,
    /// The other side's.
    Swapped,
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum MpOpt {
    Capable {
        v0: bool,
        flags: u8,
        sender: Option<Key>,
        receiver: Option<Key>,
        data_len: Option<u16>,
        checksum: Option<u16>,
    },
    JoinSyn {
        real_token: bool,
        token: u32,
        nonce: u32,
        addr_id: u8,
        backup: bool,
    },
    JoinSynAck {
        hmac: u64,
        nonce: u32,
        addr_id: u8,
    },
    JoinAck {
        /// The right HMAC for the last MP_JOIN nonces seen, else this byte repeated.
        right: bool,
        byte: u8,
    },
    Dss {
        data_fin: bool,
        /// Relative to the data A has sent (its highest DSN).
        ack: Option<(Rel, bool)>,
        /// DSN relative to what A expects next; SSN relative to this segment's
        /// own sequence number; length relative to the payload length.
        map: Option<(Rel, i8, i8, bool)>,
        /// With checksums: the right DSS checksum (else this raw value).
        checksum: Option<u16>,
    },
    AddAddr {
        echo: bool,
        id: u8,
        second: bool,
        port: Option<u16>,
        right_hmac: bool,
        hmac: u64,
    },
    RemoveAddr(Vec<u8>),
    Prio {
        backup: bool,
        id: Option<u8>,
    },
    Fail(Rel),
    FastClose(Key),
    TcpRst {
        flags: u8,
        reason: u8,
    },
    Raw(Vec<u8>),
}

/// What the real conversation between A and B has shown so far.
#[derive(Default, Debug)]
struct Seen {
    /// Highest sequence number A has sent on the live tuple (incl. SYN/FIN).
    a_snd_nxt: u32,
    /// A's latest ACK there (what A expects from B).
    a_rcv_nxt: u32,
    a_tsval: u32,
    b_tsval: u32,
    /// B's ISN on the live tuple: relative SSNs count from it.
    b_isn: u32,
    /// Data level: the next DSN A expects (its DATA_ACK) and A's highest sent.
    a_data_ack: Option<u64>,
    a_data_nxt: Option<u64>,
    /// MP_JOIN nonces of the latest join handshake A took part in.
    nonces: (u32, u32),
}

struct World {
    a: Stack,
    b: Stack,
    a_addrs: [IpAddr; 2],
    b_addrs: [IpAddr; 2],
    now: Instant,
    to_a: Vec<Vec<u8>>,
    to_b: Vec<Vec<u8>>,
    a_conn: Option<ConnId>,
    b_conn: Option<ConnId>,
    /// The live connection's tuple as B sees it: (B's address, port, A's address, port).
    tuple: Option<(SocketAddr, SocketAddr)>,
    seen: Seen,
    mode: Mode,
    buf: Vec<u8>,
}

fn config(seed: u64, mode: Mode, cookies: bool) -> Config {
    let mut c = Config {
        seed: seed.into(),
        ..Config::default()
    };
    // Small buffers: what a forged window or out-of-order range may allocate
    // stays cheap, so more inputs per second.
    c.tcp.send_buffer = 64 << 10;
    c.tcp.recv_buffer = 64 << 10;
    if cookies {
        c.syn_cookies = SynCookies::Always;
    }
    c.mptcp.enabled = mode != Mode::Tcp;
    c.mptcp.v0 = mode == Mode::V0;
    c.mptcp.v1 = mode != Mode::V0;
    c.mptcp.checksum = mode == Mode::V1Checksum;
    c.mptcp.max_add_addr_accepted = 2;
    c
}

impl World {
    fn new(inp: &Input) -> World {
        let a_addrs = [addr(inp.ipv6, 0, 1), addr(inp.ipv6, 1, 1)];
        let b_addrs = [addr(inp.ipv6, 0, 2), addr(inp.ipv6, 1, 2)];
        let mut a = Stack::new(config(1, inp.mode, inp.cookies));
        let mut b = Stack::new(config(2, inp.mode, false));
        let flags = EndpointFlags {
            signal: true,
            subflow: true,
            backup: false,
        };
        a.add_address(a_addrs[0]);
        a.add_endpoint(a_addrs[1], flags);
        b.add_address(b_addrs[0]);
        b.add_endpoint(b_addrs[1], flags);
        a.listen(PORT).unwrap();
        b.listen(PORT).unwrap();
        World {
            a,
            b,
            a_addrs,
            b_addrs,
            now: Instant::from_millis(1),
            to_a: Vec::new(),
            to_b: Vec::new(),
            a_conn: None,
            b_conn: None,
            tuple: None,
            seen: Seen::default(),
            mode: inp.mode,
            buf: vec![0u8; 65536],
        }
    }

    fn alg(&self) -> HashAlg {
        if self.mode == Mode::V0 {
            HashAlg::Sha1
        } else {
            HashAlg::Sha256
        }
    }

    /// Drain A's and B's output into the queues, watching what A says.
    fn drain(&mut self) {
        let mut n = 0;
        while let Some(len) = self.a.poll_transmit(self.now, &mut self.buf) {
            n += 1;
            assert!(n <= MAX_OUT_PER_STEP, "A emits without bound");
            let pkt = self.buf[..len].to_vec();
            self.observe_a(&pkt);
            self.to_b.push(pkt);
        }
        let mut n = 0;
        while let Some(len) = self.b.poll_transmit(self.now, &mut self.buf) {
            n += 1;
            assert!(n <= MAX_OUT_PER_STEP, "B emits without bound");
            let pkt = self.buf[..len].to_vec();
            self.observe_b(&pkt);
            self.to_a.push(pkt);
        }
        while let Some(ev) = self.a.poll_event() {
            if let Event::Accepted { id, .. } = ev {
                if self.a_conn.is_none() {
                    self.a_conn = Some(id);
                } else {
                    let _ = self.a.release(id);
                }
            }
        }
        while let Some(ev) = self.b.poll_event() {
            if let Event::Accepted { id, local, remote, .. } = ev {
                if self.b_conn.is_none() {
                    self.b_conn = Some(id);
                    self.tuple = Some((local, remote));
                }
            }
        }
    }

    /// Every packet A emits must be well-formed; learn the live tuple's numbers.
    fn observe_a(&mut self, pkt: &[u8]) {
        let (ip, tcp) = IpRepr::parse(pkt).expect("A emitted a malformed IP packet");
        assert_eq!(ip.protocol, IPPROTO_TCP, "A emitted non-TCP");
        let seg = TcpRepr::parse(ip.src, ip.dst, tcp, true).expect("A emitted a bad TCP segment");
        let ctx = ParseCtx::from_repr(&seg);
        for d in mptcp_options(&seg) {
            if let Err(e) = MptcpOption::parse(d, ctx) {
                panic!("A emitted an MPTCP option that does not decode: {e:?} {d:02x?}");
            }
        }
        let Some((b_sa, a_sa)) = self.tuple else {
            return;
        };
        if SocketAddr::new(ip.src, seg.src_port) != a_sa
            || SocketAddr::new(ip.dst, seg.dst_port) != b_sa
        {
            // Joins: remember A's nonce for forged third ACKs.
            if let Some(MptcpOption::MpJoin(MpJoin::SynAck { nonce, .. }))
            | Some(MptcpOption::MpJoin(MpJoin::Syn { nonce, .. })) = mptcp_options(&seg)
                .next()
                .and_then(|d| MptcpOption::parse(d, ctx).ok())
            {
                self.seen.nonces.0 = nonce;
            }
            return;
        }
        let len =
            seg.payload.len() as u32 + u32::from(seg.flags.syn()) + u32::from(seg.flags.fin());
        let end = seg.seq.0.wrapping_add(len);
        if self.seen.a_snd_nxt == 0 || (end.wrapping_sub(self.seen.a_snd_nxt) as i32) > 0 {
            self.seen.a_snd_nxt = end;
        }
        if seg.flags.ack() {
            self.seen.a_rcv_nxt = seg.ack.0;
        }
        if let Some((tsval, _)) = seg.timestamp {
            self.seen.a_tsval = tsval;
        }
        for d in mptcp_options(&seg) {
            if let Ok(MptcpOption::Dss(dss)) = MptcpOption::parse(d, ctx) {
                if let Some(a) = dss.data_ack {
                    let near = self.seen.a_data_ack.unwrap_or(a.value);
                    self.seen.a_data_ack = Some(a.expand(near));
                }
                if let Some(m) = dss.mapping {
                    let near = self.seen.a_data_nxt.unwrap_or(m.dsn);
                    let end = m.expand_dsn(near).wrapping_add(u64::from(m.data_len));
                    self.seen.a_data_nxt = Some(end);
                }
            }
        }
    }

    fn observe_b(&mut self, pkt: &[u8]) {
        let Ok((ip, tcp)) = IpRepr::parse(pkt) else {
            return;
        };
        let Ok(seg) = TcpRepr::parse(ip.src, ip.dst, tcp, false) else {
            return;
        };
        if let Some((tsval, _)) = seg.timestamp {
            self.seen.b_tsval = tsval;
        }
        if seg.flags.syn() {
            if self.tuple.is_none() {
                self.tuple = Some((
                    SocketAddr::new(ip.src, seg.src_port),
                    SocketAddr::new(ip.dst, seg.dst_port),
                ));
            }
            if Some((
                SocketAddr::new(ip.src, seg.src_port),
                SocketAddr::new(ip.dst, seg.dst_port),
            )) == self.tuple
            {
                self.seen.b_isn = seg.seq.0;
            }
            let ctx = ParseCtx::from_repr(&seg);
            if let Some(MptcpOption::MpJoin(MpJoin::Syn { nonce, .. }))
            | Some(MptcpOption::MpJoin(MpJoin::SynAck { nonce, .. })) = mptcp_options(&seg)
                .next()
                .and_then(|d| MptcpOption::parse(d, ctx).ok())
            {
                self.seen.nonces.1 = nonce;
            }
        }
    }

    fn exchange(&mut self) {
        for p in std::mem::take(&mut self.to_a) {
            self.a.handle_packet(self.now, &p);
        }
        for p in std::mem::take(&mut self.to_b) {
            self.b.handle_packet(self.now, &p);
        }
        self.drain();
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        for s in [&mut self.a, &mut self.b] {
            if s.poll_timeout().is_some_and(|t| t <= self.now) {
                s.handle_timeout(self.now);
            }
        }
        self.drain();
    }

    /// Open the connection and let the handshake (and a join) finish.
    fn establish(&mut self, a_client: bool) {
        if a_client {
            let id = self
                .a
                .connect(
                    self.now,
                    Some(SocketAddr::new(self.a_addrs[0], 0)),
                    SocketAddr::new(self.b_addrs[0], PORT),
                )
                .unwrap();
            self.a_conn = Some(id);
        } else {
            let id = self
                .b
                .connect(
                    self.now,
                    Some(SocketAddr::new(self.b_addrs[0], 0)),
                    SocketAddr::new(self.a_addrs[0], PORT),
                )
                .unwrap();
            self.b_conn = Some(id);
        }
        self.drain();
        for _ in 0..8 {
            self.exchange();
            self.advance(Duration::from_millis(1));
        }
    }

    fn keys(&self) -> (u64, u64) {
        let info = self.a_conn.and_then(|c| self.a.info(c));
        let mp = info.and_then(|i| i.mptcp);
        match mp {
            Some(m) => (m.local_key, m.remote_key.unwrap_or(0)),
            None => (0, 0),
        }
    }

    fn token(&self) -> u32 {
        let info = self.a_conn.and_then(|c| self.a.info(c));
        info.and_then(|i| i.mptcp).map_or(0, |m| m.local_token)
    }

    fn forge(&mut self, s: &Seg) {
        let (b_sa, a_sa) = self.tuple.unwrap_or((
            SocketAddr::new(self.b_addrs[0], 40000),
            SocketAddr::new(self.a_addrs[0], PORT),
        ));
        let src = match s.from {
            From::Conn => b_sa,
            From::Port(p) => SocketAddr::new(self.b_addrs[0], 1000 + u16::from(p)),
            From::Second(p) => SocketAddr::new(self.b_addrs[1], 2000 + u16::from(p)),
        };
        let dst = if s.to_second {
            SocketAddr::new(self.a_addrs[1], PORT)
        } else {
            a_sa
        };
        let payload = vec![s.payload_byte; usize::from(s.payload_len % 1401)];
        let mut r = TcpRepr::new(src.port(), dst.port());
        r.flags = TcpFlags(s.flags);
        r.seq = SeqNumber(s.seq.apply32(self.seen.a_rcv_nxt));
        r.ack = SeqNumber(s.ack.apply32(self.seen.a_snd_nxt));
        r.window = s.window;
        r.mss = s.mss;
        r.window_scale = s.wscale;
        r.sack_permitted = s.sack_permitted;
        r.timestamp =
            s.ts.map(|(v, e)| (v.apply32(self.seen.b_tsval), e.apply32(self.seen.a_tsval)));
        let mut sack = SackBlocks::new();
        for &(start, len) in s.sack.iter().take(4) {
            let l = self.seen.a_snd_nxt.wrapping_add(start as i32 as u32);
            sack.push(SeqNumber(l), SeqNumber(l.wrapping_add(u32::from(len))));
        }
        r.sack_blocks = sack;
        let ctx = ParseCtx {
            syn: r.flags.syn(),
            ack: r.flags.ack(),
            has_payload: !payload.is_empty(),
        };
        let encoded: Vec<Vec<u8>> = s
            .mptcp
            .iter()
            .take(3)
            .filter_map(|o| self.mp_option(o, &r, &payload, ctx))
            .collect();
        let mut raw = RawOptions::new();
        for e in &encoded {
            raw.push(mptun_stack::wire::TCPOPT_MPTCP, e);
        }
        r.unknown = raw;
        // Drop options until they fit, as a sender would have to.
        while r.options_len() > 40 {
            if !r.sack_blocks.is_empty() {
                r.sack_blocks = SackBlocks::new();
            } else if r.timestamp.is_some() {
                r.timestamp = None;
            } else if !r.unknown.is_empty() {
                let mut fewer = RawOptions::new();
                for (k, d) in r.unknown.iter().skip(1) {
                    fewer.push(k, d);
                }
                r.unknown = fewer;
            } else {
                r.mss = None;
                r.window_scale = None;
            }
        }
        let mut buf = vec![0u8; 2000];
        let n = emit_packet(src.ip(), dst.ip(), 64, &r, &[&payload], &mut buf)
            .expect("a forged segment that fits emits");
        self.a.handle_packet(self.now, &buf[..n]);
        self.drain();
    }

    fn key(&self, k: Key, right: u64, other: u64) -> u64 {
        match k {
            Key::Right => right,
            Key::Swapped => other,
            Key::Raw(v) => v,
        }
    }

    /// One forged MPTCP option's bytes (after kind and length).
    fn mp_option(
        &self,
        o: &MpOpt,
        r: &TcpRepr<'_>,
        payload: &[u8],
        ctx: ParseCtx,
    ) -> Option<Vec<u8>> {
        let (a_key, b_key) = self.keys();
        let alg = self.alg();
        let opt = match o {
            MpOpt::Capable {
                v0,
                flags,
                sender,
                receiver,
                data_len,
                checksum,
            } => MptcpOption::MpCapable(MpCapable {
                version: if *v0 {
                    MptcpVersion::V0
                } else {
                    MptcpVersion::V1
                },
                flags: MpCapableFlags(*flags),
                sender_key: sender.map(|k| self.key(k, b_key, a_key)),
                receiver_key: receiver.map(|k| self.key(k, a_key, b_key)),
                data_len: *data_len,
                checksum: *checksum,
            }),
            MpOpt::JoinSyn {
                real_token,
                token,
                nonce,
                addr_id,
                backup,
            } => MptcpOption::MpJoin(MpJoin::Syn {
                backup: *backup,
                addr_id: *addr_id,
                token: if *real_token { self.token() } else { *token },
                nonce: *nonce,
            }),
            MpOpt::JoinSynAck {
                hmac,
                nonce,
                addr_id,
            } => MptcpOption::MpJoin(MpJoin::SynAck {
                backup: false,
                addr_id: *addr_id,
                hmac: *hmac,
                nonce: *nonce,
            }),
            MpOpt::JoinAck { right, byte } => {
                let hmac = if *right {
                    // B joined A: B's HMAC(Key_B ‖ Key_A, R_B ‖ R_A).
                    crypto::join_ack_hmac(alg, b_key, a_key, self.seen.nonces.1, self.seen.nonces.0)
                } else {
                    [*byte; 20]
                };
                MptcpOption::MpJoin(MpJoin::Ack { hmac })
            }
            MpOpt::Dss {
                data_fin,
                ack,
                map,
                checksum,
            } => {
                let data_ack = ack.map(|(rel, is_64bit)| DataAck {
                    value: rel.apply64(self.seen.a_data_nxt.unwrap_or(0)),
                    is_64bit,
                });
                let mapping = map.map(|(dsn, ssn, len, dsn_64bit)| {
                    let dsn = dsn.apply64(self.seen.a_data_ack.unwrap_or(0));
                    let ssn_rel = r
                        .seq
                        .0
                        .wrapping_sub(self.seen.b_isn)
                        .wrapping_add(ssn as i32 as u32);
                    let data_len = (payload.len() as i32 + i32::from(len) + i32::from(*data_fin))
                        .clamp(0, 65535) as u16;
                    let checksum = checksum.map(|raw| {
                        if raw & 1 == 0 {
                            let mut c = DssChecksum::new(dsn, ssn_rel, data_len);
                            c.update(payload);
                            c.finish()
                        } else {
                            raw
                        }
                    });
                    Mapping {
                        dsn,
                        dsn_64bit,
                        ssn: ssn_rel,
                        data_len,
                        checksum,
                    }
                });
                MptcpOption::Dss(Dss {
                    data_fin: *data_fin,
                    data_ack,
                    mapping,
                })
            }
            MpOpt::AddAddr {
                echo,
                id,
                second,
                port,
                right_hmac,
                hmac,
            } => {
                let addr = self.b_addrs[usize::from(*second)];
                if self.mode == Mode::V0 {
                    MptcpOption::AddAddr(AddAddr::V0 {
                        addr_id: *id,
                        addr,
                        port: *port,
                    })
                } else {
                    let hmac = (!echo).then(|| {
                        if *right_hmac {
                            crypto::add_addr_hmac(alg, b_key, a_key, *id, addr, *port)
                        } else {
                            *hmac
                        }
                    });
                    MptcpOption::AddAddr(AddAddr::V1 {
                        echo: *echo,
                        addr_id: *id,
                        addr,
                        port: *port,
                        hmac,
                    })
                }
            }
            MpOpt::RemoveAddr(ids) => MptcpOption::RemoveAddr(RemoveAddr::new(
                &ids[..ids.len().min(mptun_stack::wire::mptcp::MAX_REMOVE_ADDR_IDS)],
            )?),
            MpOpt::Prio { backup, id } => MptcpOption::MpPrio(MpPrio {
                backup: *backup,
                addr_id: *id,
            }),
            MpOpt::Fail(rel) => MptcpOption::MpFail(MpFail {
                dsn: rel.apply64(self.seen.a_data_nxt.unwrap_or(0)),
            }),
            MpOpt::FastClose(k) => MptcpOption::FastClose(FastClose {
                receiver_key: self.key(*k, a_key, b_key),
            }),
            MpOpt::TcpRst { flags, reason } => MptcpOption::TcpRst(TcpRst {
                flags: flags & 0x0f,
                reason: *reason,
            }),
            MpOpt::Raw(bytes) => return Some(bytes[..bytes.len().min(38)].to_vec()),
        };
        let enc = opt.encode().ok()?;
        // Forms that do not fit this segment (e.g. a SYN's MP_CAPABLE on a data
        // segment) still go out: the engine must ignore them; decode only to
        // keep the fuzzer honest about lengths.
        let _ = MptcpOption::parse(enc.as_slice(), ctx);
        Some(enc.as_slice().to_vec())
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Forge(s) => self.forge(s),
            Step::Exchange => self.exchange(),
            Step::Advance(n) => self.advance(Duration::from_millis(1 << (n % 17))),
            Step::ASend(n) => {
                if let Some(c) = self.a_conn {
                    let _ = self.a.send(c, &vec![0xa5; usize::from(*n)]);
                }
                self.drain();
            }
            Step::BSend(n) => {
                if let Some(c) = self.b_conn {
                    let _ = self.b.send(c, &vec![0x5b; usize::from(*n)]);
                }
                self.drain();
            }
            Step::ARead => {
                if let Some(c) = self.a_conn {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = self.a.recv(c, &mut buf) {
                        if n == 0 {
                            break;
                        }
                    }
                }
            }
            Step::AShutdown => {
                if let Some(c) = self.a_conn {
                    let _ = self.a.shutdown(c);
                }
                self.drain();
            }
            Step::BShutdown => {
                if let Some(c) = self.b_conn {
                    let _ = self.b.shutdown(c);
                }
                self.drain();
            }
            Step::ARelease => {
                if let Some(c) = self.a_conn.take() {
                    let _ = self.a.release(c);
                }
                self.drain();
            }
        }
    }

    /// A fresh SYN from a new port must still get a SYN/ACK.
    fn still_serving(&mut self) {
        let src = SocketAddr::new(self.b_addrs[0], 65000);
        let mut r = TcpRepr::new(src.port(), PORT);
        r.flags = TcpFlags(TcpFlags::SYN);
        r.seq = SeqNumber(12345);
        r.window = 65535;
        r.mss = Some(1460);
        let mut buf = vec![0u8; 200];
        let n = emit_packet(src.ip(), self.a_addrs[0], 64, &r, &[], &mut buf).unwrap();
        self.now += Duration::from_secs(1);
        self.a.handle_packet(self.now, &buf[..n]);
        let mut saw = false;
        let mut count = 0;
        while let Some(len) = self.a.poll_transmit(self.now, &mut self.buf) {
            count += 1;
            assert!(count <= MAX_OUT_PER_STEP, "A emits without bound");
            let (ip, tcp) = IpRepr::parse(&self.buf[..len]).unwrap();
            let seg = TcpRepr::parse(ip.src, ip.dst, tcp, true).unwrap();
            if seg.dst_port == src.port() && seg.flags.syn() && seg.flags.ack() {
                saw = true;
            }
        }
        assert!(saw, "A no longer answers a SYN on its listening port");
    }
}

fuzz_target!(|inp: Input| {
    let mut w = World::new(&inp);
    if !inp.listen_only {
        w.establish(inp.a_client);
    }
    for step in inp.steps.iter().take(64) {
        w.step(step);
    }
    w.still_serving();
});
