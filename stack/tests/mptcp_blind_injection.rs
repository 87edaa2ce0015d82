//! Blind injection against live MPTCP connections: an off-path attacker who
//! knows only the 4-tuples of the subflows (and the MPTCP version) spoofs
//! segments carrying MPTCP options, with every sequence number, ACK,
//! timestamp, DSN, DATA_ACK and key drawn at random (`blind/mod.rs`). RFC
//! 8684 §5 asks that MPTCP be no easier to attack than TCP: such a segment
//! must change nothing that a blind segment cannot change in TCP, i.e.
//! nothing at all (RFC 5961). The MPTCP options of a segment count only once
//! TCP has found the segment acceptable (RFC 8684 §3: they are part of the
//! segment; a segment TCP drops carries no signal).
//!
//! Two engines are wired back to back at the packet level (the `Pair` of
//! `mptcp_bad_input.rs`). Each test moves data both ways over a live
//! connection — MPTCP v1 and v0, one subflow and two (a join from the client's
//! second address), the attacker spoofing the client toward the server and the
//! server toward the client — injects its packets between the real segments
//! (and during the close), and requires after every step: both ends still
//! established and MPTCP (no fallback), the same subflows in the same states
//! with the same backup flags, no `Closed` event, no end of stream, no more
//! data DATA_ACKed than the peer received; and at the end every byte and both
//! FINs delivered, byte-exact, and no fallback counted.
//!
//! Each test runs every case and reports every failing one. An `Oracle`
//! watching the real traffic counts injected segments that TCP could have
//! accepted by chance (in-window sequence number and acceptable ACK); a
//! failure message shows that count, which is zero for the seeds chosen here.

mod blind;

use blind::rng::{derive, Rng};
use blind::{forge, Kind, Oracle};
use core::time::Duration;
use mptun_stack::endpoint::CloseReason;
use mptun_stack::wire::mptcp::MpJoin;
use mptun_stack::wire::{emit_packet, MptcpOption, SeqNumber, TcpFlags, TcpRepr, TCPOPT_MPTCP};
use mptun_stack::{
    Config, ConnId, EndpointFlags, Error, Event, Instant, Stack, State, SubflowInfo,
};
use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The client's two addresses and the server's.
const C0: &str = "10.0.0.1";
const C1: &str = "10.0.1.1";
const S0: &str = "10.0.0.2";
const PORT: u16 = 80;
/// Virtual time per step.
const STEP: Duration = Duration::from_millis(10);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sock(s: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(s), port)
}

/// Whom the attacker's packets go to (it impersonates the other end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Server,
    Client,
}

/// One configuration of a live connection under attack.
#[derive(Debug, Clone, Copy)]
struct Case {
    /// MPTCP version, 1 or 0.
    version: u8,
    /// With a second subflow (the client joins from `C1`).
    join: bool,
    target: Target,
}

impl Case {
    fn describe(&self) -> String {
        format!(
            "v{} {} subflow(s), spoofed toward the {:?}",
            self.version,
            if self.join { 2 } else { 1 },
            self.target
        )
    }

    /// A seed for this case and attack, so every case draws its own packets.
    fn seed(&self, salt: u64) -> u64 {
        derive(
            salt,
            u64::from(self.version)
                | u64::from(self.join) << 1
                | u64::from(self.target == Target::Client) << 2,
        )
    }
}

/// Every case: both versions, one and two subflows, both directions.
fn all_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for version in [1, 0] {
        for join in [false, true] {
            for target in [Target::Server, Target::Client] {
                v.push(Case {
                    version,
                    join,
                    target,
                });
            }
        }
    }
    v
}

fn config(seed: u64, version: u8) -> Config {
    let mut c = Config {
        seed: seed.into(),
        ..Config::default()
    };
    c.mptcp.enabled = true;
    c.mptcp.v1 = version == 1;
    c.mptcp.v0 = version == 0;
    c
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
    fn extend(&mut self, n: usize, salt: usize) {
        let start = self.data.len();
        self.data
            .extend((start..start + n).map(|i| (i * 7 + (i >> 9) + salt) as u8));
    }

    fn done(&self) -> bool {
        self.got.len() == self.data.len()
    }
}

/// The attacker: which packets, how many, where.
struct Attacker {
    rng: Rng,
    kinds: Vec<Kind>,
    target: Target,
    /// (spoofed source, target) of every subflow, from the target's `info()`.
    tuples: Vec<(SocketAddr, SocketAddr)>,
    version: u8,
    checksum: bool,
    /// Packets injected after each real packet the target receives, and at
    /// each step.
    per_packet: u64,
    per_step: u64,
    /// Packets left to inject.
    left: u64,
    sent: u64,
}

/// What a side's subflows look like, compared before and after.
type Snapshot = Vec<(SocketAddr, SocketAddr, State, bool, bool, u8, u8)>;

