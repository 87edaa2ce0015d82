//! A sans-IO fault injector: one direction of a network path, a [`Link`].
//!
//! The kernels mptun runs on do not always have `netem` (`tc qdisc ... netem`), and a
//! simulation needs the same faults without any kernel at all. So the fault model
//! lives here, in the engine crate, and both users share this one implementation:
//!
//! - the simulation harness (`stack/tests/sim`) puts a [`Link`] in each direction of
//!   each path between two [`Stack`](crate::Stack)s;
//! - the daemon's `--impair ADDR:SPEC` puts one in front of the TUN for the packets
//!   of a peer, with the parameters parsed from `SPEC` by [`ImpairSpec`].
//!
//! Like the rest of the crate it does no I/O and reads no clock: packets go in through
//! [`Link::send`] with the caller's `now`, come out through [`Link::pop_due`] once
//! `now` reaches their delivery time, and [`Link::next_delivery`] tells the caller when
//! to wake up. All randomness comes from a small SplitMix64 generator seeded by the
//! caller, so a run with the same seed and the same inputs is the same run.
//!
//! A packet handed to [`Link::send`] at time `now` goes through, in order:
//!
//! 1. `up`: a down link drops it (and drops whatever is still in flight when it is
//!    due, as a cut cable would);
//! 2. random loss with probability `loss`;
//! 3. the bottleneck, if `rate` is set: a FIFO transmitter of `rate` bytes/s with a
//!    queue of at most `queue` bytes waiting in front of it (tail drop when the packet
//!    does not fit: congestion loss). The packet leaves the bottleneck once every byte
//!    queued before it and its own bytes have been serialised;
//! 4. propagation: `delay` plus a uniform random `0..=jitter` per packet (jitter
//!    reorders packets);
//! 5. corruption with probability `corrupt`: one random bit of one random byte
//!    (anywhere in the datagram, IP header included) is flipped;
//! 6. duplication with probability `duplicate`: an extra, uncorrupted copy with its own
//!    jitter is delivered as well (duplicated after the bottleneck).
//!
//! In-flight packets sit in a heap ordered by `(deliver_at, seq_no)`, so packets due at
//! the same instant come out in the order they were sent and a run is reproducible.
//!
//! # SPEC grammar
//!
//! [`ImpairSpec`] (and [`LinkParams`], ignoring the seed) implement [`FromStr`] for a
//! comma-separated list of `KEY=VALUE`, each key at most once, e.g.
//! `delay=40ms,jitter=5ms,loss=1%,rate=20mbit,queue=64KB,seed=7`. Keys not given keep
//! the values of [`LinkParams::ideal`] (no delay, no loss, unlimited rate, 256 KiB
//! queue).
//!
//! | key       | value                                                          |
//! |-----------|----------------------------------------------------------------|
//! | `delay`   | duration: a number (fraction allowed) and `us`, `ms` or `s`    |
//! | `jitter`  | duration, as `delay`                                           |
//! | `loss`    | probability: `1%`, `0.5%` or a fraction `0.01`; 0..=100%       |
//! | `dup`     | probability, as `loss`                                         |
//! | `corrupt` | probability, as `loss`                                         |
//! | `rate`    | bits per second, like tc: `800`, `800bit`, `64kbit`, `20mbit`, `1gbit` (×1000); at least 8 bit/s |
//! | `queue`   | bytes: `65536`, `65536B`, `64K`/`64KB`, `1M`/`1MB` (×1024); positive; used only with `rate` |
//! | `seed`    | `u64` seed of the link's random choices                        |
//!
//! Keys and units are case-insensitive. Errors are [`ImpairSpecError`]s naming the key
//! and value at fault.

