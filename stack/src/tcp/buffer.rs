//! A byte queue for a connection's send or receive data whose storage
//! follows what it holds, not what it may hold: bytes live in chunks of
//! 64 KiB, a chunk is taken when the last one is full and given back as soon
//! as its bytes are gone, so a buffer holds its bytes and less than two
//! chunks more (a partly read first and a partly written last one). Chunks
//! given back wait in a small per-thread store for the next buffer
//! (`spare_chunks.rs`: the allocator would return them to the kernel and
//! fault them in again page by page), and so do small allocations. The
//! capacity (the most it may hold, which auto-tuning moves) costs nothing
//! until used.
//!
//! A buffer that never held more than a chunk keeps its bytes in one
//! allocation that starts at the power of two holding what arrived (a
//! connection holding a few bytes, an echo of 16, costs that, not 64 KiB:
//! issue 12's 10,000 connections that each sent a few bytes) and doubles as
//! needed. Growing past a chunk copies nothing: the next chunk is added.
//! (A contiguous ring doubled its storage and copied everything it held at
//! each step, and kept storage grown in a burst until trimmed: 16 echo
//! connections held 1-3 MB of empty storage each, `t_mem_echo`.)

use super::spare_chunks;
use std::collections::VecDeque;

/// Smallest allocation (clamped to the capacity).
const INITIAL_STORAGE: usize = 64;

/// Bytes per chunk once a buffer holds more than one: a segment or a DSS
/// mapping (at most 65,535 bytes) then spans at most two chunks, which
/// [`RingBuffer::peek`] returns.
pub const CHUNK: usize = 64 * 1024;

/// Room for more bytes in chunk `c`: up to its storage, and never past
/// `CHUNK` bytes held (a fill may have grown a chunk's storage beyond it:
/// [`RingBuffer::enqueue_with`]; the chunks' lengths are what addressing
/// relies on).
fn room_in(c: &Vec<u8>) -> usize {
    c.capacity().min(CHUNK).saturating_sub(c.len())
}

/// A single allocation this small (or smaller) is freed whenever the buffer
/// empties, so an idle connection holds no storage; a larger one is kept
/// (a flow whose reader keeps up empties it after every segment).
const FREE_WHEN_EMPTY: usize = 4096;

/// Where a read puts the bytes: a caller's buffer ([`CopyTo`]), or code that
/// takes them straight from the buffer's storage (a discard service, a hash,
/// a write to a socket), with no copy in between.
pub trait Reader {
    /// Bytes it may take at most now.
    fn wants(&self) -> usize;
    /// Take what it can of `part`, the next bytes in order; how many it took
    /// (fewer than offered ends the read).
    fn take(&mut self, part: &[u8]) -> usize;
    /// Read from `from` (what a reader with a faster way overrides).
    fn drain(&mut self, from: &mut RingBuffer) -> usize {
        from.read(self)
    }
}

/// A read into a caller's buffer.
pub struct CopyTo<'a> {
    buf: &'a mut [u8],
    filled: usize,
}

impl<'a> CopyTo<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        CopyTo { buf, filled: 0 }
    }
}

impl Reader for CopyTo<'_> {
    fn wants(&self) -> usize {
        self.buf.len() - self.filled
    }
    fn drain(&mut self, from: &mut RingBuffer) -> usize {
        let n = from.dequeue(&mut self.buf[self.filled..]);
        self.filled += n;
        n
    }
    fn take(&mut self, part: &[u8]) -> usize {
        let n = part.len().min(self.wants());
        self.buf[self.filled..self.filled + n].copy_from_slice(&part[..n]);
        self.filled += n;
        n
    }
}

/// A read by a function given each part (at most `max` bytes in all).
pub struct With<F> {
    pub max: usize,
    pub f: F,
}

impl<F: FnMut(&[u8]) -> usize> Reader for With<F> {
    fn wants(&self) -> usize {
        self.max
    }
    fn take(&mut self, part: &[u8]) -> usize {
        let n = (self.f)(&part[..part.len().min(self.max)]);
        self.max -= n.min(self.max);
        n
    }
}

