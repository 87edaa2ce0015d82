//! The connection's side of address management (RFC 8684 §3.4): the addresses
//! we announce (ADD_ADDR with HMAC, repeated until echoed, a bounded number of
//! times), the ones the peer announced (HMAC checked, echoed, returned for the
//! stack's path manager to open joins to), and REMOVE_ADDR both ways. The stack
//! decides *which* addresses; this keeps the per-connection state, and
//! `options.rs` puts the options on pure ACKs.

use super::crypto;
use super::level::DataLevel;
use crate::time::Instant;
use crate::wire::mptcp::{AddAddr, MptcpVersion, RemoveAddr};
use core::time::Duration;
use std::net::IpAddr;

/// ADD_ADDR transmissions before an unechoed announcement is given up (Linux
/// retransmits a few times too).
const MAX_ADD_ADDR_TRIES: u32 = 4;
/// First ADD_ADDR repeat interval; doubled on every repeat.
const ADD_ADDR_RETRY: Duration = Duration::from_secs(1);
/// Peer addresses remembered per connection.
const MAX_REMOTE_ADDRS: usize = 8;

/// One address we announced on this connection.
#[derive(Debug, Clone, Copy)]
pub struct Announce {
    pub id: u8,
    pub addr: IpAddr,
    pub echoed: bool,
    pub(super) send: bool,
    pub(super) tries: u32,
    pub(super) timer: Option<Instant>,
}

/// One address id we withdrew.
#[derive(Debug, Clone, Copy)]
pub struct Withdrawal {
    pub id: u8,
    pub(super) send: bool,
    pub(super) tries: u32,
    pub(super) timer: Option<Instant>,
}

/// REMOVE_ADDR transmissions per withdrawn id.
const REMOVE_ADDR_TRIES: u32 = 3;

/// One address the peer announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr {
    pub id: u8,
    pub addr: IpAddr,
    pub port: Option<u16>,
}

#[derive(Debug, Default)]
pub struct PmState {
    pub(super) announced: Vec<Announce>,
    pub(super) remote: Vec<RemoteAddr>,
    /// ADD_ADDR echoes to send.
    pub(super) echoes: Vec<RemoteAddr>,
    /// Address ids withdrawn (REMOVE_ADDR), sent a few times: nothing
    /// acknowledges them.
    pub(super) removes: Vec<Withdrawal>,
    /// Announcements acted on by opening joins (`add_addr_accepted`).
    pub(super) accepted: usize,
}

impl DataLevel {
    /// Announce our address `addr` (address id `id`) to the peer; whether an
    /// ADD_ADDR now waits for a pure ACK.
    pub fn announce(&mut self, id: u8, addr: IpAddr) -> bool {
        if self.is_fallback() || self.pm.announced.iter().any(|a| a.id == id) {
            return false;
        }
        self.pm.announced.push(Announce {
            id,
            addr,
            echoed: false,
            send: true,
            tries: 0,
            timer: None,
        });
        true
    }

    /// Withdraw our address id `id` (the connection resets its subflows on
    /// it); whether a REMOVE_ADDR now waits for a pure ACK.
    pub fn withdraw(&mut self, id: u8) -> bool {
        self.pm.announced.retain(|a| a.id != id);
        if self.pm.removes.iter().any(|r| r.id == id) || self.is_fallback() {
            return false;
        }
        self.pm.removes.push(Withdrawal {
            id,
            send: true,
            tries: 0,
            timer: None,
        });
        true
    }

    pub fn announced(&self) -> &[Announce] {
        &self.pm.announced
    }

    pub fn remote_addrs(&self) -> &[RemoteAddr] {
        &self.pm.remote
    }

    /// Announcements of the peer's acted on so far.
    pub fn addr_accepted(&self) -> usize {
        self.pm.accepted
    }

    /// Count an announcement acted on; false when the limit is reached.
    pub fn accept_addr(&mut self, limit: usize) -> bool {
        if self.pm.accepted >= limit {
            return false;
        }
        self.pm.accepted += 1;
        true
    }

