//! A byte ring whose storage grows on demand (doubling) up to its capacity, so an
//! idle connection costs little and a busy one stops allocating once grown.
//! The capacity itself may move (buffer auto-tuning): storage follows it up
//! as bytes arrive, and is given back once the ring is empty or, when a
//! whole storage's worth has passed through while it stayed mostly empty,
//! halved or more (a burst's storage is not kept for the quiet that follows).

/// Smallest allocation (clamped to the capacity). The first one is the power
/// of two that holds what arrived, at least this, not a whole page: a
/// connection holding a few bytes (a request line not complete yet, an echo
/// of 16 bytes) costs that, not 4 KiB (issue 12: 10,000 connections each sent
/// a few bytes at once). Growth doubles from there.
const INITIAL_STORAGE: usize = 64;

/// A ring this small (or smaller) is freed whenever it empties, so an idle
/// connection holds no storage.
const FREE_WHEN_EMPTY: usize = 4096;

/// Storage this large or larger is trimmed when it turns out oversized.
/// Trimming copies what is held (at most a quarter of the storage) once per
/// storage's worth of bytes through it: a quarter of a copy per byte at
/// worst, nothing in a steady flow that uses its storage.
const TRIM_FROM: usize = 64 * 1024;

#[derive(Debug)]
pub struct RingBuffer {
    /// The ring's allocation of `size` bytes, of which only the first
    /// `storage.len()` have been written yet: a new allocation is filled as
    /// bytes arrive, never zeroed first (zeroing a fresh ring for every
    /// segment cost the receiver a quarter of its instructions when the
    /// reader kept up and each emptied ring was freed).
    storage: Vec<u8>,
    size: usize,
    capacity: usize,
    read_at: usize,
    len: usize,
    /// The most held, and the bytes that passed through (were discarded),
    /// since the storage was last judged.
    peak: usize,
    passed: usize,
}

