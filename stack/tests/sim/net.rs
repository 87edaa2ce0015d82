//! The network model: one direction of a path, a [`Link`].
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

use super::rng::Rng;
use core::time::Duration;
use mptun_stack::Instant;
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
    pub bytes_sent: u64,
    /// Packets (copies included) handed to the receiver.
    pub delivered: u64,
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
    pub fn dropped(&self) -> u64 {
        self.dropped_loss + self.dropped_queue + self.dropped_down
    }

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
    pub params: LinkParams,
    rng: Rng,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    next_seq: u64,
    /// When the bottleneck transmitter finishes what is queued.
    busy_until: Instant,
    stats: LinkStats,
}

impl Link {
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

    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    pub fn set_up(&mut self, up: bool) {
        self.params.up = up;
    }

    pub fn is_up(&self) -> bool {
        self.params.up
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
