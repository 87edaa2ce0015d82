//! Initial sequence numbers per RFC 6528: ISN = M + F(4-tuple, secret), with M a
//! clock ticking every 4 microseconds and F a keyed hash, so ISNs of one 4-tuple
//! increase monotonically across incarnations while being unpredictable off-path.

use crate::time::Instant;
use crate::wire::SeqNumber;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};

#[derive(Clone)]
pub struct IsnGenerator {
    secret: [u8; 32],
}

impl core::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IsnGenerator { .. }")
    }
}

fn put_addr(h: &mut Sha256, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(v4) => h.update(v4.octets()),
        IpAddr::V6(v6) => h.update(v6.octets()),
    }
    h.update(a.port().to_be_bytes());
}

impl IsnGenerator {
    pub fn new(secret: [u8; 32]) -> Self {
        IsnGenerator { secret }
    }

    pub fn generate(&self, now: Instant, local: SocketAddr, remote: SocketAddr) -> SeqNumber {
        let mut h = Sha256::new();
        h.update(self.secret);
        put_addr(&mut h, local);
        put_addr(&mut h, remote);
        let d = h.finalize();
        let f = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        let m = (now.as_micros() / 4) as u32;
        SeqNumber(m.wrapping_add(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn monotonic_per_tuple_and_keyed() {
        let g = IsnGenerator::new([7; 32]);
        let l = sa("10.0.0.1:80");
        let r = sa("10.0.0.2:5000");
        let a = g.generate(Instant::from_micros(0), l, r);
        let b = g.generate(Instant::from_micros(400), l, r);
        assert_eq!(b.diff(a), 100);
        let other = g.generate(Instant::from_micros(0), l, sa("10.0.0.2:5001"));
        assert_ne!(a, other);
        let g2 = IsnGenerator::new([8; 32]);
        assert_ne!(a, g2.generate(Instant::from_micros(0), l, r));
    }
}
