//! MPTCP cryptography: key tokens and IDSNs, the MP_JOIN and ADD_ADDR HMACs, and the
//! DSS checksum (RFC 8684 §3.1, §3.2, §3.3.1, §3.4.1; RFC 6824 for v0).
//!
//! The hash functions and HMAC come from the RustCrypto crates `sha2`, `sha1` and
//! `hmac`; nothing here implements a cryptographic primitive by hand. Keys are `u64`s
//! written as 8 big-endian bytes wherever they are hashed; nonces are `u32`s written as
//! 4 big-endian bytes. The test vectors are those of `docs/PROTOCOL.md`.

use crate::wire::checksum;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// The hash function of an MPTCP connection: SHA-256 for v1 (RFC 8684), SHA-1 for v0
/// (RFC 6824). Used both plain (token, IDSN) and inside HMAC.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HashAlg {
    /// MPTCP v1: SHA-256 / HMAC-SHA256.
    Sha256,
    /// MPTCP v0: SHA-1 / HMAC-SHA1.
    Sha1,
}

impl HashAlg {
    /// Output length in bytes (32 or 20).
    pub const fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha1 => 20,
        }
    }
}

/// A hash or HMAC output of up to 32 bytes, without allocating.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HashOutput {
    bytes: [u8; 32],
    len: u8,
}

impl HashOutput {
    fn from_slice(s: &[u8]) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..s.len()].copy_from_slice(s);
        HashOutput {
            bytes,
            len: s.len() as u8,
        }
    }

    /// The output bytes (32 for SHA-256, 20 for SHA-1).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The leftmost `N` bytes. `N` must not exceed the output length (20 for SHA-1).
    fn leftmost<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.as_bytes()[..N]);
        out
    }

    /// The rightmost `N` bytes. `N` must not exceed the output length.
    fn rightmost<const N: usize>(&self) -> [u8; N] {
        let b = self.as_bytes();
        let mut out = [0u8; N];
        out.copy_from_slice(&b[b.len() - N..]);
        out
    }
}

impl AsRef<[u8]> for HashOutput {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// H(`data`) with the connection's hash function.
pub fn hash(alg: HashAlg, data: &[u8]) -> HashOutput {
    match alg {
        HashAlg::Sha256 => HashOutput::from_slice(&Sha256::digest(data)),
        HashAlg::Sha1 => HashOutput::from_slice(&Sha1::digest(data)),
    }
}

/// HMAC(`key`, `msg`) with the connection's hash function (RFC 2104). Any key length
/// is accepted.
pub fn hmac(alg: HashAlg, key: &[u8], msg: &[u8]) -> HashOutput {
    fn run<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> HashOutput {
        // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
        mac.update(msg);
        HashOutput::from_slice(&mac.finalize().into_bytes())
    }
    match alg {
        HashAlg::Sha256 => run::<Hmac<Sha256>>(key, msg),
        HashAlg::Sha1 => run::<Hmac<Sha1>>(key, msg),
    }
}

/// The token of a key: the first 4 bytes of H(key), big-endian. Identifies the
/// connection in MP_JOIN SYNs.
pub fn token(alg: HashAlg, key: u64) -> u32 {
    u32::from_be_bytes(hash(alg, &key.to_be_bytes()).leftmost())
}

/// The initial data sequence number of a key: the last 8 bytes of H(key), big-endian.
/// The first data byte has DSN = IDSN + 1.
pub fn idsn(alg: HashAlg, key: u64) -> u64 {
    u64::from_be_bytes(hash(alg, &key.to_be_bytes()).rightmost())
}

/// HMAC keyed with `first ‖ second` (each 8 bytes, big-endian).
fn keyed_hmac(alg: HashAlg, first: u64, second: u64, msg: &[u8]) -> HashOutput {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&first.to_be_bytes());
    key[8..].copy_from_slice(&second.to_be_bytes());
    hmac(alg, &key, msg)
}