/// Room in a buffer's storage that a write fills in place: at most the
/// limit's bytes appended to the chunk (`bytes::BufMut`, so that a socket
/// read such as tokio's `try_read_buf` goes straight into it).
pub type Room<'a> = bytes::buf::Limit<&'a mut Vec<u8>>;

/// Where a write's bytes come from: a caller's slice, or code that fills the
/// buffer's storage in place ([`FillWith`]).
pub trait Writer {
    /// Append what fits to `to`: the bytes taken, and whether the writer
    /// had more than there was room for (it will wait for room).
    fn write_into(&mut self, to: &mut RingBuffer) -> (usize, bool);
}

impl Writer for &[u8] {
    fn write_into(&mut self, to: &mut RingBuffer) -> (usize, bool) {
        let n = to.enqueue(self);
        (n, n < self.len())
    }
}

/// A write by a function that fills [`Room`] (at most `max` bytes in all);
/// see [`RingBuffer::enqueue_with`].
pub struct FillWith<F> {
    pub max: usize,
    pub f: F,
}

impl<F: FnMut(&mut Room<'_>)> Writer for FillWith<F> {
    fn write_into(&mut self, to: &mut RingBuffer) -> (usize, bool) {
        let free = to.free();
        let n = to.enqueue_with(self.max, &mut self.f);
        self.max -= n;
        // Filled to the brim (or nothing to fill): the source may hold more.
        (n, n == free && self.max > 0)
    }
}

#[derive(Debug)]
pub struct RingBuffer {
    /// The held bytes start at `head` in the first chunk and end at the
    /// last one's length (its written part; a chunk is never zeroed, only
    /// written). With more than one chunk every chunk is `CHUNK` bytes and
    /// all but the last are full; a single one may be smaller.
    chunks: VecDeque<Vec<u8>>,
    head: usize,
    len: usize,
    capacity: usize,
    /// Bytes allocated (the stack accounts every connection's after each
    /// packet).
    allocated: usize,
}

impl Drop for RingBuffer {
    fn drop(&mut self) {
        self.free_storage();
    }
}

