//! Tracks which byte ranges past the in-order point have arrived out of order.

/// Too many disjoint ranges: the segment must be dropped (it will be retransmitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyHoles;

/// Upper bound on the up-front reservation, so an absurd `max_ranges` cannot make
/// construction allocate unboundedly (the Vec still grows up to `max_ranges`).
const MAX_RESERVE: usize = 1024;

#[derive(Debug)]
pub struct Assembler {
    /// Sorted, disjoint, non-adjacent `[start, end)` offsets from the in-order point.
    ranges: Vec<(usize, usize)>,
    max_ranges: usize,
}

impl Assembler {
    pub fn new(max_ranges: usize) -> Self {
        Assembler {
            ranges: Vec::with_capacity(max_ranges.min(MAX_RESERVE)),
            max_ranges,
        }
    }
    /// Record `[offset, offset + len)` as received (merging with neighbours).
    ///
    /// `len == 0` is a no-op. If the range would need a new entry beyond `max_ranges`,
    /// returns `Err(TooManyHoles)` and leaves the state unchanged. The end saturates at
    /// `usize::MAX`.
    pub fn add(&mut self, offset: usize, len: usize) -> Result<(), TooManyHoles> {
        if len == 0 {
            return Ok(());
        }
        let start = offset;
        let end = offset.saturating_add(len);
        // First range that ends at or after `start` (overlapping or adjacent on the left).
        let i = self.ranges.partition_point(|&(_, e)| e < start);
        // First range that starts strictly after `end` (not even adjacent).
        let j = self.ranges.partition_point(|&(s, _)| s <= end);
        if i == j {
            if self.ranges.len() >= self.max_ranges {
                return Err(TooManyHoles);
            }
            self.ranges.insert(i, (start, end));
        } else {
            let merged = (start.min(self.ranges[i].0), end.max(self.ranges[j - 1].1));
            self.ranges[i] = merged;
            self.ranges.drain(i + 1..j);
        }
        Ok(())
    }
    /// `add(offset, len)` then `take_front()`: returns how many bytes became in-order.
    pub fn add_and_take(&mut self, offset: usize, len: usize) -> Result<usize, TooManyHoles> {
        self.add(offset, len)?;
        Ok(self.take_front())
    }
    /// If a range starts at offset 0, remove it, shift every other range down by its
    /// length and return that length; else 0.
    pub fn take_front(&mut self) -> usize {
        match self.ranges.first() {
            Some(&(0, end)) => {
                self.ranges.remove(0);
                for r in &mut self.ranges {
                    r.0 -= end;
                    r.1 -= end;
                }
                end
            }
            _ => 0,
        }
    }
    /// Shift every range down by `n` bytes because the in-order point advanced by `n`
    /// (e.g. in-order data was accepted directly); bytes that fall below 0 are dropped.
    pub fn advance(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.ranges.retain_mut(|r| {
            if r.1 <= n {
                return false;
            }
            r.0 = r.0.saturating_sub(n);
            r.1 -= n;
            true
        });
    }
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
    pub fn ranges(&self) -> &[(usize, usize)] {
        &self.ranges
    }
    /// The range containing `offset`, if any.
    pub fn range_containing(&self, offset: usize) -> Option<(usize, usize)> {
        let i = self.ranges.partition_point(|&(_, e)| e <= offset);
        match self.ranges.get(i) {
            Some(&(s, e)) if s <= offset => Some((s, e)),
            _ => None,
        }
    }
    pub fn clear(&mut self) {
        self.ranges.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::test_util::{ranges_of, Rng};

    #[test]
    fn in_order() {
        let mut a = Assembler::new(4);
        assert_eq!(a.add(0, 10), Ok(()));
        assert_eq!(a.ranges(), &[(0, 10)]);
        assert_eq!(a.take_front(), 10);
        assert!(a.is_empty());
        assert_eq!(a.take_front(), 0);
        assert_eq!(a.add_and_take(0, 5), Ok(5));
        assert!(a.is_empty());
    }

    #[test]
    fn out_of_order_and_overlap() {
        let mut a = Assembler::new(4);
        a.add(20, 5).unwrap();
        a.add(10, 5).unwrap();
        assert_eq!(a.ranges(), &[(10, 15), (20, 25)]);
        assert_eq!(a.take_front(), 0);
        // Overlaps both and bridges the gap.
        a.add(12, 10).unwrap();
        assert_eq!(a.ranges(), &[(10, 25)]);
        // Contained: no change.
        a.add(11, 2).unwrap();
        assert_eq!(a.ranges(), &[(10, 25)]);
        // Superset.
        a.add(5, 30).unwrap();
        assert_eq!(a.ranges(), &[(5, 35)]);
        assert_eq!(a.range_containing(5), Some((5, 35)));
        assert_eq!(a.range_containing(34), Some((5, 35)));
        assert_eq!(a.range_containing(35), None);
        assert_eq!(a.range_containing(4), None);
        // Zero length is a no-op.
        a.add(100, 0).unwrap();
        assert_eq!(a.ranges(), &[(5, 35)]);
    }

    #[test]
    fn adjacency_merges() {
        let mut a = Assembler::new(4);
        a.add(10, 5).unwrap();
        a.add(15, 5).unwrap(); // adjacent on the right
        a.add(5, 5).unwrap(); // adjacent on the left
        assert_eq!(a.ranges(), &[(5, 20)]);
        a.add(30, 5).unwrap();
        a.add(20, 10).unwrap(); // exactly fills the gap
        assert_eq!(a.ranges(), &[(5, 35)]);
    }

    #[test]
    fn take_front_shifts() {
        let mut a = Assembler::new(8);
        a.add(10, 5).unwrap();
        a.add(30, 5).unwrap();
        a.add(0, 4).unwrap();
        assert_eq!(a.take_front(), 4);
        assert_eq!(a.ranges(), &[(6, 11), (26, 31)]);
        a.add(0, 6).unwrap();
        assert_eq!(a.take_front(), 11);
        assert_eq!(a.ranges(), &[(15, 20)]);
        a.advance(16);
        assert_eq!(a.ranges(), &[(0, 4)]);
        a.advance(10);
        assert!(a.is_empty());
    }

    #[test]
    fn too_many_holes_leaves_state() {
        let mut a = Assembler::new(2);
        a.add(10, 1).unwrap();
        a.add(20, 1).unwrap();
        assert_eq!(a.add(30, 1), Err(TooManyHoles));
        assert_eq!(a.add(0, 1), Err(TooManyHoles));
        assert_eq!(a.add(15, 1), Err(TooManyHoles));
        assert_eq!(a.add_and_take(0, 1), Err(TooManyHoles));
        assert_eq!(a.ranges(), &[(10, 11), (20, 21)]);
        // Merging still works at the limit.
        a.add(11, 9).unwrap();
        assert_eq!(a.ranges(), &[(10, 21)]);
        let mut z = Assembler::new(0);
        assert_eq!(z.add(0, 1), Err(TooManyHoles));
        assert!(z.is_empty());
    }

    #[test]
    fn saturating_end() {
        let mut a = Assembler::new(2);
        a.add(usize::MAX - 1, 10).unwrap();
        assert_eq!(a.ranges(), &[(usize::MAX - 1, usize::MAX)]);
    }

    #[test]
    fn model_against_bitmap() {
        const N: usize = 256;
        for seed in 1..200u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let max = 1 + rng.below(8);
            let mut a = Assembler::new(max);
            let mut bits = vec![false; N + 64];
            for _ in 0..200 {
                if rng.below(5) == 0 {
                    let got = a.take_front();
                    let want = bits.iter().take_while(|&&b| b).count();
                    assert_eq!(got, want);
                    bits.drain(..want);
                    bits.resize(N + 64, false);
                } else {
                    let off = rng.below(N);
                    let len = rng.below(24);
                    let mut trial = bits.clone();
                    for b in &mut trial[off..off + len] {
                        *b = true;
                    }
                    let before = a.ranges().to_vec();
                    match a.add(off, len) {
                        Ok(()) => {
                            assert!(ranges_of(&trial).len() <= max);
                            bits = trial;
                        }
                        Err(TooManyHoles) => {
                            assert!(ranges_of(&trial).len() > max);
                            assert_eq!(a.ranges(), &before[..]);
                        }
                    }
                }
                assert_eq!(a.ranges(), &ranges_of(&bits)[..]);
                let probe = rng.below(N);
                let want = ranges_of(&bits)
                    .into_iter()
                    .find(|&(s, e)| s <= probe && probe < e);
                assert_eq!(a.range_containing(probe), want);
            }
        }
    }
}