/// HMAC over `first ‖ second` nonces (each 4 bytes, big-endian) with key
/// `key_first ‖ key_second`.
fn join_hmac(
    alg: HashAlg,
    key_first: u64,
    key_second: u64,
    r_first: u32,
    r_second: u32,
) -> HashOutput {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&r_first.to_be_bytes());
    msg[4..].copy_from_slice(&r_second.to_be_bytes());
    keyed_hmac(alg, key_first, key_second, &msg)
}

/// MP_JOIN SYN/ACK: A joins B; B (the sender of the SYN/ACK) sends the leftmost
/// 8 bytes of HMAC(Key_B ‖ Key_A, R_B ‖ R_A), as a big-endian `u64`.
pub fn join_synack_hmac(alg: HashAlg, key_b: u64, key_a: u64, nonce_b: u32, nonce_a: u32) -> u64 {
    u64::from_be_bytes(join_hmac(alg, key_b, key_a, nonce_b, nonce_a).leftmost())
}

/// MP_JOIN third ACK: A joins B; A sends the leftmost 20 bytes of
/// HMAC(Key_A ‖ Key_B, R_A ‖ R_B).
pub fn join_ack_hmac(alg: HashAlg, key_a: u64, key_b: u64, nonce_a: u32, nonce_b: u32) -> [u8; 20] {
    join_hmac(alg, key_a, key_b, nonce_a, nonce_b).leftmost()
}

/// ADD_ADDR (v1) sent by S: the **rightmost** 8 bytes of
/// HMAC(Key_S ‖ Key_peer, address id (1) ‖ address (4|16) ‖ port (2, 0 when absent)),
/// as a big-endian `u64`.
pub fn add_addr_hmac(
    alg: HashAlg,
    key_sender: u64,
    key_peer: u64,
    addr_id: u8,
    addr: IpAddr,
    port: Option<u16>,
) -> u64 {
    let mut msg = [0u8; 1 + 16 + 2];
    msg[0] = addr_id;
    let n = match addr {
        IpAddr::V4(a) => {
            msg[1..5].copy_from_slice(&a.octets());
            5
        }
        IpAddr::V6(a) => {
            msg[1..17].copy_from_slice(&a.octets());
            17
        }
    };
    msg[n..n + 2].copy_from_slice(&port.unwrap_or(0).to_be_bytes());
    u64::from_be_bytes(keyed_hmac(alg, key_sender, key_peer, &msg[..n + 2]).rightmost())
}

/// DSS checksum (RFC 8684 §3.3.1): the RFC 1071 one's-complement sum over the
/// pseudo-header DSN (64) ‖ SSN (32, relative) ‖ DLL (16) ‖ 0x0000, then all payload
/// of the mapping, which may arrive in any number of chunks of any length.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DssChecksum {
    /// Running sum of 16-bit words, not yet folded (see `wire::checksum`).
    acc: u32,
    /// The first byte of a 16-bit word whose second byte has not arrived yet (the
    /// payload so far has odd length).
    pending: Option<u8>,
}

impl DssChecksum {
    /// Start a checksum for the mapping `dsn`/`ssn`/`data_len`. `data_len` is the DLL
    /// as sent, i.e. already including 1 for a DATA_FIN. `dsn` is the full 64-bit DSN
    /// even when the option carried 32 bits.
    pub fn new(dsn: u64, ssn: u32, data_len: u16) -> Self {
        let mut header = [0u8; 16];
        header[..8].copy_from_slice(&dsn.to_be_bytes());
        header[8..12].copy_from_slice(&ssn.to_be_bytes());
        header[12..14].copy_from_slice(&data_len.to_be_bytes());
        // header[14..16] = 0x0000 (the checksum field itself, zero while summing).
        DssChecksum {
            acc: checksum::accumulate(0, &header),
            pending: None,
        }
    }

