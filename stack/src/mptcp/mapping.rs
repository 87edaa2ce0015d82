//! Data sequence mappings (RFC 8684 §3.3.1): which subflow bytes carry which bytes
//! of the connection's 64-bit data sequence space, on the send and receive sides.
//! (32-bit DSNs and DATA_ACKs are expanded by `wire::mptcp::expand_seq32`.)

use crate::wire::Dsn;
use core::cell::Cell;
use std::collections::VecDeque;

/// One mapping: `len` bytes from subflow-relative sequence number `ssn` carry the
/// data sequence numbers from `dsn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub ssn: u32,
    pub dsn: Dsn,
    pub len: u16,
    /// The DSS checksum of this mapping, when checksums are in use.
    pub checksum: Option<u16>,
    /// The mapping also carries the DATA_FIN (its data-level length on the wire
    /// is one more than `len`, and the checksum covers that length).
    pub data_fin: bool,
}

impl Mapping {
    /// Subflow sequence number just past the mapping.
    pub fn ssn_end(&self) -> u32 {
        self.ssn.wrapping_add(self.len as u32)
    }

    /// Whether `ssn` falls inside the mapping (modulo 2^32).
    pub fn contains(&self, ssn: u32) -> bool {
        ssn.wrapping_sub(self.ssn) < self.len as u32
    }

    /// The DSN of subflow byte `ssn`, if the mapping covers it.
    pub fn dsn_of(&self, ssn: u32) -> Option<Dsn> {
        self.contains(ssn)
            .then(|| self.dsn + ssn.wrapping_sub(self.ssn) as u64)
    }

    /// The DSN just past the mapping.
    pub fn dsn_end(&self) -> Dsn {
        self.dsn + self.len as u64
    }

    /// The same subflow bytes at the same DSNs, the DATA_FIN (and so the
    /// checksum, which covers the data-level length) aside. Linux adds the
    /// DATA_FIN to the last mapping once the application closes, so parts of
    /// one mapping sent after that carry it and earlier parts do not; its
    /// receiver takes them as one mapping. Either checksum verifies the bytes.
    pub fn same_bytes(&self, other: &Mapping) -> bool {
        (self.ssn, self.dsn, self.len) == (other.ssn, other.dsn, other.len)
            && self.data_fin != other.data_fin
    }
}

/// Why a received mapping was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingError {
    /// It overlaps a known mapping but maps the same bytes differently.
    Conflict,
    /// Too many mappings are outstanding.
    Full,
}

/// Mappings of one subflow, in subflow sequence order. On the send side they are
/// created as data is handed to the subflow; on the receive side they arrive in DSS
/// options, possibly before, with or after their data, and possibly repeated.
/// Slots an emptied list keeps (a steady flow maps a few at a time).
const KEEP_WHEN_EMPTY: usize = 64;

#[derive(Debug, Clone, Default)]
pub struct Mappings {
    list: VecDeque<Mapping>,
    max: usize,
    /// Where `find` found the last one (an index into `list`, kept as the
    /// front goes; only a guess, checked before use).
    hint: Cell<usize>,
    /// Every mapping starts at or after the DSN where the one before ends (a
    /// sender's, until it sends data again under a new mapping): the oldest
    /// holds the lowest DSN.
    ascending: bool,
}

