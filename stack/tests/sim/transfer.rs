//! The `Transfer` application: both ends stream a seeded pseudo-random payload at
//! each other, half-close, read everything up to EOF, and release the connection.
//! Received bytes are checked on the fly against the regenerated payload, so a
//! failure names the first wrong offset.

use super::net::LinkParams;
use super::rng::{derive, mix64, Rng};
use super::{addr, App, World};
use bytes::BufMut;
use core::time::Duration;
use mptun_stack::endpoint::CloseReason;
use mptun_stack::{CcAlgorithm, Config, ConnId, Error, Event, Instant, Stack};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A seeded byte stream of known length with random access: byte `i` is byte
/// `i % 8` of `mix64(key + i / 8 * φ)`. Nothing is stored.
#[derive(Debug, Clone, Copy)]
pub struct Payload {
    pub key: u64,
    pub len: u64,
}

impl Payload {
    pub fn new(key: u64, len: u64) -> Self {
        Payload { key, len }
    }

    fn word(&self, i: u64) -> [u8; 8] {
        mix64(self.key.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))).to_le_bytes()
    }

    /// Fill `buf` with the bytes starting at `offset` (may run past `len`; callers
    /// bound it).
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        let mut pos = offset;
        let mut out = 0;
        while out < buf.len() {
            let w = self.word(pos / 8);
            let k = (pos % 8) as usize;
            let n = (8 - k).min(buf.len() - out);
            buf[out..out + n].copy_from_slice(&w[k..k + n]);
            out += n;
            pos += n as u64;
        }
    }
}

enum Role {
    Client {
        local: Option<SocketAddr>,
        remote: SocketAddr,
    },
    Server,
}

/// Throttles reading: at most `budget` bytes every `interval` (exercises zero
/// windows and window updates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowReader {
    pub interval: Duration,
    pub budget: usize,
}

/// One end of a bidirectional transfer. See the module doc.
pub struct Transfer {
    pub name: String,
    role: Role,
    pub conn: Option<ConnId>,
    pub tx: Payload,
    pub sent: u64,
    pub rx: Payload,
    pub received: u64,
    rng: Rng,
    /// Largest chunk handed to one `send` / `recv` call.
    pub max_chunk: usize,
    /// Do not shut down before the peer's FIN has been read (so the peer closes first).
    pub shutdown_after_peer_fin: bool,
    /// Release only after `Event::Closed` (and check it says `Normal`); otherwise
    /// release as soon as everything is sent and read, letting the stack finish alone.
    pub wait_closed_before_release: bool,
    pub slow_reader: Option<SlowReader>,
    /// What a middlebox on the path makes of the byte at a stream offset: the
    /// received data is checked against the payload passed through it.
    pub rx_alter: Option<fn(u64, u8) -> u8>,
    next_read_at: Instant,
    pub shut: bool,
    pub eof: bool,
    pub released: bool,
    pub closed: Option<CloseReason>,
    pub connected_at: Option<Instant>,
    /// When the peer's FIN was read past (every byte received).
    pub rx_done_at: Option<Instant>,
    /// When the handle was released.
    pub released_at: Option<Instant>,
    scratch: Vec<u8>,
    /// Writes so far (which way the next one goes).
    writes: u64,
    expect: Vec<u8>,
    /// Bytes are also taken as they arrive, by a `DirectReader` that
    /// checks them (set before the first poll).
    pub direct_reader: bool,
    direct: Option<Arc<Mutex<DirectCheck>>>,
    /// The most `Stack::memory_used` was at a poll.
    pub peak_memory: usize,
}

impl Transfer {
    fn new(name: &str, role: Role, tx: Payload, rx: Payload, seed: u64) -> Self {
        Transfer {
            name: name.to_string(),
            role,
            conn: None,
            tx,
            sent: 0,
            rx,
            received: 0,
            rng: Rng::new(seed),
            max_chunk: 65536,
            shutdown_after_peer_fin: false,
            wait_closed_before_release: true,
            slow_reader: None,
            rx_alter: None,
            next_read_at: Instant::ZERO,
            shut: false,
            eof: false,
            released: false,
            closed: None,
            connected_at: None,
            rx_done_at: None,
            released_at: None,
            scratch: Vec::new(),
            writes: 0,
            expect: Vec::new(),
            direct_reader: false,
            direct: None,
            peak_memory: 0,
        }
    }

