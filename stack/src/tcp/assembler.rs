//! Bytes that arrived ahead of the in-order point, kept until the hole before
//! them fills. Each disjoint range holds its own bytes, so out-of-order data
//! costs what it holds: a byte far ahead of the in-order point costs a byte
//! (and a range), not storage for everything in between. A range's bytes are
//! a [`RingBuffer`]: they grow by 64 KiB chunks, as the connection's buffers
//! do. (A range in one `Vec` doubled as it grew, to 2 MiB and more for an
//! MPTCP connection whose two paths differ in delay, each time copying it
//! all, and the allocator's heap fragmented under blocks of such sizes coming
//! and going: 16 echo connections over two subflows each raised the daemon's
//! peak RSS by 1.8-2.6 MiB per connection, `t_mem_echo`.)

use super::buffer::RingBuffer;

/// Too many disjoint ranges: the segment must be dropped (it will be retransmitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyHoles;

#[derive(Debug, Default)]
pub struct Assembler {
    /// Sorted, disjoint, non-adjacent `[start, end)` offsets from the in-order point.
    ranges: Vec<(usize, usize)>,
    /// The bytes of each range, in the same order.
    data: Vec<RingBuffer>,
    max_ranges: usize,
    held: usize,
}

impl Assembler {
    pub fn new(max_ranges: usize) -> Self {
        Assembler {
            max_ranges,
            ..Assembler::default()
        }
    }

    /// Keep `bytes` at `offset` (merging with the ranges they touch; where
    /// they overlap bytes already held, those are kept).
    ///
    /// Empty `bytes` is a no-op. If they would need a new range beyond
    /// `max_ranges`, returns `Err(TooManyHoles)` and leaves the state unchanged.
    pub fn add(&mut self, offset: usize, bytes: &[u8]) -> Result<(), TooManyHoles> {
        if bytes.is_empty() {
            return Ok(());
        }
        let start = offset;
        let Some(end) = offset.checked_add(bytes.len()) else {
            return Err(TooManyHoles);
        };
        // First range that ends at or after `start` (overlapping or adjacent on the left).
        let i = self.ranges.partition_point(|&(_, e)| e < start);
        // First range that starts strictly after `end` (not even adjacent).
        let j = self.ranges.partition_point(|&(s, _)| s <= end);
        if i == j {
            if self.ranges.len() >= self.max_ranges {
                return Err(TooManyHoles);
            }
            self.ranges.insert(i, (start, end));
            self.data.insert(i, range_of(bytes));
            self.held += bytes.len();
            return Ok(());
        }
        // Bridges, covers or extends ranges i..j: their union is contiguous
        // (each touches the new bytes), so it is written in order, the bytes
        // held kept where they overlap the new ones, which fill the gaps.
        let s0 = self.ranges[i].0;
        let last_end = self.ranges[j - 1].1;
        let merged = (start.min(s0), end.max(last_end));
        let mut buf = if s0 <= start {
            core::mem::replace(&mut self.data[i], RingBuffer::new(0))
        } else {
            let mut b = range_of(&bytes[..s0 - start]);
            b.append(core::mem::replace(&mut self.data[i], RingBuffer::new(0)));
            b
        };
        let mut at = self.ranges[i].1;
        for k in i + 1..j {
            let (s, e) = self.ranges[k];
            buf.enqueue(&bytes[at - start..s - start]);
            buf.append(core::mem::replace(&mut self.data[k], RingBuffer::new(0)));
            at = e;
        }
        if end > at {
            buf.enqueue(&bytes[at - start..]);
        }
        debug_assert_eq!(buf.len(), merged.1 - merged.0);
        self.held += merged.1 - merged.0;
        for &(s, e) in &self.ranges[i..j] {
            self.held -= e - s;
        }
        self.ranges[i] = merged;
        self.data[i] = buf;
        self.ranges.drain(i + 1..j);
        self.data.drain(i + 1..j);
        Ok(())
    }

    /// The in-order point advanced by `n` bytes (in-order data was accepted):
    /// bytes below it are dropped, the rest shift down.
    pub fn advance(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let gone = self.ranges.partition_point(|&(_, e)| e <= n);
        for d in self.data.drain(..gone) {
            self.held -= d.len();
        }
        self.ranges.drain(..gone);
        if let Some(first) = self.ranges.first_mut() {
            if first.0 < n {
                let cut = n - first.0;
                self.data[0].discard(cut);
                self.held -= cut;
                first.0 = n;
            }
        }
        for r in &mut self.ranges {
            r.0 -= n;
            r.1 -= n;
        }
    }

