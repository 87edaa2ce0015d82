//! The stack's randomness: ChaCha20 from one 256-bit seed (`Config::seed`),
//! split into independent streams so that what one kind of value reveals says
//! nothing of another: the ISN secret (RFC 6528), the SYN cookie secret,
//! MPTCP keys, MP_JOIN nonces,
//! and the rest (ephemeral-port search starts, timestamp offsets, ISN spacing
//! of a v0 retry), which the peer sees anyway.

use crate::config::Seed;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// ChaCha20 stream numbers, one per kind of value.
const ISN_SECRET: u64 = 1;
const KEYS: u64 = 2;
const NONCES: u64 = 3;
const PUBLIC: u64 = 4;
const COOKIE_SECRET: u64 = 5;

/// Secrets drawn once, at the start.
pub(super) struct Secrets {
    /// RFC 6528's F() key.
    pub(super) isn: [u8; 32],
    /// SYN cookies' MAC key (and their connections' derived values).
    pub(super) cookie: [u8; 32],
}

pub(super) struct Randomness {
    /// MPTCP keys (RFC 8684 §3.1): whoever knows one may fast-close the
    /// connection and compute its join HMACs.
    pub(super) keys: ChaCha20Rng,
    /// MP_JOIN nonces.
    pub(super) nonces: ChaCha20Rng,
    /// Values the peer sees anyway.
    pub(super) public: ChaCha20Rng,
}

fn stream(seed: &Seed, n: u64) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::from_seed(seed.bytes());
    rng.set_stream(n);
    rng
}

impl Randomness {
    /// The streams of `seed` for shard `shard` (see `config::Shard`), and
    /// the secrets, each drawn from its own; shards share the secrets.
    pub(super) fn new(seed: &Seed, shard: u16) -> (Randomness, Secrets) {
        let mut secrets = Secrets {
            isn: [0; 32],
            cookie: [0; 32],
        };
        stream(seed, ISN_SECRET).fill_bytes(&mut secrets.isn);
        stream(seed, COOKIE_SECRET).fill_bytes(&mut secrets.cookie);
        let own = |n: u64| stream(seed, n | u64::from(shard) << 32);
        let r = Randomness {
            keys: own(KEYS),
            nonces: own(NONCES),
            public: own(PUBLIC),
        };
        (r, secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let seed = Seed::from_u64(7);
        let (mut a, secrets_a) = Randomness::new(&seed, 0);
        let (mut b, secrets_b) = Randomness::new(&seed, 0);
        let secret_a = secrets_a.isn;
        assert_eq!(secret_a, secrets_b.isn);
        assert_ne!(secret_a, secrets_a.cookie);
        assert_eq!(a.keys.next_u64(), b.keys.next_u64());
        let (k, n, p) = (a.keys.next_u64(), a.nonces.next_u64(), a.public.next_u64());
        assert!(k != n && n != p && k != p);
        let (mut c, secrets_c) = Randomness::new(&Seed::from_u64(8), 0);
        assert_ne!(secret_a, secrets_c.isn);
        assert_ne!(secrets_a.cookie, secrets_c.cookie);
        assert_ne!(b.keys.next_u64(), c.keys.next_u64());
    }

    #[test]
    fn shards_share_the_secrets_but_not_the_streams() {
        let seed = Seed::from_u64(7);
        let (mut a, sa) = Randomness::new(&seed, 0);
        let (mut b, sb) = Randomness::new(&seed, 1);
        assert_eq!(sa.isn, sb.isn);
        assert_eq!(sa.cookie, sb.cookie);
        assert_ne!(a.keys.next_u64(), b.keys.next_u64());
        assert_ne!(a.nonces.next_u64(), b.nonces.next_u64());
        assert_ne!(a.public.next_u64(), b.public.next_u64());
    }
}