use crate::time::Instant;
use core::fmt;
use core::str::FromStr;
use core::time::Duration;
use prng::Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Parameters of one link direction.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkParams {
    /// Fixed propagation delay.
    pub delay: Duration,
    /// Uniform random extra delay `0..=jitter` per packet.
    pub jitter: Duration,
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that one bit of a packet is flipped.
    pub corrupt: f64,
    /// Bottleneck rate in bytes per second; `None` is unlimited.
    pub rate: Option<u64>,
    /// Bytes that may wait for the bottleneck (ignored without `rate`).
    pub queue: usize,
    /// A down link drops everything.
    pub up: bool,
}

/// The simulator's default: 10 ms of delay, nothing else.
impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            corrupt: 0.0,
            rate: None,
            queue: 256 * 1024,
            up: true,
        }
    }
}

impl LinkParams {
    /// A perfect link: no delay, no loss, unlimited rate (the base of a parsed spec).
    pub fn ideal() -> Self {
        LinkParams {
            delay: Duration::ZERO,
            ..LinkParams::default()
        }
    }

    /// A perfect link with a fixed delay.
    pub fn with_delay(delay: Duration) -> Self {
        LinkParams {
            delay,
            ..LinkParams::default()
        }
    }

    /// One-line description for failure messages and tables.
    pub fn describe(&self) -> String {
        let mut s = format!("delay {}ms", self.delay.as_millis());
        if !self.jitter.is_zero() {
            s += &format!("+jitter {}ms", self.jitter.as_millis());
        }
        s += &format!(", loss {}%", fmt_pct(self.loss));
        if self.duplicate > 0.0 {
            s += &format!(", dup {}%", fmt_pct(self.duplicate));
        }
        if self.corrupt > 0.0 {
            s += &format!(", corrupt {}%", fmt_pct(self.corrupt));
        }
        match self.rate {
            Some(r) => {
                s += &format!(
                    ", rate {:.2}Mbit/s queue {}KiB",
                    r as f64 * 8.0 / 1e6,
                    self.queue / 1024
                )
            }
            None => s += ", rate unlimited",
        }
        if !self.up {
            s += ", DOWN";
        }
        s
    }
}

fn fmt_pct(p: f64) -> String {
    let v = p * 100.0;
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as u64)
    } else {
        format!("{v:.2}")
    }
}

/// What happened to the packets of a link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets handed to `send`.
    pub sent: u64,
    /// Bytes handed to `send`.
    pub bytes_sent: u64,
    /// Packets (copies included) handed to the receiver.
    pub delivered: u64,
    /// Bytes (copies included) handed to the receiver.
    pub bytes_delivered: u64,
    /// Dropped by random loss.
    pub dropped_loss: u64,
    /// Dropped because the bottleneck queue was full.
    pub dropped_queue: u64,
    /// Dropped because the link was down (at send or at delivery time).
    pub dropped_down: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Packets with a flipped bit.
    pub corrupted: u64,
}

impl LinkStats {
    /// Packets dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_loss + self.dropped_queue + self.dropped_down
    }

    /// One-line summary of the counters.
    pub fn describe(&self) -> String {
        format!(
            "sent {} delivered {} dropped {} (loss {}, queue {}, down {}) dup {} corrupt {}",
            self.sent,
            self.delivered,
            self.dropped(),
            self.dropped_loss,
            self.dropped_queue,
            self.dropped_down,
            self.duplicated,
            self.corrupted
        )
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    deliver_at: Instant,
    seq_no: u64,
    bytes: Vec<u8>,
}

/// One direction of a path.
#[derive(Debug)]
pub struct Link {
    /// The link's current parameters; may be changed between packets.
    pub params: LinkParams,
    rng: Rng,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    next_seq: u64,
    /// When the bottleneck transmitter finishes what is queued.
    busy_until: Instant,
    stats: LinkStats,
}

impl Link {
    /// A link with `params` whose random choices all derive from `seed`.
    pub fn new(params: LinkParams, seed: u64) -> Self {
        Link {
            params,
            rng: Rng::new(seed),
            in_flight: BinaryHeap::new(),
            next_seq: 0,
            busy_until: Instant::ZERO,
            stats: LinkStats::default(),
        }
    }

