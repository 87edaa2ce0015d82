//! A TCB's send queue: the bytes themselves (plain TCP, and an MPTCP subflow
//! whose bytes must outlive the data level's copy), or only their count, for
//! an MPTCP subflow that sends straight from the data level's buffer by its
//! mappings (the layer above supplies each segment's payload through
//! `SegmentHooks::payload`, and keeps the bytes until the subflow no longer
//! needs them). Counting spares the copy of every byte from the connection's
//! buffer into the subflow's, as Linux's subflows send the MPTCP socket's
//! pages rather than copies.

use super::buffer::{RingBuffer, Writer};

#[derive(Debug)]
pub enum SendQueue {
    Bytes(RingBuffer),
    /// `len` bytes queued, at most `capacity`; the bytes are elsewhere.
    Mapped {
        len: usize,
        capacity: usize,
    },
}

impl SendQueue {
    pub fn new(capacity: usize) -> Self {
        SendQueue::Bytes(RingBuffer::new(capacity))
    }

    pub fn len(&self) -> usize {
        match self {
            SendQueue::Bytes(b) => b.len(),
            SendQueue::Mapped { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        match self {
            SendQueue::Bytes(b) => b.capacity(),
            SendQueue::Mapped { capacity, .. } => *capacity,
        }
    }

    pub fn free(&self) -> usize {
        self.capacity() - self.len()
    }

    pub fn set_capacity(&mut self, c: usize) {
        match self {
            SendQueue::Bytes(b) => b.set_capacity(c),
            SendQueue::Mapped { len, capacity } => *capacity = c.max(*len),
        }
    }

    pub fn allocated(&self) -> usize {
        match self {
            SendQueue::Bytes(b) => b.allocated(),
            SendQueue::Mapped { .. } => 0,
        }
    }

    pub fn release(&mut self) -> usize {
        match self {
            SendQueue::Bytes(b) => b.release(),
            SendQueue::Mapped { .. } => 0,
        }
    }

    /// Drop up to `n` bytes from the head; the bytes dropped.
    pub fn discard(&mut self, n: usize) -> usize {
        match self {
            SendQueue::Bytes(b) => b.discard(n),
            SendQueue::Mapped { len, .. } => {
                let n = n.min(*len);
                *len -= n;
                n
            }
        }
    }

    /// Append what fits of `w`'s bytes (bytes held only): the bytes taken,
    /// and whether `w` had more than fit.
    pub fn enqueue_from(&mut self, w: &mut impl Writer) -> (usize, bool) {
        match self {
            SendQueue::Bytes(b) => w.write_into(b),
            SendQueue::Mapped { .. } => (0, false),
        }
    }

    /// Count `n` more bytes held elsewhere, as many as fit; the bytes taken.
    pub fn enqueue_mapped(&mut self, n: usize) -> usize {
        match self {
            SendQueue::Bytes(_) => 0,
            SendQueue::Mapped { len, capacity } => {
                let n = n.min(*capacity - *len);
                *len += n;
                n
            }
        }
    }

    /// Bytes `[offset, offset + len)` as up to two slices, if held here.
    pub fn peek(&self, offset: usize, len: usize) -> Option<(&[u8], &[u8])> {
        match self {
            SendQueue::Bytes(b) => Some(b.peek(offset, len)),
            SendQueue::Mapped { .. } => None,
        }
    }

    pub fn is_mapped(&self) -> bool {
        matches!(self, SendQueue::Mapped { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_counts_within_its_capacity() {
        let mut q = SendQueue::Mapped {
            len: 0,
            capacity: 10,
        };
        assert_eq!(
            q.enqueue_from(&mut &b"abc"[..]),
            (0, false),
            "no bytes go into a counted queue"
        );
        assert_eq!(q.enqueue_mapped(8), 8);
        assert_eq!(q.enqueue_mapped(8), 2);
        assert_eq!((q.len(), q.free(), q.allocated()), (10, 0, 0));
        assert_eq!(q.discard(4), 4);
        q.set_capacity(2);
        assert_eq!(q.capacity(), 6, "never below what is queued");
        assert!(q.peek(0, 1).is_none());
    }
}
