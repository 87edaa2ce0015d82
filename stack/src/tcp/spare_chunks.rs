//! Buffer chunks given back, kept for the next buffer that needs one.
//!
//! A bulk transfer takes a 64 KiB chunk and gives one back for every 64 KiB
//! that passes through a buffer. Handed to the allocator, a freed chunk at
//! the top of the heap is returned to the kernel (glibc trims a free top
//! larger than 128 KiB) and the next one is faulted in again page by page:
//! measured on the daemon, 100,000-200,000 page faults per GiB received and
//! a quarter of its CPU time. Chunks kept here stay mapped.
//!
//! Per thread (every engine shard runs on its own), and bounded: at most
//! `MAX_SPARE` chunks, 4 MiB, outside every connection's accounting. A
//! sender frees its chunks in bursts as ACKs come: 16 left a sending
//! daemon 8,000-14,000 page faults per GiB, 64 about 2,000.

use super::buffer::CHUNK;
use std::cell::RefCell;

/// Chunks kept per thread (4 MiB).
const MAX_SPARE: usize = 64;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty chunk of `CHUNK` bytes' capacity: a spare one if there is one.
pub(super) fn take() -> Vec<u8> {
    SPARE
        .with_borrow_mut(|s| s.pop())
        .unwrap_or_else(|| Vec::with_capacity(CHUNK))
}

/// `chunk`, whose bytes are done with, kept if it is a whole chunk and
/// there is room; else freed.
pub(super) fn give(mut chunk: Vec<u8>) {
    if chunk.capacity() != CHUNK {
        return;
    }
    chunk.clear();
    SPARE.with_borrow_mut(|s| {
        if s.len() < MAX_SPARE {
            s.push(chunk);
        }
    });
}

/// Spare chunks kept by this thread (for tests).
#[cfg(test)]
pub(super) fn count() -> usize {
    SPARE.with_borrow(|s| s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_whole_chunks_up_to_the_bound() {
        let before = count();
        give(Vec::with_capacity(CHUNK / 2));
        assert_eq!(count(), before, "a partial allocation is freed");
        for _ in 0..2 * MAX_SPARE {
            give(vec![7u8; CHUNK]);
        }
        assert_eq!(count(), MAX_SPARE);
        let c = take();
        assert!(c.is_empty() && c.capacity() == CHUNK);
        assert_eq!(count(), MAX_SPARE - 1);
        while count() > 0 {
            take();
        }
        assert_eq!(take().capacity(), CHUNK, "a new one when none is spare");
    }
}
