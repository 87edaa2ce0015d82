//! Several engines, one per thread and TUN queue (`mptun run --threads N`).
//!
//! The kernel spreads flows over a multiqueue TUN's queues by a hash of the
//! flow (and, once we wrote a flow's packets on a queue, keeps sending it to
//! that queue for a few seconds: the TUN's automatic flow steering). Each
//! queue has its own [`Stack`](mptun_stack::Stack) — a shard — holding the
//! connections that began on it. Most packets therefore arrive where they
//! belong; the rest reach their owner through a [`Mesh`]:
//!
//! - a SYN with MP_JOIN names a token, and every shard's tokens carry its
//!   index in the bits after the instance id (`TokenPrefix::nested`), so the
//!   owner is read from the token, one hop, whatever the number of shards;
//! - any other segment of a 4-tuple the receiving shard does not hold (a
//!   flow the kernel steered elsewhere for a while) is offered to the other
//!   shards, which answer from their 4-tuple tables; if none holds it, the
//!   receiving shard answers it (RST, SYN cookie) as a lone stack would.
//!
//! A forwarded packet waits in its owner's bounded inbox, and the owner's
//! driver is woken to take it. No lock is held while another is taken, except
//! an inbox's (which guards nothing else).

use crate::socket::Handle;
use mptun_stack::{Steer, TokenPrefix};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Packets waiting for one shard; past it forwarded packets are dropped
/// (TCP retransmits) rather than queued without bound.
pub const INBOX_LIMIT: usize = 4096;

/// Bytes waiting for one shard, the other bound: with offloads a packet
/// read from the TUN may be a 64 KiB super-packet, and 4096 of them would
/// be 256 MiB.
pub const INBOX_BYTES: usize = 8 << 20;

/// The most shards: a shard index takes bits of every token, and a key is
/// drawn 2^bits times on average (`TokenPrefix::MAX_BITS` in all, with the
/// instance id's).
pub const MAX_SHARDS: usize = 1 << TokenPrefix::MAX_BITS;

/// A packet handed from the shard that read it to the one that owns it.
pub struct Forwarded {
    pub packet: Vec<u8>,
    /// The kernel vouched for its TCP checksum (offloads).
    pub checksum_ok: bool,
    /// Sent to the shard that holds it; false: sent on by `--debug-misroute`,
    /// to be steered again by the shard that gets it.
    pub owner_known: bool,
}

struct Shard {
    handle: Handle,
    inbox: Mutex<Inbox>,
}

#[derive(Default)]
struct Inbox {
    packets: VecDeque<Forwarded>,
    /// The packets' bytes.
    bytes: usize,
}

/// Bits of a token that hold the shard index for `count` shards.
pub fn shard_bits(count: usize) -> u8 {
    (usize::BITS - count.saturating_sub(1).leading_zeros()) as u8
}

/// The prefix of shard `index`'s tokens among `count`, after the instance
/// id; `None` if they do not fit in `TokenPrefix::MAX_BITS`.
pub fn token_prefix(
    instance: Option<TokenPrefix>,
    index: usize,
    count: usize,
) -> Result<Option<TokenPrefix>, String> {
    let bits = shard_bits(count);
    if bits == 0 {
        return Ok(instance);
    }
    TokenPrefix::nested(instance, index as u32, bits)
        .map(Some)
        .ok_or_else(|| {
            format!(
                "{count} threads need {bits} bits of each MPTCP token; with --instance-id's {} that is more than {}",
                instance.map_or(0, |p| p.bits()),
                TokenPrefix::MAX_BITS
            )
        })
}

/// The shards of one daemon, shared by their drivers and the control socket.
pub struct Mesh {
    shards: Vec<Shard>,
    instance: Option<TokenPrefix>,
    bits: u8,
    /// Round robin of [`pick`](Self::pick).
    next: AtomicUsize,
    forwarded: AtomicU64,
    dropped: AtomicU64,
}