    /// Give the connection a `DirectReader` that checks what it takes
    /// against the payload and sometimes declines all or part of it (which
    /// then waits in the receive buffer for `read`).
    fn install_direct(&mut self, stack: &mut Stack, id: ConnId) -> Result<(), String> {
        let check = Arc::new(Mutex::new(DirectCheck {
            received: self.received,
            rx: self.rx,
            alter: self.rx_alter,
            rng: self.rng.fork(),
            error: None,
            taken: 0,
        }));
        let c = check.clone();
        let reader = move |part: &[u8]| c.lock().unwrap().take(part);
        stack
            .set_direct_reader(id, Some(Box::new(reader)))
            .map_err(|e| format!("set_direct_reader: {e}"))?;
        self.direct = Some(check);
        Ok(())
    }

    /// Bytes the direct reader took.
    pub fn direct_taken(&self) -> u64 {
        self.direct.as_ref().map_or(0, |d| d.lock().unwrap().taken)
    }

    /// What the direct reader took so far: `received` catches up (an error
    /// if it saw a wrong byte).
    fn sync_direct(&mut self) -> Result<(), String> {
        let Some(d) = &self.direct else { return Ok(()) };
        let d = d.lock().unwrap();
        if let Some(e) = &d.error {
            return Err(format!("direct reader: {e}"));
        }
        self.received = d.received;
        Ok(())
    }

    /// The active end: connects to `remote` (from `local`, or the stack's choice) at
    /// its first poll, sends `tx`, expects `rx`.
    pub fn client(
        local: Option<SocketAddr>,
        remote: SocketAddr,
        tx: Payload,
        rx: Payload,
        seed: u64,
    ) -> Self {
        Transfer::new("client", Role::Client { local, remote }, tx, rx, seed)
    }

    /// The passive end: adopts the first connection its stack accepts (the caller
    /// must have called `listen`).
    pub fn server(tx: Payload, rx: Payload, seed: u64) -> Self {
        Transfer::new("server", Role::Server, tx, rx, seed)
    }

    fn chunk(&mut self) -> usize {
        // Mostly large chunks, sometimes tiny ones.
        match self.rng.below(8) {
            0 => self.rng.range(1, 16) as usize,
            1 => self.rng.range(1, 1460) as usize,
            _ => self.rng.range(1, self.max_chunk as u64) as usize,
        }
    }

    fn progress(&self) -> String {
        format!(
            "tx {}/{}{}, rx {}/{}{}",
            self.sent,
            self.tx.len,
            if self.shut { " shut" } else { "" },
            self.received,
            self.rx.len,
            if self.eof { " eof" } else { "" }
        )
    }

    fn read(&mut self, now: Instant, stack: &mut Stack, id: ConnId) -> Result<(), String> {
        self.sync_direct()?;
        let r = self.read_buffered(now, stack, id);
        if let Some(d) = &self.direct {
            d.lock().unwrap().received = self.received;
        }
        r
    }

    fn read_buffered(&mut self, now: Instant, stack: &mut Stack, id: ConnId) -> Result<(), String> {
        let mut budget = usize::MAX;
        if let Some(slow) = self.slow_reader {
            if now < self.next_read_at {
                return Ok(());
            }
            budget = slow.budget;
            self.next_read_at = now + slow.interval;
        }
        while !self.eof && budget > 0 {
            let want = self.chunk().min(budget);
            self.scratch.resize(want, 0);
            match stack.recv(id, &mut self.scratch) {
                Ok(0) => break,
                Ok(n) => {
                    if n > want {
                        return Err(format!("recv returned {n} > buffer {want}"));
                    }
                    if self.received + n as u64 > self.rx.len {
                        return Err(format!(
                            "received more than the peer sent: {} + {n} > {}",
                            self.received, self.rx.len
                        ));
                    }
                    self.expect.resize(n, 0);
                    self.rx.fill(self.received, &mut self.expect);
                    if let Some(alter) = self.rx_alter {
                        for (i, b) in self.expect.iter_mut().enumerate() {
                            *b = alter(self.received + i as u64, *b);
                        }
                    }
                    if let Some(i) = (0..n).find(|&i| self.scratch[i] != self.expect[i]) {
                        return Err(format!(
                            "data mismatch at offset {}: got {:#04x}, expected {:#04x}",
                            self.received + i as u64,
                            self.scratch[i],
                            self.expect[i]
                        ));
                    }
                    self.received += n as u64;
                    budget -= n;
                }
                Err(Error::Finished) => {
                    if self.received != self.rx.len {
                        return Err(format!(
                            "premature EOF after {} of {} bytes",
                            self.received, self.rx.len
                        ));
                    }
                    self.eof = true;
                    self.rx_done_at = Some(now);
                }
                Err(e) => return Err(format!("recv: {e} ({})", self.progress())),
            }
        }
        Ok(())
    }