impl RingBuffer {
    /// An empty ring that may hold up to `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        RingBuffer {
            storage: Vec::new(),
            size: 0,
            capacity,
            read_at: 0,
            len: 0,
            peak: 0,
            passed: 0,
        }
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// Change the capacity; never below what is held. Storage beyond a
    /// lowered capacity is given back (the held bytes are moved).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(self.len);
        if self.size > self.capacity {
            if self.len == 0 {
                self.free_storage();
            } else {
                self.move_to(self.capacity);
            }
        }
    }
    /// Bytes held (readable).
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// `capacity - len`.
    pub fn free(&self) -> usize {
        self.capacity - self.len
    }
    /// Bytes of storage currently allocated (grows by doubling, never beyond
    /// `capacity`).
    pub fn allocated(&self) -> usize {
        self.size
    }
    /// Drop all held bytes (storage is kept).
    pub fn clear(&mut self) {
        self.read_at = 0;
        self.len = 0;
    }
    /// Give the storage back if nothing is held; the bytes freed.
    pub fn release(&mut self) -> usize {
        if self.len > 0 {
            return 0;
        }
        let n = self.size;
        self.free_storage();
        n
    }

    fn free_storage(&mut self) {
        self.storage = Vec::new();
        self.size = 0;
        self.read_at = 0;
        self.peak = self.len;
        self.passed = 0;
    }

    /// Make sure storage holds at least `need` bytes from the head (`need <= capacity`),
    /// re-linearizing held bytes when it grows.
    fn ensure(&mut self, need: usize) {
        let size = self.size;
        if need <= size {
            return;
        }
        let need = need.min(self.capacity);
        let mut new_size = if size == 0 { INITIAL_STORAGE } else { size };
        while new_size < need {
            new_size = new_size.saturating_mul(2);
        }
        self.move_to(new_size.min(self.capacity));
    }

    /// New storage of `new_size` bytes (at least `len`), the held bytes
    /// linearized at its start.
    fn move_to(&mut self, new_size: usize) {
        debug_assert!(new_size >= self.len);
        let mut new = Vec::with_capacity(new_size);
        let keep = self.len;
        if keep > 0 {
            let first = keep.min(self.size - self.read_at);
            new.extend_from_slice(&self.storage[self.read_at..self.read_at + first]);
            new.extend_from_slice(&self.storage[..keep - first]);
        }
        self.storage = new;
        self.size = new_size;
        self.read_at = 0;
    }

    /// Copy `data` to logical position `pos` from the head. Storage must cover it.
    fn write_at(&mut self, pos: usize, data: &[u8]) {
        let size = self.size;
        debug_assert!(pos + data.len() <= size);
        if data.is_empty() {
            return;
        }
        let idx = (self.read_at + pos) % size;
        let first = data.len().min(size - idx);
        self.write_span(idx, &data[..first]);
        self.write_span(0, &data[first..]);
    }

    /// Copy `data` to storage index `at`, extending the written part. Bytes
    /// are only ever written at the tail, which is never past the written
    /// part: it reaches the end of the allocation before it wraps.
    fn write_span(&mut self, at: usize, data: &[u8]) {
        let have = self.storage.len();
        debug_assert!(at <= have && at + data.len() <= self.size);
        let inside = data.len().min(have.saturating_sub(at));
        self.storage[at..at + inside].copy_from_slice(&data[..inside]);
        self.storage.extend_from_slice(&data[inside..]);
    }

    /// Append as much of `data` as fits; returns bytes taken.
    pub fn enqueue(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.ensure(self.len + n);
        self.write_at(self.len, &data[..n]);
        self.len += n;
        self.peak = self.peak.max(self.len);
        n
    }
    /// Move up to `buf.len()` bytes from the head into `buf`.
    pub fn dequeue(&mut self, buf: &mut [u8]) -> usize {
        let (a, b) = self.peek(0, buf.len());
        let n = a.len() + b.len();
        buf[..a.len()].copy_from_slice(a);
        buf[a.len()..n].copy_from_slice(b);
        self.discard(n)
    }
    /// Drop up to `n` bytes from the head; returns bytes dropped.
    pub fn discard(&mut self, n: usize) -> usize {
        let n = n.min(self.len);
        if n == 0 {
            return 0;
        }
        self.read_at = (self.read_at + n) % self.size;
        self.len -= n;
        if self.len == 0 {
            self.read_at = 0;
            if self.size <= FREE_WHEN_EMPTY {
                self.free_storage();
                return n;
            }
        }
        self.passed += n;
        if self.passed >= self.size {
            self.trim();
        }
        n
    }

    /// A storage's worth has passed through: if no more than a quarter of it
    /// was ever held meanwhile, move to the power of two that holds twice
    /// the most held (so that the same load does not grow it straight back).
    fn trim(&mut self) {
        let want = self
            .peak
            .saturating_mul(2)
            .next_power_of_two()
            .max(TRIM_FROM);
        if self.size >= TRIM_FROM && self.peak <= self.size / 4 && want < self.size {
            if self.len == 0 {
                self.free_storage();
            } else {
                self.move_to(want);
            }
        }
        self.peak = self.len;
        self.passed = 0;
    }
    /// The held bytes `[offset, offset + len)` from the head, clamped to what is held,
    /// as up to two slices (the second empty unless the range wraps).
    pub fn peek(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let start = offset.min(self.len);
        let n = len.min(self.len - start);
        if n == 0 {
            return (&[], &[]);
        }
        let idx = (self.read_at + start) % self.size;
        let first = n.min(self.size - idx);
        (&self.storage[idx..idx + first], &self.storage[..n - first])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::test_util::Rng;
    use std::collections::VecDeque;

    fn peek_vec(rb: &RingBuffer, offset: usize, len: usize) -> Vec<u8> {
        let (a, b) = rb.peek(offset, len);
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn starts_unallocated_and_grows_by_doubling() {
        let mut rb = RingBuffer::new(100_000);
        assert_eq!(rb.allocated(), 0);
        assert!(rb.is_empty());
        assert_eq!(rb.enqueue(&[1, 2, 3]), 3);
        assert_eq!(rb.allocated(), INITIAL_STORAGE);
        let big: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        assert_eq!(rb.enqueue(&big), 10_000);
        assert_eq!(rb.allocated(), 16 * 1024);
        let mut expect = vec![1, 2, 3];
        expect.extend_from_slice(&big);
        assert_eq!(peek_vec(&rb, 0, usize::MAX), expect);
        // Fill to capacity: storage is clamped to capacity (not a power of two).
        let rest = vec![7u8; 100_000];
        assert_eq!(rb.enqueue(&rest), 100_000 - 10_003);
        assert_eq!(rb.allocated(), 100_000);
        assert_eq!(rb.free(), 0);
        assert_eq!(rb.enqueue(&[1]), 0);
    }

    /// A lowered capacity gives storage back, keeping the held bytes.
    #[test]
    fn lowered_capacity_frees_storage() {
        let mut rb = RingBuffer::new(1 << 20);
        rb.enqueue(&vec![1u8; 600_000]);
        let mut sink = vec![0u8; 590_000];
        rb.dequeue(&mut sink);
        let tail: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        rb.enqueue(&tail);
        assert!(rb.allocated() >= 600_000);
        rb.set_capacity(64 * 1024);
        assert_eq!(rb.allocated(), 64 * 1024);
        let mut expect = vec![1u8; 10_000];
        expect.extend_from_slice(&tail);
        assert_eq!(peek_vec(&rb, 0, usize::MAX), expect);
        // Never below what is held.
        rb.set_capacity(10);
        assert_eq!(rb.capacity(), 30_000);
        assert_eq!(peek_vec(&rb, 0, usize::MAX), expect);
        rb.dequeue(&mut sink);
        rb.set_capacity(10);
        assert_eq!(rb.allocated(), 0);
    }

    #[test]
    fn wraparound_two_slices() {
        let mut rb = RingBuffer::new(10);
        assert_eq!(rb.allocated(), 0);
        assert_eq!(rb.enqueue(b"abcdefgh"), 8);
        assert_eq!(rb.allocated(), 10);
        let mut buf = [0u8; 6];
        assert_eq!(rb.dequeue(&mut buf), 6);
        assert_eq!(&buf, b"abcdef");
        assert_eq!(rb.enqueue(b"ijklmnopqr"), 8);
        assert_eq!(rb.len(), 10);
        let (a, b) = rb.peek(0, 10);
        assert_eq!(a, b"ghij");
        assert_eq!(b, b"klmnop");
        let (a, b) = rb.peek(3, 4);
        assert_eq!(a, b"j");
        assert_eq!(b, b"klm");
        let (a, b) = rb.peek(5, 100);
        assert_eq!(a, b"lmnop");
        assert!(b.is_empty());
        let (a, b) = rb.peek(usize::MAX, usize::MAX);
        assert!(a.is_empty() && b.is_empty());
        let mut out = [0u8; 20];
        assert_eq!(rb.dequeue(&mut out), 10);
        assert_eq!(&out[..10], b"ghijklmnop");
        assert!(rb.is_empty());
    }

    #[test]
    fn discard_and_empty_reset() {
        let mut rb = RingBuffer::new(7);
        assert_eq!(rb.discard(3), 0);
        rb.enqueue(b"12345");
        assert_eq!(rb.discard(2), 2);
        assert_eq!(peek_vec(&rb, 0, 10), b"345");
        assert_eq!(rb.discard(100), 3);
        assert!(rb.is_empty());
        assert_eq!(rb.read_at, 0);
        assert_eq!(rb.enqueue(b"abcdefgh"), 7);
        assert_eq!(peek_vec(&rb, 0, 10), b"abcdefg");
    }

    #[test]
    fn model_against_vecdeque() {
        for seed in 1..40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut capacity = 1 + rng.below(20_000);
            let mut max_capacity = capacity;
            let mut rb = RingBuffer::new(capacity);
            let mut model: VecDeque<u8> = VecDeque::new();
            let mut counter = 0u8;
            for _ in 0..600 {
                let max_op = capacity / 2 + 2;
                match rng.below(6) {
                    0 => {
                        let n = rng.below(max_op);
                        let data: Vec<u8> = (0..n)
                            .map(|_| {
                                counter = counter.wrapping_add(1);
                                counter
                            })
                            .collect();
                        let took = rb.enqueue(&data);
                        assert_eq!(took, n.min(capacity - model.len()));
                        model.extend(&data[..took]);
                    }
                    1 => {
                        let mut buf = vec![0u8; rng.below(max_op)];
                        let got = rb.dequeue(&mut buf);
                        assert_eq!(got, buf.len().min(model.len()));
                        let want: Vec<u8> = model.drain(..got).collect();
                        assert_eq!(&buf[..got], &want[..]);
                    }
                    2 => {
                        let n = rng.below(max_op);
                        let got = rb.discard(n);
                        assert_eq!(got, n.min(model.len()));
                        model.drain(..got);
                    }
                    3 => {
                        // Auto-tuning moves the capacity; never below what is held.
                        let cap = rng.below(20_000) + 1;
                        rb.set_capacity(cap);
                        capacity = cap.max(model.len());
                        assert_eq!(rb.capacity(), capacity);
                    }
                    4 => {
                        let freed = rb.release();
                        assert!(model.is_empty() || freed == 0);
                    }
                    _ => {
                        let off = rng.below(model.len() + 3);
                        let n = rng.below(model.len() + 3);
                        let got = peek_vec(&rb, off, n);
                        let want: Vec<u8> = model.iter().skip(off).take(n).copied().collect();
                        assert_eq!(got, want);
                    }
                }
                assert_eq!(rb.len(), model.len());
                assert_eq!(rb.free(), capacity - model.len());
                // Storage above a lowered capacity waits for a release.
                max_capacity = max_capacity.max(capacity);
                assert!(rb.allocated() <= max_capacity);
                if model.is_empty() {
                    assert!(rb.allocated() > FREE_WHEN_EMPTY || rb.allocated() == 0);
                }
                let all = peek_vec(&rb, 0, usize::MAX);
                assert!(all.iter().eq(model.iter()));
            }
        }
    }

    /// Storage a burst grew is given back once the flow through it stays
    /// small for a whole storage's worth of bytes, and kept while used.
    #[test]
    fn oversized_storage_is_trimmed_after_a_quiet_turnover() {
        let mut rb = RingBuffer::new(8 << 20);
        let mut sink = vec![0u8; 4 << 20];
        rb.enqueue(&vec![1u8; 4 << 20]);
        assert_eq!(rb.allocated(), 4 << 20);
        rb.dequeue(&mut sink);
        // Freed at once? No: large storage is kept while its use is unknown.
        rb.enqueue(&[2u8; 1000]);
        assert_eq!(rb.allocated(), 4 << 20);
        // A steady trickle of 100 KB at a time, well under a quarter.
        let chunk = vec![3u8; 100_000];
        let mut passed = 0;
        while passed < (4 << 20) + 100_000 {
            rb.enqueue(&chunk);
            passed += rb.dequeue(&mut sink[..100_000]);
        }
        assert_eq!(
            rb.allocated(),
            256 * 1024,
            "twice the most held, as a power of two"
        );
        assert_eq!(peek_vec(&rb, 0, 1000), vec![3u8; 1000]);
        // A ring that uses its storage keeps it.
        let mut rb = RingBuffer::new(8 << 20);
        rb.enqueue(&vec![1u8; 1 << 20]);
        for _ in 0..20 {
            rb.dequeue(&mut sink[..600_000]);
            rb.enqueue(&vec![4u8; 600_000]);
        }
        assert_eq!(rb.allocated(), 1 << 20);
    }

    #[test]
    fn a_few_bytes_cost_a_small_allocation() {
        let mut rb = RingBuffer::new(128 * 1024);
        assert_eq!(rb.enqueue(&[7; 16]), 16);
        assert_eq!(rb.allocated(), INITIAL_STORAGE);
        assert_eq!(rb.enqueue(&[8; 100]), 100);
        assert_eq!(rb.allocated(), 128);
        assert_eq!(peek_vec(&rb, 14, 4), [7, 7, 8, 8]);
        // One segment at once: the power of two that holds it.
        let mut rb = RingBuffer::new(128 * 1024);
        assert_eq!(rb.enqueue(&[1; 1460]), 1460);
        assert_eq!(rb.allocated(), 2048);
        // Emptied while small: freed.
        assert_eq!(rb.discard(1460), 1460);
        assert_eq!(rb.allocated(), 0);
        // Never above the capacity.
        let mut rb = RingBuffer::new(40);
        assert_eq!(rb.enqueue(&[1; 50]), 40);
        assert_eq!(rb.allocated(), 40);
    }
}