impl Mesh {
    /// `handles[i]` is shard i's engine; `instance` the `--instance-id`
    /// prefix in front of the shard bits.
    pub fn new(handles: Vec<Handle>, instance: Option<TokenPrefix>) -> Arc<Mesh> {
        let bits = shard_bits(handles.len());
        Arc::new(Mesh {
            shards: handles
                .into_iter()
                .map(|handle| Shard {
                    handle,
                    inbox: Mutex::new(Inbox::default()),
                })
                .collect(),
            instance,
            bits,
            next: AtomicUsize::new(0),
            forwarded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.shards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    pub fn handle(&self, index: usize) -> &Handle {
        &self.shards[index].handle
    }

    pub fn handles(&self) -> impl Iterator<Item = &Handle> {
        self.shards.iter().map(|s| &s.handle)
    }

    /// The shard for a new connection opened from here (round robin).
    pub fn pick(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        &self.shards[i].handle
    }

    /// Wake every shard's driver.
    pub fn kick_all(&self) {
        for s in &self.shards {
            s.handle.kick();
        }
    }

    /// The shard whose tokens look like `token`.
    pub fn owner_of_token(&self, token: u32) -> usize {
        let i = TokenPrefix::inner(self.instance, self.bits, token) as usize;
        // A token no shard of ours made may name a shard we do not have.
        i.min(self.shards.len() - 1)
    }

    /// The other shard that holds what `packet` belongs to, asking each in
    /// turn (their locks are taken one at a time; the caller holds none).
    pub fn find_owner(&self, me: usize, packet: &[u8]) -> Option<usize> {
        (0..self.shards.len())
            .filter(|&k| k != me)
            .find(|&k| self.shards[k].handle.lock().stack.steer(packet) == Steer::Here)
    }

    /// Queue `f` for shard `to` and wake its driver; dropped if its inbox
    /// is full.
    pub fn forward(&self, to: usize, f: Forwarded) {
        let shard = &self.shards[to];
        {
            let mut inbox = shard.inbox.lock().unwrap_or_else(|e| e.into_inner());
            let bytes = inbox.bytes + f.packet.len();
            if inbox.packets.len() >= INBOX_LIMIT || bytes > INBOX_BYTES {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            inbox.bytes = bytes;
            inbox.packets.push_back(f);
        }
        self.forwarded.fetch_add(1, Ordering::Relaxed);
        shard.handle.kick();
    }

    /// Everything forwarded to shard `me` so far, swapped into `into` (which
    /// must be empty): the two queues' storage is kept and reused, where a
    /// fresh queue per batch grew again each time (up to 128 KiB for a full
    /// inbox), and blocks of that size cycling through the allocator
    /// fragmented its heap.
    pub fn take_inbox(&self, me: usize, into: &mut VecDeque<Forwarded>) {
        debug_assert!(into.is_empty());
        let mut inbox = self.shards[me]
            .inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut inbox.packets, into);
        inbox.bytes = 0;
    }

    /// Packets handed to another shard, and those dropped at a full inbox.
    pub fn forwarded(&self) -> (u64, u64) {
        (
            self.forwarded.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::Shared;
    use mptun_stack::{Config, Stack};

    fn mesh(n: usize) -> Arc<Mesh> {
        let handles = (0..n)
            .map(|_| Handle::new(Shared::new(Stack::new(Config::default()))))
            .collect();
        Mesh::new(handles, None)
    }

    fn packet(len: usize) -> Forwarded {
        Forwarded {
            packet: vec![0; len],
            checksum_ok: true,
            owner_known: true,
        }
    }

    /// An inbox holds at most `INBOX_LIMIT` packets and `INBOX_BYTES`
    /// bytes; what comes beyond is dropped and counted, and once taken the
    /// inbox is empty again on both counts.
    #[test]
    fn inboxes_are_bounded_in_packets_and_bytes() {
        let m = mesh(2);
        for _ in 0..INBOX_LIMIT + 10 {
            m.forward(1, packet(60));
        }
        assert_eq!(m.forwarded(), (INBOX_LIMIT as u64, 10));
        let mut got = VecDeque::new();
        m.take_inbox(1, &mut got);
        assert_eq!(got.len(), INBOX_LIMIT);
        // Super-packets: the byte bound comes first.
        let big = 65_535;
        for _ in 0..INBOX_LIMIT {
            m.forward(1, packet(big));
        }
        let fit = INBOX_BYTES / big;
        let (sent, dropped) = m.forwarded();
        assert_eq!(sent, (INBOX_LIMIT + fit) as u64);
        assert_eq!(dropped, 10 + (INBOX_LIMIT - fit) as u64);
        let mut more = VecDeque::new();
        m.take_inbox(1, &mut more);
        assert_eq!(more.len(), fit);
        m.forward(1, packet(big));
        assert_eq!(m.forwarded().0, (INBOX_LIMIT + fit + 1) as u64);
    }

    #[test]
    fn shard_bits_are_enough_for_every_index() {
        let bits: Vec<u8> = [1, 2, 3, 4, 5, 8, 9, 16, 256]
            .iter()
            .map(|&n| shard_bits(n))
            .collect();
        assert_eq!(bits, [0, 1, 2, 2, 3, 3, 4, 4, 8]);
    }

    #[test]
    fn shard_prefixes_follow_the_instance_id() {
        let inst = TokenPrefix::new(1, 2);
        assert_eq!(token_prefix(inst, 0, 1).unwrap(), inst);
        assert_eq!(token_prefix(None, 0, 1).unwrap(), None);
        let p = token_prefix(inst, 3, 4).unwrap().unwrap();
        assert_eq!((p.id(), p.bits()), (0b0111, 4));
        let err = token_prefix(TokenPrefix::new(1, 7), 0, 4).unwrap_err();
        assert!(err.contains("4 threads need 2 bits"), "{err}");
        assert!(token_prefix(None, 255, 256).unwrap().is_some());
    }
}