impl Mappings {
    pub fn new(max: usize) -> Self {
        Mappings {
            list: VecDeque::new(),
            max,
            hint: Cell::new(0),
            ascending: true,
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Position of `ssn` in sequence order relative to the oldest mapping.
    fn key(&self, ssn: u32) -> u32 {
        ssn.wrapping_sub(self.list.front().map_or(ssn, |f| f.ssn))
    }

    /// Add a mapping. Repeats of a known one are accepted silently; one that maps
    /// an already mapped byte differently is a `Conflict`. Mappings mostly arrive
    /// in order, so only the neighbours of its place are compared.
    pub fn insert(&mut self, m: Mapping) -> Result<(), MappingError> {
        if m.len == 0 {
            return Ok(());
        }
        // A sender repeats its mapping on every segment of it (mptun, and
        // Linux on every segment of a TSO burst): the newest or oldest known
        // one, taken without the search (it was checked when first seen).
        if self.list.back() == Some(&m) || self.list.front() == Some(&m) {
            return Ok(());
        }
        let key = self.key(m.ssn);
        let at = self.list.partition_point(|x| self.key(x.ssn) <= key);
        let lo = at.saturating_sub(2);
        let hi = (at + 2).min(self.list.len());
        for known in self.list.range(lo..hi) {
            let overlap = known.contains(m.ssn) || m.contains(known.ssn);
            if !overlap {
                continue;
            }
            if *known == m || known.same_bytes(&m) {
                return Ok(());
            }
            if known.checksum.is_some() || m.checksum.is_some() {
                // A DSS checksum covers its mapping's whole range: two
                // different checksummed mappings over the same bytes cannot
                // both be right (one was altered on the way), and the
                // bytes would wait for the longer one for ever. As Linux,
                // only an identical repeat is accepted.
                return Err(MappingError::Conflict);
            }
            // Overlapping bytes must agree on their DSN.
            let start = if known.contains(m.ssn) {
                m.ssn
            } else {
                known.ssn
            };
            if known.dsn_of(start) != m.dsn_of(start) {
                return Err(MappingError::Conflict);
            }
        }
        if self.list.len() >= self.max {
            return Err(MappingError::Full);
        }
        if self.list.is_empty() {
            self.ascending = true;
        } else if at != self.list.len() || self.list[at - 1].dsn_end().diff(m.dsn) > 0 {
            self.ascending = false;
        }
        self.list.insert(at, m);
        Ok(())
    }

    /// Add a sender's mapping of the subflow's next bytes: when it starts
    /// where the newest ends, as a sender's mappings follow each other
    /// without overlapping, there is nothing to compare it with; else as
    /// [`insert`](Self::insert).
    pub fn append(&mut self, m: Mapping) -> Result<(), MappingError> {
        let Some(last) = self.list.back() else {
            return self.insert(m);
        };
        if m.len == 0 || m.ssn != last.ssn_end() {
            return self.insert(m);
        }
        if self.list.len() >= self.max {
            return Err(MappingError::Full);
        }
        if last.dsn_end().diff(m.dsn) > 0 {
            self.ascending = false;
        }
        self.list.push_back(m);
        Ok(())
    }

    /// Whether another mapping can be added.
    pub fn is_full(&self) -> bool {
        self.list.len() >= self.max
    }

    /// The newest mapping, to extend it while none of its bytes was sent.
    pub fn last_mut(&mut self) -> Option<&mut Mapping> {
        self.list.back_mut()
    }

    /// The mapping covering subflow byte `ssn`.
    pub fn find(&self, ssn: u32) -> Option<&Mapping> {
        // Per segment, both ways: a receiver reads from its oldest mapping, a
        // sender sends mostly from its newest; both answered without the
        // search, and as it would answer (the last mapping starting at or
        // before `ssn` that covers it).
        let last = self.list.back()?;
        if last.contains(ssn) {
            return Some(last);
        }
        let key = self.key(ssn);
        // The one found last (a segment's options and its payload ask for the
        // same one), then the next (a sender's segments go through its
        // mappings in order), then the oldest (a receiver's).
        let hint = self.hint.get();
        for i in [hint, hint + 1, 0] {
            let Some(m) = self.list.get(i) else {
                continue;
            };
            let next_after = self.list.get(i + 1).is_none_or(|n| self.key(n.ssn) > key);
            if next_after && m.contains(ssn) {
                self.hint.set(i);
                return Some(m);
            }
        }
        let at = self.list.partition_point(|x| self.key(x.ssn) <= key);
        // The candidate starts at or before `ssn`; an overlapping repeat may too.
        self.list
            .range(at.saturating_sub(2)..at)
            .rev()
            .find(|m| m.contains(ssn))
    }

    /// Forget mappings that end at or before `ssn` (data consumed or acknowledged).
    pub fn release_before(&mut self, ssn: u32) {
        while let Some(m) = self.list.front() {
            // `ssn` at or past the end, within half the space.
            if (ssn.wrapping_sub(m.ssn_end()) as i32) >= 0 {
                self.list.pop_front();
                self.hint.set(self.hint.get().saturating_sub(1));
            } else {
                break;
            }
        }
        if self.list.is_empty() && self.list.capacity() > KEEP_WHEN_EMPTY {
            // A burst of many small mappings (a peer's choice) does not
            // leave its storage behind.
            self.list = VecDeque::new();
        }
    }

    /// The lowest DSN mapped at or after subflow byte `ssn` (the mappings
    /// before it released).
    pub fn lowest_dsn_from(&self, ssn: u32) -> Option<Dsn> {
        let at = |m: &Mapping| m.dsn_of(ssn).unwrap_or(m.dsn);
        if self.ascending {
            return self.list.front().map(at);
        }
        self.list.iter().map(at).reduce(|a, b| a.min(b))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Mapping> {
        self.list.iter()
    }

    /// Heap bytes held (a peer decides how many mappings arrive: up to
    /// `max`, counted in the connection's memory).
    pub fn memory(&self) -> usize {
        self.list.capacity() * core::mem::size_of::<Mapping>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ssn: u32, dsn: u64, len: u16) -> Mapping {
        Mapping {
            ssn,
            dsn: Dsn(dsn),
            len,
            checksum: None,
            data_fin: false,
        }
    }

    /// The storage of a burst of mappings is counted while held and given
    /// back once they are all released.
    #[test]
    fn a_burst_of_mappings_is_counted_and_its_storage_given_back() {
        let mut ms = Mappings::new(8192);
        for i in 0..8192u32 {
            ms.insert(m(1 + i, 100 + u64::from(i), 1)).unwrap();
        }
        assert_eq!(ms.insert(m(1 + 8192, 9000, 1)), Err(MappingError::Full));
        assert!(ms.memory() >= 8192 * core::mem::size_of::<Mapping>());
        ms.release_before(1 + 8192);
        assert!(ms.is_empty());
        assert_eq!(ms.memory(), 0);
    }

    #[test]
    fn dsn_of_across_ssn_wrap() {
        let x = m(u32::MAX - 1, 1000, 10);
        assert!(x.contains(u32::MAX));
        assert!(x.contains(3));
        assert!(!x.contains(8));
        assert_eq!(x.dsn_of(0), Some(Dsn(1002)));
        assert_eq!(x.ssn_end(), 8);
    }

    #[test]
    fn insert_find_release() {
        let mut ms = Mappings::new(8);
        ms.insert(m(1, 100, 10)).unwrap();
        ms.insert(m(21, 120, 10)).unwrap();
        ms.insert(m(11, 110, 10)).unwrap();
        ms.insert(m(11, 110, 10)).unwrap(); // repeat
        assert_eq!(ms.len(), 3);
        assert_eq!(ms.find(15).unwrap().dsn_of(15), Some(Dsn(114)));
        let order: Vec<u32> = ms.iter().map(|x| x.ssn).collect();
        assert_eq!(order, vec![1, 11, 21]);
        ms.release_before(11);
        assert_eq!(ms.len(), 2);
        ms.release_before(25);
        assert_eq!(ms.len(), 1);
        assert!(ms.find(5).is_none());
    }

    /// A sender's next mapping goes at the end as `insert` would put it.
    #[test]
    fn append_after_the_newest() {
        let mut a = Mappings::new(3);
        let mut b = Mappings::new(3);
        for x in [m(1, 100, 10), m(11, 90, 10), m(21, 200, 5), m(26, 205, 5)] {
            assert_eq!(a.append(x), b.insert(x));
        }
        assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
        assert_eq!(a.lowest_dsn_from(1), b.lowest_dsn_from(1));
        assert_eq!(a.lowest_dsn_from(1), Some(Dsn(90)), "not ascending");
        // Not where the newest ends: as `insert`.
        let mut c = Mappings::new(8);
        c.append(m(1, 100, 10)).unwrap();
        assert_eq!(c.append(m(5, 500, 4)), Err(MappingError::Conflict));
    }

    #[test]
    fn conflicting_and_full() {
        let mut ms = Mappings::new(2);
        ms.insert(m(1, 100, 10)).unwrap();
        // Same bytes, other DSNs.
        assert_eq!(ms.insert(m(5, 500, 4)), Err(MappingError::Conflict));
        // Consistent overlap is fine.
        ms.insert(m(5, 104, 10)).unwrap();
        assert_eq!(ms.insert(m(40, 140, 1)), Err(MappingError::Full));
        // Empty mappings are ignored.
        ms.insert(m(99, 0, 0)).unwrap();
    }

    #[test]
    fn checksummed_mappings_must_be_identical() {
        let sum = |mut x: Mapping, c, fin| {
            x.checksum = Some(c);
            x.data_fin = fin;
            x
        };
        let mut ms = Mappings::new(8);
        ms.insert(sum(m(1, 100, 10), 7, false)).unwrap();
        // A longer mapping over the same bytes, or other DSNs: one of them
        // was altered.
        let longer = sum(m(1, 100, 12), 9, false);
        assert_eq!(ms.insert(longer), Err(MappingError::Conflict));
        assert_eq!(
            ms.insert(sum(m(1, 101, 10), 7, false)),
            Err(MappingError::Conflict)
        );
        // The same mapping with the DATA_FIN added (Linux, after the
        // application closed): the same bytes, kept once.
        ms.insert(sum(m(1, 100, 10), 8, true)).unwrap();
        assert_eq!(ms.len(), 1);
        assert_eq!(ms.find(1).unwrap().checksum, Some(7));
    }
}