fn snapshot(subflows: &[SubflowInfo]) -> Snapshot {
    subflows
        .iter()
        .map(|s| {
            (
                s.local,
                s.remote,
                s.state,
                s.established,
                s.backup,
                s.local_id,
                s.remote_id,
            )
        })
        .collect()
}

/// An MPTCP connection between two engines, the applications on both ends,
/// and optionally an attacker.
struct Pair {
    c: Stack,
    s: Stack,
    cid: ConnId,
    sid: ConnId,
    now: Instant,
    up: Stream,
    down: Stream,
    events_c: Vec<Event>,
    events_s: Vec<Event>,
    attacker: Option<Attacker>,
    oracle: Oracle,
    /// The subflows of (client, server) that must not change, while set.
    watch: Option<(Snapshot, Snapshot)>,
    /// The first failed `recv`.
    recv_error: Option<String>,
    case: Case,
}

impl Pair {
    /// Two engines of `case.version`, the server listening; nothing sent yet.
    fn engines(case: Case) -> (Stack, Stack) {
        let mut c = Stack::new(config(1, case.version));
        let mut s = Stack::new(config(2, case.version));
        c.add_address(ip(C0));
        s.add_address(ip(S0));
        s.listen(PORT).unwrap();
        (c, s)
    }

    /// A connection from `C0` to `S0:80` as `open` leaves it (the client's
    /// handshake under way), then data both ways, and a join if the case
    /// has one.
    fn connect_with(
        case: Case,
        open: impl FnOnce(&mut Pair) -> Result<(), String>,
    ) -> Result<Pair, String> {
        let (mut c, s) = Pair::engines(case);
        let now = Instant::from_millis(1);
        let cid = c.connect(now, Some(sock(C0, 0)), sock(S0, PORT)).unwrap();
        let mut p = Pair {
            c,
            s,
            cid,
            sid: cid,
            now,
            up: Stream::default(),
            down: Stream::default(),
            events_c: Vec::new(),
            events_s: Vec::new(),
            attacker: None,
            oracle: Oracle::default(),
            watch: None,
            recv_error: None,
            case,
        };
        open(&mut p)?;
        p.pump()?;
        // The server accepts once the client's first data arrives.
        p.up.extend(1000, 0);
        p.feed();
        p.pump()?;
        p.drain();
        p.take_recv_error()?;
        p.sid = p
            .events_s
            .iter()
            .find_map(|e| match e {
                Event::Accepted { id, .. } => Some(*id),
                _ => None,
            })
            .ok_or("the server accepted nothing")?;
        p.transfer(30_000)?;
        if case.join {
            p.c.add_endpoint(
                ip(C1),
                EndpointFlags {
                    subflow: true,
                    ..EndpointFlags::default()
                },
            );
            p.run_for(Duration::from_millis(200))?;
            p.transfer(100_000)?;
        }
        Ok(p)
    }

    /// A live connection, checked: MPTCP of the case's version on both ends,
    /// no fallback, one subflow (two with a join) established on each end.
    fn new(case: Case) -> Result<Pair, String> {
        let p = Pair::connect_with(case, |_| Ok(()))?;
        p.check_setup()?;
        Ok(p)
    }

    fn check_setup(&self) -> Result<(), String> {
        let want = if self.case.join { 2 } else { 1 };
        for (st, id, who) in [(&self.c, self.cid, "client"), (&self.s, self.sid, "server")] {
            let info = st.info(id).ok_or(format!("{who}: no connection"))?;
            let m = info.mptcp.ok_or(format!("{who}: not MPTCP"))?;
            if m.fallback || m.version != self.case.version {
                return Err(format!(
                    "{who}: set-up: v{} fallback {} ({:?})",
                    m.version, m.fallback, m.fallback_reason
                ));
            }
            let live = info
                .subflows
                .iter()
                .filter(|s| s.state == State::Established && s.established)
                .count();
            if live != want {
                return Err(format!(
                    "{who}: set-up: {live} established subflows, want {want}: {:?}",
                    info.subflows
                ));
            }
        }
        Ok(())
    }

    fn target(&mut self, t: Target) -> &mut Stack {
        match t {
            Target::Server => &mut self.s,
            Target::Client => &mut self.c,
        }
    }

    /// Arm an attacker with `budget` packets of `kinds`, aimed at every
    /// subflow of `case.target`; from now on the subflows must not change.
    fn arm(&mut self, kinds: &[Kind], budget: u64, per_packet: u64, per_step: u64, seed: u64) {
        let target = self.case.target;
        let (st, id) = match target {
            Target::Server => (&self.s, self.sid),
            Target::Client => (&self.c, self.cid),
        };
        let info = st.info(id).unwrap();
        let m = info.mptcp.unwrap();
        // The attacker knows the 4-tuples (and nothing else).
        let tuples = info.subflows.iter().map(|s| (s.remote, s.local)).collect();
        self.attacker = Some(Attacker {
            rng: Rng::new(seed),
            kinds: kinds.to_vec(),
            target,
            tuples,
            version: m.version,
            checksum: m.checksum,
            per_packet,
            per_step,
            left: budget,
            sent: 0,
        });
        self.watch = Some(self.snapshots());
    }

