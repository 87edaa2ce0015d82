//! A read buffer held while bytes flow and let go while the connection idles
//! (issue 12: 10,000 idle connections must not each keep one).
//!
//! Its storage is zeroed once, when it grows, and then read into again and
//! again: a fresh allocation per read was zeroed by every read (a reader
//! must hand initialised memory to the stack's `recv`), which cost the
//! daemon's sink as much as copying the bytes, and a large freed one went
//! back to the kernel to be faulted in again on the next read.

use std::cell::Cell;

thread_local! {
    /// Storage this thread's readers keep through their waits ([`Linger`]).
    static LINGERING: Cell<usize> = const { Cell::new(0) };
}

/// Storage a reader keeps through a wait, counted against its thread's
/// budget for as long as this lives: a few bulk readers keep theirs (no
/// zeroing it again for the next burst), many at once do not all add to the
/// process's peak memory. Connection tasks stay on their engine's thread
/// (single-threaded runtimes), so the count is the thread's.
#[derive(Debug)]
pub struct Linger {
    bytes: usize,
}

impl Linger {
    /// `bytes` more kept through a wait, unless the thread's readers would
    /// then keep more than `budget`.
    pub fn take(bytes: usize, budget: usize) -> Option<Linger> {
        LINGERING.with(|held| {
            let now = held.get() + bytes;
            (now <= budget).then(|| {
                held.set(now);
                Linger { bytes }
            })
        })
    }
}

impl Drop for Linger {
    fn drop(&mut self) {
        LINGERING.with(|held| held.set(held.get().saturating_sub(self.bytes)));
    }
}

/// The bytes of the last read, in storage kept for the next.
#[derive(Debug, Default)]
pub struct Chunk {
    storage: Vec<u8>,
    len: usize,
    /// Storage allocated (grown, or set) so far: what reusing it saves.
    allocations: u32,
}

impl Chunk {
    pub fn new() -> Self {
        Chunk::default()
    }

    /// What the last read brought (empty at the end of the stream).
    pub fn bytes(&self) -> &[u8] {
        &self.storage[..self.len]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// How much storage it holds.
    pub fn storage_len(&self) -> usize {
        self.storage.len()
    }

    /// Whether it holds storage (it is let go while its reader waits).
    pub fn holds_storage(&self) -> bool {
        !self.storage.is_empty()
    }

    /// `want` bytes of storage to read into; the bytes held are forgotten.
    pub fn room(&mut self, want: usize) -> &mut [u8] {
        self.len = 0;
        if self.storage.len() < want {
            self.storage.resize(want, 0);
            self.allocations = self.allocations.wrapping_add(1);
        }
        &mut self.storage[..want]
    }

    /// The read into [`room`](Self::room) brought `n` bytes.
    pub fn filled(&mut self, n: usize) {
        self.len = n.min(self.storage.len());
    }

    /// These bytes (a read into a small buffer of the caller's), in storage
    /// of their own size.
    pub fn set(&mut self, bytes: &[u8]) {
        self.storage = bytes.to_vec();
        self.len = bytes.len();
        self.allocations = self.allocations.wrapping_add(1);
    }

    /// How many times storage was allocated (grown or set).
    pub fn allocations(&self) -> u32 {
        self.allocations
    }

    /// Nothing held, no storage.
    pub fn let_go(&mut self) {
        self.storage = Vec::new();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lingering_storage_is_bounded_per_thread() {
        let a = Linger::take(300, 512).expect("within the budget");
        assert!(
            Linger::take(300, 512).is_none(),
            "600 would pass the budget"
        );
        let b = Linger::take(200, 512).expect("500 still fits");
        drop(a);
        let c = Linger::take(300, 512).expect("room again once one is let go");
        drop((b, c));
        assert!(Linger::take(512, 512).is_some());
        // Another thread has its own budget.
        let _held = Linger::take(512, 512).unwrap();
        std::thread::spawn(|| assert!(Linger::take(512, 512).is_some()))
            .join()
            .unwrap();
    }

    #[test]
    fn storage_is_kept_and_grown_and_let_go() {
        let mut c = Chunk::new();
        assert!(c.is_empty() && !c.holds_storage());
        c.room(8).copy_from_slice(b"abcdefgh");
        c.filled(3);
        assert_eq!(c.bytes(), b"abc");
        // A smaller read into the same storage; then a larger one grows it.
        c.room(2)[..2].copy_from_slice(b"xy");
        c.filled(2);
        assert_eq!(c.bytes(), b"xy");
        assert_eq!(c.room(16).len(), 16);
        assert!(c.is_empty(), "room forgets the bytes held");
        c.filled(99);
        assert_eq!(c.len(), 16, "never past the storage");
        c.set(b"hi");
        assert_eq!(c.bytes(), b"hi");
        c.let_go();
        assert!(c.is_empty() && !c.holds_storage());
    }
}