    fn write(&mut self, stack: &mut Stack, id: ConnId) -> Result<(), String> {
        while self.sent < self.tx.len {
            let want = (self.chunk() as u64).min(self.tx.len - self.sent) as usize;
            self.scratch.resize(want, 0);
            self.tx.fill(self.sent, &mut self.scratch);
            // Every other write fills the send buffer in place (a relay's
            // read of its socket), the source giving at most `want` bytes.
            self.writes += 1;
            let r = if self.writes.is_multiple_of(2) {
                let mut given = 0;
                let src = &self.scratch;
                stack.send_with(id, usize::MAX, |room| {
                    let k = room.remaining_mut().min(src.len() - given);
                    room.put_slice(&src[given..given + k]);
                    given += k;
                })
            } else {
                stack.send(id, &self.scratch)
            };
            match r {
                Ok(0) => break,
                Ok(n) if n > want => return Err(format!("send accepted {n} > offered {want}")),
                Ok(n) => self.sent += n as u64,
                Err(e) => return Err(format!("send: {e} ({})", self.progress())),
            }
        }
        Ok(())
    }
}

impl App for Transfer {
    fn on_event(&mut self, now: Instant, _stack: &mut Stack, event: Event) -> Result<(), String> {
        match event {
            Event::Accepted { id, .. } => match self.role {
                Role::Server if self.conn.is_none() => {
                    self.conn = Some(id);
                    if self.direct_reader {
                        self.install_direct(_stack, id)?;
                    }
                }
                _ => return Err(format!("unexpected {event:?}")),
            },
            Event::Connected(id) => match self.role {
                Role::Client { .. } if self.conn == Some(id) => self.connected_at = Some(now),
                _ => return Err(format!("unexpected {event:?}")),
            },
            // After an early release the stack may or may not report the end.
            Event::Closed { id, reason } if self.conn == Some(id) && !self.released => {
                if reason != CloseReason::Normal {
                    return Err(format!(
                        "connection closed: {reason:?} ({})",
                        self.progress()
                    ));
                }
                if self.closed.is_some() {
                    return Err("Closed reported twice".into());
                }
                self.closed = Some(reason);
            }
            _ => {}
        }
        Ok(())
    }

    fn poll(&mut self, now: Instant, stack: &mut Stack) -> Result<(), String> {
        self.peak_memory = self.peak_memory.max(stack.memory_used());
        if self.conn.is_none() {
            if let Role::Client { local, remote } = self.role {
                let id = stack
                    .connect(now, local, remote)
                    .map_err(|e| format!("connect: {e}"))?;
                self.conn = Some(id);
                if self.direct_reader {
                    self.install_direct(stack, id)?;
                }
            }
        }
        let Some(id) = self.conn else { return Ok(()) };
        if self.released {
            return Ok(());
        }
        self.read(now, stack, id)?;
        self.write(stack, id)?;
        if !self.shut && self.sent == self.tx.len && (self.eof || !self.shutdown_after_peer_fin) {
            stack
                .shutdown(id)
                .map_err(|e| format!("shutdown: {e} ({})", self.progress()))?;
            self.shut = true;
        }
        if self.shut && self.eof && (self.closed.is_some() || !self.wait_closed_before_release) {
            stack.release(id).map_err(|e| format!("release: {e}"))?;
            self.released = true;
            self.released_at = Some(now);
        }
        Ok(())
    }

