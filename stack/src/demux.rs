//! Demultiplexing: 4-tuples straight to (connection, subflow) (IPv4 and IPv6
//! alike). Listeners are a port map in the endpoint; this table owns the
//! connections.
//!
//! Connections are kept in a `BTreeMap` by handle so that every walk over them is
//! in a deterministic order (a replayed simulation must take the same path); the
//! 4-tuple index is a hash map used only for lookups.

use core::fmt;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// Handle of a connection, stable for its life; never reused within one `Stack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A subflow of a connection, stable for its life and never reused within the
/// connection; `SubflowId::INITIAL` is the one that opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubflowId(pub u32);

impl SubflowId {
    pub const INITIAL: SubflowId = SubflowId(0);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

#[derive(Debug)]
struct Entry<T> {
    /// Every 4-tuple leading here: the initial subflow's first, then joined
    /// subflows' (an MPTCP connection).
    tuples: Vec<(FourTuple, SubflowId)>,
    bound: bool,
    value: T,
}

#[derive(Debug)]
pub struct ConnTable<T> {
    by_id: BTreeMap<ConnId, Entry<T>>,
    by_tuple: HashMap<FourTuple, (ConnId, SubflowId)>,
    /// The last successful lookup: a bulk transfer looks up the same 4-tuple for
    /// every segment, and hashing two socket addresses with SipHash cost ~4 % of
    /// the daemon's CPU. Cleared whenever a binding changes.
    last: Option<(FourTuple, (ConnId, SubflowId))>,
}

impl<T> Default for ConnTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> ConnTable<T> {
    pub fn new() -> Self {
        ConnTable {
            by_id: BTreeMap::new(),
            by_tuple: HashMap::new(),
            last: None,
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Insert under `id`, bound to `tuple` (which must be free) as its
    /// initial subflow.
    pub fn insert(&mut self, id: ConnId, tuple: FourTuple, value: T) {
        self.last = None;
        let sub = SubflowId::INITIAL;
        self.by_tuple.insert(tuple, (id, sub));
        self.by_id.insert(
            id,
            Entry {
                tuples: vec![(tuple, sub)],
                bound: true,
                value,
            },
        );
    }

    /// Let `tuple` lead to subflow `sub` of `id` too (false if it is taken or
    /// `id` is unknown).
    pub fn alias(&mut self, id: ConnId, tuple: FourTuple, sub: SubflowId) -> bool {
        if self.by_tuple.contains_key(&tuple) {
            return false;
        }
        let Some(e) = self.by_id.get_mut(&id) else {
            return false;
        };
        e.tuples.push((tuple, sub));
        if e.bound {
            self.by_tuple.insert(tuple, (id, sub));
        }
        true
    }

    /// `tuple` no longer leads to `id` (a freed subflow).
    pub fn unalias(&mut self, id: ConnId, tuple: &FourTuple) {
        self.last = None;
        let Some(e) = self.by_id.get_mut(&id) else {
            return;
        };
        let before = e.tuples.len();
        e.tuples.retain(|(t, _)| t != tuple);
        if e.bound && e.tuples.len() < before {
            self.by_tuple.remove(tuple);
        }
    }

    pub fn lookup(&mut self, tuple: &FourTuple) -> Option<(ConnId, SubflowId)> {
        if let Some((t, found)) = self.last {
            if t == *tuple {
                return Some(found);
            }
        }
        let found = self.by_tuple.get(tuple).copied()?;
        self.last = Some((*tuple, found));
        Some(found)
    }

    pub fn contains_tuple(&self, tuple: &FourTuple) -> bool {
        self.by_tuple.contains_key(tuple)
    }

    pub fn get(&self, id: ConnId) -> Option<&T> {
        self.by_id.get(&id).map(|e| &e.value)
    }

    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut T> {
        self.by_id.get_mut(&id).map(|e| &mut e.value)
    }

    /// Free the 4-tuple for reuse while keeping the entry (a closed connection the
    /// application has not released yet).
    pub fn unbind_tuple(&mut self, id: ConnId) {
        self.last = None;
        if let Some(e) = self.by_id.get_mut(&id) {
            if e.bound {
                e.bound = false;
                for (t, _) in &e.tuples {
                    self.by_tuple.remove(t);
                }
            }
        }
    }

    pub fn remove(&mut self, id: ConnId) -> Option<T> {
        self.last = None;
        let e = self.by_id.remove(&id)?;
        if e.bound {
            for (t, _) in &e.tuples {
                self.by_tuple.remove(t);
            }
        }
        Some(e.value)
    }

    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &T)> {
        self.by_id.iter().map(|(id, e)| (*id, &e.value))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (ConnId, &mut T)> {
        self.by_id.iter_mut().map(|(id, e)| (*id, &mut e.value))
    }

    /// Handles of every entry, in order (to walk them while changing them).
    pub fn ids(&self) -> Vec<ConnId> {
        self.by_id.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(l: &str, r: &str) -> FourTuple {
        FourTuple {
            local: l.parse().unwrap(),
            remote: r.parse().unwrap(),
        }
    }

    #[test]
    fn aliases_lead_to_the_subflow_and_go_with_it() {
        let mut tab = ConnTable::new();
        let a = t("10.0.0.1:80", "10.0.0.2:4000");
        let b = t("10.0.1.1:80", "10.0.1.2:4001");
        let (one, two) = (SubflowId(1), SubflowId(2));
        tab.insert(ConnId(1), a, "x");
        assert!(tab.alias(ConnId(1), b, one));
        assert!(!tab.alias(ConnId(1), a, two), "a taken tuple is refused");
        assert!(!tab.alias(ConnId(9), t("1.1.1.1:1", "2.2.2.2:2"), one));
        assert_eq!(tab.lookup(&a), Some((ConnId(1), SubflowId::INITIAL)));
        assert_eq!(tab.lookup(&b), Some((ConnId(1), one)));
        tab.unalias(ConnId(1), &b);
        assert_eq!(tab.lookup(&b), None, "a freed subflow's tuple is free");
        assert!(tab.alias(ConnId(1), b, two));
        assert_eq!(tab.lookup(&b), Some((ConnId(1), two)));
        tab.unbind_tuple(ConnId(1));
        assert_eq!(tab.lookup(&b), None);
        assert_eq!(tab.lookup(&a), None);
        let c = t("10.0.2.1:80", "10.0.2.2:4002");
        tab.insert(ConnId(2), c, "y");
        assert!(tab.alias(ConnId(2), b, one));
        assert_eq!(tab.remove(ConnId(2)), Some("y"));
        assert_eq!(tab.lookup(&b), None);
    }

    #[test]
    fn lookup_unbind_remove_v4_and_v6() {
        let mut tab = ConnTable::new();
        let a = t("10.0.0.1:80", "10.0.0.2:4000");
        let b = t("[2001:db8::1]:80", "[2001:db8::2]:4000");
        tab.insert(ConnId(1), a, "a");
        tab.insert(ConnId(2), b, "b");
        let first = |id| Some((ConnId(id), SubflowId::INITIAL));
        assert_eq!(tab.lookup(&a), first(1));
        assert_eq!(tab.lookup(&b), first(2));
        assert_eq!(tab.lookup(&t("10.0.0.1:80", "10.0.0.2:4001")), None);
        // Again (served by the last-lookup cache), and the other one in between.
        assert_eq!(tab.lookup(&a), first(1));
        assert_eq!(tab.lookup(&b), first(2));
        assert_eq!(tab.lookup(&a), first(1));
        tab.unbind_tuple(ConnId(1));
        assert_eq!(tab.lookup(&a), None);
        assert_eq!(tab.get(ConnId(1)), Some(&"a"));
        // The freed tuple can carry a new connection.
        tab.insert(ConnId(3), a, "c");
        assert_eq!(tab.lookup(&a), first(3));
        assert_eq!(tab.remove(ConnId(1)), Some("a"));
        assert_eq!(tab.lookup(&a), first(3));
        assert_eq!(tab.remove(ConnId(3)), Some("c"));
        assert_eq!(tab.lookup(&a), None);
        tab.insert(ConnId(3), a, "c");
        let ids: Vec<_> = tab.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, vec![ConnId(2), ConnId(3)]);
    }
}
