//! STUB: the buffers helper implements this.
//! The sender's SACK scoreboard (RFC 6675 §3–4).

use crate::wire::SeqNumber;

#[derive(Debug)]
pub struct Scoreboard {
    /// SACKed `[left, right)` ranges above snd_una: sorted, merged.
    ranges: Vec<(SeqNumber, SeqNumber)>,
    max_ranges: usize,
}

impl Scoreboard {
    pub fn new(max_ranges: usize) -> Self {
        Scoreboard {
            ranges: Vec::new(),
            max_ranges,
        }
    }
    /// Merge the SACK blocks of an ACK. Blocks not within `(snd_una, snd_max]` (incl.
    /// D-SACKs below snd_una) are ignored. Returns the number of newly SACKed bytes.
    pub fn update(
        &mut self,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        blocks: &[(SeqNumber, SeqNumber)],
    ) -> usize {
        let _ = (snd_una, snd_max, blocks, self.max_ranges);
        todo!()
    }
    /// Forget everything below the new cumulative ACK.
    pub fn advance(&mut self, snd_una: SeqNumber) {
        let _ = snd_una;
        todo!()
    }
    pub fn clear(&mut self) {
        self.ranges.clear();
    }
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
    pub fn is_sacked(&self, seq: SeqNumber) -> bool {
        let _ = seq;
        todo!()
    }
    /// Total SACKed bytes.
    pub fn sacked_bytes(&self) -> usize {
        todo!()
    }
    /// End of the highest SACKed range.
    pub fn highest_sacked(&self) -> Option<SeqNumber> {
        todo!()
    }
    /// RFC 6675 IsLost(seq): at least `dupthresh` discontiguous SACKed segments, or
    /// more than `(dupthresh - 1) * mss` SACKed bytes, lie above `seq`.
    pub fn is_lost(&self, seq: SeqNumber, mss: usize, dupthresh: usize) -> bool {
        let _ = (seq, mss, dupthresh);
        todo!()
    }
    /// The first un-SACKed hole at or after `from` and below `until`: `(start, end)`
    /// with `end` the start of the next SACKed range or `until`.
    pub fn next_hole(&self, from: SeqNumber, until: SeqNumber) -> Option<(SeqNumber, SeqNumber)> {
        let _ = (from, until);
        todo!()
    }
    /// Bytes SACKed within `[start, end)`.
    pub fn sacked_in(&self, start: SeqNumber, end: SeqNumber) -> usize {
        let _ = (start, end);
        todo!()
    }
    pub fn ranges(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.ranges
    }
}
