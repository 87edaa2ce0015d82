//! SYN cookies at the listener (see `tcp::syncookie`): a SYN answered with a
//! cookie leaves no state, only a SYN/ACK in a bounded queue; a third ACK
//! that carries a valid cookie becomes a connection, as if the SYN had been
//! kept. The SYN/ACK is written by the very code that writes a stateful one
//! (a connection built for the purpose and dropped), so the two never differ.
//!
//! MPTCP (as Linux does, `net/mptcp/syncookies.c`): our key derives from the
//! cookie secret and the ISN, and the third ACK's MP_CAPABLE carries both keys,
//! ours checked against the derivation. MP_JOIN SYNs never take a listener's
//! backlog (each connection bounds its own joins), so they need no cookies.

use super::memory::Refusal;
use super::Stack;
use crate::config::SynCookies;
use crate::conn::Connection;
use crate::demux::FourTuple;
use crate::mptcp::level::version_alg;
use crate::mptcp::{crypto, DataLevel};
use crate::tcp::syncookie::{decode_tsecr, encode_tsval};
use crate::tcp::Tcb;
use crate::time::Instant;
use crate::wire::mptcp::{MpCapable, MptcpVersion};
use crate::wire::{MptcpOptions, SeqNumber, TcpFlags, TcpRepr};
use core::time::Duration;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Cookie SYN/ACKs waiting to go out; past this, SYNs are dropped.
const MAX_PENDING_SYNACKS: usize = 1024;
/// The largest SYN/ACK: an IPv6 header and a TCP header with 40 bytes of
/// options.
const SYNACK_MAX: usize = 40 + 60;
/// How long after its last cookie a listener still checks ACKs for one (two
/// cookie lifetimes); other ACKs to a listener are answered with a RST
/// without computing a MAC.
const COOKIE_ACK_WINDOW: Duration = Duration::from_secs(256);

/// A cookie SYN/ACK, written out.
pub(super) struct SynAck {
    len: u8,
    bytes: [u8; SYNACK_MAX],
}

impl SynAck {
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// Cookie SYN/ACKs waiting to go out.
#[derive(Default)]
pub(super) struct SynAckQueue(VecDeque<SynAck>);

impl SynAckQueue {
    pub(super) fn pop(&mut self) -> Option<SynAck> {
        self.0.pop_front()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What became of an ACK to a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CookieAck {
    /// Its cookie opened a connection, which took the segment.
    Accepted,
    /// The listener sent no cookies lately: not looked at.
    NoCookies,
    /// A wrong cookie (or MP_CAPABLE key): answer with a RST.
    Failed,
    /// The cookie did not verify against this segment's sequence number:
    /// `accept_cookie` decides whether it is a late segment or a forgery.
    Unverified,
    /// Dropped without an answer.
    Dropped,
    /// A right cookie from a source at its connection limit: answer with a
    /// RST.
    Refused,
}

/// The SYN a cookie stands for: `irs` and the options the cookie kept.
fn cookie_syn(
    ports: (u16, u16),
    irs: SeqNumber,
    window: u16,
    mss: u16,
    ts: Option<(u32, Option<u8>, bool)>,
) -> TcpRepr<'static> {
    let mut syn = TcpRepr::new(ports.0, ports.1);
    syn.seq = irs;
    syn.flags = TcpFlags(TcpFlags::SYN);
    syn.window = window;
    syn.mss = Some(mss);
    if let Some((tsval, window_scale, sack)) = ts {
        syn.timestamp = Some((tsval, 0));
        syn.window_scale = window_scale;
        syn.sack_permitted = sack;
    }
    syn
}

impl Stack {
    /// Our key on a cookie connection: derived from the 4-tuple and ISN,
    /// the first candidate whose token has the instance's prefix (under
    /// `version`'s hash), so that the third ACK finds the same one.
    fn cookie_key(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNumber,
        version: Option<MptcpVersion>,
    ) -> u64 {
        let candidate = |n| self.cookies.mptcp_key(local, remote, iss, n);
        let (Some(prefix), Some(v)) = (self.config.mptcp.token_prefix, version) else {
            return candidate(0);
        };
        let alg = version_alg(v);
        (0..u32::MAX)
            .map(candidate)
            .find(|&k| prefix.matches(crypto::token(alg, k)))
            .unwrap_or_else(|| candidate(0))
    }

