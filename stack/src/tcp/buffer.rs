//! A byte ring whose storage grows on demand (doubling) up to a fixed capacity, so an
//! idle connection costs little and a busy one stops allocating once grown.
//!
//! Logical layout, measured from the head (`read_at`):
//!
//! ```text
//! [ held: len bytes ][ reserved: hwm bytes written past the tail ][ free ... ]
//! ```
//!
//! Bytes written past the tail by [`RingBuffer::write_unallocated`] are "reserved": they
//! are not readable, but they survive storage growth (growth re-linearizes `len + hwm`
//! bytes) until they are committed or overwritten by [`RingBuffer::enqueue`].

/// First allocation size (clamped to the capacity).
const INITIAL_STORAGE: usize = 4096;

#[derive(Debug)]
pub struct RingBuffer {
    storage: Vec<u8>,
    capacity: usize,
    read_at: usize,
    len: usize,
    /// High-water mark of bytes written past the tail (`<= free()`); these are copied
    /// along when storage grows.
    hwm: usize,
}

impl RingBuffer {
    /// An empty ring that may hold up to `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        RingBuffer {
            storage: Vec::new(),
            capacity,
            read_at: 0,
            len: 0,
            hwm: 0,
        }
    }
    pub fn capacity(&self) -> usize {
        self.capacity
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
        self.storage.len()
    }
    /// Drop all held and reserved bytes (storage is kept).
    pub fn clear(&mut self) {
        self.read_at = 0;
        self.len = 0;
        self.hwm = 0;
    }

    /// Make sure storage holds at least `need` bytes from the head (`need <= capacity`),
    /// re-linearizing held and reserved bytes when it grows.
    fn ensure(&mut self, need: usize) {
        let size = self.storage.len();
        if need <= size {
            return;
        }
        let need = need.min(self.capacity);
        let mut new_size = if size == 0 { INITIAL_STORAGE } else { size };
        while new_size < need {
            new_size = new_size.saturating_mul(2);
        }
        let new_size = new_size.min(self.capacity);
        let mut new = vec![0u8; new_size];
        // Preserve held + reserved bytes in logical order.
        let keep = self.len + self.hwm;
        if keep > 0 {
            let first = keep.min(size - self.read_at);
            new[..first].copy_from_slice(&self.storage[self.read_at..self.read_at + first]);
            new[first..keep].copy_from_slice(&self.storage[..keep - first]);
        }
        self.storage = new;
        self.read_at = 0;
    }

    /// Copy `data` to logical position `pos` from the head. Storage must cover it.
    fn write_at(&mut self, pos: usize, data: &[u8]) {
        let size = self.storage.len();
        debug_assert!(pos + data.len() <= size);
        if data.is_empty() {
            return;
        }
        let idx = (self.read_at + pos) % size;
        let first = data.len().min(size - idx);
        self.storage[idx..idx + first].copy_from_slice(&data[..first]);
        self.storage[..data.len() - first].copy_from_slice(&data[first..]);
    }

    /// Append as much of `data` as fits; returns bytes taken.
    ///
    /// Enqueued bytes overwrite (and so consume) any reserved bytes past the tail.
    pub fn enqueue(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.ensure(self.len + n);
        self.write_at(self.len, &data[..n]);
        self.len += n;
        self.hwm = self.hwm.saturating_sub(n);
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
        self.read_at = (self.read_at + n) % self.storage.len();
        self.len -= n;
        if self.len == 0 && self.hwm == 0 {
            self.read_at = 0;
        }
        n
    }
    /// The held bytes `[offset, offset + len)` from the head, clamped to what is held,
    /// as up to two slices (the second empty unless the range wraps).
    pub fn peek(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let start = offset.min(self.len);
        let n = len.min(self.len - start);
        if n == 0 {
            return (&[], &[]);
        }
        let size = self.storage.len();
        let idx = (self.read_at + start) % size;
        let first = n.min(size - idx);
        (&self.storage[idx..idx + first], &self.storage[..n - first])
    }
    /// Write `data` into the free space starting `offset` bytes past the tail, without
    /// making it readable (out-of-order data). Clamped to the free space; returns bytes
    /// written (from the start of `data`).
    pub fn write_unallocated(&mut self, offset: usize, data: &[u8]) -> usize {
        let free = self.free();
        if offset >= free {
            return 0;
        }
        let n = data.len().min(free - offset);
        if n == 0 {
            return 0;
        }
        let end = offset + n;
        self.ensure(self.len + end);
        self.write_at(self.len + offset, &data[..n]);
        self.hwm = self.hwm.max(end);
        n
    }
    /// Make `n` bytes previously written past the tail readable. `n <= free()`.
    ///
    /// `n` is clamped to `free()`. Committing bytes that were never written exposes
    /// unspecified (but initialized) contents.
    pub fn commit(&mut self, n: usize) {
        let n = n.min(self.free());
        if n == 0 {
            return;
        }
        self.ensure(self.len + n);
        self.len += n;
        self.hwm = self.hwm.saturating_sub(n);
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
        assert_eq!(rb.allocated(), 4 * INITIAL_STORAGE);
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
    fn write_unallocated_and_commit() {
        let mut rb = RingBuffer::new(10);
        rb.enqueue(b"abc");
        // Out-of-order: bytes 2.. past the tail.
        assert_eq!(rb.write_unallocated(2, b"fg"), 2);
        assert_eq!(rb.len(), 3);
        assert_eq!(rb.write_unallocated(0, b"de"), 2);
        rb.commit(4);
        assert_eq!(peek_vec(&rb, 0, 100), b"abcdefg");
        // Clamped to the free space.
        assert_eq!(rb.write_unallocated(0, b"0123456"), 3);
        assert_eq!(rb.write_unallocated(3, b"x"), 0);
        assert_eq!(rb.write_unallocated(usize::MAX, b"x"), 0);
        rb.commit(100);
        assert_eq!(rb.len(), 10);
        assert_eq!(peek_vec(&rb, 0, 100), b"abcdefg012");
        rb.commit(1); // no room: no-op, no panic
        assert_eq!(rb.len(), 10);
    }

    #[test]
    fn unallocated_survives_growth() {
        let mut rb = RingBuffer::new(50_000);
        // Start by a wrapped layout in the initial 4 KiB storage.
        let a: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        rb.enqueue(&a);
        let mut sink = vec![0u8; 2500];
        rb.dequeue(&mut sink);
        rb.enqueue(&a); // wraps: 3500 held
        assert_eq!(rb.allocated(), INITIAL_STORAGE);
        // Reserved bytes inside current storage (wrapping too).
        assert_eq!(rb.write_unallocated(100, b"HELLO"), 5);
        // A write far past the tail forces growth; earlier reserved bytes must survive.
        assert_eq!(rb.write_unallocated(20_000, b"WORLD"), 5);
        assert!(rb.allocated() >= 3500 + 20_005);
        // Reserved bytes written after growth land too.
        assert_eq!(rb.write_unallocated(1000, b"AFTER"), 5);
        // Enqueue overwrites (consumes) the first reserved bytes.
        let b = vec![9u8; 50];
        assert_eq!(rb.enqueue(&b), 50);
        rb.commit(20_005 - 50);
        assert_eq!(rb.len(), 3500 + 20_005);
        let all = peek_vec(&rb, 0, usize::MAX);
        let mut expect = a[2500..].to_vec();
        expect.extend_from_slice(&a);
        assert_eq!(&all[..3500], &expect[..]);
        assert_eq!(&all[3500..3550], &b[..]);
        assert_eq!(&all[3600..3605], b"HELLO");
        assert_eq!(&all[4500..4505], b"AFTER");
        assert_eq!(&all[3500 + 20_000..], b"WORLD");
    }

    #[test]
    fn model_against_vecdeque() {
        for seed in 1..40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let capacity = 1 + rng.below(20_000);
            let mut rb = RingBuffer::new(capacity);
            let mut model: VecDeque<u8> = VecDeque::new();
            // Reserved region past the tail: Some(byte) once written.
            let mut reserved: Vec<Option<u8>> = Vec::new();
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
                        reserved.drain(..took.min(reserved.len()));
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
                        let free = capacity - model.len();
                        let off = rng.below(free + 2);
                        let n = rng.below(max_op);
                        let data: Vec<u8> = (0..n)
                            .map(|_| {
                                counter = counter.wrapping_add(1);
                                counter
                            })
                            .collect();
                        let w = rb.write_unallocated(off, &data);
                        let want = if off >= free { 0 } else { n.min(free - off) };
                        assert_eq!(w, want);
                        if w > 0 {
                            if reserved.len() < off + w {
                                reserved.resize(off + w, None);
                            }
                            for i in 0..w {
                                reserved[off + i] = Some(data[i]);
                            }
                        }
                    }
                    4 => {
                        // Commit only fully written prefixes so contents are defined.
                        let written = reserved.iter().take_while(|b| b.is_some()).count();
                        let n = rng.below(written + 1);
                        rb.commit(n);
                        model.extend(reserved.drain(..n).map(|b| b.unwrap()));
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
                assert!(rb.allocated() <= capacity);
                let all = peek_vec(&rb, 0, usize::MAX);
                assert!(all.iter().eq(model.iter()));
            }
        }
    }
}
