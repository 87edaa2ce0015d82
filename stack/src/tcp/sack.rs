//! The sender's SACK scoreboard (RFC 6675 §3–4).
//!
//! All comparisons are made in sequence space (modulo 2^32): every stored range lies in
//! `[snd_una, snd_max]`, a window far smaller than 2^31, so signed differences order
//! them correctly across the wrap.
//!
//! The number of ranges is bounded by `max_ranges`: a block that would need a new
//! range beyond that limit is refused (blocks that extend or merge existing ranges are
//! always accepted). Refusing keeps `sacked_bytes()` and `highest_sacked()` monotonic
//! between cumulative ACKs; the cost is that a bounded scoreboard may under-report
//! SACKed data, which only makes the sender more conservative.

use crate::wire::SeqNumber;

#[derive(Debug)]
pub struct Scoreboard {
    /// SACKed `[left, right)` ranges above snd_una: sorted, merged.
    ranges: Vec<(SeqNumber, SeqNumber)>,
    max_ranges: usize,
    /// Sum of the range lengths.
    total: usize,
}

impl Scoreboard {
    pub fn new(max_ranges: usize) -> Self {
        Scoreboard {
            ranges: Vec::new(),
            max_ranges,
            total: 0,
        }
    }
    /// Merge the SACK blocks of an ACK. Blocks not within `(snd_una, snd_max]` (incl.
    /// D-SACKs below snd_una) are ignored. Returns the number of newly SACKed bytes.
    ///
    /// Precisely, a block `(left, right)` is used iff
    /// `snd_una <= left < right <= snd_max` in sequence space; any range below
    /// `snd_una` is first trimmed as by [`Scoreboard::advance`].
    pub fn update(
        &mut self,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        blocks: &[(SeqNumber, SeqNumber)],
    ) -> usize {
        self.advance(snd_una);
        let window = snd_max.diff(snd_una);
        let mut newly = 0;
        for &(left, right) in blocks {
            let l = left.diff(snd_una);
            let r = right.diff(snd_una);
            if l < 0 || r <= l || r > window {
                continue;
            }
            newly += self.insert(left, right);
        }
        newly
    }

    /// Merge a valid `[left, right)`; returns bytes newly covered (0 if refused).
    fn insert(&mut self, left: SeqNumber, right: SeqNumber) -> usize {
        // First range ending at or after `left`; first range starting after `right`.
        let i = self.ranges.partition_point(|&(_, e)| e < left);
        let j = self.ranges.partition_point(|&(s, _)| s <= right);
        let newly = right.since(left) - self.sacked_in(left, right);
        if i == j {
            if self.ranges.len() >= self.max_ranges {
                return 0;
            }
            self.ranges.insert(i, (left, right));
        } else {
            let merged = (left.min(self.ranges[i].0), right.max(self.ranges[j - 1].1));
            self.ranges[i] = merged;
            self.ranges.drain(i + 1..j);
        }
        self.total += newly;
        newly
    }