    /// What has happened to the packets so far.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Bring the link up or down (a down link drops everything, in flight included).
    pub fn set_up(&mut self, up: bool) {
        self.params.up = up;
    }

    /// Packets currently in flight (waiting in the queue or propagating).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Bytes waiting for the bottleneck at `now` (0 without a rate limit).
    pub fn queued_bytes(&self, now: Instant) -> usize {
        match self.params.rate {
            Some(rate) if self.busy_until > now => {
                let us = (self.busy_until - now).as_micros();
                (us * rate as u128 / 1_000_000) as usize
            }
            _ => 0,
        }
    }

    /// Hand a packet to the link at `now`.
    pub fn send(&mut self, now: Instant, packet: &[u8]) {
        self.stats.sent += 1;
        self.stats.bytes_sent += packet.len() as u64;
        if !self.params.up {
            self.stats.dropped_down += 1;
            return;
        }
        if self.rng.chance(self.params.loss) {
            self.stats.dropped_loss += 1;
            return;
        }
        let mut leave_at = now;
        if let Some(rate) = self.params.rate {
            assert!(rate > 0, "link rate must be positive");
            if self.queued_bytes(now) + packet.len() > self.params.queue {
                self.stats.dropped_queue += 1;
                return;
            }
            let start = self.busy_until.max(now);
            let tx_us = (packet.len() as u64 * 1_000_000).div_ceil(rate);
            self.busy_until = start + Duration::from_micros(tx_us);
            leave_at = self.busy_until;
        }
        let mut bytes = packet.to_vec();
        if !bytes.is_empty() && self.rng.chance(self.params.corrupt) {
            let i = self.rng.below(bytes.len() as u64) as usize;
            let bit = self.rng.below(8) as u32;
            bytes[i] ^= 1 << bit;
            self.stats.corrupted += 1;
        }
        let at = leave_at + self.params.delay + self.jitter();
        self.push(at, bytes);
        if self.rng.chance(self.params.duplicate) {
            self.stats.duplicated += 1;
            let at = leave_at + self.params.delay + self.jitter();
            self.push(at, packet.to_vec());
        }
    }

    fn jitter(&mut self) -> Duration {
        let j = self.params.jitter.as_micros() as u64;
        if j == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(self.rng.range(0, j))
        }
    }

    fn push(&mut self, deliver_at: Instant, bytes: Vec<u8>) {
        let seq_no = self.next_seq;
        self.next_seq += 1;
        self.in_flight.push(Reverse(InFlight {
            deliver_at,
            seq_no,
            bytes,
        }));
    }

    /// When the next packet arrives at the far end.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse(p)| p.deliver_at)
    }

    /// The next packet due at or before `now`, if any. Packets due while the link is
    /// down are dropped.
    pub fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        loop {
            if self.in_flight.peek()?.0.deliver_at > now {
                return None;
            }
            let Reverse(p) = self.in_flight.pop()?;
            if !self.params.up {
                self.stats.dropped_down += 1;
                continue;
            }
            self.stats.delivered += 1;
            self.stats.bytes_delivered += p.bytes.len() as u64;
            return Some(p.bytes);
        }
    }
}

/// A parsed `--impair` SPEC: the link parameters and, if given, the seed of its random
/// choices. See the [module documentation](self) for the grammar.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpairSpec {
    /// The link's parameters; keys not in the spec keep [`LinkParams::ideal`]'s values.
    pub params: LinkParams,
    /// `seed=N`, if given; the caller picks a seed otherwise.
    pub seed: Option<u64>,
}

/// The keys a SPEC may contain, in the order error messages list them.
pub const SPEC_KEYS: [&str; 8] = [
    "delay", "jitter", "loss", "dup", "corrupt", "rate", "queue", "seed",
];