    fn next_wakeup(&self) -> Option<Instant> {
        match self.slow_reader {
            Some(_) if !self.eof && !self.released && self.conn.is_some() => {
                Some(self.next_read_at)
            }
            _ => None,
        }
    }

    fn done(&self, stack: &Stack) -> bool {
        self.released && self.conn.is_some_and(|id| stack.state(id).is_none())
    }

    fn status(&self) -> String {
        format!(
            "{} {}: {}{}{}",
            self.name,
            self.conn.map_or("-".to_string(), |c| c.to_string()),
            self.progress(),
            self.closed
                .map_or(String::new(), |r| format!(", closed {r:?}")),
            if self.released { ", released" } else { "" }
        )
    }
}

/// A `Transfer`'s direct reader: checks the bytes it takes, in stream
/// order, and takes all of them, none or a part at random.
struct DirectCheck {
    received: u64,
    rx: Payload,
    alter: Option<fn(u64, u8) -> u8>,
    rng: Rng,
    error: Option<String>,
    /// Bytes it took.
    taken: u64,
}

impl DirectCheck {
    fn take(&mut self, part: &[u8]) -> usize {
        let n = match self.rng.below(8) {
            0 => 0,
            1 | 2 => self.rng.range(0, part.len() as u64) as usize,
            _ => part.len(),
        };
        if self.received + n as u64 > self.rx.len {
            self.error.get_or_insert(format!(
                "offered more than the peer sent: {} + {n} > {}",
                self.received, self.rx.len
            ));
            return 0;
        }
        let mut expect = vec![0; n];
        self.rx.fill(self.received, &mut expect);
        if let Some(alter) = self.alter {
            for (i, b) in expect.iter_mut().enumerate() {
                *b = alter(self.received + i as u64, *b);
            }
        }
        if let Some(i) = (0..n).find(|&i| part[i] != expect[i]) {
            self.error.get_or_insert(format!(
                "data mismatch at offset {}: got {:#04x}, expected {:#04x}",
                self.received + i as u64,
                part[i],
                expect[i]
            ));
        }
        self.received += n as u64;
        self.taken += n as u64;
        n
    }
}

/// Everything one transfer run depends on; derived from a seed by [`Scenario::random`].
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub ipv6: bool,
    pub client_to_server: LinkParams,
    pub server_to_client: LinkParams,
    pub client_bytes: u64,
    pub server_bytes: u64,
    /// The client waits for the server's FIN before its own shutdown.
    pub server_fin_first: bool,
    pub wait_closed_before_release: bool,
    pub client_slow_reader: Option<SlowReader>,
    pub server_slow_reader: Option<SlowReader>,
    pub max_chunk: usize,
    pub client_config: Config,
    pub server_config: Config,
    /// A middlebox on the path rewriting every delivered packet (both ways).
    pub middlebox: Option<fn(&mut Vec<u8>)>,
    /// What that middlebox does to the client's bytes, by stream offset.
    pub client_data_alter: Option<fn(u64, u8) -> u8>,
    /// The ends also read with a `DirectReader` (`Transfer::direct_reader`).
    pub client_direct: bool,
    pub server_direct: bool,
}

/// Port the server listens on.
pub const SERVER_PORT: u16 = 5001;

/// A stack config for simulations. TIME_WAIT (2 MSL) must outlast the peer's
/// retransmissions of its FIN (exponential backoff under heavy loss) or the peer
/// gets a RST in LAST_ACK, as in real TCP; idle virtual time costs nothing.
pub fn sim_config(seed: u64) -> Config {
    let mut c = Config {
        seed: seed.into(),
        ..Config::default()
    };
    c.tcp.msl = Duration::from_secs(30);
    c
}