    /// Add the next chunk of the mapping's payload. Chunks may have any length,
    /// odd ones included: a byte left over from one call pairs with the first byte
    /// of the next.
    pub fn update(&mut self, mut data: &[u8]) {
        if let Some(hi) = self.pending {
            let Some((&lo, rest)) = data.split_first() else {
                return;
            };
            self.acc = checksum::accumulate(self.acc, &[hi, lo]);
            self.pending = None;
            data = rest;
        }
        let even = data.len() & !1;
        self.acc = checksum::accumulate(self.acc, &data[..even]);
        if even < data.len() {
            self.pending = Some(data[even]);
        }
    }

    /// The folded (not complemented) sum so far, an odd trailing byte padded with zero.
    fn sum(&self) -> u64 {
        let tail = self.pending.map_or(0, |b| u64::from(b) << 8);
        u64::from(self.acc) + tail
    }

    /// The checksum field to send: the complement of the one's-complement sum.
    pub fn finish(&self) -> u16 {
        !checksum::fold(self.sum())
    }

    /// Whether a received checksum field matches: the sum including the field folds
    /// to 0xffff (i.e. its complement is zero). Accepts either representation of zero.
    pub fn verify(&self, field: u16) -> bool {
        checksum::fold(self.sum() + u64::from(field)) == 0xffff
    }
}