impl RingBuffer {
    /// An empty buffer that may hold up to `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        RingBuffer {
            chunks: VecDeque::new(),
            head: 0,
            len: 0,
            capacity,
            allocated: 0,
        }
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// Change the capacity; never below what is held. A single allocation
    /// larger than the new capacity is given back (the held bytes moved).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(self.len);
        if self.chunks.len() == 1 && self.chunks[0].capacity() > self.capacity {
            if self.len == 0 {
                self.free_storage();
            } else {
                self.move_single(self.capacity);
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
    /// Bytes of storage allocated.
    pub fn allocated(&self) -> usize {
        self.allocated
    }
    /// Give the storage back if nothing is held; the bytes freed.
    pub fn release(&mut self) -> usize {
        if self.len > 0 {
            return 0;
        }
        let n = self.allocated();
        self.free_storage();
        n
    }

    fn free_storage(&mut self) {
        // The queue's own few slots stay (a ring that empties after every
        // segment, as an MPTCP subflow's does, would allocate them again).
        for c in self.chunks.drain(..) {
            spare_chunks::give(c);
        }
        if self.chunks.capacity() > 4 {
            self.chunks = VecDeque::new();
        }
        self.head = 0;
        self.allocated = 0;
    }

    /// A new allocation of `size` bytes, accounted.
    fn alloc(&mut self, size: usize) -> Vec<u8> {
        self.allocated += size;
        spare_chunks::take(size)
    }

    /// The single allocation replaced by one of `size` bytes (at least
    /// `len`) holding the held bytes at its start.
    fn move_single(&mut self, size: usize) {
        debug_assert!(self.chunks.len() <= 1 && size >= self.len);
        let mut new = self.alloc(size);
        if let Some(old) = self.chunks.front() {
            new.extend_from_slice(&old[self.head..]);
            self.allocated -= old.capacity();
        }
        for c in self.chunks.drain(..) {
            spare_chunks::give(c);
        }
        self.chunks.push_back(new);
        self.head = 0;
    }

    /// Room for more bytes after the last one, `need` the total to hold.
    fn make_room(&mut self, need: usize) {
        let single = match self.chunks.len() {
            0 => {
                let size = need
                    .next_power_of_two()
                    .clamp(INITIAL_STORAGE, CHUNK)
                    .min(self.capacity);
                let c = self.alloc(size);
                self.chunks.push_back(c);
                return;
            }
            1 => self.chunks[0].capacity(),
            _ => CHUNK,
        };
        if single >= CHUNK {
            let c = self.alloc(CHUNK);
            self.chunks.push_back(c);
        } else if need <= single && self.len <= single / 2 {
            // The bytes move to the start: at most one byte copied for
            // each byte of room made.
            let c = &mut self.chunks[0];
            c.copy_within(self.head.., 0);
            c.truncate(self.len);
            self.head = 0;
        } else {
            // Doubled (a copy of less than a chunk), past the capacity if
            // need be: a full buffer that made room by moving its bytes
            // would copy them for every few bytes let in.
            let mut size = (single * 2).max(INITIAL_STORAGE);
            while size < need && size < CHUNK {
                size *= 2;
            }
            self.move_single(size.min(CHUNK));
        }
    }

    /// Append as much of `data` as fits; returns bytes taken.
    pub fn enqueue(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if let Some(c) = self.chunks.back_mut() {
            if room_in(c) >= n {
                c.extend_from_slice(&data[..n]);
                self.len += n;
                return n;
            }
        }
        let mut rest = &data[..n];
        while !rest.is_empty() {
            let room = self.chunks.back().map_or(0, room_in);
            if room == 0 {
                self.make_room(self.len + rest.len());
                continue;
            }
            let take = rest.len().min(room);
            if let Some(c) = self.chunks.back_mut() {
                c.extend_from_slice(&rest[..take]);
            }
            self.len += take;
            rest = &rest[take..];
        }
        n
    }
    /// Append up to `max` bytes (and what fits) that `fill` writes into the
    /// storage in place: it is given the room after the last byte, a chunk's
    /// worth at most, and appends to it (through `BufMut`: a socket read
    /// such as tokio's `try_read_buf`, one per call, since a second read of
    /// a room already filled would find none and look like the end of its
    /// stream); a fill that leaves room unfilled ends the write. Returns the
    /// bytes appended. (A relay reads its socket straight into the send
    /// buffer this way: no copy of its own.)
    ///
    /// # Panics
    ///
    /// If `fill` removes bytes that were already held (through
    /// `Limit::get_mut`): the caller's bug, which would otherwise corrupt
    /// the stream. Bytes it writes past its room are cut off, and storage it
    /// grows is accounted and never filled past a chunk.
    pub fn enqueue_with(&mut self, max: usize, mut fill: impl FnMut(&mut Room<'_>)) -> usize {
        use bytes::BufMut;
        let mut left = max.min(self.free());
        let mut n = 0;
        while left > 0 {
            let room = self.chunks.back().map_or(0, room_in);
            if room == 0 {
                self.make_room(self.len + left);
                continue;
            }
            let offer = room.min(left);
            let Some(c) = self.chunks.back_mut() else {
                break;
            };
            let (len0, cap0) = (c.len(), c.capacity());
            fill(&mut (&mut *c).limit(offer));
            assert!(c.len() >= len0, "a fill removed bytes the buffer held");
            c.truncate(len0 + offer);
            self.allocated = self.allocated - cap0 + c.capacity();
            let took = c.len() - len0;
            self.len += took;
            n += took;
            left -= took;
            if took < offer {
                break;
            }
        }
        if self.chunks.len() > 1 && self.chunks.back().is_some_and(|c| c.is_empty()) {
            // A chunk taken for a fill that then brought nothing.
            if let Some(c) = self.chunks.pop_back() {
                self.allocated -= c.capacity();
                spare_chunks::give(c);
            }
        }
        if self.len == 0 {
            // A fill that brought nothing (a socket with nothing to read)
            // leaves no storage behind on an idle connection.
            self.free_storage();
        } else if self.chunks.len() == 1 {
            // The room was offered before the fill knew how much it had: a
            // few bytes in a chunk's worth of storage are moved into what
            // `enqueue` would have taken for them, which an idle connection
            // gives back once they are acknowledged (`FREE_WHEN_EMPTY`).
            let fit = self.len.next_power_of_two().max(INITIAL_STORAGE);
            if self.chunks[0].capacity() > FREE_WHEN_EMPTY && fit < self.chunks[0].capacity() {
                self.move_single(fit);
            }
        }
        n
    }

    /// Move up to `buf.len()` bytes from the head into `buf`.
    pub fn dequeue(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        for part in self.slices(0, buf.len()) {
            buf[n..n + part.len()].copy_from_slice(part);
            n += part.len();
        }
        self.discard(n)
    }

    /// Hand bytes from the head to `r`, in order, until it has had all it
    /// wants or takes less than it was offered; drop what it took.
    #[inline]
    pub fn read<R: Reader + ?Sized>(&mut self, r: &mut R) -> usize {
        let mut n = 0;
        for part in self.slices(0, r.wants()) {
            let took = r.take(part).min(part.len());
            n += took;
            if took < part.len() {
                break;
            }
        }
        self.discard(n)
    }
    /// Drop up to `n` bytes from the head; returns bytes dropped.
    pub fn discard(&mut self, n: usize) -> usize {
        let n = n.min(self.len);
        if n == 0 {
            return 0;
        }
        self.head += n;
        self.len -= n;
        while self.chunks.len() > 1 && self.head >= self.chunks[0].len() {
            self.head -= self.chunks[0].len();
            if let Some(done) = self.chunks.pop_front() {
                self.allocated -= done.capacity();
                spare_chunks::give(done);
            }
        }
        if self.len == 0 {
            self.head = 0;
            match self.chunks.front_mut() {
                Some(c) if c.capacity() > FREE_WHEN_EMPTY => c.clear(),
                _ => self.free_storage(),
            }
        }
        n
    }

    /// The held bytes `[offset, offset + len)` from the head, clamped to what
    /// is held, in order, as up to `len / CHUNK + 2` slices.
    pub fn slices(&self, offset: usize, len: usize) -> impl Iterator<Item = &[u8]> {
        let start = offset.min(self.len);
        let mut left = len.min(self.len - start);
        let at = self.head + start;
        let (mut chunk, mut within) = if self.chunks.len() > 1 {
            (at / CHUNK, at % CHUNK)
        } else {
            (0, at)
        };
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let c = &self.chunks[chunk];
            let n = left.min(c.len() - within);
            let part = &c[within..within + n];
            left -= n;
            chunk += 1;
            within = 0;
            Some(part)
        })
    }

    /// Drop the held bytes past the first `len` (the newest ones).
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        if len == 0 {
            self.discard(self.len);
            return;
        }
        // Storage bytes kept, from the first chunk's start.
        let mut keep = self.head + len;
        let mut k = 0;
        while keep > self.chunks[k].len() {
            keep -= self.chunks[k].len();
            k += 1;
        }
        for c in self.chunks.drain(k + 1..) {
            self.allocated -= c.capacity();
            spare_chunks::give(c);
        }
        self.chunks[k].truncate(keep);
        self.len = len;
    }

    /// Append `other`'s bytes (as many as fit); how many were taken.
    pub fn append(&mut self, other: RingBuffer) -> usize {
        let mut n = 0;
        for part in other.slices(0, other.len) {
            let took = self.enqueue(part);
            n += took;
            if took < part.len() {
                break;
            }
        }
        n
    }

    /// Every byte held (tests).
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        self.slices(0, self.len).flatten().copied().collect()
    }

    /// As [`slices`](Self::slices), for a range of at most `CHUNK + 1`
    /// bytes (a segment, a DSS mapping): up to two slices, the second empty
    /// unless the range spans two chunks.
    pub fn peek(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let mut parts = self.slices(offset, len);
        let a = parts.next().unwrap_or(&[]);
        let b = parts.next().unwrap_or(&[]);
        debug_assert!(
            parts.next().is_none(),
            "peek of {len} bytes spans three chunks"
        );
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::test_util::Rng;

    fn peek_vec(rb: &RingBuffer, offset: usize, len: usize) -> Vec<u8> {
        rb.slices(offset, len).flatten().copied().collect()
    }

    fn pattern(n: usize, from: usize) -> Vec<u8> {
        (from..from + n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn starts_unallocated_and_grows_by_doubling_then_by_chunks() {
        let mut rb = RingBuffer::new(200_000);
        assert_eq!(rb.allocated(), 0);
        assert!(rb.is_empty());
        assert_eq!(rb.enqueue(&[1, 2, 3]), 3);
        assert_eq!(rb.allocated(), INITIAL_STORAGE);
        let big = pattern(10_000, 0);
        assert_eq!(rb.enqueue(&big), 10_000);
        assert_eq!(rb.allocated(), 16 * 1024);
        let mut expect = vec![1, 2, 3];
        expect.extend_from_slice(&big);
        assert_eq!(peek_vec(&rb, 0, usize::MAX), expect);
        // Past a chunk: more chunks, nothing copied; storage is what is
        // held rounded up to chunks, not the capacity.
        let rest = pattern(200_000, 7);
        assert_eq!(rb.enqueue(&rest), 200_000 - 10_003);
        assert_eq!(rb.allocated(), 4 * CHUNK);
        assert_eq!(rb.free(), 0);
        assert_eq!(rb.enqueue(&[1]), 0);
        expect.extend_from_slice(&rest[..200_000 - 10_003]);
        assert_eq!(peek_vec(&rb, 0, usize::MAX), expect);
    }

    /// Filled in place, piece by piece as a socket read would, the buffer
    /// holds what `enqueue` of the same bytes would: across the single
    /// allocation's doublings and the chunks, within `max` and the capacity,
    /// and a fill that leaves room ends the write.
    #[test]
    fn a_fill_in_place_holds_what_enqueue_would() {
        use bytes::BufMut;
        let mut rng = Rng(7);
        let data = pattern(300_000, 3);
        let mut rb = RingBuffer::new(250_000);
        let mut at = 0;
        // A source that gives at most `burst` bytes a fill, then runs dry.
        while at < data.len() {
            let burst = 1 + rng.below(90_000);
            let mut given = 0;
            let n = rb.enqueue_with(1 + rng.below(200_000), |room| {
                assert!(room.remaining_mut() > 0, "never offered no room");
                let k = room
                    .remaining_mut()
                    .min(burst - given)
                    .min(data.len() - at - given);
                room.put_slice(&data[at + given..at + given + k]);
                given += k;
            });
            assert_eq!(n, given);
            at += n;
            if rb.free() == 0 {
                break;
            }
        }
        assert_eq!(rb.len(), 250_000);
        assert_eq!(rb.to_vec(), data[..250_000]);
        assert_eq!(rb.allocated(), 4 * CHUNK);
        assert_eq!(rb.enqueue_with(10, |_| panic!("no room to offer")), 0);
        // The same bytes queued by copy, after reading some out.
        let mut copy = RingBuffer::new(250_000);
        copy.enqueue(&data[..250_000]);
        rb.discard(70_000);
        copy.discard(70_000);
        let more = pattern(50_000, 9);
        let mut src = &more[..];
        let n = rb.enqueue_with(usize::MAX, |room| {
            let k = room.remaining_mut().min(src.len());
            room.put_slice(&src[..k]);
            src = &src[k..];
        });
        assert_eq!((n, copy.enqueue(&more)), (50_000, 50_000));
        assert_eq!(rb.to_vec(), copy.to_vec());
        assert_eq!(rb.allocated(), copy.allocated());
    }

    /// A fill that reaches past its room (through `Limit::get_mut`) is cut
    /// back to it, and its growth of the storage is accounted; one that
    /// brings nothing leaves an empty buffer holding no storage.
    #[test]
    fn a_fill_stays_within_its_room() {
        let mut rb = RingBuffer::new(1 << 20);
        let n = rb.enqueue_with(100, |room| room.get_mut().extend_from_slice(&[5; 300_000]));
        assert_eq!((n, rb.len()), (100, 100));
        assert_eq!(rb.to_vec(), vec![5; 100]);
        let chunk_storage = rb.chunks[0].capacity();
        assert_eq!(rb.allocated(), chunk_storage);
        let mut empty = RingBuffer::new(1 << 20);
        assert_eq!(empty.enqueue_with(1 << 20, |_| {}), 0);
        assert_eq!(empty.allocated(), 0);
        // A few bytes in the room of a chunk keep only what `enqueue` would
        // have taken, and give it back once read (an idle relay: issue 12).
        let n = empty.enqueue_with(1 << 20, |r| bytes::BufMut::put_slice(r, b"hello"));
        assert_eq!((n, empty.allocated()), (5, INITIAL_STORAGE));
        empty.discard(5);
        assert_eq!(empty.allocated(), 0);
        let burst = pattern(20_000, 1);
        assert_eq!(
            empty.enqueue_with(1 << 20, |r| bytes::BufMut::put_slice(r, &burst)),
            20_000
        );
        assert_eq!(
            empty.allocated(),
            32 * 1024,
            "what enqueue would have taken"
        );
        // A write from a slice says whether it had more than fit; a fill,
        // whether it filled all the room there was.
        let mut small = RingBuffer::new(10);
        assert_eq!((&b"abcdefghijkl"[..]).write_into(&mut small), (10, true));
        let mut fill = FillWith {
            max: 100,
            f: |_: &mut Room<'_>| {},
        };
        assert_eq!(fill.write_into(&mut small), (0, true), "no room at all");
        small.discard(4);
        let mut fill = FillWith {
            max: 100,
            f: |r: &mut Room<'_>| bytes::BufMut::put_slice(r, b"xy"),
        };
        assert_eq!(
            fill.write_into(&mut small),
            (2, false),
            "the source ran dry"
        );
    }

    /// A fill that grows its chunk's storage (a second read of a room
    /// already full: `Vec::chunk_mut` reserves more) neither breaks the
    /// chunks' addressing nor escapes the accounting, however many chunks
    /// follow.
    #[test]
    fn a_fill_that_grows_its_storage_keeps_the_chunks_whole() {
        use bytes::BufMut;
        let data = pattern(400_000, 11);
        let mut rb = RingBuffer::new(1 << 20);
        // Two chunks already: addressing by chunk size from here on.
        let mut at = rb.enqueue(&data[..100_000]);
        while at < data.len() {
            let mut given = at;
            let n = rb.enqueue_with(data.len() - at, |room| {
                let k = room.remaining_mut().min(data.len() - given);
                room.put_slice(&data[given..given + k]);
                given += k;
                // What a second `try_read_buf` would do first: a full
                // `Vec` reserves more.
                let _ = room.chunk_mut();
            });
            assert_eq!(n, given - at);
            at += n;
        }
        assert!(rb.to_vec() == data, "other bytes held");
        for off in (0..data.len() - 1000).step_by(9_999) {
            assert!(
                peek_vec(&rb, off, 1000) == data[off..off + 1000],
                "at {off}"
            );
        }
        let storage: usize = rb.chunks.iter().map(|c| c.capacity()).sum();
        assert_eq!(rb.allocated(), storage);
        assert!(rb.chunks.iter().rev().skip(1).all(|c| c.len() == CHUNK));
        rb.discard(150_000);
        assert!(rb.to_vec() == data[150_000..], "other bytes held");
        let storage: usize = rb.chunks.iter().map(|c| c.capacity()).sum();
        assert_eq!(rb.allocated(), storage);
    }

    #[test]
    #[should_panic(expected = "a fill removed bytes")]
    fn a_fill_that_removes_held_bytes_is_a_bug() {
        let mut rb = RingBuffer::new(1 << 20);
        rb.enqueue(b"held");
        rb.enqueue_with(10, |room| room.get_mut().clear());
    }

    /// A reader given the storage's own slices takes what it wants and no
    /// more: a part taken short ends the read, and only what was taken goes.
    #[test]
    fn a_reader_takes_slices_in_order_and_only_what_it_took_goes() {
        let mut rb = RingBuffer::new(4 * CHUNK);
        let data = pattern(CHUNK + 5000, 3);
        rb.enqueue(&data);
        let mut seen = Vec::new();
        let mut parts = 0;
        let n = rb.read(&mut With {
            max: usize::MAX,
            f: |p: &[u8]| {
                parts += 1;
                seen.extend_from_slice(p);
                p.len()
            },
        });
        assert_eq!((n, parts), (data.len(), 2), "two chunks, two slices");
        assert_eq!(seen, data);
        assert!(rb.is_empty());

        rb.enqueue(&data);
        let mut seen = Vec::new();
        let n = rb.read(&mut With {
            max: 10_000,
            f: |p: &[u8]| {
                let k = p.len().min(7_000);
                seen.extend_from_slice(&p[..k]);
                k
            },
        });
        assert_eq!(n, 7_000, "a short take ends the read");
        assert_eq!(seen, data[..7_000]);
        assert_eq!(rb.len(), data.len() - 7_000);
        let mut rest = vec![0u8; data.len()];
        assert_eq!(rb.dequeue(&mut rest), data.len() - 7_000);
        assert_eq!(rest[..data.len() - 7_000], data[7_000..]);
    }

    /// Storage follows what is held: chunks whose bytes are gone are given
    /// back, and an emptied buffer
    /// keeps one chunk at most.
    #[test]
    fn storage_follows_what_is_held() {
        let mut rb = RingBuffer::new(8 << 20);
        let mut sink = vec![0u8; 4 << 20];
        rb.enqueue(&vec![1u8; 4 << 20]);
        assert_eq!(rb.allocated(), 4 << 20);
        rb.dequeue(&mut sink[..(3 << 20) + 10]);
        assert!(rb.allocated() <= (1 << 20) + CHUNK, "{}", rb.allocated());
        rb.dequeue(&mut sink);
        assert_eq!(rb.allocated(), CHUNK);
        // A steady flow of 100 KB at a time through a buffer that may hold
        // 8 MiB: two or three chunks.
        let chunk = pattern(100_000, 3);
        for _ in 0..100 {
            rb.enqueue(&chunk);
            assert!(rb.allocated() <= 3 * CHUNK, "{}", rb.allocated());
            assert_eq!(rb.dequeue(&mut sink[..100_000]), 100_000);
            assert_eq!(&sink[..100_000], &chunk[..]);
        }
        assert_eq!(rb.release(), CHUNK);
        assert_eq!(rb.allocated(), 0);
    }

    /// A lowered capacity gives a single oversized allocation back, keeping
    /// the held bytes.
    #[test]
    fn lowered_capacity_frees_storage() {
        let mut rb = RingBuffer::new(60_000);
        rb.enqueue(&vec![1u8; 50_000]);
        let mut sink = vec![0u8; 45_000];
        rb.dequeue(&mut sink);
        assert_eq!(rb.allocated(), 60_000);
        rb.set_capacity(8 * 1024);
        assert_eq!(rb.allocated(), 8 * 1024);
        assert_eq!(peek_vec(&rb, 0, usize::MAX), vec![1u8; 5_000]);
        // Never below what is held.
        rb.set_capacity(10);
        assert_eq!(rb.capacity(), 5_000);
        assert_eq!(rb.allocated(), 5_000);
        assert_eq!(peek_vec(&rb, 0, usize::MAX), vec![1u8; 5_000]);
        rb.dequeue(&mut sink);
        rb.set_capacity(10);
        assert_eq!(rb.allocated(), 0);
    }

    /// A range across two chunks comes as two slices; a larger one as more.
    #[test]
    fn ranges_across_chunks() {
        let mut rb = RingBuffer::new(1 << 20);
        let data = pattern(300_000, 0);
        rb.enqueue(&data);
        rb.discard(1000);
        let (a, b) = rb.peek(CHUNK - 1500, 1460);
        assert_eq!((a.len(), b.len()), (500, 960));
        assert_eq!([a, b].concat(), &data[CHUNK - 500..CHUNK + 960]);
        let (a, b) = rb.peek(10, 1460);
        assert_eq!((a, b.len()), (&data[1010..2470], 0));
        assert_eq!(rb.slices(0, usize::MAX).count(), 5);
        assert_eq!(peek_vec(&rb, 100_000, 150_000), &data[101_000..251_000]);
        assert_eq!(peek_vec(&rb, 299_000, 10), &data[300_000..]);
        assert!(peek_vec(&rb, usize::MAX, usize::MAX).is_empty());
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
        assert_eq!(rb.allocated(), 0);
        assert_eq!(rb.enqueue(b"abcdefgh"), 7);
        assert_eq!(peek_vec(&rb, 0, 10), b"abcdefg");
        // Full at the capacity: room is made by moving the bytes, or by
        // growing past it (at most to a chunk).
        assert_eq!(rb.discard(5), 5);
        assert_eq!(rb.enqueue(b"hijklmn"), 5);
        assert_eq!(peek_vec(&rb, 0, 10), b"fghijkl");
    }

    #[test]
    fn model_against_vecdeque() {
        use std::collections::VecDeque;
        for seed in 1..60u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let limit = if seed % 2 == 0 { 20_000 } else { 400_000 };
            let mut capacity = 1 + rng.below(limit);
            let mut rb = RingBuffer::new(capacity);
            let mut model: VecDeque<u8> = VecDeque::new();
            let mut counter = 0u8;
            for _ in 0..600 {
                let max_op = capacity / 2 + 2;
                match rng.below(8) {
                    0 | 6 => {
                        let n = rng.below(max_op);
                        let data: Vec<u8> = (0..n)
                            .map(|_| {
                                counter = counter.wrapping_add(1);
                                counter
                            })
                            .collect();
                        // Appended as bytes, or as another buffer's.
                        let took = if rng.below(2) == 0 {
                            rb.enqueue(&data)
                        } else {
                            let mut other = RingBuffer::new(usize::MAX);
                            other.enqueue(&data);
                            rb.append(other)
                        };
                        assert_eq!(took, n.min(capacity - model.len()));
                        model.extend(&data[..took]);
                    }
                    7 => {
                        // The newest bytes dropped.
                        let keep = rng.below(model.len() + 2);
                        rb.truncate(keep);
                        model.truncate(keep);
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
                        let cap = rng.below(limit) + 1;
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
                        let n = rng.below(model.len().min(CHUNK) + 3);
                        let want: Vec<u8> = model.iter().skip(off).take(n).copied().collect();
                        let (a, b) = rb.peek(off, n);
                        assert_eq!([a, b].concat(), want);
                        let n = rng.below(model.len() + 3);
                        let got = peek_vec(&rb, off, n);
                        let want: Vec<u8> = model.iter().skip(off).take(n).copied().collect();
                        assert_eq!(got, want);
                    }
                }
                assert_eq!(rb.len(), model.len());
                assert_eq!(rb.free(), capacity - model.len());
                let counted = rb.chunks.iter().map(Vec::capacity).sum::<usize>();
                assert_eq!(rb.allocated(), counted);
                // Storage follows what is held: its chunks (a partly read
                // first, a partly written last), or a single allocation.
                let held_chunks = model.len().div_ceil(CHUNK) + 1;
                assert!(
                    rb.allocated() <= held_chunks * CHUNK,
                    "{} allocated for {}",
                    rb.allocated(),
                    model.len()
                );
                if model.is_empty() {
                    assert!(rb.allocated() > FREE_WHEN_EMPTY || rb.allocated() == 0);
                    assert!(rb.allocated() <= CHUNK);
                }
                let all = peek_vec(&rb, 0, usize::MAX);
                assert!(all.iter().eq(model.iter()));
            }
        }
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