    /// Whether a SYN to a listener with `pending` half-open connections is
    /// answered with a cookie.
    pub(super) fn wants_cookie(&self, pending: usize) -> bool {
        match self.config.syn_cookies {
            SynCookies::Off => false,
            SynCookies::OnOverflow => pending >= self.config.backlog,
            SynCookies::Always => true,
        }
    }

    /// Answer `syn` with a cookie SYN/ACK (MP_CAPABLE with a derived key if
    /// the SYN offers MPTCP and the key's token is free).
    pub(super) fn send_cookie(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        syn: &TcpRepr<'_>,
        cap: Option<MpCapable>,
    ) {
        if self.synacks.0.len() >= MAX_PENDING_SYNACKS {
            self.counters.drop_backlog_full += 1;
            return;
        }
        let (local, remote) = (tuple.local, tuple.remote);
        let default_mss = if remote.is_ipv4() { 536 } else { 1220 };
        let (iss, mss) =
            self.cookies
                .isn(now, local, remote, syn.seq, syn.mss.unwrap_or(default_mss));
        // Options ride in TSval; without timestamps there is nowhere to keep
        // window scale and SACK, so the connection goes without (RFC 4987).
        let ts = self
            .config
            .tcp
            .timestamps
            .then_some(syn.timestamp)
            .flatten()
            .map(|(tsval, _)| {
                let ws = syn.window_scale.filter(|_| self.config.tcp.window_scaling);
                (tsval, ws, syn.sack_permitted && self.config.tcp.sack)
            });
        let base = self.cookies.ts_offset(local, remote);
        let ts_offset = match ts {
            Some((_, ws, sack)) => {
                let tsval = (now.as_millis() as u32).wrapping_add(base);
                encode_tsval(tsval, ws, sack).wrapping_sub(now.as_millis() as u32)
            }
            None => base,
        };
        let kept = cookie_syn((syn.src_port, syn.dst_port), syn.seq, syn.window, mss, ts);
        let tcb = Tcb::accept(&self.config.tcp, local, remote, iss, ts_offset, now, &kept);
        let settings = self.mptcp_settings();
        let version = cap.and_then(|c| DataLevel::syn_version(&c, &settings));
        let key = self.cookie_key(local, remote, iss, version);
        let mut conn = match (cap, version) {
            (Some(c), Some(v))
                if !self
                    .tokens
                    .contains_key(&crypto::token(version_alg(v), key)) =>
            {
                Connection::mptcp(tcb, DataLevel::server(&c, v, key, &settings))
            }
            _ => Connection::tcp(tcb),
        };
        let mut out = SynAck {
            len: 0,
            bytes: [0; SYNACK_MAX],
        };
        let Some(t) = conn.poll_transmit(now, self.config.hop_limit, &mut out.bytes, 1) else {
            return;
        };
        out.len = t.len as u8;
        self.synacks.0.push_back(out);
        self.counters.syncookies_sent += 1;
        let on = self.listener_for(tuple.local);
        if let Some(l) = self.listeners.get_mut(&on) {
            l.cookie_sent = Some(now);
        }
    }

