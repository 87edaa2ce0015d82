//! STUB: the buffers helper implements this.
//! A byte ring whose storage grows on demand (doubling) up to a fixed capacity, so an
//! idle connection costs little and a busy one stops allocating once grown.

#[derive(Debug)]
pub struct RingBuffer {
    storage: Vec<u8>,
    capacity: usize,
    read_at: usize,
    len: usize,
}

impl RingBuffer {
    /// An empty ring that may hold up to `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        RingBuffer {
            storage: Vec::new(),
            capacity,
            read_at: 0,
            len: 0,
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
    /// Append as much of `data` as fits; returns bytes taken.
    pub fn enqueue(&mut self, data: &[u8]) -> usize {
        let _ = (data, &self.storage, self.read_at);
        todo!()
    }
    /// Move up to `buf.len()` bytes from the head into `buf`.
    pub fn dequeue(&mut self, buf: &mut [u8]) -> usize {
        let _ = buf;
        todo!()
    }
    /// Drop up to `n` bytes from the head; returns bytes dropped.
    pub fn discard(&mut self, n: usize) -> usize {
        let _ = n;
        todo!()
    }
    /// The held bytes `[offset, offset + len)` from the head, clamped to what is held,
    /// as up to two slices (the second empty unless the range wraps).
    pub fn peek(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let _ = (offset, len);
        todo!()
    }
    /// Write `data` into the free space starting `offset` bytes past the tail, without
    /// making it readable (out-of-order data). Clamped to the free space; returns bytes
    /// written (from the start of `data`).
    pub fn write_unallocated(&mut self, offset: usize, data: &[u8]) -> usize {
        let _ = (offset, data);
        todo!()
    }
    /// Make `n` bytes previously written past the tail readable. `n <= free()`.
    pub fn commit(&mut self, n: usize) {
        let _ = n;
        todo!()
    }
}
