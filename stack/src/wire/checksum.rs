//! RFC 1071 Internet checksum.
//!
//! STUB: the wire helper implements these bodies.

use std::net::IpAddr;

/// Add `data` to a running 32-bit one's-complement accumulator (not yet folded).
/// Odd-length data is padded with a zero byte; callers chaining several slices must
/// pass even-length slices except the last.
pub fn accumulate(acc: u32, data: &[u8]) -> u32 {
    let _ = (acc, data);
    todo!()
}

/// Fold a 32/64-bit accumulator to 16 bits (no complement).
pub fn fold(acc: u64) -> u16 {
    let _ = acc;
    todo!()
}

/// Accumulator for the TCP/UDP pseudo header (IPv4 or IPv6) with `length` bytes of
/// transport header + payload. `src` and `dst` must be of the same family.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, length: u32) -> u32 {
    let _ = (src, dst, protocol, length);
    todo!()
}

/// Complete checksum (complemented) over `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let _ = data;
    todo!()
}