/// A client's and a server's configuration for an MPTCP run (seeds derived
/// from `seed`, labels 1 and 2), each allowing `max_subflows` joins.
pub fn mptcp_pair(seed: u64, max_subflows: usize) -> (Config, Config) {
    let [mut cc, mut sc] = [1, 2].map(|label| sim_config(derive(seed, label)));
    for c in [&mut cc, &mut sc] {
        c.mptcp.enabled = true;
        c.mptcp.max_subflows = max_subflows;
    }
    (cc, sc)
}

impl Scenario {
    /// A fixed, clean scenario (useful as a base to modify).
    pub fn basic(seed: u64, client_bytes: u64, server_bytes: u64, link: LinkParams) -> Self {
        Scenario {
            seed,
            ipv6: false,
            client_to_server: link.clone(),
            server_to_client: link,
            client_bytes,
            server_bytes,
            server_fin_first: false,
            wait_closed_before_release: true,
            client_slow_reader: None,
            server_slow_reader: None,
            max_chunk: 65536,
            client_config: sim_config(derive(seed, 1)),
            server_config: sim_config(derive(seed, 2)),
            middlebox: None,
            client_data_alter: None,
            client_direct: false,
            server_direct: false,
        }
    }

    /// `basic` on the default path, but the client's reader takes what came
    /// only every `every` and its receive buffer is 64 KiB: its window closes
    /// and the server must probe it.
    pub fn stalled_client_reader(
        seed: u64,
        client_bytes: u64,
        server_bytes: u64,
        every: Duration,
    ) -> Self {
        let mut s = Scenario::basic(seed, client_bytes, server_bytes, LinkParams::default());
        s.client_config.tcp.recv_buffer = 64 << 10;
        s.client_slow_reader = Some(SlowReader {
            interval: every,
            budget: usize::MAX,
        });
        s
    }

    /// Mixed conditions drawn from `seed`; payloads up to `max_bytes` each way.
    pub fn random(seed: u64, max_bytes: u64) -> Self {
        let mut r = Rng::new(derive(seed, 0x5CE7));
        let mut s = Scenario::basic(seed, 0, 0, LinkParams::default());
        // Drawn apart, so that every other choice stays what the seed made
        // it before direct readers existed.
        let mut d = Rng::new(derive(seed, 0xD1EC));
        s.client_direct = d.chance(0.3);
        s.server_direct = d.chance(0.3);
        s.ipv6 = r.chance(0.3);
        let size = |r: &mut Rng| match r.below(20) {
            0..=2 => 0,
            3..=5 => r.range(1, 5000),
            _ => r.range((max_bytes / 3).max(1), max_bytes),
        };
        s.client_bytes = size(&mut r);
        s.server_bytes = size(&mut r);

        let delay = Duration::from_millis(r.pick(&[1, 5, 10, 20, 50, 100]));
        let jitter = match r.below(3) {
            0 => Duration::ZERO,
            1 => delay / 10,
            _ => Duration::from_millis(r.range(1, 20)),
        };
        let loss = match r.below(6) {
            0 | 1 => 0.0,
            2 => 0.01,
            3 => 0.05,
            4 => 0.10,
            _ => r.range(0, 1000) as f64 / 10_000.0,
        };
        let duplicate = if r.chance(0.3) {
            r.range(1, 200) as f64 / 10_000.0
        } else {
            0.0
        };
        let corrupt = if r.chance(0.3) {
            r.range(1, 100) as f64 / 10_000.0
        } else {
            0.0
        };
        let (rate, queue) = if r.chance(0.4) {
            let mbit = r.pick(&[1u64, 2, 5, 10, 50]);
            let rate = mbit * 1_000_000 / 8;
            // Queue between a few packets and about two bandwidth-delay products.
            let bdp = (rate as u128 * 2 * delay.as_micros() / 1_000_000) as usize;
            let queue = match r.below(3) {
                0 => 8 * 1500,
                1 => bdp.max(16 * 1500),
                _ => (2 * bdp).max(64 * 1500),
            };
            (Some(rate), queue)
        } else {
            (None, 0)
        };
        let link = LinkParams {
            delay,
            jitter,
            loss,
            duplicate,
            corrupt,
            rate,
            queue,
            up: true,
        };
        s.client_to_server = link.clone();
        s.server_to_client = link;
        if r.chance(0.2) {
            // Asymmetric path: a different delay on the way back.
            s.server_to_client.delay = Duration::from_millis(r.pick(&[1, 5, 10, 20, 50, 100]));
        }

        s.server_fin_first = r.chance(0.25);
        s.wait_closed_before_release = r.chance(0.7);
        let slow = |r: &mut Rng| {
            r.chance(0.1).then(|| SlowReader {
                interval: Duration::from_millis(r.range(1, 20)),
                budget: r.range(1000, 100_000) as usize,
            })
        };
        s.client_slow_reader = slow(&mut r);
        s.server_slow_reader = slow(&mut r);
        s.max_chunk = r.pick(&[1460, 16384, 65536, 262144]);

        for c in [&mut s.client_config, &mut s.server_config] {
            c.tcp.sack = r.chance(0.75);
            c.tcp.cc = if r.chance(0.5) {
                CcAlgorithm::Cubic
            } else {
                CcAlgorithm::NewReno
            };
            c.tcp.delayed_ack = if r.chance(0.3) {
                None
            } else {
                Some(Duration::from_millis(40))
            };
            c.tcp.timestamps = r.chance(0.8);
            c.tcp.mtu = r.pick(&[1500, 1500, 1500, 1280]);
            if r.chance(0.2) {
                c.tcp.send_buffer = r.range(16 << 10, 1 << 20) as usize;
            }
            if r.chance(0.2) {
                c.tcp.recv_buffer = r.range(16 << 10, 1 << 20) as usize;
            }
        }
        // A slow reader only matters if its receive window can fill up.
        for (slow, c) in [
            (s.client_slow_reader, &mut s.client_config),
            (s.server_slow_reader, &mut s.server_config),
        ] {
            if slow.is_some() {
                c.tcp.recv_buffer = c.tcp.recv_buffer.min(r.range(16 << 10, 256 << 10) as usize);
            }
        }
        s
    }