/// Draw a local key from `rng`, redrawing while its token is unusable
/// (`refused(token)`: in use, as RFC 8684 §3.1 forbids, or without the
/// instance's prefix). A collision is astronomically rare with few live
/// connections and a prefix of at most 8 bits takes 256 draws on average, so
/// this simply draws until it finds one; it only loops forever if every
/// token is refused.
pub fn generate_key(
    alg: HashAlg,
    rng: &mut impl rand_core::Rng,
    refused: impl Fn(u32) -> bool,
) -> u64 {
    loop {
        let key = rng.next_u64();
        if !refused(token(alg, key)) {
            return key;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const KEY_A: u64 = 0x0102_0304_0506_0708;
    const KEY_B: u64 = 0x1112_1314_1516_1718;
    const R_A: u32 = 0x0102_0304;
    const R_B: u32 = 0x0506_0708;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn token_and_idsn_sha256() {
        assert_eq!(token(HashAlg::Sha256, KEY_A), 0x6684_0dda);
        assert_eq!(idsn(HashAlg::Sha256, KEY_A), 0xf5a1_01d3_d29d_6f72);
        assert_eq!(token(HashAlg::Sha256, KEY_B), 0xccad_45ac);
        assert_eq!(idsn(HashAlg::Sha256, KEY_B), 0x535b_eea3_8e08_7c8e);
    }

    #[test]
    fn token_and_idsn_sha1() {
        assert_eq!(token(HashAlg::Sha1, KEY_A), 0xdd57_83bc);
        assert_eq!(idsn(HashAlg::Sha1, KEY_A), 0x3a95_ed6e_4ebb_4ad5);
        assert_eq!(token(HashAlg::Sha1, KEY_B), 0x3383_d918);
        assert_eq!(idsn(HashAlg::Sha1, KEY_B), 0x9e1a_e42f_7026_27a9);
    }

    #[test]
    fn v0_tokens_from_capture() {
        assert_eq!(token(HashAlg::Sha1, 2097874973131745533), 3453009450);
        assert_eq!(token(HashAlg::Sha1, 14232633393355152416), 1187499290);
        assert_eq!(token(HashAlg::Sha1, 983142155943229432), 3611618124);
    }

    #[test]
    fn join_hmacs_sha256() {
        assert_eq!(
            join_synack_hmac(HashAlg::Sha256, KEY_B, KEY_A, R_B, R_A),
            0x65ee_0968_33f6_61d9
        );
        assert_eq!(
            hex(&join_ack_hmac(HashAlg::Sha256, KEY_A, KEY_B, R_A, R_B)),
            "24bdde08dfc55c9b4185e1b56b2f89db241ac0f2"
        );
    }

    #[test]
    fn join_hmacs_sha1() {
        assert_eq!(
            join_synack_hmac(HashAlg::Sha1, KEY_B, KEY_A, R_B, R_A),
            0x93fd_bef9_55c9_f213
        );
        assert_eq!(
            hex(&join_ack_hmac(HashAlg::Sha1, KEY_A, KEY_B, R_A, R_B)),
            "5759d8ab7fe30caebe9bbae6a9634f530c3d0a3c"
        );
    }

    #[test]
    fn join_hmac_is_truncation_of_full_hmac() {
        // The 8-byte SYN/ACK value is the start of the same HMAC the 20-byte form uses
        // with the roles swapped.
        let full = join_ack_hmac(HashAlg::Sha256, KEY_B, KEY_A, R_B, R_A);
        let mut left = [0u8; 8];
        left.copy_from_slice(&full[..8]);
        assert_eq!(
            u64::from_be_bytes(left),
            join_synack_hmac(HashAlg::Sha256, KEY_B, KEY_A, R_B, R_A)
        );
    }

    #[test]
    fn add_addr_hmacs_v1() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 1));
        assert_eq!(
            add_addr_hmac(HashAlg::Sha256, KEY_A, KEY_B, 1, v4, None),
            0x014b_3007_310c_639c
        );
        assert_eq!(
            add_addr_hmac(HashAlg::Sha256, KEY_A, KEY_B, 1, v4, Some(10100)),
            0x20dd_be46_68d5_c1bd
        );
        let v6 = IpAddr::V6(Ipv6Addr::new(0xdead, 0xbeef, 2, 0, 0, 0, 0, 1));
        assert_eq!(
            add_addr_hmac(HashAlg::Sha256, KEY_A, KEY_B, 2, v6, None),
            0x7b7d_787c_1f96_36e8
        );
        // Port 0 and an absent port hash the same message.
        assert_eq!(
            add_addr_hmac(HashAlg::Sha256, KEY_A, KEY_B, 1, v4, Some(0)),
            add_addr_hmac(HashAlg::Sha256, KEY_A, KEY_B, 1, v4, None)
        );
    }

    #[test]
    fn linux_hmac_sha256_vector() {
        let out = hmac(HashAlg::Sha256, b"0b0b0b0b0b0b0b0b", b"48692054");
        assert_eq!(
            hex(out.as_bytes()),
            "8385e24fb4235ac37556b6b886db106284a1da671699f46db1f235ec622dcafa"
        );
        assert_eq!(hmac(HashAlg::Sha1, b"k", b"m").as_bytes().len(), 20);
    }

    #[test]
    fn dss_checksum_vectors() {
        let mut c = DssChecksum::new(0xf5a1_01d3_d29d_6f73, 1, 4);
        c.update(b"abcd");
        assert_eq!(c.finish(), 0x01ae);
        assert!(c.verify(0x01ae));
        assert!(!c.verify(0x01af));
        assert!(!c.verify(0));

        let fin = DssChecksum::new(0xf5a1_01d3_d29d_6f77, 0, 1);
        assert_eq!(fin.finish(), 0xc674);
        assert!(fin.verify(0xc674));
        assert!(!fin.verify(0x74c6));
    }

    #[test]
    fn dss_checksum_verify_accepts_both_zeros() {
        // Choose a payload word that makes the total sum 0xffff: the field to send is
        // then 0x0000, and 0xffff (the other one's-complement zero) must verify too,
        // as it does in Linux (fold of sum + field == 0xffff).
        let base = DssChecksum::new(0xf5a1_01d3_d29d_6f73, 1, 2);
        let word = base.finish().to_be_bytes();
        let mut c = base;
        c.update(&word);
        assert_eq!(c.finish(), 0);
        assert!(c.verify(0));
        assert!(c.verify(0xffff));
        assert!(!c.verify(1));
    }

    /// Reference: the whole pseudo-header and payload in one buffer, summed at once.
    fn one_shot(dsn: u64, ssn: u32, dll: u16, payload: &[u8]) -> u16 {
        let mut buf = Vec::new();
        buf.extend_from_slice(&dsn.to_be_bytes());
        buf.extend_from_slice(&ssn.to_be_bytes());
        buf.extend_from_slice(&dll.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(payload);
        checksum::checksum(&buf)
    }

    #[test]
    fn dss_checksum_any_chunking() {
        let payload: Vec<u8> = (0..97u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in [0, 1, 2, 3, 4, 5, 31, 64, 97] {
            let data = &payload[..len];
            let (dsn, ssn, dll) = (0xf5a1_01d3_d29d_6f73, 1, len as u16);
            let reference = one_shot(dsn, ssn, dll, data);
            let mut whole = DssChecksum::new(dsn, ssn, dll);
            whole.update(data);
            assert_eq!(whole.finish(), reference, "len {len}");
            assert!(whole.verify(reference));
            assert!(!whole.verify(reference.wrapping_add(1)));
            for chunk in 1..=len.max(1) {
                let mut c = DssChecksum::new(dsn, ssn, dll);
                for piece in data.chunks(chunk) {
                    c.update(piece);
                    c.update(&[]);
                }
                assert_eq!(c.finish(), reference, "len {len} chunk {chunk}");
            }
            // Uneven chunks: 1, 2, 3, ... bytes.
            let mut c = DssChecksum::new(dsn, ssn, dll);
            let (mut off, mut step) = (0, 1);
            while off < len {
                let end = (off + step).min(len);
                c.update(&data[off..end]);
                off = end;
                step += 1;
            }
            assert_eq!(c.finish(), reference, "len {len} uneven");
        }
        // The "abcd" vector split every way.
        for chunk in 1..=4 {
            let mut c = DssChecksum::new(0xf5a1_01d3_d29d_6f73, 1, 4);
            for piece in b"abcd".chunks(chunk) {
                c.update(piece);
            }
            assert_eq!(c.finish(), 0x01ae);
        }
    }

    /// A deterministic `Rng` returning the given values in order, then counting up.
    struct Scripted {
        values: Vec<u64>,
        next: usize,
    }

    impl rand_core::TryRng for Scripted {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let v = self
                .values
                .get(self.next)
                .copied()
                .unwrap_or(self.next as u64);
            self.next += 1;
            Ok(v)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for chunk in dst.chunks_mut(8) {
                let v = self.try_next_u64()?.to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            Ok(())
        }
    }

    #[test]
    fn generate_key_redraws_on_token_collision() {
        let mut rng = Scripted {
            values: vec![KEY_A, KEY_B],
            next: 0,
        };
        let rejected = Cell::new(0);
        let key = generate_key(HashAlg::Sha256, &mut rng, |t| {
            let taken = t == token(HashAlg::Sha256, KEY_A);
            if taken {
                rejected.set(rejected.get() + 1);
            }
            taken
        });
        assert_eq!(key, KEY_B);
        assert_eq!(rejected.get(), 1);
        assert_eq!(rng.next, 2);

        // No collision: the first draw is kept.
        let mut rng = Scripted {
            values: vec![KEY_A],
            next: 0,
        };
        assert_eq!(generate_key(HashAlg::Sha1, &mut rng, |_| false), KEY_A);

        // Works with the engine's real generator, too.
        use rand_core::SeedableRng;
        let mut chacha = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let first = generate_key(HashAlg::Sha256, &mut chacha.clone(), |_| false);
        let first_token = token(HashAlg::Sha256, first);
        let second = generate_key(HashAlg::Sha256, &mut chacha, |t| t == first_token);
        assert_ne!(first, second);
    }
}
