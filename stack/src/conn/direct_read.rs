//! Reading as the bytes arrive: an application may give a connection a
//! [`DirectReader`], which is offered the in-order bytes of each segment
//! straight from the packet while nothing waits in the receive buffers, so
//! they are never copied into them (a discard service hashes them, a relay
//! writes them to its socket). This is the stack's counterpart of Linux's
//! old direct copy into a waiting reader ("prequeue"/`ucopy`): the copy a
//! received byte costs on its way through the buffer is the second largest
//! item of a receiving daemon's profile, after the kernel's own copy out of
//! the TUN.
//!
//! Only bytes that would go straight to the front of an empty buffer are
//! offered, so order is kept: whatever the reader declines goes into the
//! buffer as before, and from then on the reader is skipped until the
//! application has read the buffer empty.

use crate::tcp::hooks::{InOrder, TextHooks};
use core::fmt;

/// Takes a connection's bytes in order, as they arrive.
///
/// It runs inside the stack's packet processing: it must be quick, must not
/// touch the stack, and must not panic.
pub trait DirectReader: Send {
    /// Take what it can of `part` (the next bytes of the stream, in order);
    /// returns how many it took. Fewer than offered leaves the rest in the
    /// receive buffer for an ordinary read.
    fn take(&mut self, part: &[u8]) -> usize;
}

impl<F: FnMut(&[u8]) -> usize + Send> DirectReader for F {
    fn take(&mut self, part: &[u8]) -> usize {
        self(part)
    }
}

/// A connection's reader, if it has one.
#[derive(Default)]
pub struct DirectSlot(pub(crate) Option<Box<dyn DirectReader>>);

impl fmt::Debug for DirectSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "DirectSlot(set)"
        } else {
            "DirectSlot(none)"
        })
    }
}

impl DirectSlot {
    /// Offer `data` (the next in-order bytes, the buffers being empty);
    /// returns how many were taken (never more than offered).
    pub(crate) fn offer(&mut self, data: &[u8]) -> usize {
        match &mut self.0 {
            Some(r) if !data.is_empty() => r.take(data).min(data.len()),
            _ => 0,
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

/// The hook a plain TCP connection's TCB offers in-order payload to.
pub(crate) struct PlainDirect<'a>(pub &'a mut DirectSlot);

impl TextHooks for PlainDirect<'_> {
    fn wants_in_order(&self) -> bool {
        self.0.is_set()
    }

    fn take_in_order(&mut self, _: &InOrder, data: &[u8]) -> usize {
        self.0.offer(data)
    }
}