/// Why a SPEC did not parse. Every variant names the key (and value) at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImpairSpecError {
    /// The spec is empty or blank.
    Empty,
    /// An empty item, as in `delay=10ms,,loss=1%` or a trailing comma.
    EmptyItem,
    /// An item without `=`, or with nothing after it.
    MissingValue {
        /// The item as written.
        key: String,
    },
    /// A key not in [`SPEC_KEYS`].
    UnknownKey {
        /// The key as written.
        key: String,
    },
    /// A key given more than once.
    DuplicateKey {
        /// The key.
        key: &'static str,
    },
    /// A value of the wrong form for its key.
    InvalidValue {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What the key accepts.
        expected: &'static str,
    },
    /// A well-formed value outside the key's range.
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// The allowed range.
        range: &'static str,
    },
}

impl fmt::Display for ImpairSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImpairSpecError::Empty => write!(
                f,
                "empty impairment spec (expected comma-separated KEY=VALUE, e.g. delay=10ms,loss=1%)"
            ),
            ImpairSpecError::EmptyItem => {
                write!(f, "empty item in impairment spec (stray or trailing comma)")
            }
            ImpairSpecError::MissingValue { key } => {
                write!(f, "impairment `{key}` has no value (expected KEY=VALUE)")
            }
            ImpairSpecError::UnknownKey { key } => write!(
                f,
                "unknown impairment key `{key}` (expected {})",
                SPEC_KEYS.join(", ")
            ),
            ImpairSpecError::DuplicateKey { key } => {
                write!(f, "impairment key `{key}` given more than once")
            }
            ImpairSpecError::InvalidValue {
                key,
                value,
                expected,
            } => write!(f, "invalid {key} `{value}` (expected {expected})"),
            ImpairSpecError::OutOfRange { key, value, range } => {
                write!(f, "{key} must be {range}, got `{value}`")
            }
        }
    }
}

impl std::error::Error for ImpairSpecError {}

const DURATION_FORM: &str = "a duration such as 500us, 10ms or 1.5s";
const PROBABILITY_FORM: &str = "a percentage such as 1% or a fraction such as 0.01";
const RATE_FORM: &str = "bits per second such as 800, 64kbit, 20mbit or 1gbit";
const QUEUE_FORM: &str = "bytes such as 65536, 64KB or 1MB";
const SEED_FORM: &str = "an unsigned 64-bit integer";

impl FromStr for ImpairSpec {
    type Err = ImpairSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(ImpairSpecError::Empty);
        }
        let mut params = LinkParams::ideal();
        let mut seed = None;
        let mut seen = [false; SPEC_KEYS.len()];
        for item in s.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(ImpairSpecError::EmptyItem);
            }
            let (key, value) = match item.split_once('=') {
                Some((k, v)) if !v.trim().is_empty() => (k.trim(), v.trim()),
                Some((k, _)) => {
                    return Err(ImpairSpecError::MissingValue {
                        key: k.trim().into(),
                    })
                }
                None => return Err(ImpairSpecError::MissingValue { key: item.into() }),
            };
            let lower = key.to_ascii_lowercase();
            let Some(index) = SPEC_KEYS.iter().position(|k| *k == lower) else {
                return Err(ImpairSpecError::UnknownKey { key: key.into() });
            };
            let key = SPEC_KEYS[index];
            if std::mem::replace(&mut seen[index], true) {
                return Err(ImpairSpecError::DuplicateKey { key });
            }
            match key {
                "delay" => params.delay = parse_duration(key, value)?,
                "jitter" => params.jitter = parse_duration(key, value)?,
                "loss" => params.loss = parse_probability(key, value)?,
                "dup" => params.duplicate = parse_probability(key, value)?,
                "corrupt" => params.corrupt = parse_probability(key, value)?,
                "rate" => params.rate = Some(parse_rate(key, value)?),
                "queue" => params.queue = parse_queue(key, value)?,
                "seed" => seed = Some(value.parse().map_err(|_| invalid(key, value, SEED_FORM))?),
                _ => unreachable!("every SPEC_KEYS entry is handled"),
            }
        }
        Ok(ImpairSpec { params, seed })
    }
}

