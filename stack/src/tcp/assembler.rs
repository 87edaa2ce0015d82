//! STUB: the buffers helper implements this.
//! Tracks which byte ranges past the in-order point have arrived out of order.

/// Too many disjoint ranges: the segment must be dropped (it will be retransmitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyHoles;

#[derive(Debug)]
pub struct Assembler {
    /// Sorted, disjoint, non-adjacent `[start, end)` offsets from the in-order point.
    ranges: Vec<(usize, usize)>,
    max_ranges: usize,
}

impl Assembler {
    pub fn new(max_ranges: usize) -> Self {
        Assembler {
            ranges: Vec::new(),
            max_ranges,
        }
    }
    /// Record `[offset, offset + len)` as received (merging with neighbours).
    pub fn add(&mut self, offset: usize, len: usize) -> Result<(), TooManyHoles> {
        let _ = (offset, len, self.max_ranges);
        todo!()
    }
    /// If a range starts at offset 0, remove it, shift every other range down by its
    /// length and return that length; else 0.
    pub fn take_front(&mut self) -> usize {
        todo!()
    }
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
    pub fn ranges(&self) -> &[(usize, usize)] {
        &self.ranges
    }
    /// The range containing `offset`, if any.
    pub fn range_containing(&self, offset: usize) -> Option<(usize, usize)> {
        let _ = offset;
        todo!()
    }
    pub fn clear(&mut self) {
        self.ranges.clear();
    }
}
