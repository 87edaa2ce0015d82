//! Receiving straight into the data level: a subflow's in-order bytes that
//! its TCB would put into an empty receive buffer, only for `recv.rs` to move
//! them to the connection buffer right after, go there from the segment
//! instead (one copy, no allocation and release of the subflow's buffer per
//! segment). Only the plain case is taken here — established, no DSS
//! checksum, no DATA_FIN, a mapping that covers all of the bytes and places
//! them exactly at `rcv_nxt` with room for them, the segment carrying nothing
//! but a DSS (whose mapping, if any, is that same one) — so that the outcome
//! is the one `pull` would reach; anything else is left to the TCB's buffer
//! and `pull`, as before.

use super::level::{DataLevel, Phase};
use super::mapping::Mapping;
use super::subflow::SubflowMp;
use crate::conn::direct_read::DirectSlot;
use crate::tcp::hooks::{InOrder, TextHooks};
use crate::time::Instant;
use crate::wire::{Dsn, MptcpOptions};

/// The hook a subflow's TCB offers in-order payload to.
pub struct DirectRx<'a> {
    pub level: &'a mut DataLevel,
    pub sf: &'a mut SubflowMp,
    /// The segment's MPTCP options (decoded once by the stack).
    pub opts: &'a MptcpOptions,
    pub now: Instant,
    /// As `pull`'s (see `DataLevel::path_idle`).
    pub idle_path: bool,
    /// The application's reader, offered the bytes first while the data
    /// level holds none (`conn/direct_read.rs`).
    pub app: &'a mut DirectSlot,
}

impl TextHooks for DirectRx<'_> {
    fn wants_in_order(&self) -> bool {
        let l = &*self.level;
        l.phase == Phase::Established
            && !l.checksum
            && !l.rx_fallback
            && !l.fallback_deferred
            && l.remote_key.is_some()
            && l.peer_data_fin.is_none()
            && !self.sf.closed
            && self.sf.join_established()
            && only_dss(self.opts)
    }

    fn take_in_order(&mut self, at: &InOrder, data: &[u8]) -> usize {
        let Some(m) = self.mapping_for(at.ssn, data.len()) else {
            return 0;
        };
        let l = &mut *self.level;
        if m.dsn_of(at.ssn) != Some(l.rcv_nxt) || data.len() > l.rcv_buf.free() {
            return 0;
        }
        // What `pull` does first, with the samples it would take from the TCB.
        l.rcv_space.idle_path = self.idle_path;
        l.autotune_recv_with(self.now, at.rcv_rtt, at.min_rtt, at.mss);
        // Done for this segment: `pull` need not again.
        l.rx_tuned = true;
        if data.len() > l.rcv_buf.free() {
            // Tuned down meanwhile: the TCB keeps the bytes, `pull` takes
            // what fits.
            return 0;
        }
        // The application's reader first, while nothing waits before these
        // bytes; what it takes is read at once, as `recv` counts it.
        let taken = if l.rcv_buf.is_empty() && l.assembler.is_empty() {
            self.app.offer(data)
        } else {
            0
        };
        l.bytes_read += taken as u64;
        let rest = &data[taken..];
        let mut ready = taken;
        if !rest.is_empty() {
            ready += l.rcv_buf.enqueue(rest) + l.assembler.advance_into(rest.len(), &mut l.rcv_buf);
            l.readable = true;
        }
        l.rcv_nxt += ready;
        self.sf.direct_map = self.opts.dss.and_then(|d| d.mapping);
        self.sf.delivered_at = Some(self.now);
        self.sf
            .rx_map
            .release_before(at.ssn.wrapping_add(data.len() as u32));
        data.len()
    }
}

impl DataLevel {
    /// The segment's processing is over (a refused one's `pull` never ran).
    pub fn segment_done(&mut self) {
        self.rx_tuned = false;
    }
}

impl DirectRx<'_> {
    /// The mapping that covers all of `len` bytes from `ssn`: one already
    /// known, or the segment's own (recorded here, as `on_dss` would), which
    /// must then agree with what is known.
    fn mapping_for(&mut self, ssn: u32, len: usize) -> Option<Mapping> {
        let dss = self.opts.dss.as_ref()?;
        if dss.data_fin {
            return None;
        }
        let own = match dss.mapping {
            Some(w) if !w.dsn_64bit || w.checksum.is_some() || w.data_len == 0 || w.ssn == 0 => {
                return None
            }
            Some(w) => Some(Mapping {
                ssn: w.ssn,
                dsn: Dsn(w.dsn),
                len: w.data_len,
                checksum: None,
                data_fin: false,
            }),
            None => None,
        };
        let covers = |m: &Mapping| m.ssn_end().wrapping_sub(ssn) as usize >= len && m.contains(ssn);
        match (self.sf.rx_map.find(ssn).copied(), own) {
            // The segment repeats the mapping known (or carries none).
            (Some(known), None) => covers(&known).then_some(known),
            (Some(known), Some(w)) => (known == w && covers(&known)).then_some(known),
            // The first segment of a mapping: recorded as `on_dss` would
            // (which then finds it a repeat, or consumed).
            (None, Some(w)) if w.ssn == ssn && covers(&w) => {
                self.sf.rx_map.insert(w).ok()?;
                self.sf.mapping_seen = true;
                self.sf.mapped_rx = true;
                Some(w)
            }
            _ => None,
        }
    }
}

/// The segment carries a DSS and no other MPTCP option (none malformed).
fn only_dss(o: &MptcpOptions) -> bool {
    o.dss.is_some()
        && o.malformed == 0
        && o.capable.is_none()
        && o.join.is_none()
        && o.add_addr.is_none()
        && o.remove_addr.is_none()
        && o.prio.is_none()
        && o.fail.is_none()
        && o.fastclose.is_none()
        && o.tcprst.is_none()
}