    /// An ADD_ADDR from the peer (on an acceptable segment): a new address
    /// for the path manager, if it checks out. An echo waits for a pure ACK
    /// (`echo_pending`).
    pub(super) fn on_add_addr(&mut self, a: &AddAddr) -> Option<RemoteAddr> {
        let (echo, addr_id, addr, port, hmac) = match *a {
            AddAddr::V1 {
                echo,
                addr_id,
                addr,
                port,
                hmac,
            } => (echo, addr_id, addr, port, hmac),
            // v0 has neither echo nor HMAC: taken only when asked for.
            AddAddr::V0 {
                addr_id,
                addr,
                port,
            } if self.version == MptcpVersion::V0 => {
                if !self.accept_v0_add_addr {
                    self.stats.add_addr_ignored += 1;
                    return None;
                }
                self.stats.add_addr_rx += 1;
                let r = RemoteAddr {
                    id: addr_id,
                    addr,
                    port,
                };
                return self.remember_remote(r);
            }
            AddAddr::V0 { .. } => return None,
        };
        if self.version == MptcpVersion::V0 {
            return None;
        }
        if echo {
            if let Some(x) = self
                .pm
                .announced
                .iter_mut()
                .find(|x| x.id == addr_id && x.addr == addr)
            {
                x.echoed = true;
                x.timer = None;
                self.stats.add_addr_echo_rx += 1;
            }
            return None;
        }
        let remote_key = self.remote_key?;
        let expect =
            crypto::add_addr_hmac(self.alg(), remote_key, self.local_key, addr_id, addr, port);
        if hmac != Some(expect) {
            // Linux ignores an ADD_ADDR whose HMAC is wrong.
            self.stats.add_addr_hmac_failures += 1;
            return None;
        }
        self.stats.add_addr_rx += 1;
        let r = RemoteAddr {
            id: addr_id,
            addr,
            port,
        };
        if self.pm.echoes.len() < MAX_REMOTE_ADDRS && !self.pm.echoes.contains(&r) {
            self.pm.echoes.push(r);
        }
        self.remember_remote(r)
    }

    /// A peer address, new to this connection, within the bound.
    fn remember_remote(&mut self, r: RemoteAddr) -> Option<RemoteAddr> {
        if self.pm.remote.contains(&r) || self.pm.remote.len() >= MAX_REMOTE_ADDRS {
            return None;
        }
        self.pm.remote.push(r);
        Some(r)
    }

    /// An ADD_ADDR echo waits to go out.
    pub(super) fn echo_pending(&self) -> bool {
        !self.pm.echoes.is_empty()
    }

    /// Repeat unechoed announcements, with backoff, a bounded number of times;
    /// whether an address option now waits for a pure ACK.
    pub(super) fn pm_timers(&mut self, now: Instant) -> bool {
        let mut due = false;
        for r in self
            .pm
            .removes
            .iter_mut()
            .filter(|r| r.tries < REMOVE_ADDR_TRIES)
        {
            match r.timer {
                Some(t) if t <= now => {
                    r.send = true;
                    r.timer = None;
                    due = true;
                }
                None if !r.send => r.timer = Some(now + ADD_ADDR_RETRY),
                _ => {}
            }
        }
        for a in self.pm.announced.iter_mut().filter(|a| !a.echoed) {
            match a.timer {
                Some(t) if t <= now && a.tries < MAX_ADD_ADDR_TRIES => {
                    a.send = true;
                    a.timer = None;
                    due = true;
                }
                Some(t) if t <= now => a.timer = None,
                None if !a.send && a.tries < MAX_ADD_ADDR_TRIES => {
                    a.timer = Some(now + ADD_ADDR_RETRY * (1 << a.tries.saturating_sub(1).min(6)));
                }
                _ => {}
            }
        }
        due
    }

    /// No address option waits or may be repeated: `pm_timers` has nothing
    /// to do, now or later.
    pub(super) fn pm_quiet(&self) -> bool {
        let pm = &self.pm;
        pm.echoes.is_empty()
            && pm.removes.iter().all(|r| r.tries >= REMOVE_ADDR_TRIES)
            && pm
                .announced
                .iter()
                .all(|a| a.echoed || (a.timer.is_none() && a.tries >= MAX_ADD_ADDR_TRIES))
    }