    /// Forget everything below the new cumulative ACK.
    pub fn advance(&mut self, snd_una: SeqNumber) {
        let drop = self.ranges.partition_point(|&(_, e)| e <= snd_una);
        for &(s, e) in &self.ranges[..drop] {
            self.total -= e.since(s);
        }
        self.ranges.drain(..drop);
        if let Some(first) = self.ranges.first_mut() {
            if first.0 < snd_una {
                self.total -= snd_una.since(first.0);
                first.0 = snd_una;
            }
        }
    }
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.total = 0;
    }
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
    pub fn is_sacked(&self, seq: SeqNumber) -> bool {
        let i = self.ranges.partition_point(|&(_, e)| e <= seq);
        matches!(self.ranges.get(i), Some(&(s, _)) if s <= seq)
    }
    /// Total SACKed bytes.
    pub fn sacked_bytes(&self) -> usize {
        self.total
    }
    /// End of the highest SACKed range.
    pub fn highest_sacked(&self) -> Option<SeqNumber> {
        self.ranges.last().map(|&(_, e)| e)
    }
    /// RFC 6675 IsLost(seq): at least `dupthresh` discontiguous SACKed segments, or
    /// more than `(dupthresh - 1) * mss` SACKed bytes, lie above `seq`.
    ///
    /// "Discontiguous SACKed segments" are counted as SACKed ranges lying entirely
    /// above `seq`; "above" means sequence numbers strictly greater than `seq`.
    pub fn is_lost(&self, seq: SeqNumber, mss: usize, dupthresh: usize) -> bool {
        let above = seq + 1;
        let ranges_above = self.ranges.iter().filter(|&&(s, _)| s > seq).count();
        if ranges_above >= dupthresh {
            return true;
        }
        let bytes_above = match self.highest_sacked() {
            Some(hi) => self.sacked_in(above, hi),
            None => 0,
        };
        bytes_above > dupthresh.saturating_sub(1).saturating_mul(mss)
    }
    /// The first un-SACKed hole at or after `from` and below `until`: `(start, end)`
    /// with `end` the start of the next SACKed range or `until`.
    pub fn next_hole(&self, from: SeqNumber, until: SeqNumber) -> Option<(SeqNumber, SeqNumber)> {
        let mut start = from;
        let i = self.ranges.partition_point(|&(_, e)| e <= start);
        let mut next = self.ranges.get(i);
        if let Some(&(s, e)) = next {
            if s <= start {
                // `start` is SACKed: the hole begins where this range ends. Ranges are
                // non-adjacent, so the next one starts strictly later.
                start = e;
                next = self.ranges.get(i + 1);
            }
        }
        if start >= until {
            return None;
        }
        let end = match next {
            Some(&(s, _)) => s.min(until),
            None => until,
        };
        Some((start, end))
    }
    /// Bytes SACKed within `[start, end)`.
    pub fn sacked_in(&self, start: SeqNumber, end: SeqNumber) -> usize {
        if end <= start {
            return 0;
        }
        let i = self.ranges.partition_point(|&(_, e)| e <= start);
        let mut sum = 0;
        for &(s, e) in &self.ranges[i..] {
            if s >= end {
                break;
            }
            sum += e.min(end).since(s.max(start));
        }
        sum
    }
    pub fn ranges(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::test_util::{ranges_of, Rng};

    /// A base close to the wrap so every test crosses it.
    const BASE: u32 = u32::MAX - 50;

    fn s(off: usize) -> SeqNumber {
        SeqNumber(BASE) + off
    }
    fn rs(sb: &Scoreboard) -> Vec<(usize, usize)> {
        sb.ranges()
            .iter()
            .map(|&(l, r)| (l.since(s(0)), r.since(s(0))))
            .collect()
    }

    #[test]
    fn merge_cases() {
        let mut sb = Scoreboard::new(8);
        let (una, max) = (s(0), s(1000));
        assert_eq!(sb.update(una, max, &[(s(100), s(200))]), 100);
        assert_eq!(sb.update(una, max, &[(s(300), s(400))]), 100);
        assert_eq!(rs(&sb), [(100, 200), (300, 400)]);
        // Duplicate: nothing new.
        assert_eq!(sb.update(una, max, &[(s(100), s(200))]), 0);
        // Overlap on the left edge of the second.
        assert_eq!(sb.update(una, max, &[(s(250), s(350))]), 50);
        assert_eq!(rs(&sb), [(100, 200), (250, 400)]);
        // Adjacent: merges.
        assert_eq!(sb.update(una, max, &[(s(200), s(250))]), 50);
        assert_eq!(rs(&sb), [(100, 400)]);
        // Superset of everything plus blocks in one ACK.
        assert_eq!(
            sb.update(una, max, &[(s(500), s(510)), (s(50), s(450))]),
            10 + 100
        );
        assert_eq!(rs(&sb), [(50, 450), (500, 510)]);
        assert_eq!(sb.sacked_bytes(), 410);
        assert_eq!(sb.highest_sacked(), Some(s(510)));
        assert!(sb.is_sacked(s(50)));
        assert!(sb.is_sacked(s(449)));
        assert!(!sb.is_sacked(s(450)));
        assert!(!sb.is_sacked(s(49)));
        assert_eq!(sb.sacked_in(s(0), s(1000)), 410);
        assert_eq!(sb.sacked_in(s(440), s(505)), 15);
        assert_eq!(sb.sacked_in(s(505), s(440)), 0);
    }

    #[test]
    fn invalid_blocks_ignored() {
        let mut sb = Scoreboard::new(8);
        let (una, max) = (s(100), s(1000));
        // D-SACK below snd_una, straddling snd_una, beyond snd_max, reversed, empty.
        let blocks = [
            (s(10), s(50)),
            (s(90), s(150)),
            (s(900), s(1001)),
            (s(300), s(200)),
            (s(300), s(300)),
            // Far away (the wrong half of sequence space).
            (s(100) + (1usize << 31), s(100) + (1usize << 31) + 10),
        ];
        assert_eq!(sb.update(una, max, &blocks), 0);
        assert!(sb.is_empty());
        assert_eq!(sb.highest_sacked(), None);
        // Right edge exactly at snd_max is fine.
        assert_eq!(sb.update(una, max, &[(s(900), s(1000))]), 100);
        // D-SACK first block, then a real one (RFC 2883 layout).
        assert_eq!(sb.update(una, max, &[(s(50), s(60)), (s(800), s(850))]), 50);
        assert_eq!(rs(&sb), [(800, 850), (900, 1000)]);
    }

    #[test]
    fn advance_trims() {
        let mut sb = Scoreboard::new(8);
        let max = s(1000);
        sb.update(
            s(0),
            max,
            &[(s(100), s(200)), (s(300), s(400)), (s(500), s(600))],
        );
        sb.advance(s(150));
        assert_eq!(rs(&sb), [(150, 200), (300, 400), (500, 600)]);
        assert_eq!(sb.sacked_bytes(), 250);
        sb.advance(s(400));
        assert_eq!(rs(&sb), [(500, 600)]);
        assert_eq!(sb.sacked_bytes(), 100);
        // update() trims too.
        assert_eq!(sb.update(s(550), max, &[]), 0);
        assert_eq!(rs(&sb), [(550, 600)]);
        sb.advance(s(600));
        assert!(sb.is_empty());
        assert_eq!(sb.sacked_bytes(), 0);
    }

    #[test]
    fn bounded_ranges_refuse_new_block() {
        let mut sb = Scoreboard::new(2);
        let (una, max) = (s(0), s(1000));
        sb.update(una, max, &[(s(100), s(110)), (s(200), s(210))]);
        assert_eq!(sb.update(una, max, &[(s(300), s(310))]), 0);
        assert_eq!(sb.update(una, max, &[(s(10), s(20))]), 0);
        assert_eq!(rs(&sb), [(100, 110), (200, 210)]);
        // Extending and bridging still work at the limit.
        assert_eq!(sb.update(una, max, &[(s(110), s(150))]), 40);
        assert_eq!(sb.update(una, max, &[(s(140), s(220))]), 60);
        assert_eq!(rs(&sb), [(100, 220)]);
        assert_eq!(sb.sacked_bytes(), 120);
    }

    #[test]
    fn is_lost_rules() {
        let mss = 10;
        let mut sb = Scoreboard::new(8);
        let (una, max) = (s(0), s(1000));
        // Byte rule: > 2 * mss = 20 bytes above seq.
        sb.update(una, max, &[(s(100), s(120))]);
        assert!(!sb.is_lost(s(0), mss, 3));
        sb.update(una, max, &[(s(120), s(121))]);
        assert!(sb.is_lost(s(0), mss, 3));
        assert!(sb.is_lost(s(99), mss, 3));
        // Inside the range: only bytes strictly above count.
        assert!(!sb.is_lost(s(100), mss, 3));
        assert!(!sb.is_lost(s(200), mss, 3));
        // Range rule: three discontiguous small ranges.
        let mut sb = Scoreboard::new(8);
        sb.update(una, max, &[(s(100), s(101)), (s(200), s(201))]);
        assert!(!sb.is_lost(s(0), mss, 3));
        sb.update(una, max, &[(s(300), s(301))]);
        assert!(sb.is_lost(s(0), mss, 3));
        assert!(!sb.is_lost(s(100), mss, 3));
        assert!(sb.is_lost(s(100), mss, 2));
        // Nothing SACKed: never lost (unless dupthresh is 0).
        let sb = Scoreboard::new(8);
        assert!(!sb.is_lost(s(0), mss, 3));
    }

    #[test]
    fn next_hole_walks() {
        let mut sb = Scoreboard::new(8);
        let (una, max) = (s(0), s(1000));
        sb.update(una, max, &[(s(100), s(200)), (s(300), s(400))]);
        let until = s(500);
        assert_eq!(sb.next_hole(s(0), until), Some((s(0), s(100))));
        assert_eq!(sb.next_hole(s(100), until), Some((s(200), s(300))));
        assert_eq!(sb.next_hole(s(150), until), Some((s(200), s(300))));
        assert_eq!(sb.next_hole(s(250), until), Some((s(250), s(300))));
        assert_eq!(sb.next_hole(s(300), until), Some((s(400), s(500))));
        assert_eq!(sb.next_hole(s(450), until), Some((s(450), s(500))));
        assert_eq!(sb.next_hole(s(500), until), None);
        assert_eq!(sb.next_hole(s(0), s(50)), Some((s(0), s(50))));
        assert_eq!(sb.next_hole(s(150), s(250)), Some((s(200), s(250))));
        assert_eq!(sb.next_hole(s(150), s(200)), None);
        assert_eq!(sb.next_hole(s(350), s(400)), None);
        // Walk all holes.
        let mut holes = Vec::new();
        let mut from = una;
        while let Some((a, b)) = sb.next_hole(from, until) {
            holes.push((a.since(s(0)), b.since(s(0))));
            from = b;
        }
        assert_eq!(holes, [(0, 100), (200, 300), (400, 500)]);
    }

    #[test]
    fn model_against_bitmap() {
        const N: usize = 300;
        for seed in 1..150u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let max_ranges = 1 + rng.below(6);
            let mut sb = Scoreboard::new(max_ranges);
            let mut bits = vec![false; N + 10];
            let mut una = 0usize;
            let mut snd_max = 40usize;
            for _ in 0..150 {
                match rng.below(4) {
                    0 => {
                        una = (una + rng.below(20)).min(snd_max);
                        sb.advance(s(una));
                        for b in &mut bits[..una] {
                            *b = false;
                        }
                    }
                    1 | 2 => {
                        snd_max = (snd_max + rng.below(10)).min(N);
                        let nblocks = rng.below(4);
                        let mut blocks = Vec::new();
                        let mut want = 0;
                        for _ in 0..nblocks {
                            let l = rng.below(N);
                            let r = l + rng.below(30);
                            // Occasionally reversed.
                            let (l, r) = if rng.below(10) == 0 { (r, l) } else { (l, r) };
                            blocks.push((s(l), s(r)));
                            if l < una || r <= l || r > snd_max {
                                continue;
                            }
                            let mut trial = bits.clone();
                            for b in &mut trial[l..r] {
                                *b = true;
                            }
                            if ranges_of(&trial).len() > max_ranges {
                                continue;
                            }
                            want += bits[l..r].iter().filter(|&&b| !b).count();
                            bits = trial;
                        }
                        assert_eq!(sb.update(s(una), s(snd_max), &blocks), want);
                    }
                    _ => {}
                }
                let model = ranges_of(&bits);
                assert_eq!(rs(&sb), model);
                assert_eq!(sb.sacked_bytes(), bits.iter().filter(|&&b| b).count());
                assert_eq!(sb.highest_sacked(), model.last().map(|&(_, e)| s(e)));
                let q = rng.below(N);
                assert_eq!(sb.is_sacked(s(q)), bits[q]);
                let (a, b) = (rng.below(N), rng.below(N));
                let want = if a < b {
                    bits[a..b].iter().filter(|&&x| x).count()
                } else {
                    0
                };
                assert_eq!(sb.sacked_in(s(a), s(b)), want);
                // next_hole
                let want_hole = if a >= b {
                    None
                } else {
                    let mut st = a;
                    while bits[st] {
                        st += 1;
                    }
                    if st >= b {
                        None
                    } else {
                        let mut e = st;
                        while e < b && !bits[e] {
                            e += 1;
                        }
                        Some((s(st), s(e)))
                    }
                };
                assert_eq!(sb.next_hole(s(a), s(b)), want_hole);
                // is_lost
                let mss = 1 + rng.below(10);
                let dupthresh = 1 + rng.below(4);
                let ranges_above = model.iter().filter(|&&(st, _)| st > q).count();
                let bytes_above = bits[q + 1..].iter().filter(|&&x| x).count();
                let want_lost = ranges_above >= dupthresh || bytes_above > (dupthresh - 1) * mss;
                assert_eq!(sb.is_lost(s(q), mss, dupthresh), want_lost);
            }
        }
    }
}