    /// One-line description for failure messages.
    pub fn describe(&self) -> String {
        let cfg = |c: &Config| {
            let d = Config::default();
            format!(
                "{}{}{}{}{}{}{}",
                match c.tcp.cc {
                    CcAlgorithm::Cubic => "cubic",
                    CcAlgorithm::NewReno => "newreno",
                    CcAlgorithm::Lia => "lia",
                    CcAlgorithm::Olia => "olia",
                },
                if c.tcp.sack { "+sack" } else { "" },
                if c.tcp.timestamps { "+ts" } else { "" },
                match c.tcp.delayed_ack {
                    Some(d) => format!("+delack{}ms", d.as_millis()),
                    None => String::new(),
                },
                if c.tcp.mtu != d.tcp.mtu {
                    format!(" mtu {}", c.tcp.mtu)
                } else {
                    String::new()
                },
                if c.tcp.send_buffer != d.tcp.send_buffer {
                    format!(" sndbuf {}", c.tcp.send_buffer)
                } else {
                    String::new()
                },
                if c.tcp.recv_buffer != d.tcp.recv_buffer {
                    format!(" rcvbuf {}", c.tcp.recv_buffer)
                } else {
                    String::new()
                },
            )
        };
        let mut s = format!(
            "{}, c->s {} / s->c {}, client {} B, server {} B, client {}, server {}",
            if self.ipv6 { "IPv6" } else { "IPv4" },
            self.client_to_server.describe(),
            self.server_to_client.describe(),
            self.client_bytes,
            self.server_bytes,
            cfg(&self.client_config),
            cfg(&self.server_config),
        );
        if self.server_fin_first {
            s += ", server FIN first";
        }
        if !self.wait_closed_before_release {
            s += ", early release";
        }
        if let Some(sr) = self.client_slow_reader {
            s += &format!(
                ", client reads {}B/{}ms",
                sr.budget,
                sr.interval.as_millis()
            );
        }
        if let Some(sr) = self.server_slow_reader {
            s += &format!(
                ", server reads {}B/{}ms",
                sr.budget,
                sr.interval.as_millis()
            );
        }
        if self.client_direct {
            s += ", client direct reader";
        }
        if self.server_direct {
            s += ", server direct reader";
        }
        s += &format!(", chunks <= {}", self.max_chunk);
        s
    }
}

