//! Buffer storage given back, kept for the next buffer that needs some.
//!
//! A bulk transfer takes a 64 KiB chunk and gives one back for every 64 KiB
//! that passes through a buffer. Handed to the allocator, a freed chunk at
//! the top of the heap is returned to the kernel (glibc trims a free top
//! larger than 128 KiB) and the next one is faulted in again page by page:
//! measured on the daemon, 100,000-200,000 page faults per GiB received and
//! a quarter of its CPU time. Chunks kept here stay mapped.
//!
//! A receive buffer whose reader keeps up holds a segment or two at a time
//! in one small allocation (2 or 4 KiB), given back each time it empties so
//! that an idle connection holds nothing. Those sizes are past glibc's
//! per-thread cache (1 KiB), so each segment paid a full `malloc` and `free`
//! (some 350 instructions, 6 % of the receiver's work per segment): small
//! power-of-two allocations are kept here as well, per size.
//!
//! Per thread (every engine shard runs on its own), and bounded: at most
//! `MAX_SPARE` chunks, 4 MiB, and `SMALL_BYTES` per small size (640 KiB in
//! all), outside every connection's accounting. A sender frees its chunks in
//! bursts as ACKs come: 16 left a sending daemon 8,000-14,000 page faults
//! per GiB, 64 about 2,000. The chunks of all threads together are bounded
//! the same (`MAX_SPARE_ALL`): one busy thread may keep them all, but a
//! daemon with a shard per core no longer keeps 4 MiB per core.

use super::buffer::CHUNK;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Chunks kept per thread (4 MiB).
const MAX_SPARE: usize = 64;

/// Chunks kept by all threads together (4 MiB): one busy thread may keep
/// them all.
const MAX_SPARE_ALL: usize = 64;

/// Chunks kept now, by all threads.
static SPARE_ALL: AtomicUsize = AtomicUsize::new(0);

/// Smallest size kept; sizes are powers of two up to half a chunk.
const SMALL_MIN: usize = 64;
const SMALL_CLASSES: usize = (CHUNK / 2 / SMALL_MIN).trailing_zeros() as usize + 1;

/// Bytes kept per small size (32 blocks of 2 KiB, 2 of 32 KiB).
const SMALL_BYTES: usize = 64 * 1024;

#[derive(Default)]
struct Spare {
    chunks: Vec<Vec<u8>>,
    small: [Vec<Vec<u8>>; SMALL_CLASSES],
}

impl Drop for Spare {
    /// A thread that ends frees its chunks: others may keep as many.
    fn drop(&mut self) {
        SPARE_ALL.fetch_sub(self.chunks.len(), Ordering::Relaxed);
    }
}

thread_local! {
    static SPARE: RefCell<Spare> = RefCell::new(Spare::default());
}

/// The class of a small size, if it is one kept.
fn class(size: usize) -> Option<usize> {
    (size.is_power_of_two() && (SMALL_MIN..CHUNK).contains(&size))
        .then(|| (size / SMALL_MIN).trailing_zeros() as usize)
}

/// An empty allocation of `size` bytes' capacity: a spare one if there is
/// one of that size.
pub(super) fn take(size: usize) -> Vec<u8> {
    let spare = SPARE.with_borrow_mut(|s| match class(size) {
        _ if size == CHUNK => s.chunks.pop().inspect(|_| {
            SPARE_ALL.fetch_sub(1, Ordering::Relaxed);
        }),
        Some(k) => s.small[k].pop(),
        None => None,
    });
    spare.unwrap_or_else(|| Vec::with_capacity(size))
}

/// `block`, whose bytes are done with, kept if it is a whole chunk or a
/// small size and there is room; else freed.
pub(super) fn give(mut block: Vec<u8>) {
    let size = block.capacity();
    let k = class(size);
    if size != CHUNK && k.is_none() {
        return;
    }
    block.clear();
    SPARE.with_borrow_mut(|s| {
        match k {
            Some(k) => {
                if s.small[k].len() < SMALL_BYTES / size {
                    s.small[k].push(block);
                }
            }
            None => {
                // Reserved first: threads freeing at once cannot overshoot.
                let all = SPARE_ALL.fetch_add(1, Ordering::Relaxed);
                if s.chunks.len() < MAX_SPARE && all < MAX_SPARE_ALL {
                    s.chunks.push(block);
                } else {
                    SPARE_ALL.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    });
}

/// Spare chunks kept by this thread (for tests).
#[cfg(test)]
pub(super) fn count() -> usize {
    SPARE.with_borrow(|s| s.chunks.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_whole_chunks_up_to_the_bound() {
        let before = count();
        give(Vec::with_capacity(CHUNK / 2 + 1));
        assert_eq!(count(), before, "an odd size is freed");
        for _ in 0..2 * MAX_SPARE {
            give(vec![7u8; CHUNK]);
        }
        // Other tests' threads may keep some, or all, of the shared bound.
        let kept = count();
        assert!(kept <= MAX_SPARE, "{kept} kept");
        let c = take(CHUNK);
        assert!(c.is_empty() && c.capacity() == CHUNK);
        assert_eq!(count(), kept.saturating_sub(1));
        while count() > 0 {
            take(CHUNK);
        }
        assert_eq!(
            take(CHUNK).capacity(),
            CHUNK,
            "a new one when none is spare"
        );
    }

    #[test]
    fn keeps_small_powers_of_two_per_size_up_to_their_bound() {
        let small = |k: usize| SPARE.with_borrow(|s| s.small[k].len());
        let k = class(2048).unwrap();
        while small(k) > 0 {
            take(2048);
        }
        let b = vec![1u8; 2048];
        let ptr = b.as_ptr();
        give(b);
        assert_eq!(small(k), 1);
        let again = take(2048);
        assert_eq!(
            (again.as_ptr(), again.len()),
            (ptr, 0),
            "the same one, empty"
        );
        for _ in 0..100 {
            give(Vec::with_capacity(2048));
        }
        assert_eq!(small(k), SMALL_BYTES / 2048);
        give(Vec::with_capacity(3000));
        give(Vec::with_capacity(32));
        assert_eq!(class(3000), None);
        assert_eq!(class(32), None);
        assert_eq!(class(CHUNK / 2), Some(SMALL_CLASSES - 1));
    }

    #[test]
    fn all_threads_together_keep_at_most_the_shared_bound() {
        let n = 4;
        let all_gave = std::sync::Arc::new(std::sync::Barrier::new(n));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let all_gave = all_gave.clone();
                std::thread::spawn(move || {
                    for _ in 0..MAX_SPARE {
                        give(vec![0u8; CHUNK]);
                    }
                    // Counted while every thread still holds its own.
                    all_gave.wait();
                    let kept = count();
                    all_gave.wait();
                    kept
                })
            })
            .collect();
        let kept: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(kept <= MAX_SPARE_ALL, "{kept} chunks kept by {n} threads");
    }
}
