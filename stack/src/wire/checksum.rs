//! RFC 1071 Internet checksum.
//!
//! The running accumulator is a plain integer sum of big-endian 16-bit words that is
//! reduced modulo 0xffff (end-around carry) only when it would otherwise overflow;
//! [`fold`] produces the final 16-bit one's-complement sum.

use std::net::IpAddr;

/// Bytes summed per block before the running sum is folded back to 32 bits:
/// the block's folded sum plus its tail's 16-bit words stay far from overflow
/// for any slice length.
const BLOCK: usize = 1 << 20;

/// Reduce a 64-bit partial sum to 32 bits with end-around carry (value is preserved
/// modulo 0xffff, and a non-zero sum never becomes zero).
#[inline]
fn fold64_to_32(mut s: u64) -> u32 {
    while s >> 32 != 0 {
        s = (s & 0xffff_ffff) + (s >> 32);
    }
    s as u32
}

/// Sum a block of at most `BLOCK` bytes as big-endian 16-bit words (odd tail padded
/// with a zero byte). The result fits easily in a u64.
#[inline]
fn sum_block(data: &[u8]) -> u64 {
    // The one's-complement sum does not depend on byte order (RFC 1071 §2.B): sum
    // native-endian words over the aligned part, four independent accumulators for
    // instruction-level parallelism, and swap the folded result into network order.
    let mut acc = [0u64; 4];
    let mut chunks = data.chunks_exact(32);
    for c in &mut chunks {
        for (i, a) in acc.iter_mut().enumerate() {
            let w = u64::from_ne_bytes([
                c[i * 8],
                c[i * 8 + 1],
                c[i * 8 + 2],
                c[i * 8 + 3],
                c[i * 8 + 4],
                c[i * 8 + 5],
                c[i * 8 + 6],
                c[i * 8 + 7],
            ]);
            // A 64-bit one's-complement sum: the carry out goes back in at
            // the bottom (it cannot overflow again: after a carry the sum is
            // at most 2^64 - 2). 2^64 - 1 is a multiple of 0xffff, so the
            // folded result is the same as 16-bit words would give.
            let (sum, carry) = a.overflowing_add(w);
            *a = sum + u64::from(carry);
        }
    }
    let native = acc.iter().fold(0u64, |s, &a| {
        u64::from(fold64_to_32(s)) + u64::from(fold64_to_32(a))
    });
    let folded = fold(native);
    let mut sum = u64::from(if cfg!(target_endian = "little") {
        folded.swap_bytes()
    } else {
        folded
    });
    // The tail (< 32 bytes) in network order, as before.
    let mut rest = chunks.remainder();
    while rest.len() >= 2 {
        sum += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        sum += u64::from(b) << 8;
    }
    sum
}

/// Add `data` to a running 32-bit one's-complement accumulator (not yet folded).
/// Odd-length data is padded with a zero byte; callers chaining several slices must
/// pass even-length slices except the last.
pub fn accumulate(acc: u32, data: &[u8]) -> u32 {
    let mut sum = u64::from(acc);
    for block in data.chunks(BLOCK) {
        sum = u64::from(fold64_to_32(sum)) + sum_block(block);
    }
    fold64_to_32(sum)
}

/// Fold a 32/64-bit accumulator to 16 bits (no complement).
pub fn fold(acc: u64) -> u16 {
    let mut s = acc;
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Accumulator for the TCP/UDP pseudo header (IPv4 or IPv6) with `length` bytes of
/// transport header + payload. `src` and `dst` must be of the same family.
///
/// For IPv4 this is the 12-byte pseudo header of RFC 9293 (the length is meant to be
/// below 2^16); for IPv6 the 40-byte one of RFC 8200 §8.1. Both reduce to the same
/// word sum: addresses, the protocol as a 16-bit word and the length. (With mixed
/// families each address simply contributes its own bytes; no panic.)
pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, length: u32) -> u32 {
    fn addr_sum(a: IpAddr) -> u64 {
        match a {
            IpAddr::V4(a) => sum_block(&a.octets()),
            IpAddr::V6(a) => sum_block(&a.octets()),
        }
    }
    let sum = addr_sum(src)
        + addr_sum(dst)
        + u64::from(protocol)
        + u64::from(length >> 16)
        + u64::from(length & 0xffff);
    fold64_to_32(sum)
}

/// Complete checksum (complemented) over `data`.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(u64::from(accumulate(0, data)))
}

#[cfg(test)]
mod tests {

    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Straightforward reference: 16 bits at a time with end-around carry.
    fn naive(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        let mut i = 0;
        while i < data.len() {
            let hi = u32::from(data[i]) << 8;
            let lo = data.get(i + 1).map_or(0, |&b| u32::from(b));
            s += hi | lo;
            s = (s & 0xffff) + (s >> 16);
            i += 2;
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(u64::from(accumulate(0, &data))), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
    }

    #[test]
    fn wire_checksum_matches_naive_all_lengths() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7919 % 251) as u8 ^ 0xa5).collect();
        for len in 0..data.len() {
            for start in 0..3.min(len + 1) {
                let d = &data[start..len];
                assert_eq!(fold(u64::from(accumulate(0, d))), naive(d), "len {len}");
            }
        }
        let ff = vec![0xffu8; 70_001];
        assert_eq!(fold(u64::from(accumulate(0, &ff))), naive(&ff));
        assert_eq!(fold(u64::from(accumulate(u32::MAX, &ff))), {
            let a = u32::from(naive(&ff)) + 0xffff;
            fold(u64::from(a))
        });
    }

    /// Random bytes (where the 64-bit sums carry at random places) against
    /// the 16-bit reference, every length up to a jumbo frame's.
    #[test]
    fn wire_checksum_matches_naive_random() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..9_100)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 56) as u8
            })
            .collect();
        for len in (0..data.len()).step_by(37) {
            let d = &data[len % 5..len];
            assert_eq!(fold(u64::from(accumulate(0, d))), naive(d), "len {len}");
        }
    }

    #[test]
    fn wire_checksum_chaining_even_slices() {
        let data: Vec<u8> = (0..101u8).collect();
        let whole = accumulate(0, &data);
        let split = accumulate(accumulate(0, &data[..40]), &data[40..]);
        assert_eq!(fold(u64::from(whole)), fold(u64::from(split)));
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn wire_checksum_pseudo_headers() {
        let s4 = Ipv4Addr::new(10, 0, 0, 1);
        let d4 = Ipv4Addr::new(192, 168, 1, 2);
        let mut ph = Vec::new();
        ph.extend_from_slice(&s4.octets());
        ph.extend_from_slice(&d4.octets());
        ph.extend_from_slice(&[0, 6, 0x12, 0x34]);
        assert_eq!(
            fold(u64::from(pseudo_header(s4.into(), d4.into(), 6, 0x1234))),
            naive(&ph)
        );

        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d6: Ipv6Addr = "fe80::ffff:1:2".parse().unwrap();
        let mut ph = Vec::new();
        ph.extend_from_slice(&s6.octets());
        ph.extend_from_slice(&d6.octets());
        ph.extend_from_slice(&0x0001_2345u32.to_be_bytes());
        ph.extend_from_slice(&[0, 0, 0, 6]);
        assert_eq!(
            fold(u64::from(pseudo_header(
                s6.into(),
                d6.into(),
                6,
                0x0001_2345
            ))),
            naive(&ph)
        );
    }
}
