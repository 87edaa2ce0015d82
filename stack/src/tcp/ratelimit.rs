//! Limits on what others can make us send. An attacker who sprays segments
//! must not get a packet back for each one: per connection, a duplicate ACK
//! for out-of-window or PAWS-failed segments at most every 500 ms (Linux's
//! `tcp_invalid_ratelimit`, data segments exempt) and challenge ACKs at most
//! ten a second; across all connections, a per-second quota of challenge ACKs
//! (RFC 5961 §7) that is drawn anew each second, so that counting them cannot
//! serve as a side channel (CVE-2016-5696, "off-path TCP exploits"). The
//! stack also holds token buckets for RSTs to segments and ICMP echo replies.

use crate::time::Instant;
use core::time::Duration;

/// A token bucket: a token earned every `per_token`, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_token: u64,
    cap: u64,
    /// Microseconds of credit.
    credit: u64,
    last: Instant,
}

impl TokenBucket {
    /// `rate` tokens a second.
    pub fn new(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket::every(Duration::from_micros(1_000_000 / rate.max(1) as u64), burst)
    }

    /// One token every `interval`.
    pub fn every(interval: Duration, burst: u32) -> TokenBucket {
        let per_token = (interval.as_micros() as u64).max(1);
        let cap = per_token * burst.max(1) as u64;
        TokenBucket {
            per_token,
            cap,
            credit: cap,
            last: Instant::ZERO,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_since(self.last).as_micros() as u64;
        self.last = self.last.max(now);
        self.credit = (self.credit + elapsed).min(self.cap);
    }

    /// Whether a token could be taken at `now`.
    pub fn available(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.credit >= self.per_token
    }

    /// Take one token at `now`; false (nothing taken) when the bucket is empty.
    pub fn take(&mut self, now: Instant) -> bool {
        if !self.available(now) {
            return false;
        }
        self.credit -= self.per_token;
        true
    }
}

/// The stack-wide quota of challenge ACKs, shared by every connection.
#[derive(Debug, Clone)]
pub struct ChallengeQuota {
    per_sec: u32,
    /// This second's quota is drawn between half and one and a half times
    /// `per_sec` from this (SplitMix64) state.
    state: u64,
    second: Option<Instant>,
    left: u32,
}

impl ChallengeQuota {
    pub fn new(per_sec: u32, seed: u64) -> ChallengeQuota {
        ChallengeQuota {
            per_sec,
            state: seed,
            second: None,
            left: 0,
        }
    }

    fn draw(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Whether one more challenge ACK may go out at `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        if self
            .second
            .is_none_or(|s| now.saturating_since(s) >= Duration::from_secs(1))
        {
            self.second = Some(now);
            let half = (self.per_sec / 2) as u64;
            self.left = (half + self.draw() % (self.per_sec as u64 + 1)) as u32;
        }
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(n)
    }

    #[test]
    fn token_bucket_allows_its_burst_then_its_rate() {
        let mut b = TokenBucket::new(10, 3);
        let now = ms(1000);
        assert!((0..3).all(|_| b.take(now)));
        assert!(!b.take(now));
        assert!(!b.take(ms(1050)));
        assert!(b.take(ms(1100)), "one token per 100 ms");
        assert!(!b.take(ms(1100)));
        // Long idle refills only up to the burst.
        let later = ms(60_000);
        assert!((0..3).all(|_| b.take(later)));
        assert!(!b.take(later));
        // Slower than one a second.
        let mut b = TokenBucket::every(Duration::from_secs(10), 2);
        assert!(b.take(ms(0)) && b.take(ms(0)) && !b.available(ms(9_000)));
        assert!(b.take(ms(10_000)) && !b.take(ms(10_000)));
    }

    #[test]
    fn challenge_quota_varies_around_its_rate() {
        let mut q = ChallengeQuota::new(100, 7);
        let mut quotas = Vec::new();
        for s in 0..20 {
            let now = ms(s * 1000);
            let mut n = 0;
            while q.take(now) {
                n += 1;
            }
            assert!((50..=150).contains(&n), "second {s}: {n}");
            quotas.push(n);
        }
        quotas.dedup();
        assert!(quotas.len() > 5, "the quota is drawn anew: {quotas:?}");
    }
}
