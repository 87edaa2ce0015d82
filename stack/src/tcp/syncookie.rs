//! SYN cookies (RFC 4987 §3.6): when a listener's half-open queue is full, the
//! SYN/ACK's ISN carries what the connection needs, so the SYN leaves no state
//! and the third ACK rebuilds it. As in Linux:
//!
//! - the ISN holds a keyed MAC of the 4-tuple and the client's ISN, a coarse
//!   clock (64 s ticks: a cookie is good for one to two ticks) and an index
//!   into a table of MSS values;
//! - with timestamps, the low six bits of our TSval carry the window scale
//!   the client offered and whether it permits SACK (the third ACK echoes
//!   them in TSecr); without timestamps the connection has neither.
//!
//! Cookie layout, most significant bit first:
//!
//! ```text
//! [ tick mod 32: 5 bits ][ MSS index: 3 bits ][ MAC: 24 bits ]
//! ```
//!
//! An off-path attacker completing a handshake must guess the 24-bit MAC for
//! its tuple and ISN. MPTCP keys of cookie connections derive from the same
//! secret and the cookie, so the third ACK's MP_CAPABLE can be checked too.

use crate::time::Instant;
use crate::wire::SeqNumber;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};

/// MSS values a cookie can encode; the largest not above the client's is
/// used. 1440 and 1460 are Ethernet for IPv6 and IPv4, 1220 IPv6's minimum,
/// 1380 and 1300 common tunnels, 8960 jumbo frames.
pub const MSS_TABLE: [u16; 8] = [256, 536, 1220, 1300, 1380, 1440, 1460, 8960];

/// Seconds per clock tick.
const TICK_SECS: u64 = 64;
const TICK_BITS: u32 = 5;
const MAC_BITS: u32 = 24;
const MAC_MASK: u32 = (1 << MAC_BITS) - 1;

/// Low TSval bits carrying the options (Linux's `TSBITS`).
pub const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
const WSCALE_NONE: u32 = 0xf;
const SACK_BIT: u32 = 1 << 4;

/// What the SYN offered that the cookie remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieOptions {
    /// The MSS to use toward the client (a table value).
    pub mss: u16,
    /// The client's window scale, if both sides scale.
    pub window_scale: Option<u8>,
    pub sack: bool,
}

/// The secret and the arithmetic of SYN cookies.
#[derive(Clone)]
pub struct CookieJar {
    secret: [u8; 32],
}

impl core::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CookieJar { .. }")
    }
}

fn put_addr(h: &mut Sha256, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(v4) => h.update(v4.octets()),
        IpAddr::V6(v6) => h.update(v6.octets()),
    }
    h.update(a.port().to_be_bytes());
}

fn tick(now: Instant) -> u64 {
    now.as_millis() / 1000 / TICK_SECS
}

/// The table index for a client offering `mss` (none: RFC 9293's default).
fn mss_index(mss: u16) -> usize {
    MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0)
}

impl CookieJar {
    pub fn new(secret: [u8; 32]) -> Self {
        CookieJar { secret }
    }

    fn hasher(&self, label: &[u8], local: SocketAddr, remote: SocketAddr) -> Sha256 {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(label);
        put_addr(&mut h, local);
        put_addr(&mut h, remote);
        h
    }

    fn mac(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        irs: SeqNumber,
        tick: u64,
        index: usize,
    ) -> u32 {
        let mut h = self.hasher(b"cookie", local, remote);
        h.update(irs.0.to_be_bytes());
        h.update(tick.to_be_bytes());
        h.update([index as u8]);
        let d = h.finalize();
        u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & MAC_MASK
    }

    /// The ISN of a SYN/ACK answering a SYN with ISN `irs` that offered `mss`,
    /// and the MSS the connection will use.
    pub fn isn(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        irs: SeqNumber,
        mss: u16,
    ) -> (SeqNumber, u16) {
        let t = tick(now);
        let index = mss_index(mss);
        let mac = self.mac(local, remote, irs, t, index);
        let tick_field = (t as u32) & ((1 << TICK_BITS) - 1);
        let cookie = (tick_field << (32 - TICK_BITS)) | ((index as u32) << MAC_BITS) | mac;
        (SeqNumber(cookie), MSS_TABLE[index])
    }