    /// `n` in-order bytes were accepted: advance past them, and move the
    /// range that is then in order, if any, to the end of `buf`; the bytes
    /// moved. `buf` must have room for [`extent`](Self::extent) (a receive
    /// buffer never shrinks below it), so none is lost.
    pub fn advance_into(&mut self, n: usize, buf: &mut RingBuffer) -> usize {
        self.advance(n);
        let Some(next) = self.pop_front() else {
            return 0;
        };
        let len = next.len();
        let took = buf.append(next);
        debug_assert_eq!(took, len, "out-of-order bytes lost");
        took
    }

    /// The bytes of the range at offset 0 (now in order), removed; every
    /// other range shifts down by their length.
    pub fn pop_front(&mut self) -> Option<RingBuffer> {
        match self.ranges.first() {
            Some(&(0, end)) => {
                self.ranges.remove(0);
                let d = self.data.remove(0);
                self.held -= d.len();
                for r in &mut self.ranges {
                    r.0 -= end;
                    r.1 -= end;
                }
                Some(d)
            }
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Where the furthest byte held ends (from the in-order point): a buffer
    /// that is to take these bytes in order must have this much room.
    pub fn extent(&self) -> usize {
        self.ranges.last().map_or(0, |r| r.1)
    }

    pub fn ranges(&self) -> &[(usize, usize)] {
        &self.ranges
    }

    /// Bytes held.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Heap bytes in use (the ranges' buffers and the tables).
    pub fn allocated(&self) -> usize {
        self.data.iter().map(RingBuffer::allocated).sum::<usize>()
            + self.data.capacity() * core::mem::size_of::<RingBuffer>()
            + self.ranges.capacity() * core::mem::size_of::<(usize, usize)>()
    }

    /// The range containing `offset`, if any.
    pub fn range_containing(&self, offset: usize) -> Option<(usize, usize)> {
        let i = self.ranges.partition_point(|&(_, e)| e <= offset);
        match self.ranges.get(i) {
            Some(&(s, e)) if s <= offset => Some((s, e)),
            _ => None,
        }
    }

    /// Drop every byte at or beyond `end` (the stream ends there); the
    /// bytes dropped.
    pub fn truncate(&mut self, end: usize) -> usize {
        let before = self.held;
        let keep = self.ranges.partition_point(|&(s, _)| s < end);
        for d in self.data.drain(keep..) {
            self.held -= d.len();
        }
        self.ranges.truncate(keep);
        if let (Some(last), Some(d)) = (self.ranges.last_mut(), self.data.last_mut()) {
            if last.1 > end {
                self.held -= last.1 - end;
                d.truncate(d.len() - (last.1 - end));
                last.1 = end;
            }
        }
        before - self.held
    }

    /// Drop everything (and the storage with it).
    pub fn clear(&mut self) {
        self.ranges = Vec::new();
        self.data = Vec::new();
        self.held = 0;
    }
}

/// A range's storage holding `bytes`.
fn range_of(bytes: &[u8]) -> RingBuffer {
    let mut b = RingBuffer::new(usize::MAX);
    b.enqueue(bytes);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::test_util::{ranges_of, Rng};

    fn bytes(offset: usize, len: usize) -> Vec<u8> {
        (offset..offset + len).map(|i| (i % 251) as u8).collect()
    }

    fn add(a: &mut Assembler, offset: usize, len: usize) -> Result<(), TooManyHoles> {
        a.add(offset, &bytes(offset, len))
    }

    #[test]
    fn in_order() {
        let mut a = Assembler::new(4);
        add(&mut a, 0, 10).unwrap();
        assert_eq!(a.ranges(), &[(0, 10)]);
        assert_eq!(a.pop_front().map(|b| b.to_vec()), Some(bytes(0, 10)));
        assert!(a.is_empty());
        assert_eq!(a.pop_front().map(|b| b.to_vec()), None);
        assert_eq!(a.held(), 0);
    }

    #[test]
    fn truncate_drops_what_lies_beyond_the_end() {
        let mut a = Assembler::new(4);
        add(&mut a, 10, 10).unwrap();
        add(&mut a, 30, 10).unwrap();
        add(&mut a, 50, 5).unwrap();
        assert_eq!(a.truncate(35), 5 + 5);
        assert_eq!(a.ranges(), &[(10, 20), (30, 35)]);
        assert_eq!(a.held(), 15);
        assert_eq!(a.truncate(30), 5);
        assert_eq!(a.ranges(), &[(10, 20)]);
        assert_eq!(a.truncate(100), 0);
        add(&mut a, 0, 10).unwrap();
        assert_eq!(a.pop_front().map(|b| b.to_vec()), Some(bytes(0, 20)));
    }

    #[test]
    fn out_of_order_and_overlap() {
        let mut a = Assembler::new(4);
        add(&mut a, 20, 5).unwrap();
        add(&mut a, 10, 5).unwrap();
        assert_eq!(a.ranges(), &[(10, 15), (20, 25)]);
        assert_eq!(a.pop_front().map(|b| b.to_vec()), None);
        // Overlaps both and bridges the gap.
        add(&mut a, 12, 10).unwrap();
        assert_eq!(a.ranges(), &[(10, 25)]);
        // Contained: no change.
        add(&mut a, 11, 2).unwrap();
        assert_eq!(a.ranges(), &[(10, 25)]);
        // Superset.
        add(&mut a, 5, 30).unwrap();
        assert_eq!(a.ranges(), &[(5, 35)]);
        assert_eq!(a.held(), 30);
        assert_eq!(a.range_containing(5), Some((5, 35)));
        assert_eq!(a.range_containing(34), Some((5, 35)));
        assert_eq!(a.range_containing(35), None);
        assert_eq!(a.range_containing(4), None);
        // Zero length is a no-op.
        add(&mut a, 100, 0).unwrap();
        assert_eq!(a.ranges(), &[(5, 35)]);
        a.advance(5);
        assert_eq!(a.pop_front().map(|b| b.to_vec()), Some(bytes(5, 30)));
    }

    #[test]
    fn bytes_already_held_are_kept() {
        let mut a = Assembler::new(4);
        a.add(10, b"abcde").unwrap();
        a.add(8, b"XXXXXXXXXX").unwrap();
        a.advance(8);
        assert_eq!(a.pop_front().map(|b| b.to_vec()).unwrap(), b"XXabcdeXXX");
        a.add(3, b"hello").unwrap();
        a.add(5, b"YYYYY").unwrap();
        a.advance(3);
        assert_eq!(a.pop_front().map(|b| b.to_vec()).unwrap(), b"helloYY");
    }

    #[test]
    fn adjacency_merges() {
        let mut a = Assembler::new(4);
        add(&mut a, 10, 5).unwrap();
        add(&mut a, 15, 5).unwrap(); // adjacent on the right
        add(&mut a, 5, 5).unwrap(); // adjacent on the left
        assert_eq!(a.ranges(), &[(5, 20)]);
        add(&mut a, 30, 5).unwrap();
        add(&mut a, 20, 10).unwrap(); // exactly fills the gap
        assert_eq!(a.ranges(), &[(5, 35)]);
        a.advance(5);
        assert_eq!(a.pop_front().map(|b| b.to_vec()), Some(bytes(5, 30)));
    }

    #[test]
    fn advance_drops_and_trims() {
        let mut a = Assembler::new(8);
        add(&mut a, 10, 5).unwrap();
        add(&mut a, 30, 5).unwrap();
        a.advance(12);
        assert_eq!(a.ranges(), &[(0, 3), (18, 23)]);
        assert_eq!(a.held(), 8);
        assert_eq!(a.pop_front().map(|b| b.to_vec()), Some(bytes(12, 3)));
        assert_eq!(a.ranges(), &[(15, 20)]);
        a.advance(16);
        assert_eq!(a.ranges(), &[(0, 4)]);
        assert_eq!(a.held(), 4);
        a.advance(10);
        assert!(a.is_empty());
        assert_eq!(a.held(), 0);
    }

    #[test]
    fn a_byte_far_ahead_costs_a_byte() {
        let mut a = Assembler::new(4);
        a.add(8 << 20, b"x").unwrap();
        a.add(4 << 20, b"y").unwrap();
        assert_eq!(a.held(), 2);
        // Two ranges' records and their smallest storage: nothing for the gap.
        assert!(a.allocated() < 512, "{}", a.allocated());
    }

    #[test]
    fn too_many_holes_leaves_state() {
        let mut a = Assembler::new(2);
        add(&mut a, 10, 1).unwrap();
        add(&mut a, 20, 1).unwrap();
        assert_eq!(add(&mut a, 30, 1), Err(TooManyHoles));
        assert_eq!(add(&mut a, 0, 1), Err(TooManyHoles));
        assert_eq!(add(&mut a, 15, 1), Err(TooManyHoles));
        assert_eq!(a.ranges(), &[(10, 11), (20, 21)]);
        // Merging still works at the limit.
        add(&mut a, 11, 9).unwrap();
        assert_eq!(a.ranges(), &[(10, 21)]);
        let mut z = Assembler::new(0);
        assert_eq!(add(&mut z, 0, 1), Err(TooManyHoles));
        assert!(z.is_empty());
        assert_eq!(z.add(usize::MAX, b"ab"), Err(TooManyHoles));
    }

    #[test]
    fn model_against_bitmap() {
        model_against_bitmap_with(256, 24, 30, 1..200, 200);
    }

    /// Ranges of several chunks each: merged, advanced through, cut.
    #[test]
    fn model_against_bitmap_with_ranges_past_a_chunk() {
        let chunk = crate::tcp::buffer::CHUNK;
        model_against_bitmap_with(4 * chunk, chunk + chunk / 2, chunk, 1..16, 60);
    }

    /// Random adds of up to `max_len` bytes within `n` of the in-order point,
    /// pops, advances of up to `max_advance`, truncations, checked against
    /// a byte map.
    fn model_against_bitmap_with(
        n: usize,
        max_len: usize,
        max_advance: usize,
        seeds: core::ops::Range<u64>,
        steps: usize,
    ) {
        for seed in seeds {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let max = 1 + rng.below(8);
            let mut a = Assembler::new(max);
            // What each held offset holds (from the in-order point `base`).
            let mut bits: Vec<Option<u8>> = vec![None; n + max_len];
            let mut base = 0usize;
            for _ in 0..steps {
                match rng.below(7) {
                    0 => {
                        // Whatever is at the front is now in order.
                        let want: Vec<u8> = bits.iter().map_while(|b| *b).collect();
                        match a.pop_front().map(|b| b.to_vec()) {
                            Some(d) => assert_eq!(d, want),
                            None => assert!(want.is_empty()),
                        }
                        bits.drain(..want.len());
                        base += want.len();
                        bits.resize(n + max_len, None);
                    }
                    1 => {
                        let k = rng.below(max_advance);
                        a.advance(k);
                        bits.drain(..k);
                        base += k;
                        bits.resize(n + max_len, None);
                    }
                    2 => {
                        // The stream ends: nothing at or past `end` is kept.
                        let end = rng.below(n + max_len);
                        let dropped = bits[end..].iter().filter(|b| b.is_some()).count();
                        assert_eq!(a.truncate(end), dropped);
                        bits[end..].fill(None);
                    }
                    _ => {
                        let off = rng.below(n);
                        let len = rng.below(max_len);
                        let data: Vec<u8> = (0..len)
                            .map(|i| (base + off + i + seed as usize) as u8)
                            .collect();
                        let mut trial = bits.clone();
                        for (b, &v) in trial[off..off + len].iter_mut().zip(&data) {
                            b.get_or_insert(v);
                        }
                        let before = a.ranges().to_vec();
                        let present: Vec<bool> = trial.iter().map(Option::is_some).collect();
                        match a.add(off, &data) {
                            Ok(()) => {
                                assert!(ranges_of(&present).len() <= max);
                                bits = trial;
                            }
                            Err(TooManyHoles) => {
                                assert!(ranges_of(&present).len() > max);
                                assert_eq!(a.ranges(), &before[..]);
                            }
                        }
                    }
                }
                let present: Vec<bool> = bits.iter().map(Option::is_some).collect();
                assert_eq!(a.ranges(), &ranges_of(&present)[..]);
                assert_eq!(a.held(), present.iter().filter(|&&b| b).count());
                let probe = rng.below(n);
                let want = ranges_of(&present)
                    .into_iter()
                    .find(|&(s, e)| s <= probe && probe < e);
                assert_eq!(a.range_containing(probe), want);
            }
        }
    }
}
