//! Two `Stack`s transferring data through a network the fuzzer controls.
//!
//! A client and a server (TCP, MPTCP v1, v1 with DSS checksums, or v0; IPv4
//! or IPv6; optionally a second path: the client has a subflow address, the
//! server announces one) each send a seeded payload (`sim::Payload`), shut
//! down, read to EOF and release. While the fuzzer's list of decisions lasts,
//! each packet put on the wire is delivered, dropped, duplicated, delayed
//! (reordered), or altered the way a middlebox can: TCP or MPTCP options
//! stripped, truncated (malformed) or duplicated, and — where DSS checksums
//! protect them — DSS mapping fields or payload bytes changed; altered packets
//! get valid IP/TCP checksums. Path 0 may also go down for a while. When the
//! decisions run out (or 60 s of virtual time pass) the network becomes clean.
//!
//! Asserted: no panic; bytes delivered to each application are exactly a
//! prefix of what the peer sent, in order, and EOF comes only after all of
//! it; per-step output is bounded; and within a bounded virtual time after
//! the network becomes clean (`SETTLE`), each end has either completed (read
//! everything to EOF) or seen its connection end with a reason (reset,
//! refused, timed out), and both stacks have freed every connection. A
//! connection still open then is "stuck".
#![no_main]

use arbitrary::Arbitrary;
use core::cmp::Reverse;
use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use mptun_fuzz::packet::rewrite_options;
use mptun_fuzz::sim::{addr, describe_packet, Payload};
use mptun_stack::endpoint::CloseReason;
use mptun_stack::wire::{emit_packet, IpRepr, TcpRepr, TCPOPT_MPTCP};
use mptun_stack::{
    Config, ConnId, EndpointFlags, Error, Event, Instant, PathEvent, PathEventKind, Stack,
};
use std::collections::BinaryHeap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

const PORT: u16 = 5001;
/// Virtual time after which the network is clean whatever the decisions say.
const MAX_IMPAIRED: Duration = Duration::from_secs(60);
/// How long after the network becomes clean everything must be over: the
/// largest retransmission backoff (max_rto 60 s) plus ample round trips,
/// TIME_WAIT (2 × 5 s) and a FIN_WAIT_2 timeout.
const SETTLE: Duration = Duration::from_secs(300);
const MAX_OUT_PER_STEP: usize = 5000;
/// Bytes each way at most (+1): enough for loss recovery and several windows
/// of data, small enough for hundreds of runs a second.
const MAX_BYTES: u64 = 24 * 1024 + 1;

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Mode {
    Tcp,
    V1,
    V1Checksum,
    V0,
}

