//! The outgoing half of the seam between a TCP connection and a protocol layered
//! on it (MPTCP): which extra options go on each segment, and how much payload it
//! may carry. The TCB stays ignorant of what the options mean, much as Linux's TCP
//! calls out to MPTCP for `syn_options`, `synack_options` and
//! `established_options`. (The incoming half is the TCB's `Verdict`: the layered
//! protocol acts on a segment's options only if the TCB found it acceptable;
//! besides, [`TextHooks`] lets it take in-order payload straight from the
//! segment.)

use crate::wire::SeqNumber;

/// What kind of segment is being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// An active open's SYN.
    Syn,
    /// A passive (or simultaneous) open's SYN/ACK.
    SynAck,
    /// Any segment in a synchronized state (data, FIN, pure ACK, probe).
    Established,
}

/// An outgoing segment as the hook sees it, before its length is final.
#[derive(Debug, Clone, Copy)]
pub struct OutSegment {
    pub kind: SegmentKind,
    pub seq: SeqNumber,
    /// Subflow-relative sequence number: the first data byte is 1 (RFC 8684 §3.3).
    pub ssn: u32,
    /// Payload bytes the TCB means to send (it may send fewer).
    pub payload: usize,
    pub fin: bool,
    /// Whether this sequence space was sent before.
    pub retransmission: bool,
    /// The receive window it offers, in bytes (the field, scaled).
    pub window: usize,
}

/// Raw option bytes a hook adds: up to four options of any kind, 40 bytes in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionBytes {
    buf: [u8; 40],
    used: usize,
    items: [(u8, u8, u8); 4],
    n: usize,
}

impl Default for OptionBytes {
    fn default() -> Self {
        OptionBytes {
            buf: [0; 40],
            used: 0,
            items: [(0, 0, 0); 4],
            n: 0,
        }
    }
}

impl OptionBytes {
    /// Append an option of `kind` whose bytes after kind and length are written by
    /// `fill` into a slice of `len` bytes. False (and nothing added) if it does not
    /// fit or `fill` fails.
    pub fn push_with(
        &mut self,
        kind: u8,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> bool {
        if self.n == self.items.len() || self.used + len > self.buf.len() {
            return false;
        }
        if !fill(&mut self.buf[self.used..self.used + len]) {
            return false;
        }
        self.items[self.n] = (kind, self.used as u8, len as u8);
        self.used += len;
        self.n += 1;
        true
    }

    pub fn push(&mut self, kind: u8, data: &[u8]) -> bool {
        self.push_with(kind, data.len(), |b| {
            b.copy_from_slice(data);
            true
        })
    }

    /// Bytes these options take on the wire (kind and length bytes included).
    pub fn wire_len(&self) -> usize {
        self.items[..self.n]
            .iter()
            .map(|&(_, _, l)| l as usize + 2)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn clear(&mut self) {
        self.n = 0;
        self.used = 0;
    }

    pub fn iter(&self) -> impl Iterator<Item = (u8, &[u8])> {
        self.items[..self.n]
            .iter()
            .map(|&(k, s, l)| (k, &self.buf[s as usize..s as usize + l as usize]))
    }
}

/// Called by the TCB for every segment it builds.
pub trait SegmentHooks {
    /// Add options for `seg` to `out` (at most `room` wire bytes) and return the
    /// largest payload the segment may carry from `seg.seq` (e.g. up to the end of a
    /// data-sequence mapping); `usize::MAX` for no limit.
    fn segment_options(&mut self, seg: &OutSegment, room: usize, out: &mut OptionBytes) -> usize;

    /// For a TCB whose window the layered protocol bounds: that bound now,
    /// for the segment about to be built (MPTCP: the connection buffer's
    /// free space, which the other subflows' data may have changed since
    /// this subflow last heard); `None` keeps the last one.
    fn window_cap(&mut self) -> Option<usize> {
        None
    }

    /// True while a segment without the layered protocol's options would
    /// mislead the peer and `segment_options` would have none to give (an MPTCP
    /// server that has not yet learned the client's key: Linux's client
    /// falls back to TCP at the first segment without MPTCP options). The
    /// TCB then sends no pure ACK and forgets the one it owed: the peer's
    /// retransmission brings what the layer above waits for.
    fn options_required(&self) -> bool {
        false
    }

    /// Whether a super-packet's segments may all carry the options
    /// `segment_options` gives its first: false while they describe a single
    /// segment (MPTCP's data-level length on MP_CAPABLE, an infinite mapping).
    fn may_burst(&self) -> bool {
        true
    }

    /// For a TCB whose send queue only counts its bytes
    /// ([`SendQueue::Mapped`](crate::tcp::send_queue::SendQueue)): the
    /// `len` bytes from subflow-relative sequence number `ssn`, as up to two
    /// slices (a segment never crosses the end of what `segment_options`
    /// allowed it).
    fn payload(&self, _ssn: u32, _len: usize) -> Option<(&[u8], &[u8])> {
        None
    }
}

/// Plain TCP: nothing to add.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl SegmentHooks for NoHooks {
    fn segment_options(&mut self, _: &OutSegment, _: usize, _: &mut OptionBytes) -> usize {
        usize::MAX
    }
}

/// In-order payload of an acceptable segment, as the TCB is about to place it
/// while its receive buffer is empty: where it starts and what the TCB knows
/// of the receiver's round trip (the layered protocol's buffer auto-tuning
/// takes the same samples it would take after reading the bytes from the
/// TCB).
#[derive(Debug, Clone, Copy)]
pub struct InOrder {
    /// Subflow-relative sequence number of the first byte (RFC 8684 §3.3).
    pub ssn: u32,
    pub rcv_rtt: Option<core::time::Duration>,
    pub min_rtt: Option<core::time::Duration>,
    pub mss: usize,
}

/// Called by the TCB for in-order payload that would go into an empty
/// receive buffer, only to be read out of it at once by the layer above
/// (MPTCP moves a subflow's bytes to the connection level after every
/// segment; an application's `DirectReader` reads them): a layer that takes
/// `data` here spares the copy into the TCB's buffer, its allocation and its
/// release.
pub trait TextHooks {
    /// Whether in-order payload is to be offered at all.
    fn wants_in_order(&self) -> bool {
        true
    }

    /// Take the first bytes of `data`: how many (the TCB counts them as
    /// placed and read, and keeps the rest as usual).
    fn take_in_order(&mut self, at: &InOrder, data: &[u8]) -> usize;
}

impl TextHooks for NoHooks {
    fn wants_in_order(&self) -> bool {
        false
    }

    fn take_in_order(&mut self, _: &InOrder, _: &[u8]) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_bytes_bounded_and_ordered() {
        let mut o = OptionBytes::default();
        assert!(o.push(30, &[1, 2, 3]));
        assert!(o.push_with(30, 20, |b| {
            b.fill(7);
            true
        }));
        assert!(!o.push_with(30, 2, |_| false), "fill failed");
        assert_eq!(o.wire_len(), 5 + 22);
        assert!(!o.push(30, &[0; 20]), "over 40 bytes of data");
        let items: Vec<_> = o.iter().collect();
        assert_eq!(items[0], (30, &[1u8, 2, 3][..]));
        assert_eq!(items[1].1.len(), 20);
        o.clear();
        assert!(o.is_empty());
    }
}