    /// Whether `cookie` names a tick in which it could have been made: if
    /// not, no check could pass for any client ISN (a random number passes
    /// this in one case of 16).
    pub fn plausible(&self, now: Instant, cookie: SeqNumber) -> bool {
        let tick_field = cookie.0 >> (32 - TICK_BITS);
        let t_now = tick(now);
        (0..2u64)
            .filter_map(|age| t_now.checked_sub(age))
            .any(|t| (t as u32) & ((1 << TICK_BITS) - 1) == tick_field)
    }

    /// The MSS encoded in `cookie` if it is one we made, within the last one
    /// to two ticks, for this 4-tuple and client ISN.
    pub fn check(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        irs: SeqNumber,
        cookie: SeqNumber,
    ) -> Option<u16> {
        let c = cookie.0;
        let tick_field = c >> (32 - TICK_BITS);
        let index = ((c >> MAC_BITS) & 0x7) as usize;
        let t_now = tick(now);
        (0..2u64)
            .filter_map(|age| t_now.checked_sub(age))
            .filter(|t| (*t as u32) & ((1 << TICK_BITS) - 1) == tick_field)
            .any(|t| self.mac(local, remote, irs, t, index) == c & MAC_MASK)
            .then_some(MSS_TABLE[index])
    }

    /// The timestamp offset of a cookie connection: fixed per 4-tuple, since
    /// nothing is stored between SYN and ACK.
    pub fn ts_offset(&self, local: SocketAddr, remote: SocketAddr) -> u32 {
        let d = self.hasher(b"tsoff", local, remote).finalize();
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    /// Our MPTCP key on a cookie connection with ISN `iss`: the third ACK's
    /// MP_CAPABLE must echo it. `draw` numbers the candidates, for a key
    /// whose token must have a prefix (the first that has it is the key).
    pub fn mptcp_key(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNumber,
        draw: u32,
    ) -> u64 {
        let mut h = self.hasher(b"mptcp key", local, remote);
        h.update(iss.0.to_be_bytes());
        h.update(draw.to_be_bytes());
        let d = h.finalize();
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }
}

/// The TSval of a cookie SYN/ACK: `tsval` (what the connection would send)
/// with its low bits replaced by the options, moved back a step if that made
/// it later, so that the connection's later TSvals never go backwards.
pub fn encode_tsval(tsval: u32, window_scale: Option<u8>, sack: bool) -> u32 {
    let mut bits = window_scale.map_or(WSCALE_NONE, |w| u32::from(w.min(14)));
    if sack {
        bits |= SACK_BIT;
    }
    let v = (tsval & !TS_MASK) | bits;
    if (v.wrapping_sub(tsval) as i32) > 0 {
        v.wrapping_sub(TS_MASK + 1)
    } else {
        v
    }
}

/// The options a third ACK's TSecr carries back: (window scale, SACK); `None`
/// if the bits cannot have come from [`encode_tsval`].
pub fn decode_tsecr(tsecr: u32) -> Option<(Option<u8>, bool)> {
    let ws = tsecr & 0xf;
    if tsecr & TS_MASK & !(0xf | SACK_BIT) != 0 {
        return None;
    }
    let window_scale = (ws != WSCALE_NONE).then_some(ws as u8);
    Some((window_scale, tsecr & SACK_BIT != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn at_secs(s: u64) -> Instant {
        Instant::from_millis(s * 1000)
    }

    #[test]
    fn cookie_round_trips_mss_and_rejects_other_tuples_and_isns() {
        let jar = CookieJar::new([5; 32]);
        let (l, r) = (sa("10.0.0.1:80"), sa("10.0.0.2:40000"));
        let irs = SeqNumber(0xdead_beef);
        for (offered, used) in [
            (1460, 1460),
            (1400, 1380),
            (1452, 1440),
            (536, 536),
            (100, 256),
            (9000, 8960),
            (65535, 8960),
        ] {
            let (isn, mss) = jar.isn(at_secs(1000), l, r, irs, offered);
            assert_eq!(mss, used, "offered {offered}");
            assert_eq!(jar.check(at_secs(1000), l, r, irs, isn), Some(used));
            assert!(jar.plausible(at_secs(1000), isn));
            assert!(!jar.plausible(at_secs(1000 + 64 * 5), isn));
            assert_eq!(jar.check(at_secs(1000), l, r, irs + 1, isn), None);
            assert_eq!(
                jar.check(at_secs(1000), l, sa("10.0.0.2:40001"), irs, isn),
                None
            );
            assert_eq!(jar.check(at_secs(1000), l, r, irs, isn + 1), None);
            let other = CookieJar::new([6; 32]);
            assert_eq!(other.check(at_secs(1000), l, r, irs, isn), None);
        }
    }

    #[test]
    fn cookie_expires_after_one_to_two_ticks() {
        let jar = CookieJar::new([5; 32]);
        let (l, r) = (sa("[2001:db8::1]:443"), sa("[2001:db8::2]:5555"));
        let irs = SeqNumber(7);
        // Made at the start of a tick: good until the end of the next one.
        let (isn, _) = jar.isn(at_secs(64 * 100), l, r, irs, 1440);
        assert!(jar.check(at_secs(64 * 100), l, r, irs, isn).is_some());
        assert!(jar.check(at_secs(64 * 101 + 63), l, r, irs, isn).is_some());
        assert!(jar.check(at_secs(64 * 102), l, r, irs, isn).is_none());
        // Not before it was made, nor 32 ticks later (the field wraps).
        assert!(jar.check(at_secs(64 * 99), l, r, irs, isn).is_none());
        assert!(jar.check(at_secs(64 * 132), l, r, irs, isn).is_none());
    }

    #[test]
    fn a_guessed_cookie_rarely_passes() {
        // 24 MAC bits: of 2^20 guesses about 2^20 / 2^24 * 2 ticks pass.
        let jar = CookieJar::new([9; 32]);
        let (l, r) = (sa("10.0.0.1:80"), sa("10.0.0.2:40000"));
        let now = at_secs(5000);
        let passed = (0..1u32 << 20)
            .filter(|&i| {
                let guess = SeqNumber(i.wrapping_mul(0x9e37_79b9));
                jar.check(now, l, r, SeqNumber(1), guess).is_some()
            })
            .count();
        assert!(passed < 8, "{passed} of 2^20 guesses passed");
    }

    #[test]
    fn tsval_carries_options_and_never_runs_ahead() {
        for tsval in [0u32, 1, 63, 64, 1000, u32::MAX, u32::MAX - 70] {
            for ws in [None, Some(0), Some(7), Some(14)] {
                for sack in [false, true] {
                    let v = encode_tsval(tsval, ws, sack);
                    assert!((tsval.wrapping_sub(v) as i32) >= 0, "{tsval} -> {v}");
                    assert!(tsval.wrapping_sub(v) < 64);
                    assert_eq!(decode_tsecr(v), Some((ws, sack)));
                }
            }
        }
        // A window scale above 14 is sent as 14 (RFC 7323 §2.3).
        assert_eq!(
            decode_tsecr(encode_tsval(5, Some(15), false)),
            Some((Some(14), false))
        );
        // A bit we never set.
        assert_eq!(decode_tsecr(0x20 | 0x0f), None);
    }

    #[test]
    fn derived_values_are_keyed_and_per_tuple() {
        let jar = CookieJar::new([1; 32]);
        let (l, r) = (sa("10.0.0.1:80"), sa("10.0.0.2:40000"));
        let r2 = sa("10.0.0.2:40001");
        assert_eq!(jar.ts_offset(l, r), jar.ts_offset(l, r));
        assert_ne!(jar.ts_offset(l, r), jar.ts_offset(l, r2));
        let k = jar.mptcp_key(l, r, SeqNumber(1), 0);
        assert_eq!(k, jar.mptcp_key(l, r, SeqNumber(1), 0));
        assert_ne!(k, jar.mptcp_key(l, r, SeqNumber(2), 0));
        assert_ne!(k, jar.mptcp_key(l, r, SeqNumber(1), 1));
        assert_ne!(k, CookieJar::new([2; 32]).mptcp_key(l, r, SeqNumber(1), 0));
    }
}