    fn snapshots(&self) -> (Snapshot, Snapshot) {
        (
            snapshot(&self.c.info(self.cid).unwrap().subflows),
            snapshot(&self.s.info(self.sid).unwrap().subflows),
        )
    }

    /// `n` attack packets into the target, now.
    fn inject(&mut self, n: u64) {
        let Some(a) = self.attacker.as_mut() else {
            return;
        };
        let n = n.min(a.left);
        a.left -= n;
        a.sent += n;
        let mut pkts = Vec::new();
        for _ in 0..n {
            let (src, dst) = a.tuples[a.rng.below(a.tuples.len() as u64) as usize];
            let kind = a.kinds[a.rng.below(a.kinds.len() as u64) as usize];
            pkts.push(forge(&mut a.rng, kind, src, dst, a.version, a.checksum));
        }
        let target = a.target;
        for pkt in pkts {
            self.oracle.judge(&pkt);
            let now = self.now;
            self.target(target).handle_packet(now, &pkt);
        }
    }

    fn attack_left(&self) -> u64 {
        self.attacker.as_ref().map_or(0, |a| a.left)
    }

    /// Deliver packets both ways until neither side sends; the attacker's
    /// packets go in after each real packet its target receives.
    fn pump(&mut self) -> Result<(), String> {
        let mut buf = vec![0u8; 2048];
        let per_packet = self.attacker.as_ref().map_or(0, |a| a.per_packet);
        let target = self.attacker.as_ref().map(|a| a.target);
        for _ in 0..100_000 {
            let mut moved = false;
            while let Some(n) = self.c.poll_transmit(self.now, &mut buf) {
                self.oracle.observe(&buf[..n]);
                self.s.handle_packet(self.now, &buf[..n]);
                if target == Some(Target::Server) {
                    self.inject(per_packet);
                }
                moved = true;
            }
            while let Some(n) = self.s.poll_transmit(self.now, &mut buf) {
                self.oracle.observe(&buf[..n]);
                self.c.handle_packet(self.now, &buf[..n]);
                if target == Some(Target::Client) {
                    self.inject(per_packet);
                }
                moved = true;
            }
            if !moved {
                return Ok(());
            }
        }
        Err("the engines never went quiet".into())
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

    /// Read what arrived, and the events. A failed `recv` is kept for after
    /// the checks, which say more about what happened.
    fn drain(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        for (st, id, s, who) in [
            (&mut self.s, self.sid, &mut self.up, "server"),
            (&mut self.c, self.cid, &mut self.down, "client"),
        ] {
            if st.state(id).is_none() {
                continue;
            }
            loop {
                match st.recv(id, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => s.got.extend_from_slice(&buf[..n]),
                    Err(Error::Finished) => {
                        s.fin = true;
                        break;
                    }
                    Err(e) => {
                        self.recv_error.get_or_insert(format!(
                            "{who}: recv: {e:?} after {} of {} bytes",
                            s.got.len(),
                            s.data.len()
                        ));
                        break;
                    }
                }
            }
        }
        self.events_c
            .extend(std::iter::from_fn(|| self.c.poll_event()));
        self.events_s
            .extend(std::iter::from_fn(|| self.s.poll_event()));
    }

    fn take_recv_error(&mut self) -> Result<(), String> {
        self.recv_error.take().map_or(Ok(()), Err)
    }

    /// One step: send, deliver, read, check, advance the clock, fire timers.
    fn step(&mut self) -> Result<(), String> {
        self.feed();
        let per_step = self.attacker.as_ref().map_or(0, |a| a.per_step);
        self.inject(per_step);
        self.pump()?;
        self.drain();
        self.check()?;
        self.take_recv_error()?;
        self.now += STEP;
        for st in [&mut self.c, &mut self.s] {
            if st.poll_timeout().is_some_and(|t| t <= self.now) {
                st.handle_timeout(self.now);
            }
        }
        Ok(())
    }

    fn run_for(&mut self, d: Duration) -> Result<(), String> {
        for _ in 0..d.as_millis() / STEP.as_millis() {
            self.step()?;
        }
        Ok(())
    }

    /// While watched: nothing fell back, no subflow changed; and nothing
    /// closed but normally.
    fn check(&self) -> Result<(), String> {
        if let Some((wc, ws)) = &self.watch {
            let mut sides = [
                (&self.c, self.cid, wc, "client"),
                (&self.s, self.sid, ws, "server"),
            ];
            // The attacker's target first: what it did is the news.
            if self.case.target == Target::Server {
                sides.swap(0, 1);
            }
            for (st, id, want, who) in sides {
                let Some(info) = st.info(id) else {
                    return Err(format!("{who}: the connection is gone"));
                };
                let m = info.mptcp.as_ref().unwrap();
                if m.fallback {
                    return Err(format!("{who}: fell back ({:?})", m.fallback_reason));
                }
                let now = snapshot(&info.subflows);
                if &now != want {
                    return Err(format!(
                        "{who}: subflows changed (local, remote, state, joined, backup, ids):\n      before {want:?}\n      now    {now:?}"
                    ));
                }
                if info.state != State::Established {
                    return Err(format!("{who}: connection {:?}", info.state));
                }
            }
            // A DATA_ACK covers only what the peer received (for MPTCP,
            // `bytes_sent` counts data DATA_ACKed, `bytes_received` data
            // received in order).
            let (ci, si) = (
                self.c.info(self.cid).unwrap(),
                self.s.info(self.sid).unwrap(),
            );
            for (who, acked, got) in [
                ("client", ci.bytes_sent, si.bytes_received),
                ("server", si.bytes_sent, ci.bytes_received),
            ] {
                if acked > got {
                    return Err(format!(
                        "{who}: {acked} bytes DATA_ACKed, of which its peer received {got}"
                    ));
                }
            }
            // Nobody has closed yet: no DATA_FIN can have arrived.
            if self.up.fin || self.down.fin {
                return Err(format!(
                    "the stream ended early (EOF to the server {}, to the client {})",
                    self.up.fin, self.down.fin
                ));
            }
        }
        for (evs, who) in [(&self.events_c, "client"), (&self.events_s, "server")] {
            if let Some(e) = evs.iter().find(
                |e| matches!(e, Event::Closed { reason, .. } if *reason != CloseReason::Normal),
            ) {
                return Err(format!("{who}: {e:?}"));
            }
        }
        Ok(())
    }

    /// Send `n` more bytes each way and wait until all of it arrived, byte
    /// for byte.
    fn transfer(&mut self, n: usize) -> Result<(), String> {
        self.up.extend(n, 0);
        self.down.extend(n, 0x55);
        for _ in 0..3_000 {
            if self.up.done() && self.down.done() {
                break;
            }
            self.step()?;
        }
        for (s, dir) in [
            (&self.up, "client to server"),
            (&self.down, "server to client"),
        ] {
            if s.got.len() != s.data.len() {
                return Err(format!(
                    "{dir}: {} of {} bytes arrived in 30 s",
                    s.got.len(),
                    s.data.len()
                ));
            }
            if s.got != s.data {
                let at = s.got.iter().zip(&s.data).position(|(a, b)| a != b);
                return Err(format!("{dir}: corrupted at offset {at:?}"));
            }
        }
        Ok(())
    }

    /// More data, then both ends close (the attacker still at it): every
    /// byte and both FINs arrive, nothing closes by reset, nothing fell back.
    fn finish(&mut self) -> Result<(), String> {
        self.transfer(50_000)?;
        self.check()?;
        self.watch = None;
        self.c.shutdown(self.cid).unwrap();
        self.s.shutdown(self.sid).unwrap();
        for _ in 0..3_000 {
            if self.up.fin && self.down.fin {
                break;
            }
            self.step()?;
        }
        if !(self.up.fin && self.down.fin) {
            return Err(format!(
                "the close did not complete (FIN received: server {}, client {})",
                self.up.fin, self.down.fin
            ));
        }
        if self.up.got != self.up.data || self.down.got != self.down.data {
            return Err("data corrupted during the close".into());
        }
        for (st, who) in [(&self.c, "client"), (&self.s, "server")] {
            let n = st.counters().mptcp_fallbacks;
            if n != 0 {
                return Err(format!("{who}: {n} fallback(s) counted"));
            }
        }
        Ok(())
    }
}

/// The attack's parameters.
#[derive(Clone, Copy)]
struct Plan {
    /// Packets in all.
    budget: u64,
    /// After each real packet to the target, and at each 10 ms step.
    per_packet: u64,
    per_step: u64,
}

/// Run `kinds` against a live connection of `case`: data both ways while
/// the attacker injects (`plan.budget` packets, the last tenth during the
/// close). Returns a line for the report.
fn attack_case(case: Case, kinds: &[Kind], plan: Plan, salt: u64) -> Result<String, String> {
    let mut p = Pair::new(case)?;
    p.arm(
        kinds,
        plan.budget,
        plan.per_packet,
        plan.per_step,
        case.seed(salt),
    );
    let result = (|| {
        let reserve = plan.budget / 10;
        let mut rounds = 0;
        p.transfer(20_000)?;
        while p.attack_left() > reserve {
            p.transfer(20_000)?;
            rounds += 1;
            if rounds > 500 {
                return Err("the attacker's budget was never spent".to_string());
            }
        }
        p.finish()
    })();
    let sent = p.attacker.as_ref().map_or(0, |a| a.sent);
    let luck = format!(
        "{sent} packets injected, {} possibly acceptable to TCP",
        p.oracle.lucky
    );
    match result {
        Ok(()) => Ok(format!("{}: ok ({luck})", case.describe())),
        Err(e) => Err(format!("{}: {e}\n    ({luck})", case.describe())),
    }
}

/// Every case of `cases` against `kinds`; fails with every failing case.
fn run_cases(name: &str, cases: &[Case], kinds: &[Kind], plan: Plan, salt: u64) {
    let mut failures = Vec::new();
    for &case in cases {
        let r = catch_unwind(AssertUnwindSafe(|| attack_case(case, kinds, plan, salt)))
            .unwrap_or_else(|e| {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(format!("{}: panicked: {msg}", case.describe()))
            });
        match r {
            Ok(line) => eprintln!("{name}: {line}"),
            Err(e) => {
                eprintln!("{name}: FAILED {e}");
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} cases failed:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
}

/// The harness itself: every case, with an attacker that injects nothing,
/// passes every check, and so do the set-ups of the race tests with no
/// spoofed packet. What fails in the other tests is the attack's doing.
#[test]
fn without_an_attack_every_case_passes() {
    let plan = Plan {
        budget: 0,
        per_packet: 0,
        per_step: 0,
    };
    run_cases("control", &all_cases(), &[Kind::Rst], plan, 0x4e00);
    for case in race_cases() {
        if let Err(e) = synack_race_case(case, 0) {
            panic!("control: the set-up without a race: {e}");
        }
    }
    for version in [1, 0] {
        for (what, r) in [
            ("a join without a race", join_synack_race(version, 0)),
            ("a join with nothing injected", half_open_join(version, 0)),
            (
                "a set-up with nothing injected",
                pre_established(version, 0),
            ),
        ] {
            if let Err(e) = r {
                panic!("control: v{version}: {what}: {e}");
            }
        }
    }
}

/// RFC 8684 §3.4.2: REMOVE_ADDR closes the subflows on the named address. A
/// blind attacker can name every id in use (0 is always the initial
/// subflow's address), so on a segment TCP would drop it must close nothing;
/// else one spoofed packet takes down a subflow, or the whole connection when
/// all its subflows use that address.
#[test]
fn remove_addr_for_every_id_changes_nothing() {
    let plan = Plan {
        budget: 400,
        per_packet: 1,
        per_step: 2,
    };
    run_cases(
        "remove_addr",
        &all_cases(),
        &[Kind::RemoveAddr],
        plan,
        0x4e01,
    );
}

/// RFC 8684 §3.7: MP_FAIL asks the receiver for an infinite mapping, after
/// which the connection is plain TCP. Spoofed, it would force a fallback
/// (one subflow) on a connection that saw no checksum failure.
#[test]
fn mp_fail_changes_nothing() {
    let plan = Plan {
        budget: 400,
        per_packet: 1,
        per_step: 2,
    };
    run_cases("mp_fail", &all_cases(), &[Kind::MpFail], plan, 0x4e02);
}

/// RFC 8684 §3.3.2: a DATA_ACK frees the sender's data up to it. Random
/// DATA_ACKs (32 and 64 bits) must neither free unacknowledged data (lost if
/// a subflow then fails) nor move the connection-level window.
#[test]
fn random_data_acks_change_nothing() {
    let plan = Plan {
        budget: 12_000,
        per_packet: 20,
        per_step: 20,
    };
    run_cases("data_ack", &all_cases(), &[Kind::DataAck], plan, 0x4e03);
}

/// RFC 8684 §3.3.1: DSS mappings say where subflow bytes go in the data
/// stream. Thousands of random mappings without payload must not take the
/// place of the real ones (nor fill the receiver's table of mappings).
#[test]
fn random_mappings_change_nothing() {
    let plan = Plan {
        budget: 12_000,
        per_packet: 20,
        per_step: 20,
    };
    run_cases("mapping", &all_cases(), &[Kind::Mapping], plan, 0x4e04);
}

/// The same with payload: random bytes at random subflow sequence numbers
/// under random mappings. TCP drops the bytes (out of window); the mapping
/// must go with them.
#[test]
fn random_mappings_with_data_change_nothing() {
    let plan = Plan {
        budget: 12_000,
        per_packet: 20,
        per_step: 20,
    };
    run_cases(
        "mapping_with_data",
        &all_cases(),
        &[Kind::MappingWithData],
        plan,
        0x4e05,
    );
}

/// RFC 8684 §3.3.3: a DATA_FIN ends the peer's data stream. A spoofed one must
/// neither end it early nor make the real one be forgotten.
#[test]
fn random_data_fins_change_nothing() {
    let plan = Plan {
        budget: 4_000,
        per_packet: 10,
        per_step: 10,
    };
    run_cases("data_fin", &all_cases(), &[Kind::DataFin], plan, 0x4e06);
}

/// RFC 8684 §3.3.8 (v1, no address id: the subflow it arrives on) and RFC 6824
/// §3.3.8 (v0, with an address id: every subflow to that address): MP_PRIO
/// makes the receiver treat subflows as backup. Spoofed, backup on or off,
/// it must not move a subflow's priority.
#[test]
fn mp_prio_changes_nothing() {
    let plan = Plan {
        budget: 400,
        per_packet: 1,
        per_step: 2,
    };
    run_cases("mp_prio", &all_cases(), &[Kind::MpPrio], plan, 0x4e07);
}

/// RFC 8684 §3.5: MP_FASTCLOSE carries the receiver's key, which a blind
/// attacker does not have; with any other key (on an ACK or a RST) it is
/// no reset.
#[test]
fn fastclose_with_a_wrong_key_changes_nothing() {
    let plan = Plan {
        budget: 2_000,
        per_packet: 5,
        per_step: 5,
    };
    run_cases("fastclose", &all_cases(), &[Kind::FastClose], plan, 0x4e08);
}

/// RFC 5961 §3: a RST resets only at exactly RCV.NXT; elsewhere in the window
/// it gets a challenge ACK, outside it nothing. With or without MP_TCPRST
/// (RFC 8684 §3.6), at random sequence numbers it must close no subflow.
#[test]
fn rsts_at_random_sequence_numbers_change_nothing() {
    let plan = Plan {
        budget: 4_000,
        per_packet: 10,
        per_step: 10,
    };
    run_cases(
        "rst",
        &all_cases(),
        &[Kind::Rst, Kind::RstWithTcpRst],
        plan,
        0x4e09,
    );
}

/// A segment made by hand.
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

/// The client's SYN goes out and reaches the server; before the server's
/// SYN/ACK reaches the client, `n` spoofed SYN/ACKs (MP_CAPABLE with the
/// attacker's key, random sequence and ACK numbers) do. Then the real one.
fn race_synacks(p: &mut Pair, n: u64, seed: u64) -> Result<(), String> {
    let mut buf = vec![0u8; 2048];
    let syn_n = p.c.poll_transmit(p.now, &mut buf).ok_or("no SYN")?;
    let syn = buf[..syn_n].to_vec();
    p.oracle.observe(&syn);
    p.s.handle_packet(p.now, &syn);
    let mut held = Vec::new();
    while let Some(k) = p.s.poll_transmit(p.now, &mut buf) {
        held.push(buf[..k].to_vec());
    }
    if held.is_empty() {
        return Err("the server did not answer the SYN".into());
    }
    let info = p.c.info(p.cid).unwrap();
    let version = p.case.version;
    let mut rng = Rng::new(seed);
    for _ in 0..n {
        let pkt = forge(
            &mut rng,
            Kind::SynAck,
            info.remote,
            info.local,
            version,
            false,
        );
        p.oracle.judge(&pkt);
        p.c.handle_packet(p.now, &pkt);
        // The client's answers (RSTs to a bad ACK) reach the server.
        while let Some(k) = p.c.poll_transmit(p.now, &mut buf) {
            p.oracle.observe(&buf[..k]);
            p.s.handle_packet(p.now, &buf[..k]);
        }
    }
    for pkt in held {
        p.oracle.observe(&pkt);
        p.c.handle_packet(p.now, &pkt);
    }
    Ok(())
}

/// RFC 8684 §3.1: the client learns the server's key from the SYN/ACK; RFC
/// 9293 §3.10.7.3: in SYN-SENT a SYN/ACK whose ACK does not acknowledge our
/// SYN is answered with a RST and dropped. A spoofed SYN/ACK that beats the
/// real one to the client must not fix the peer's key (the real server's
/// MP_CAPABLE ACK check would fail and the connection fall back, or the
/// tokens and IDSNs be the attacker's): the connection must come up as MPTCP
/// with the real server's key, and live on (with a join where the case has
/// one).
#[test]
fn spoofed_mp_capable_synack_does_not_win_the_race() {
    let mut failures = Vec::new();
    for case in race_cases() {
        match synack_race_case(case, 8) {
            Ok(line) => eprintln!("synack_race: {line}"),
            Err(e) => {
                eprintln!("synack_race: FAILED {e}");
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n  "));
}

/// The client side, both versions, with and without a join.
fn race_cases() -> Vec<Case> {
    all_cases()
        .into_iter()
        .filter(|c| c.target == Target::Client)
        .collect()
}

/// `n` spoofed MP_CAPABLE SYN/ACKs race the real one (`race_synacks`); then
/// the connection must be MPTCP with the server's real key, and live.
fn synack_race_case(case: Case, n: u64) -> Result<String, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let mut lucky = 0;
        let r = (|| {
            let mut p = Pair::connect_with(case, |p| race_synacks(p, n, case.seed(0x4e0a)))?;
            lucky = p.oracle.lucky;
            p.check_setup()?;
            let (cm, sm) = (
                p.c.info(p.cid).unwrap().mptcp.unwrap(),
                p.s.info(p.sid).unwrap().mptcp.unwrap(),
            );
            if cm.remote_key != Some(sm.local_key) {
                return Err(format!(
                    "the client holds key {:x?} for the server, whose key is {:x}",
                    cm.remote_key, sm.local_key
                ));
            }
            p.watch = Some(p.snapshots());
            p.transfer(50_000)?;
            p.finish()
        })();
        let luck = format!("{lucky} of {n} spoofed SYN/ACKs possibly acceptable");
        match r {
            Ok(()) => Ok(format!("{}: ok ({luck})", case.describe())),
            Err(e) => Err(format!("{}: {e}\n    ({luck})", case.describe())),
        }
    }))
    .unwrap_or_else(|_| Err(format!("{}: panicked", case.describe())))
}

/// RFC 8684 §3.2 and RFC 9293 §3.10.7.3: a joining subflow in SYN-SENT takes
/// only a SYN/ACK acknowledging its SYN. A spoofed SYN/ACK with MP_JOIN (a
/// random truncated HMAC and nonce, random ACK) that beats the real one must
/// not make the client give up the join (a wrong HMAC resets the subflow,
/// but only on a SYN/ACK TCP would take).
#[test]
fn spoofed_join_synack_does_not_win_the_race() {
    per_version("join_synack_race", |version| join_synack_race(version, 8));
}

fn join_synack_race(version: u8, n: u64) -> Result<(), String> {
    let case = Case {
        version,
        join: false,
        target: Target::Client,
    };
    let mut p = Pair::new(case)?;
    p.c.add_endpoint(
        ip(C1),
        EndpointFlags {
            subflow: true,
            ..EndpointFlags::default()
        },
    );
    // The client's join SYN goes out; spoofed SYN/ACKs race the
    // server's answer.
    let mut buf = vec![0u8; 2048];
    p.c.handle_timeout(p.now);
    let mut out = Vec::new();
    while let Some(n) = p.c.poll_transmit(p.now, &mut buf) {
        out.push(buf[..n].to_vec());
    }
    let sf = p.c.info(p.cid).unwrap().subflows;
    let join = sf.get(1).ok_or(format!("no join opened: {sf:?}"))?;
    let mut rng = Rng::new(case.seed(0x4e0b));
    let mut lucky = 0;
    for _ in 0..n {
        let pkt = craft(
            join.remote,
            join.local,
            TcpFlags::SYN | TcpFlags::ACK,
            SeqNumber(rng.next_u64() as u32),
            SeqNumber(rng.next_u64() as u32),
            Some(MptcpOption::MpJoin(MpJoin::SynAck {
                backup: false,
                addr_id: rng.below(4) as u8,
                hmac: rng.next_u64(),
                nonce: rng.next_u64() as u32,
            })),
        );
        for o in &out {
            p.oracle.observe(o);
        }
        lucky += u64::from(p.oracle.judge(&pkt));
        p.c.handle_packet(p.now, &pkt);
    }
    for o in out {
        p.s.handle_packet(p.now, &o);
    }
    p.run_for(Duration::from_millis(300))?;
    let r = (|| {
        for (st, id, who) in [(&p.c, p.cid, "client"), (&p.s, p.sid, "server")] {
            let sf = st.info(id).unwrap().subflows;
            let live = sf
                .iter()
                .filter(|s| s.state == State::Established && s.established)
                .count();
            if live != 2 {
                let brief: Vec<_> = sf
                    .iter()
                    .map(|s| (s.local, s.remote, s.state, s.established))
                    .collect();
                return Err(format!(
                    "{who}: the join did not complete (local, remote, state, joined): {brief:?}"
                ));
            }
        }
        p.watch = Some(p.snapshots());
        p.transfer(50_000)?;
        p.finish()
    })();
    r.map_err(|e| format!("{e}\n    ({lucky} of {n} possibly acceptable)"))
}

/// RFC 8684 §3.2: the responder of a join waits in SYN-RECEIVED for the third
/// ACK with the initiator's HMAC, and resets the subflow if that ACK lacks it.
/// But only a segment TCP accepts can be that third ACK (RFC 9293 §3.10.7.4:
/// its ACK must acknowledge our SYN/ACK): blind segments of every kind, spoofed
/// from the joining client's address while the server's SYN/ACK is in flight,
/// must not make the server give up the join.
#[test]
fn blind_segments_on_a_half_open_join_do_not_reset_it() {
    per_version("half_open_join", |version| half_open_join(version, 16));
}

fn half_open_join(version: u8, n: u64) -> Result<(), String> {
    let case = Case {
        version,
        join: false,
        target: Target::Server,
    };
    let mut p = Pair::new(case)?;
    p.c.add_endpoint(
        ip(C1),
        EndpointFlags {
            subflow: true,
            ..EndpointFlags::default()
        },
    );
    // The client's join SYN reaches the server; its SYN/ACK is held
    // while the attacker's segments arrive.
    let mut buf = vec![0u8; 2048];
    p.c.handle_timeout(p.now);
    let mut to_server = Vec::new();
    while let Some(n) = p.c.poll_transmit(p.now, &mut buf) {
        to_server.push(buf[..n].to_vec());
    }
    for pkt in &to_server {
        p.oracle.observe(pkt);
        p.s.handle_packet(p.now, pkt);
    }
    let mut to_client = Vec::new();
    while let Some(n) = p.s.poll_transmit(p.now, &mut buf) {
        p.oracle.observe(&buf[..n]);
        to_client.push(buf[..n].to_vec());
    }
    let sf = p.s.info(p.sid).unwrap().subflows;
    let join = sf
        .get(1)
        .ok_or(format!("the server has no half-open join: {}", sf.len()))?;
    let mut rng = Rng::new(case.seed(0x4e0d));
    let mut lucky = 0;
    for _ in 0..n {
        let kind = rng.pick(&Kind::ESTABLISHED);
        let pkt = forge(
            &mut rng,
            kind,
            join.remote,
            join.local,
            version,
            version == 0,
        );
        lucky += u64::from(p.oracle.judge(&pkt));
        p.s.handle_packet(p.now, &pkt);
    }
    for pkt in to_client {
        p.c.handle_packet(p.now, &pkt);
    }
    p.run_for(Duration::from_millis(300))?;
    let r = (|| {
        for (st, id, who) in [(&p.s, p.sid, "server"), (&p.c, p.cid, "client")] {
            let sf = st.info(id).unwrap().subflows;
            let live = sf
                .iter()
                .filter(|s| s.state == State::Established && s.established)
                .count();
            if live != 2 {
                let brief: Vec<_> = sf
                    .iter()
                    .map(|s| (s.local, s.remote, s.state, s.established))
                    .collect();
                return Err(format!(
                    "{who}: the join did not complete (local, remote, state, joined): {brief:?}"
                ));
            }
        }
        p.watch = Some(p.snapshots());
        p.transfer(50_000)?;
        p.finish()
    })();
    r.map_err(|e| format!("{e}\n    ({lucky} of {n} possibly acceptable)"))
}

/// RFC 8684 §3.1: a client falls back when the server's first segment after
/// the handshake has no DSS (the server's MPTCP did not survive the path).
/// That decision belongs to the server's first *acceptable* segment: a blind
/// segment without any option, spoofed from the server in the round trip
/// between the client's third ACK and the server's first DSS, must not make
/// the client fall back.
#[test]
fn blind_segment_before_the_first_dss_does_not_force_a_fallback() {
    per_version("pre_established", |version| pre_established(version, 8));
}

fn pre_established(version: u8, n: u64) -> Result<(), String> {
    let case = Case {
        version,
        join: false,
        target: Target::Client,
    };
    let mut lucky = 0;
    let r = Pair::connect_with(case, |p| {
        // The handshake: SYN, SYN/ACK, the client's ACK.
        p.pump()?;
        let info = p.c.info(p.cid).unwrap();
        let mut rng = Rng::new(case.seed(0x4e0c));
        for _ in 0..n {
            let flags = if rng.chance(0.5) {
                TcpFlags::ACK
            } else {
                TcpFlags::ACK | TcpFlags::PSH
            };
            let pkt = craft(
                info.remote,
                info.local,
                flags,
                SeqNumber(rng.next_u64() as u32),
                SeqNumber(rng.next_u64() as u32),
                None,
            );
            lucky += u64::from(p.oracle.judge(&pkt));
            p.c.handle_packet(p.now, &pkt);
        }
        Ok(())
    })
    .and_then(|mut p| {
        p.check_setup()?;
        p.watch = Some(p.snapshots());
        p.transfer(50_000)?;
        p.finish()
    });
    r.map_err(|e| format!("{e}\n    ({lucky} of {n} possibly acceptable)"))
}

/// `f` for v1 and v0; fails with every failing version.
fn per_version(label: &str, f: impl Fn(u8) -> Result<(), String>) {
    let mut failures = Vec::new();
    for version in [1, 0] {
        match catch_unwind(AssertUnwindSafe(|| f(version)))
            .unwrap_or_else(|_| Err("panicked".to_string()))
        {
            Ok(()) => eprintln!("{label}: v{version}: ok"),
            Err(e) => {
                eprintln!("{label}: FAILED v{version}: {e}");
                failures.push(format!("v{version}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{label}: {}", failures.join("\n  "));
}