impl Mode {
    fn checksums(self) -> bool {
        matches!(self, Mode::V1Checksum | Mode::V0)
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    mode: Mode,
    ipv6: bool,
    second_path: bool,
    client_bytes: u16,
    server_bytes: u16,
    /// The client shuts down only after the server's FIN.
    server_fin_first: bool,
    /// Base one-way delay of each path: 1 + n ms.
    delay: [u8; 2],
    /// Path 0 goes down at this packet number, until the network is clean.
    path0_down_at: Option<u8>,
    decisions: Vec<Decision>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Decision {
    /// The next 1 + n packets pass untouched.
    Pass(u8),
    Drop,
    Duplicate,
    /// Delayed by 1 + n ms more than the path's delay (overtaken by later ones).
    Delay(u8),
    Alter(Alter),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Alter {
    /// Every MPTCP option removed (a middlebox that strips unknown options).
    StripMptcp,
    /// The MPTCP options of one subtype removed.
    StripSubtype(u8),
    /// An MPTCP option cut short: malformed, so ignored by the receiver.
    Truncate {
        which: u8,
        len: u8,
    },
    /// An MPTCP option sent twice.
    DuplicateOption(u8),
    StripTimestamps,
    StripSack,
    /// MSS, window scale and SACK-permitted removed (matters on SYNs).
    StripSynOptions,
    /// With DSS checksums only: one bit of a DSS mapping (DSN, SSN, length,
    /// checksum) flipped — the checksum is there to catch it.
    FlipMapping {
        bit: u16,
    },
    /// With DSS checksums only: one payload byte changed (TCP checksum fixed).
    FlipPayload {
        at: u16,
        xor: u8,
    },
}

struct End {
    conn: Option<ConnId>,
    tx: Payload,
    sent: u64,
    rx: Payload,
    received: u64,
    eof: bool,
    shut: bool,
    released: bool,
    ended: Option<CloseReason>,
    /// Shut down only after EOF.
    wait_eof: bool,
    /// The fuzzer changed payload bytes the peer sent (FlipPayload).
    payload_altered: Arc<AtomicBool>,
    /// Bytes are also taken as they arrive by a `DirectReader` (which
    /// checks them as `read` does).
    direct: Option<Arc<Mutex<DirectCheck>>>,
    wants_direct: bool,
    scratch: Vec<u8>,
    expect: Vec<u8>,
}

impl End {
    fn new(tx: Payload, rx: Payload, wait_eof: bool) -> End {
        End {
            conn: None,
            tx,
            sent: 0,
            rx,
            received: 0,
            eof: false,
            shut: false,
            released: false,
            ended: None,
            wait_eof,
            payload_altered: Default::default(),
            direct: None,
            wants_direct: false,
            scratch: vec![0; 8192],
            expect: vec![0; 8192],
        }
    }

    fn done(&self) -> bool {
        self.released || self.ended.is_some()
    }

    fn on_event(&mut self, stack: &mut Stack, ev: Event, server: bool) {
        match ev {
            Event::Accepted { id, .. } => {
                assert!(server, "the client accepted a connection");
                if self.conn.is_none() && !self.done() {
                    self.conn = Some(id);
                    if self.wants_direct {
                        self.install_direct(stack, id);
                    }
                } else {
                    // Only one connection is ever opened; a second accept
                    // would mean a SYN was taken for a new connection.
                    panic!("second connection accepted: {ev:?}");
                }
            }
            Event::Closed { id, reason } if Some(id) == self.conn && !self.released => {
                // Read what is left: data before a reset still counts.
                self.read(stack, id);
                if reason != CloseReason::Normal {
                    self.ended = Some(reason);
                }
            }
            _ => {}
        }
    }

    /// Read with a `DirectReader` too (see `DirectCheck`).
    fn install_direct(&mut self, stack: &mut Stack, id: ConnId) {
        let check = Arc::new(Mutex::new(DirectCheck {
            received: self.received,
            rx: self.rx,
            altered: self.payload_altered.clone(),
            calls: 0,
        }));
        let c = check.clone();
        let reader = move |part: &[u8]| c.lock().unwrap().take(part);
        stack
            .set_direct_reader(id, Some(Box::new(reader)))
            .expect("set_direct_reader");
        self.direct = Some(check);
    }

    fn read(&mut self, stack: &mut Stack, id: ConnId) {
        if let Some(d) = &self.direct {
            self.received = d.lock().unwrap().received;
        }
        self.read_buffered(stack, id);
        if let Some(d) = &self.direct {
            d.lock().unwrap().received = self.received;
        }
    }

    fn read_buffered(&mut self, stack: &mut Stack, id: ConnId) {
        while !self.eof {
            match stack.recv(id, &mut self.scratch) {
                Ok(0) => break,
                Ok(n) => {
                    assert!(
                        self.received + n as u64 <= self.rx.len,
                        "received more than the peer sent: {} + {n} > {}",
                        self.received,
                        self.rx.len
                    );
                    self.rx.fill(self.received, &mut self.expect[..n]);
                    let wrong = (0..n).find(|&i| self.scratch[i] != self.expect[i]);
                    // A payload changed on the way and accepted (after MP_FAIL,
                    // as RFC 8684 §3.7 has it, or after a fallback) is what the
                    // middlebox delivered; anything else is a bug.
                    if let Some(i) = wrong.filter(|_| !self.payload_altered.load(Relaxed)) {
                        panic!(
                            "wrong byte delivered at stream offset {}",
                            self.received + i as u64
                        );
                    }
                    self.received += n as u64;
                }
                Err(Error::Finished) => {
                    assert_eq!(
                        self.received, self.rx.len,
                        "EOF after {} of the peer's {} bytes",
                        self.received, self.rx.len
                    );
                    self.eof = true;
                }
                Err(Error::Reset) => {
                    self.ended.get_or_insert(CloseReason::Reset);
                    break;
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
    }

    fn poll(&mut self, stack: &mut Stack) {
        let Some(id) = self.conn else { return };
        if self.released {
            return;
        }
        if self.ended.is_some() {
            // Every handle must be released, closed or not.
            stack.release(id).expect("release");
            self.released = true;
            return;
        }
        self.read(stack, id);
        if self.ended.is_some() {
            return;
        }
        while self.sent < self.tx.len {
            let n = (self.tx.len - self.sent).min(8192) as usize;
            self.tx.fill(self.sent, &mut self.scratch[..n]);
            match stack.send(id, &self.scratch[..n]) {
                Ok(0) => break,
                Ok(k) => self.sent += k as u64,
                // Closed under us: the Closed event says why.
                Err(Error::NotWritable) => return,
                Err(e) => panic!("send: {e}"),
            }
        }
        if !self.shut && self.sent == self.tx.len && (self.eof || !self.wait_eof) {
            match stack.shutdown(id) {
                Ok(()) => self.shut = true,
                Err(e) => panic!("shutdown: {e}"),
            }
        }
        if self.shut && self.eof {
            stack.release(id).expect("release");
            self.released = true;
        }
    }
}

/// An end's direct reader: takes all of what it is offered, half or none
/// (in turn), checking each byte against the payload as `End::read` does.
struct DirectCheck {
    received: u64,
    rx: Payload,
    altered: Arc<AtomicBool>,
    calls: u64,
}

impl DirectCheck {
    fn take(&mut self, part: &[u8]) -> usize {
        self.calls += 1;
        let n = match self.calls % 5 {
            2 => part.len() / 2,
            4 => 0,
            _ => part.len(),
        };
        assert!(
            self.received + n as u64 <= self.rx.len,
            "offered more than the peer sent: {} + {n} > {}",
            self.received,
            self.rx.len
        );
        let mut expect = vec![0; n];
        self.rx.fill(self.received, &mut expect);
        let wrong = (0..n).find(|&i| part[i] != expect[i]);
        if let Some(i) = wrong.filter(|_| !self.altered.load(Relaxed)) {
            panic!(
                "wrong byte offered at stream offset {}",
                self.received + i as u64
            );
        }
        self.received += n as u64;
        n
    }
}

fn config(seed: u64, mode: Mode) -> Config {
    let mut c = Config {
        seed: seed.into(),
        ..Config::default()
    };
    c.tcp.msl = Duration::from_secs(5);
    c.tcp.send_buffer = 64 << 10;
    c.tcp.recv_buffer = 64 << 10;
    c.mptcp.enabled = mode != Mode::Tcp;
    c.mptcp.v0 = mode == Mode::V0;
    c.mptcp.v1 = mode != Mode::V0;
    c.mptcp.checksum = mode == Mode::V1Checksum;
    c.mptcp.max_add_addr_accepted = 2;
    // A peer that freed its connection while every RST it sent was lost
    // leaves a receiver with nothing to send waiting for ever, in TCP as in
    // MPTCP (RFC 9293 has no timer for it): only keepalive finds it gone.
    // Its probes are answered by a live peer, so a connection wedged
    // between two live ends is still caught as stuck.
    c.tcp.keepalive = Some(mptun_stack::config::Keepalive {
        idle: Duration::from_secs(60),
        interval: Duration::from_secs(10),
        probes: 3,
    });
    c
}

/// A packet on the wire: (deliver at, order sent, to host, bytes).
type InFlight = (Instant, u64, usize, Vec<u8>);

struct Net {
    queue: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    delay: [Duration; 2],
    ipv6: bool,
    path0_down: bool,
}

impl Net {
    fn path_of(&self, dst: IpAddr) -> usize {
        usize::from(dst != addr(self.ipv6, 0, 1) && dst != addr(self.ipv6, 0, 2))
    }
    fn host_of(&self, dst: IpAddr) -> Option<usize> {
        (0..2u8)
            .flat_map(|p| [(p, 1u8), (p, 2u8)])
            .find(|&(p, h)| addr(self.ipv6, p, h) == dst)
            .map(|(_, h)| usize::from(h - 1))
    }
    fn send(&mut self, now: Instant, pkt: Vec<u8>, extra: Duration) {
        let Some((_, dst)) = mptun_fuzz::sim::parse_addrs(&pkt) else {
            return;
        };
        let Some(to) = self.host_of(dst) else {
            return;
        };
        let path = self.path_of(dst);
        if path == 0 && self.path0_down {
            return;
        }
        self.order += 1;
        let at = now + self.delay[path] + extra;
        self.queue.push(Reverse((at, self.order, to, pkt)));
    }
}

/// `pkt` with one payload byte changed, checksums valid.
fn flip_payload(pkt: &[u8], at: u16, xor: u8) -> Option<Vec<u8>> {
    let (ip, tcp) = IpRepr::parse(pkt).ok()?;
    let seg = TcpRepr::parse(ip.src, ip.dst, tcp, false).ok()?;
    if seg.payload.is_empty() || xor == 0 {
        return None;
    }
    let mut payload = seg.payload.to_vec();
    let i = usize::from(at) % payload.len();
    payload[i] ^= xor;
    let mut buf = vec![0u8; pkt.len() + 80];
    let n = emit_packet(ip.src, ip.dst, ip.hop_limit, &seg, &[&payload], &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// `pkt` altered as `a` says; `None` when it does not apply to this packet.
fn alter(pkt: &[u8], a: Alter, mode: Mode) -> Option<Vec<u8>> {
    match a {
        Alter::StripMptcp => rewrite_options(pkt, |o, _| {
            let n = o.len();
            o.retain(|(k, _)| *k != TCPOPT_MPTCP);
            o.len() != n
        }),
        Alter::StripSubtype(st) => rewrite_options(pkt, |o, _| {
            let n = o.len();
            o.retain(|(k, d)| !(*k == TCPOPT_MPTCP && d.first().map(|b| b >> 4) == Some(st % 9)));
            o.len() != n
        }),
        Alter::Truncate { which, len } => rewrite_options(pkt, |o, _| {
            let mp: Vec<usize> = (0..o.len()).filter(|&i| o[i].0 == TCPOPT_MPTCP).collect();
            match mp.get(usize::from(which) % mp.len().max(1)) {
                Some(&i) => {
                    let keep = usize::from(len) % o[i].1.len().max(1);
                    o[i].1.truncate(keep);
                    true
                }
                None => false,
            }
        }),
        Alter::DuplicateOption(which) => rewrite_options(pkt, |o, _| {
            let mp: Vec<usize> = (0..o.len()).filter(|&i| o[i].0 == TCPOPT_MPTCP).collect();
            match mp.get(usize::from(which) % mp.len().max(1)) {
                Some(&i) => {
                    let dup = o[i].clone();
                    o.push(dup);
                    true
                }
                None => false,
            }
        }),
        Alter::StripTimestamps | Alter::StripSack | Alter::StripSynOptions => {
            let (ip, tcp) = IpRepr::parse(pkt).ok()?;
            let mut seg = TcpRepr::parse(ip.src, ip.dst, tcp, false).ok()?;
            match a {
                Alter::StripTimestamps => seg.timestamp = None,
                Alter::StripSack => seg.sack_blocks = Default::default(),
                _ => {
                    seg.mss = None;
                    seg.window_scale = None;
                    seg.sack_permitted = false;
                }
            }
            let mut buf = vec![0u8; pkt.len() + 80];
            let n =
                emit_packet(ip.src, ip.dst, ip.hop_limit, &seg, &[seg.payload], &mut buf).ok()?;
            buf.truncate(n);
            Some(buf)
        }
        Alter::FlipMapping { bit } if mode.checksums() => rewrite_options(pkt, |o, _| {
            // DSS: subtype 2; flags byte 1; then DATA_ACK (4/8) if A, then the
            // mapping if M. Only mapping bytes are touched.
            for (k, d) in o.iter_mut() {
                if *k != TCPOPT_MPTCP || d.first().map(|b| b >> 4) != Some(2) || d.len() < 2 {
                    continue;
                }
                let flags = d[1];
                if flags & 0x04 == 0 {
                    continue;
                }
                let ack = match (flags & 0x01 != 0, flags & 0x02 != 0) {
                    (false, _) => 0,
                    (true, false) => 4,
                    (true, true) => 8,
                };
                let start = 2 + ack;
                if d.len() <= start {
                    continue;
                }
                let bits = (d.len() - start) * 8;
                let b = usize::from(bit) % bits;
                d[start + b / 8] ^= 0x80 >> (b % 8);
                return true;
            }
            false
        }),
        Alter::FlipPayload { at, xor } if mode.checksums() => flip_payload(pkt, at, xor),
        Alter::FlipMapping { .. } | Alter::FlipPayload { .. } => None,
    }
}

/// Fail with everything known about the two ends. (With FUZZ_TRACE set, every
/// packet and event has been printed as it happened.)
fn stuck(why: &str, now: Instant, clean_at: Instant, ends: &[End; 2], stacks: &[Stack; 2]) -> ! {
    let st: Vec<String> = stacks
        .iter()
        .map(|s| {
            s.connections()
                .iter()
                .map(|&c| format!("{c}: {:?}", s.info(c)))
                .collect::<Vec<_>>()
                .join("; ")
                + &format!("\ncounters {:?}", s.counters())
        })
        .collect();
    let e = |x: &End| {
        format!(
            "rx {}/{} eof {} tx {}/{} shut {} ended {:?} released {}",
            x.received, x.rx.len, x.eof, x.sent, x.tx.len, x.shut, x.ended, x.released
        )
    };
    panic!(
        "{why} at {now} (clean since {clean_at}): client {}; server {}; connections {} / {}\n{st:#?}",
        e(&ends[0]),
        e(&ends[1]),
        stacks[0].connection_count(),
        stacks[1].connection_count(),
    )
}

/// What the path-event monitor reported per connection: each connection's
/// events come between its CREATED and its CLOSED, once each.
#[derive(Default)]
struct PathLog {
    created: std::collections::HashSet<ConnId>,
    closed: std::collections::HashSet<ConnId>,
}

impl PathLog {
    fn check(&mut self, e: PathEvent) {
        assert!(!self.closed.contains(&e.id), "an event after CLOSED: {e:?}");
        match e.kind {
            PathEventKind::Created { .. } => {
                assert!(self.created.insert(e.id), "CREATED twice: {e:?}");
            }
            PathEventKind::Fallback { .. } => {}
            PathEventKind::Closed => {
                assert!(
                    self.created.contains(&e.id),
                    "CLOSED without CREATED: {e:?}"
                );
                self.closed.insert(e.id);
            }
            _ => assert!(self.created.contains(&e.id), "before CREATED: {e:?}"),
        }
    }
}

fn run(inp: &Input) {
    let ipv6 = inp.ipv6;
    let mptcp = inp.mode != Mode::Tcp;
    let mut stacks = [
        Stack::new(config(11, inp.mode)),
        Stack::new(config(22, inp.mode)),
    ];
    for s in stacks.iter_mut() {
        s.set_path_events(true);
    }
    let mut paths = [PathLog::default(), PathLog::default()];
    let (c0, s0) = (addr(ipv6, 0, 1), addr(ipv6, 0, 2));
    stacks[0].add_address(c0);
    stacks[1].add_address(s0);
    if inp.second_path && mptcp {
        let flags = |signal, subflow| EndpointFlags {
            signal,
            subflow,
            backup: false,
        };
        stacks[0].add_endpoint(addr(ipv6, 1, 1), flags(false, true));
        stacks[1].add_endpoint(addr(ipv6, 1, 2), flags(true, false));
    }
    stacks[1].listen(PORT).unwrap();
    let client_tx = Payload::new(0xC11E, u64::from(inp.client_bytes) % MAX_BYTES);
    let server_tx = Payload::new(0x5E7E, u64::from(inp.server_bytes) % MAX_BYTES);
    let mut ends = [
        End::new(client_tx, server_tx, inp.server_fin_first),
        End::new(server_tx, client_tx, false),
    ];
    let mut net = Net {
        queue: BinaryHeap::new(),
        order: 0,
        delay: [
            Duration::from_millis(1 + u64::from(inp.delay[0])),
            Duration::from_millis(1 + u64::from(inp.delay[1])),
        ],
        ipv6,
        path0_down: false,
    };
    // Odd delays give that end a direct reader too (no input byte of its
    // own, so that the corpus keeps its meaning).
    ends[0].wants_direct = inp.delay[0] % 2 == 1;
    ends[1].wants_direct = inp.delay[1] % 2 == 1;
    let mut now = Instant::from_millis(1);
    let cid = stacks[0]
        .connect(now, Some(SocketAddr::new(c0, 0)), SocketAddr::new(s0, PORT))
        .unwrap();
    ends[0].conn = Some(cid);
    if ends[0].wants_direct {
        ends[0].install_direct(&mut stacks[0], cid);
    }
    let ends_altered = [
        ends[0].payload_altered.clone(),
        ends[1].payload_altered.clone(),
    ];
    let mut decisions = inp.decisions.iter().copied();
    let mut pass = 0u32;
    let mut packet_no = 0u64;
    let mut impaired = true;
    let mut clean_at = now + MAX_IMPAIRED;
    let mut buf = vec![0u8; 65536];
    let tracing = std::env::var_os("FUZZ_TRACE").is_some();
    let mut stalled = 0u32;
    loop {
        // Deliveries due now.
        while let Some(Reverse((at, _, _, _))) = net.queue.peek() {
            if *at > now {
                break;
            }
            let Reverse((_, _, to, pkt)) = net.queue.pop().unwrap();
            if tracing {
                eprintln!("{now} deliver to {to}: {}", describe_packet(&pkt));
            }
            stacks[to].handle_packet(now, &pkt);
        }
        for s in stacks.iter_mut() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        for (h, s) in stacks.iter_mut().enumerate() {
            while let Some(ev) = s.poll_event() {
                if tracing {
                    eprintln!("{now} host {h} event {ev:?}");
                }
                ends[h].on_event(s, ev, h == 1);
            }
            while let Some(e) = s.poll_path_event() {
                if tracing {
                    eprintln!("{now} host {h} path event {e:?}");
                }
                paths[h].check(e);
            }
            ends[h].poll(s);
        }
        if impaired && now >= clean_at {
            impaired = false;
            clean_at = now;
            net.path0_down = false;
        }
        for (h, s) in stacks.iter_mut().enumerate() {
            let mut n_out = 0;
            while let Some(n) = s.poll_transmit(now, &mut buf) {
                n_out += 1;
                assert!(n_out <= MAX_OUT_PER_STEP, "host {h} emits without bound");
                let pkt = buf[..n].to_vec();
                packet_no += 1;
                if impaired && inp.path0_down_at.is_some_and(|k| u64::from(k) == packet_no) {
                    net.path0_down = true;
                }
                let decision = if !impaired || pass > 0 {
                    pass = pass.saturating_sub(1);
                    Decision::Pass(0)
                } else {
                    match decisions.next() {
                        Some(d) => d,
                        None => {
                            impaired = false;
                            clean_at = now;
                            net.path0_down = false;
                            Decision::Pass(0)
                        }
                    }
                };
                if tracing {
                    eprintln!(
                        "{now} host {h} send {} [{decision:?}]",
                        describe_packet(&pkt)
                    );
                }
                match decision {
                    Decision::Pass(k) => {
                        pass = u32::from(k);
                        net.send(now, pkt, Duration::ZERO);
                    }
                    Decision::Drop => {}
                    Decision::Duplicate => {
                        net.send(now, pkt.clone(), Duration::ZERO);
                        net.send(now, pkt, Duration::from_micros(10));
                    }
                    Decision::Delay(ms) => {
                        net.send(now, pkt, Duration::from_millis(1 + u64::from(ms)));
                    }
                    Decision::Alter(a) => {
                        let p = match alter(&pkt, a, inp.mode) {
                            Some(p) => {
                                if matches!(a, Alter::FlipPayload { .. }) {
                                    // Host h sent it: the other end reads it.
                                    ends_altered[1 - h].store(true, Relaxed);
                                }
                                p
                            }
                            None => pkt,
                        };
                        net.send(now, p, Duration::ZERO);
                    }
                }
            }
        }
        // A server that never accepted anything is done once the client is:
        // no connection will come any more.
        let server_done = ends[1].done() || (ends[1].conn.is_none() && ends[0].done());
        let finished =
            ends[0].done() && server_done && stacks.iter().all(|s| s.connection_count() == 0);
        if finished {
            return;
        }
        let next = net
            .queue
            .peek()
            .map(|Reverse((t, ..))| *t)
            .into_iter()
            .chain(stacks.iter().filter_map(|s| s.poll_timeout()))
            .chain(impaired.then_some(clean_at))
            .min();
        let Some(next) = next else {
            stuck("stuck: nothing scheduled", now, clean_at, &ends, &stacks);
        };
        if next > now {
            now = next;
            stalled = 0;
        } else {
            stalled += 1;
            if stalled > 100_000 {
                stuck(
                    "livelock: time does not advance",
                    now,
                    clean_at,
                    &ends,
                    &stacks,
                );
            }
        }
        if !impaired && now > clean_at + SETTLE {
            stuck(
                "stuck: not over long after the network became clean",
                now,
                clean_at,
                &ends,
                &stacks,
            );
        }
    }
}

fuzz_target!(|inp: Input| {
    run(&inp);
});