/// Parses a SPEC into its link parameters; a `seed=` in it is accepted and dropped
/// (use [`ImpairSpec`] to keep it).
impl FromStr for LinkParams {
    type Err = ImpairSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<ImpairSpec>().map(|spec| spec.params)
    }
}

fn invalid(key: &'static str, value: &str, expected: &'static str) -> ImpairSpecError {
    ImpairSpecError::InvalidValue {
        key,
        value: value.into(),
        expected,
    }
}

/// Splits `value` into a non-negative finite number and its (lower-cased) unit.
fn number_and_unit(value: &str) -> Option<(f64, String)> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (num, unit) = value.split_at(split);
    // `f64::from_str` would also take "inf", "1e3" or a sign; the split above keeps
    // only digits and dots.
    let n: f64 = num.parse().ok()?;
    n.is_finite().then(|| (n, unit.trim().to_ascii_lowercase()))
}

fn parse_duration(key: &'static str, value: &str) -> Result<Duration, ImpairSpecError> {
    let (n, unit) = number_and_unit(value).ok_or_else(|| invalid(key, value, DURATION_FORM))?;
    let micros = match unit.as_str() {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => return Err(invalid(key, value, DURATION_FORM)),
    };
    // Virtual time has microsecond resolution; an hour is far beyond any useful delay.
    if micros > 3.6e9 {
        return Err(ImpairSpecError::OutOfRange {
            key,
            value: value.into(),
            range: "at most 3600s",
        });
    }
    Ok(Duration::from_micros(micros.round() as u64))
}

fn parse_probability(key: &'static str, value: &str) -> Result<f64, ImpairSpecError> {
    let (n, unit) = number_and_unit(value).ok_or_else(|| invalid(key, value, PROBABILITY_FORM))?;
    let p = match unit.as_str() {
        "%" => n / 100.0,
        "" => n,
        _ => return Err(invalid(key, value, PROBABILITY_FORM)),
    };
    if !(0.0..=1.0).contains(&p) {
        return Err(ImpairSpecError::OutOfRange {
            key,
            value: value.into(),
            range: "between 0% and 100%",
        });
    }
    Ok(p)
}

/// `rate` in bits per second (decimal multiples, as tc), returned in bytes per second.
fn parse_rate(key: &'static str, value: &str) -> Result<u64, ImpairSpecError> {
    let (n, unit) = number_and_unit(value).ok_or_else(|| invalid(key, value, RATE_FORM))?;
    let bits = match unit.as_str() {
        "" | "bit" => n,
        "kbit" => n * 1e3,
        "mbit" => n * 1e6,
        "gbit" => n * 1e9,
        _ => return Err(invalid(key, value, RATE_FORM)),
    };
    let bytes = (bits / 8.0).floor();
    if !(1.0..=1e15).contains(&bytes) {
        return Err(ImpairSpecError::OutOfRange {
            key,
            value: value.into(),
            range: "between 8bit (one byte per second) and 8000000gbit",
        });
    }
    Ok(bytes as u64)
}

/// `queue` in bytes (binary multiples, as tc's `k` and `m`).
fn parse_queue(key: &'static str, value: &str) -> Result<usize, ImpairSpecError> {
    let (n, unit) = number_and_unit(value).ok_or_else(|| invalid(key, value, QUEUE_FORM))?;
    let bytes = match unit.as_str() {
        "" | "b" => n,
        "k" | "kb" => n * 1024.0,
        "m" | "mb" => n * 1024.0 * 1024.0,
        _ => return Err(invalid(key, value, QUEUE_FORM)),
    };
    let bytes = bytes.floor();
    if !(1.0..=(1u64 << 40) as f64).contains(&bytes) {
        return Err(ImpairSpecError::OutOfRange {
            key,
            value: value.into(),
            range: "between 1 byte and 1TB",
        });
    }
    Ok(bytes as usize)
}