/// Figures of a successful transfer.
#[derive(Debug, Clone)]
pub struct TransferReport {
    /// Bytes the client's and the server's direct readers took.
    pub direct_taken: [u64; 2],
    /// When both ends had read every byte (virtual time since start).
    pub completion: Duration,
    /// When both handles had been released.
    pub released: Duration,
    /// When the run ended (both stacks idle: TIME_WAIT over).
    pub end: Duration,
    /// Sum of `counters().retransmitted_bytes` over both stacks.
    pub retransmitted_bytes: u64,
    pub retransmitted_segments: u64,
    pub client_to_server: super::LinkStats,
    pub server_to_client: super::LinkStats,
    pub steps: u64,
    /// The most each stack's connections held at once (`Stack::memory_used`
    /// seen at every poll; client, server).
    pub peak_memory: [usize; 2],
    /// Each stack's counters at the end (client, server).
    pub counters: [mptun_stack::Counters; 2],
}

/// Run a scenario: client (host 0) and server (host 1) on one path.
pub fn run_transfer(sc: &Scenario) -> Result<TransferReport, String> {
    let mut w = World::new(sc.seed);
    let c = w.add_host("client", sc.client_config.clone());
    let s = w.add_host("server", sc.server_config.clone());
    let (ca, sa) = (addr(sc.ipv6, 0, 1), addr(sc.ipv6, 0, 2));
    w.add_path(
        c,
        ca,
        s,
        sa,
        sc.client_to_server.clone(),
        sc.server_to_client.clone(),
    );
    w.path_mut(0).middlebox = sc.middlebox;
    // Every DSS mapping on the wire consistent, every DSN's byte the same.
    let dss = sc.client_config.mptcp.enabled.then(|| {
        let (check, tap) = super::dss_check::DssCheck::tap();
        w.tap = Some(tap);
        check
    });
    w.stack_mut(s)
        .listen(SERVER_PORT)
        .map_err(|e| format!("listen: {e}"))?;

    let cp = Payload::new(derive(sc.seed, 10), sc.client_bytes);
    let sp = Payload::new(derive(sc.seed, 11), sc.server_bytes);
    let mut client = Transfer::client(
        None,
        SocketAddr::new(sa, SERVER_PORT),
        cp,
        sp,
        derive(sc.seed, 20),
    );
    let mut server = Transfer::server(sp, cp, derive(sc.seed, 21));
    for (t, slow, direct) in [
        (&mut client, sc.client_slow_reader, sc.client_direct),
        (&mut server, sc.server_slow_reader, sc.server_direct),
    ] {
        t.direct_reader = direct;
        t.max_chunk = sc.max_chunk;
        t.wait_closed_before_release = sc.wait_closed_before_release;
        t.slow_reader = slow;
    }
    client.shutdown_after_peer_fin = sc.server_fin_first;
    server.rx_alter = sc.client_data_alter;

    w.run_until_done(&mut [&mut client, &mut server])
        .map_err(|e| e.to_string())?;

    if let Some(problems) = dss.map(|d| d.borrow().problems.clone()) {
        if !problems.is_empty() {
            return Err(format!("DSS on the wire: {}", problems.join("; ")));
        }
    }
    let since = |t: Option<Instant>| t.unwrap_or(Instant::ZERO) - Instant::ZERO;
    let counters = [w.stack(c).counters().clone(), w.stack(s).counters().clone()];
    Ok(TransferReport {
        completion: since(client.rx_done_at.max(server.rx_done_at)),
        released: since(client.released_at.max(server.released_at)),
        end: w.now - Instant::ZERO,
        retransmitted_bytes: counters.iter().map(|k| k.retransmitted_bytes).sum(),
        retransmitted_segments: counters.iter().map(|k| k.retransmitted_segments).sum(),
        client_to_server: w.path(0).a_to_b.stats().clone(),
        server_to_client: w.path(0).b_to_a.stats().clone(),
        steps: w.steps,
        peak_memory: [client.peak_memory, server.peak_memory],
        direct_taken: [client.direct_taken(), server.direct_taken()],
        counters,
    })
}
