//! MPTCP data sequence numbers: 64-bit, compared modulo 2^64 (RFC 8684 §3.3),
//! the connection-level counterpart of [`SeqNumber`](super::SeqNumber).
//!
//! The wire codec carries DSNs and DATA_ACKs as raw `u64` (and 32-bit forms
//! expanded by [`super::mptcp::expand_seq32`]); the engine converts them to `Dsn`
//! where it reads them and does every comparison through this type.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Dsn(pub u64);

impl Dsn {
    /// Signed distance from `other` to `self`, valid while they are within 2^63.
    pub fn diff(self, other: Dsn) -> i64 {
        self.0.wrapping_sub(other.0) as i64
    }

    /// Bytes from `earlier` up to `self`; zero if `self` precedes `earlier`.
    pub fn since(self, earlier: Dsn) -> u64 {
        self.diff(earlier).max(0) as u64
    }

    pub fn max(self, other: Dsn) -> Dsn {
        if self.diff(other) >= 0 {
            self
        } else {
            other
        }
    }

    pub fn min(self, other: Dsn) -> Dsn {
        if self.diff(other) <= 0 {
            self
        } else {
            other
        }
    }

    /// `start <= self < end` in sequence space.
    pub fn in_range(self, start: Dsn, end: Dsn) -> bool {
        self.diff(start) >= 0 && self.diff(end) < 0
    }

    /// The DSN whose low 32 bits are `low`, nearest to `self` (a 32-bit DSN or
    /// DATA_ACK from the wire, expanded against what we know).
    pub fn expand32(self, low: u32) -> Dsn {
        Dsn(super::mptcp::expand_seq32(low, self.0))
    }
}

impl PartialOrd for Dsn {
    fn partial_cmp(&self, other: &Dsn) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl Add<u64> for Dsn {
    type Output = Dsn;
    fn add(self, n: u64) -> Dsn {
        Dsn(self.0.wrapping_add(n))
    }
}

impl Add<usize> for Dsn {
    type Output = Dsn;
    fn add(self, n: usize) -> Dsn {
        self + n as u64
    }
}

impl AddAssign<u64> for Dsn {
    fn add_assign(&mut self, n: u64) {
        *self = *self + n;
    }
}

impl AddAssign<usize> for Dsn {
    fn add_assign(&mut self, n: usize) {
        *self = *self + n;
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_across_wrap() {
        let a = Dsn(u64::MAX - 10);
        let b = a + 20u64;
        assert_eq!(b.0, 9);
        assert!(a < b);
        assert!(a.partial_cmp(&b) == Some(Ordering::Less));
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
        assert_eq!(b.since(a), 20);
        assert_eq!(a.since(b), 0);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
        assert!((a + 5usize).in_range(a, b));
        assert!(!b.in_range(a, b));
    }

    #[test]
    fn expand32_picks_the_nearest() {
        let near = Dsn(0x1_0000_fff0);
        assert_eq!(near.expand32(0x0000_fff5), Dsn(0x1_0000_fff5));
        // Just past a 32-bit wrap, forward and back.
        let near = Dsn(0x1_ffff_fff0);
        assert_eq!(near.expand32(0x0000_0010), Dsn(0x2_0000_0010));
        assert_eq!(Dsn(0x2_0000_0010).expand32(0xffff_fff0), near);
    }
}