/// The link's random numbers: SplitMix64, the same generator as the simulator's
/// (`stack/tests/sim/rng.rs`), so a seed gives the same link behaviour as before the
/// model moved here. Not cryptographic; only reproducible.
mod prng {
    #[derive(Debug, Clone)]
    pub(super) struct Rng {
        state: u64,
    }

    fn mix64(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    impl Rng {
        pub(super) fn new(seed: u64) -> Self {
            Rng { state: seed }
        }

        fn next_u64(&mut self) -> u64 {
            self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix64(self.state)
        }

        /// Uniform in `0..n` (`n > 0`); the modulo bias is negligible for our ranges.
        pub(super) fn below(&mut self, n: u64) -> u64 {
            assert!(n > 0, "Rng::below(0)");
            self.next_u64() % n
        }

        /// Uniform in `lo..=hi`.
        pub(super) fn range(&mut self, lo: u64, hi: u64) -> u64 {
            assert!(lo <= hi, "Rng::range({lo}, {hi})");
            if hi - lo == u64::MAX {
                return self.next_u64();
            }
            lo + self.below(hi - lo + 1)
        }

        /// Uniform in `[0, 1)`.
        fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        /// True with probability `p`.
        pub(super) fn chance(&mut self, p: f64) -> bool {
            p > 0.0 && self.unit() < p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> ImpairSpec {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> ImpairSpecError {
        s.parse::<ImpairSpec>().expect_err(s)
    }

    #[test]
    fn parses_every_key() {
        let s = spec(
            "delay=40ms,jitter=500us,loss=1%,dup=0.5%,corrupt=0.001,rate=20mbit,queue=64KB,seed=7",
        );
        assert_eq!(s.seed, Some(7));
        let p = s.params;
        assert_eq!(p.delay, Duration::from_millis(40));
        assert_eq!(p.jitter, Duration::from_micros(500));
        assert!((p.loss - 0.01).abs() < 1e-12);
        assert!((p.duplicate - 0.005).abs() < 1e-12);
        assert!((p.corrupt - 0.001).abs() < 1e-12);
        assert_eq!(p.rate, Some(2_500_000));
        assert_eq!(p.queue, 64 * 1024);
        assert!(p.up);
    }

    #[test]
    fn units_defaults_and_spacing() {
        let s = spec(" Delay = 1.5s , LOSS=0.01 ");
        assert_eq!(s.params.delay, Duration::from_millis(1500));
        assert!((s.params.loss - 0.01).abs() < 1e-12);
        assert_eq!(s.seed, None);
        // Keys not given keep the ideal link's values.
        assert_eq!(s.params.jitter, Duration::ZERO);
        assert_eq!(s.params.rate, None);
        assert_eq!(s.params.queue, LinkParams::ideal().queue);

        assert_eq!(spec("rate=800").params.rate, Some(100));
        assert_eq!(spec("rate=800bit").params.rate, Some(100));
        assert_eq!(spec("rate=64kbit").params.rate, Some(8_000));
        assert_eq!(spec("rate=1Gbit").params.rate, Some(125_000_000));
        assert_eq!(spec("queue=1500").params.queue, 1500);
        assert_eq!(spec("queue=1500b").params.queue, 1500);
        assert_eq!(spec("queue=2k").params.queue, 2048);
        assert_eq!(spec("queue=1M").params.queue, 1 << 20);
        assert_eq!(spec("delay=0ms").params.delay, Duration::ZERO);
        assert_eq!(spec("loss=100%").params.loss, 1.0);
        assert_eq!(spec("seed=18446744073709551615").seed, Some(u64::MAX));

        let p: LinkParams = "delay=5ms,seed=3".parse().unwrap();
        assert_eq!(p, LinkParams::with_delay(Duration::from_millis(5)));
    }

    #[test]
    fn rejects_malformed_specs() {
        assert_eq!(err(""), ImpairSpecError::Empty);
        assert_eq!(err("  "), ImpairSpecError::Empty);
        assert_eq!(err("delay=1ms,"), ImpairSpecError::EmptyItem);
        assert_eq!(err("delay=1ms,,loss=1%"), ImpairSpecError::EmptyItem);
        assert_eq!(
            err("loss"),
            ImpairSpecError::MissingValue { key: "loss".into() }
        );
        assert_eq!(
            err("loss="),
            ImpairSpecError::MissingValue { key: "loss".into() }
        );
        assert_eq!(
            err("delay=1ms,delay=2ms"),
            ImpairSpecError::DuplicateKey { key: "delay" }
        );
        assert_eq!(
            err("lag=10ms").to_string(),
            "unknown impairment key `lag` (expected delay, jitter, loss, dup, corrupt, rate, queue, seed)"
        );
    }

    #[test]
    fn rejects_bad_values_naming_them() {
        for (s, key) in [
            ("delay=10", "delay"),
            ("delay=10min", "delay"),
            ("delay=-1ms", "delay"),
            ("jitter=fast", "jitter"),
            ("delay=1e3ms", "delay"),
            ("loss=1%%", "loss"),
            ("dup=x", "dup"),
            ("corrupt=inf", "corrupt"),
            ("rate=20mbps", "rate"),
            ("rate=20MB", "rate"),
            ("queue=64kbit", "queue"),
            ("seed=-1", "seed"),
            ("seed=1.5", "seed"),
            ("delay=1.2.3ms", "delay"),
        ] {
            match err(s) {
                ImpairSpecError::InvalidValue { key: k, value, .. } => {
                    assert_eq!(k, key, "{s}");
                    assert_eq!(value, s.split_once('=').unwrap().1, "{s}");
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        assert_eq!(
            err("delay=10").to_string(),
            "invalid delay `10` (expected a duration such as 500us, 10ms or 1.5s)"
        );
    }

    #[test]
    fn rejects_out_of_range_values() {
        assert_eq!(
            err("loss=150%").to_string(),
            "loss must be between 0% and 100%, got `150%`"
        );
        for s in [
            "loss=1.5",
            "dup=101%",
            "corrupt=2",
            "rate=0",
            "rate=7bit",
            "queue=0",
            "queue=0.5",
            "delay=2h0s",
        ] {
            let e = s.parse::<ImpairSpec>();
            assert!(e.is_err(), "{s} parsed");
        }
        assert!(matches!(
            err("rate=7"),
            ImpairSpecError::OutOfRange { key: "rate", .. }
        ));
        assert!(matches!(
            err("queue=0"),
            ImpairSpecError::OutOfRange { key: "queue", .. }
        ));
        assert!(matches!(
            err("delay=3601s"),
            ImpairSpecError::OutOfRange { key: "delay", .. }
        ));
    }

    #[test]
    fn same_seed_same_behaviour() {
        let params = spec("delay=5ms,jitter=5ms,loss=20%,dup=10%,corrupt=10%").params;
        let run = |seed| {
            let mut l = Link::new(params.clone(), seed);
            for i in 0..500u64 {
                l.send(Instant::from_micros(i * 100), &i.to_be_bytes());
            }
            let mut out = Vec::new();
            while let Some(p) = l.pop_due(Instant::from_millis(1000)) {
                out.push(p);
            }
            (out, l.stats().clone())
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let (out, stats) = run(7);
        assert_eq!(out.len() as u64, stats.delivered);
        assert!(stats.dropped_loss > 50 && stats.duplicated > 20 && stats.corrupted > 20);
    }
}