    /// An ACK to a listening port with no connection: if it carries a cookie
    /// of ours, open the connection and hand it the ACK.
    pub(super) fn accept_cookie(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
        opts: &MptcpOptions,
    ) -> CookieAck {
        match self.check_cookie(now, tuple, seg, opts) {
            CookieAck::Unverified if self.cookies.plausible(now, seg.ack - 1) => {
                // Segments sent right after the handshake may overtake the
                // one that carries the cookie, or outlive its loss (a full
                // TUN queue under a flood): the cookie's MAC covers the
                // client's ISN, which only the first segment names. Their
                // sender will send them again once the connection exists; a
                // RST would kill that connection before it is made. Counted
                // apart from the failures, which are answered: an ACK whose
                // cookie names a tick that cannot be (15 in 16 random ones,
                // a stale connection's) gets a RST.
                self.counters.syncookies_dropped += 1;
                CookieAck::Dropped
            }
            CookieAck::Unverified => {
                self.counters.syncookies_failed += 1;
                CookieAck::Failed
            }
            CookieAck::Failed if self.cookies.plausible(now, seg.ack - 1) => CookieAck::Dropped,
            r => r,
        }
    }

    fn check_cookie(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
        opts: &MptcpOptions,
    ) -> CookieAck {
        let on = self.listener_for(tuple.local);
        let recent = self
            .listeners
            .get(&on)
            .and_then(|l| l.cookie_sent)
            .is_some_and(|t| now.saturating_since(t) <= COOKIE_ACK_WINDOW);
        if !recent || self.config.syn_cookies == SynCookies::Off {
            return CookieAck::NoCookies;
        }
        let (local, remote) = (tuple.local, tuple.remote);
        let (irs, iss) = (seg.seq - 1, seg.ack - 1);
        let Some(mss) = self.cookies.check(now, local, remote, irs, iss) else {
            return CookieAck::Unverified;
        };
        let ts = match (self.config.tcp.timestamps, seg.timestamp) {
            (true, Some((tsval, tsecr))) => match decode_tsecr(tsecr) {
                Some((ws, sack)) => Some((tsval, ws, sack)),
                None => {
                    self.counters.syncookies_failed += 1;
                    return CookieAck::Failed;
                }
            },
            _ => None,
        };
        let settings = self.mptcp_settings();
        let mp = match opts.capable {
            None => None,
            Some(c) => {
                let version = DataLevel::syn_version(&c, &settings);
                let key = self.cookie_key(local, remote, iss, version);
                match version {
                    Some(v)
                        if c.sender_key.is_some()
                            && c.receiver_key == Some(key)
                            && !self
                                .tokens
                                .contains_key(&crypto::token(version_alg(v), key)) =>
                    {
                        Some(DataLevel::server(&c, v, key, &settings))
                    }
                    _ => {
                        self.counters.syncookies_failed += 1;
                        return CookieAck::Failed;
                    }
                }
            }
        };
        match self.admit(remote.ip(), true) {
            Ok(()) => {}
            Err(Refusal::Source) => {
                self.refused(Refusal::Source);
                return CookieAck::Refused;
            }
            Err(why) => {
                // Full: the client sends the ACK again, perhaps to a stack
                // that has room by then.
                self.refused(why);
                return CookieAck::Dropped;
            }
        }
        self.counters.syncookies_recv += 1;
        let kept = cookie_syn((seg.src_port, seg.dst_port), irs, seg.window, mss, ts);
        let ts_offset = self.cookies.ts_offset(local, remote);
        let tcb = Tcb::accept_cookie(&self.config.tcp, local, remote, iss, ts_offset, now, &kept);
        let conn = match mp {
            Some(mp) => Connection::mptcp(tcb, mp),
            None => Connection::tcp(tcb),
        };
        if let Some(l) = self.listeners.get_mut(&on) {
            l.pending += 1;
        }
        let id = self.insert(tuple, conn, Some(on), false);
        self.count_source(id, remote.ip());
        if let Some((id, sub)) = self.conns.lookup(&tuple).filter(|(i, _)| *i == id) {
            let slot = self.conns.get_mut(id).expect("just inserted");
            let fx = slot
                .conn
                .on_segment(now, sub, seg, opts, &mut self.challenge_quota);
            self.apply_effects(id, now, fx, true);
        }
        self.touch(id);
        CookieAck::Accepted
    }
}