    pub(super) fn pm_poll_at(&self) -> Option<Instant> {
        let removes = self.pm.removes.iter().filter_map(|r| r.timer);
        self.pm
            .announced
            .iter()
            .filter_map(|a| a.timer)
            .chain(removes)
            .min()
    }

    /// The address option for the next pure ACK, if one waits (taken): an echo,
    /// an announcement, or a REMOVE_ADDR.
    #[inline]
    pub(super) fn take_addr_option(&mut self) -> Option<AddrOption> {
        let pm = &self.pm;
        if pm.echoes.is_empty()
            && !pm.announced.iter().any(|a| a.send)
            && !pm.removes.iter().any(|r| r.send)
        {
            // Asked for every segment; nearly always nothing waits (checked
            // inline, without a call).
            return None;
        }
        self.take_waiting_addr_option()
    }

    fn take_waiting_addr_option(&mut self) -> Option<AddrOption> {
        if let Some(r) = self.pm.echoes.pop() {
            return Some(AddrOption::Add(AddAddr::V1 {
                echo: true,
                addr_id: r.id,
                addr: r.addr,
                port: r.port,
                hmac: None,
            }));
        }
        if let Some(remote_key) = self.remote_key {
            let local_key = self.local_key;
            let alg = self.alg();
            let v0 = self.version == MptcpVersion::V0;
            if let Some(a) = self.pm.announced.iter_mut().find(|a| a.send) {
                a.send = false;
                a.tries += 1;
                self.stats.add_addr_tx += 1;
                if v0 {
                    // v0: no HMAC and no echo (RFC 6824 §3.4.1); sent once.
                    a.tries = MAX_ADD_ADDR_TRIES;
                    return Some(AddrOption::Add(AddAddr::V0 {
                        addr_id: a.id,
                        addr: a.addr,
                        port: None,
                    }));
                }
                let hmac = crypto::add_addr_hmac(alg, local_key, remote_key, a.id, a.addr, None);
                return Some(AddrOption::Add(AddAddr::V1 {
                    echo: false,
                    addr_id: a.id,
                    addr: a.addr,
                    port: None,
                    hmac: Some(hmac),
                }));
            }
        }
        let mut ids = Vec::new();
        for r in self.pm.removes.iter_mut().filter(|r| r.send).take(8) {
            ids.push(r.id);
            r.send = false;
            r.tries += 1;
        }
        let rm = RemoveAddr::new(&ids)?;
        self.stats.rm_addr_tx += 1;
        Some(AddrOption::Remove(rm))
    }

    /// Put an option taken by `take_addr_option` back (it did not fit).
    pub(super) fn untake_addr_option(&mut self, o: AddrOption) {
        match o {
            AddrOption::Add(AddAddr::V1 {
                echo: true,
                addr_id,
                addr,
                port,
                ..
            }) => self.pm.echoes.push(RemoteAddr {
                id: addr_id,
                addr,
                port,
            }),
            AddrOption::Add(AddAddr::V1 { addr_id, .. }) => {
                if let Some(a) = self.pm.announced.iter_mut().find(|a| a.id == addr_id) {
                    a.send = true;
                    a.tries -= 1;
                    self.stats.add_addr_tx -= 1;
                }
            }
            AddrOption::Add(AddAddr::V0 { .. }) => {}
            AddrOption::Remove(r) => {
                self.stats.rm_addr_tx -= 1;
                for w in self
                    .pm
                    .removes
                    .iter_mut()
                    .filter(|w| r.as_slice().contains(&w.id))
                {
                    w.send = true;
                    w.tries -= 1;
                }
            }
        }
        // No ACK is asked for: a segment with no room for it would be asked
        // for again and again. It goes on the next pure ACK (or the repeat).
    }
}

/// An address option waiting for a pure ACK.
#[derive(Debug, Clone, Copy)]
pub enum AddrOption {
    Add(AddAddr),
    Remove(RemoveAddr),
}
