//! Engine configuration. Defaults suit a 1 Gbit/s path with 50 ms RTT.

use crate::wire::TxChecksum;
use core::time::Duration;

/// Congestion control algorithm for each TCP connection (MPTCP subflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CcAlgorithm {
    NewReno,
    #[default]
    Cubic,
    /// MPTCP's Linked Increases (RFC 6356): coupled across a connection's
    /// subflows, NewReno on a single path.
    Lia,
    /// Opportunistic LIA (Khalili et al. 2012): coupled, Pareto-optimal.
    Olia,
}

/// Keepalive probing (RFC 9293 §3.8.4); off unless configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub idle: Duration,
    pub interval: Duration,
    pub probes: u32,
}

#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Largest IP packet we send or expect; the advertised MSS derives from it.
    pub mtu: usize,
    /// Upper bound of a connection's send buffer (grown on demand up to this).
    pub send_buffer: usize,
    /// Upper bound of a connection's receive buffer; bounds the advertised window.
    pub recv_buffer: usize,
    pub window_scaling: bool,
    pub timestamps: bool,
    pub sack: bool,
    /// Nagle's algorithm (RFC 9293 §3.7.4). Disable for latency-sensitive apps.
    pub nagle: bool,
    /// Delayed-ACK timeout; `None` acknowledges every segment at once.
    pub delayed_ack: Option<Duration>,
    pub initial_rto: Duration,
    pub min_rto: Duration,
    pub max_rto: Duration,
    /// Retransmissions of one segment before the connection is dropped.
    pub max_retries: u32,
    /// Retransmissions of a SYN before giving up (Linux: `tcp_syn_retries`).
    pub syn_retries: u32,
    /// Retransmissions of a SYN/ACK before a half-open connection is dropped
    /// (Linux: `tcp_synack_retries`): 5 gives up after about a minute.
    pub synack_retries: u32,
    /// Maximum segment lifetime; TIME_WAIT lasts 2 * msl.
    pub msl: Duration,
    pub keepalive: Option<Keepalive>,
    pub cc: CcAlgorithm,
    /// Initial congestion window in segments (RFC 6928).
    pub initial_cwnd_segments: usize,
    /// Out-of-order ranges held per connection before new holes are refused.
    pub max_ooo_ranges: usize,
    /// Duplicate ACK threshold for fast retransmit.
    pub dupthresh: usize,
    /// How connections fill the checksum of the segments they send: `Partial`
    /// when the device completes it (the daemon's TUN with offloads, when
    /// nothing reads the packets on the way: no capture, no fault injector).
    pub tx_checksum: TxChecksum,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mtu: 1500,
            // Linux's ceiling (`tcp_wmem[2]`): 4 MiB keeps 670 Mbit/s in
            // flight over 50 ms. More is not free where it is not needed:
            // with no loss the window grows as far as the buffer lets it,
            // the surplus waits in the receiver's socket, and bytes written
            // 8 MiB before they are sent have left the CPU's caches by then
            // (4 GiB chargen transfers into Linux: 1.30 times the throughput
            // at 4 MiB over TCP, 1.12 over MPTCP; docs/BENCHMARKS.md).
            send_buffer: 4 << 20,
            // 1 Gbit/s * 50 ms = 6.25 MB in flight; round up.
            recv_buffer: 8 << 20,
            window_scaling: true,
            timestamps: true,
            sack: true,
            nagle: true,
            delayed_ack: Some(Duration::from_millis(40)),
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            max_retries: 15,
            syn_retries: 6,
            synack_retries: 5,
            msl: Duration::from_secs(30),
            keepalive: None,
            cc: CcAlgorithm::Cubic,
            initial_cwnd_segments: 10,
            max_ooo_ranges: 64,
            dupthresh: 3,
            tx_checksum: TxChecksum::Full,
        }
    }
}

/// How the data of an MPTCP connection is spread over its subflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchedulerKind {
    /// The lowest-RTT active subflow whose congestion window is open; backups
    /// only when no active subflow can send (Linux's default).
    #[default]
    MinRtt,
    /// Active subflows in turn.
    RoundRobin,
    /// Every byte on every subflow.
    Redundant,
    /// Primary plus overflow: like `MinRtt`, but backups also take what the
    /// active subflows cannot, as soon as all of them are full (not only once
    /// none is left).
    Overflow,
}

impl SchedulerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SchedulerKind::MinRtt => "minrtt",
            SchedulerKind::RoundRobin => "roundrobin",
            SchedulerKind::Redundant => "redundant",
            SchedulerKind::Overflow => "overflow",
        }
    }
}

/// Multipath TCP (RFC 8684).
#[derive(Debug, Clone)]
pub struct MptcpConfig {
    /// Offer MPTCP on active opens and accept it on passive ones.
    pub enabled: bool,
    /// Ask for DSS checksums (they are used if either side asks; always with v0).
    pub checksum: bool,
    /// Protocol versions: RFC 8684 v1 (what Linux speaks) and RFC 6824 v0. A
    /// client offers the highest allowed; a server answers the one offered.
    pub v1: bool,
    pub v0: bool,
    /// A client whose v1 SYN got plain TCP back tries once more with v0 (when v0
    /// is allowed).
    pub retry_v0: bool,
    /// Subflows a connection may have besides the first (Linux: `subflows`).
    pub max_subflows: usize,
    /// ADD_ADDRs a connection acts on (Linux: `add_addr_accepted`).
    pub max_add_addr_accepted: usize,
    pub scheduler: SchedulerKind,
    /// MP_JOIN SYNs a connection takes, live or not: this many at once, then
    /// one more every `join_refill` (a peer opening and resetting joins in a
    /// loop is refused once they are spent).
    pub join_attempts: u32,
    pub join_refill: Duration,
    /// Act on v0 ADD_ADDR, which has no HMAC: anyone who can put a segment in
    /// the window can make us open a subflow to an address of its choice.
    pub accept_v0_add_addr: bool,
    /// Tell peers not to open subflows to the address and port they reached
    /// us on (RFC 8684 §3.1, MP_CAPABLE's "C" flag; Linux's
    /// `net.mptcp.allow_join_initial_addr_port = 0`): for an instance behind
    /// a load balancer, where a join to the shared address could reach
    /// another instance. Peers join the addresses we announce instead.
    pub deny_join_id0: bool,
    /// Draw keys whose tokens start with these bits, so that a balancer
    /// that routes MP_JOINs by token finds the instance that owns it.
    pub token_prefix: Option<TokenPrefix>,
}

/// The first `bits` bits of every token a stack hands out are `id`
/// (`--instance-id ID/BITS`). A key is drawn again until its token fits:
/// 2^bits draws on average, so `bits` is at most 8 (a cookie SYN/ACK
/// derives its key by as many hashes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPrefix {
    id: u32,
    bits: u8,
}

impl TokenPrefix {
    pub const MAX_BITS: u8 = 8;

    /// `None` unless `1 <= bits <= MAX_BITS` and `id < 2^bits`.
    pub fn new(id: u32, bits: u8) -> Option<TokenPrefix> {
        ((1..=Self::MAX_BITS).contains(&bits) && id < (1 << bits))
            .then_some(TokenPrefix { id, bits })
    }

    pub fn id(self) -> u32 {
        self.id
    }

    pub fn bits(self) -> u8 {
        self.bits
    }

    /// Whether `token` starts with the prefix.
    pub fn matches(self, token: u32) -> bool {
        token >> (32 - u32::from(self.bits)) == self.id
    }

    /// `outer` (an instance's prefix, if any) followed by `inner_bits` bits
    /// holding `inner` (a shard's index); `None` if more than
    /// [`MAX_BITS`](Self::MAX_BITS) in all or `inner` does not fit.
    pub fn nested(outer: Option<TokenPrefix>, inner: u32, inner_bits: u8) -> Option<TokenPrefix> {
        if inner_bits == 0 {
            return outer;
        }
        let (id, bits) = outer.map_or((0, 0), |p| (p.id, p.bits));
        if inner >= 1 << inner_bits {
            return None;
        }
        TokenPrefix::new((id << inner_bits) | inner, bits + inner_bits)
    }

    /// The `inner_bits` bits of `token` that follow `outer` (see [`nested`](Self::nested)).
    pub fn inner(outer: Option<TokenPrefix>, inner_bits: u8, token: u32) -> u32 {
        if inner_bits == 0 {
            return 0;
        }
        let skip = u32::from(outer.map_or(0, |p| p.bits));
        (token << skip) >> (32 - u32::from(inner_bits))
    }
}

impl Default for MptcpConfig {
    fn default() -> Self {
        // The limits are Linux's defaults (`ip mptcp limits show` on 6.x).
        MptcpConfig {
            enabled: false,
            checksum: false,
            v1: true,
            v0: false,
            retry_v0: true,
            max_subflows: 2,
            max_add_addr_accepted: 0,
            scheduler: SchedulerKind::MinRtt,
            join_attempts: 8,
            join_refill: Duration::from_secs(10),
            accept_v0_add_addr: false,
            deny_join_id0: false,
            token_prefix: None,
        }
    }
}

/// The seed of a stack's randomness: 256 bits for ChaCha20, from which the
/// stack draws its ISN secret (RFC 6528), MPTCP keys and nonces, ephemeral
/// ports and timestamp offsets, each from a stream of its own. A stack on a
/// network must get it from the OS's entropy ([`Seed::from_bytes`]); a fixed
/// one ([`Seed::from_u64`]) makes every secret predictable and is for tests
/// and simulations that replay a run. It never prints its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Seed([u8; 32]);

impl Seed {
    pub const fn from_bytes(bytes: [u8; 32]) -> Seed {
        Seed(bytes)
    }

    /// A seed spread from a small number (SplitMix64): for tests only.
    pub fn from_u64(n: u64) -> Seed {
        let mut state = n;
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        Seed(out)
    }

    pub(crate) fn bytes(&self) -> [u8; 32] {
        self.0
    }
}

impl From<u64> for Seed {
    fn from(n: u64) -> Seed {
        Seed::from_u64(n)
    }
}

impl core::fmt::Debug for Seed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Seed(..)")
    }
}

/// What others can make the stack send, per second (see `tcp::ratelimit`).
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Challenge ACKs (RFC 5961 §7) of all connections together; each
    /// second's quota is drawn between half and one and a half times this.
    pub challenge_acks: u32,
    /// RSTs in answer to segments (closed ports, refused joins, unacceptable
    /// SYN/ACKs), with bursts of up to a tenth of a second's worth.
    pub rsts: u32,
    /// ICMP / ICMPv6 echo replies, likewise.
    pub echo_replies: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        // Linux's defaults where it has one (icmp_msgs_per_sec = 1000, the
        // historic tcp_challenge_ack_limit = 1000).
        RateLimits {
            challenge_acks: 1000,
            rsts: 1000,
            echo_replies: 1000,
        }
    }
}

/// When a listener answers SYNs with SYN cookies (RFC 4987) instead of
/// half-open connections (Linux: `tcp_syncookies` 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SynCookies {
    /// Never: a full backlog drops SYNs.
    Off,
    /// Once a listener's backlog is full (the default).
    #[default]
    OnOverflow,
    /// For every SYN to a listener.
    Always,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Seeds every random choice (see [`Seed`]). The default is all zeros:
    /// a stack on a network must be given one from the OS.
    pub seed: Seed,
    pub tcp: TcpConfig,
    /// Live connections before new ones are refused (a connection in
    /// TIME_WAIT counts until it is reduced to a TIME_WAIT record).
    pub max_connections: usize,
    /// TIME_WAIT records kept (as Linux's `tcp_max_tw_buckets`): past this a
    /// closing connection skips TIME_WAIT (counted `time_wait_overflow`).
    pub max_time_wait: usize,
    /// Pending (handshaking + unaccepted) connections per listener.
    pub backlog: usize,
    pub syn_cookies: SynCookies,
    /// TTL / hop limit of packets we emit.
    pub hop_limit: u8,
    pub mptcp: MptcpConfig,
    pub limits: RateLimits,
    /// Heap bytes all connections together may hold (buffers and records).
    /// Past half of it buffers stop growing and shrink as they drain; at it,
    /// new connections, joins and out-of-order data are refused until memory
    /// is given back (see `memory::Pressure`).
    pub max_memory: usize,
    /// Connections one source (an IPv4 address, an IPv6 /64) may open to us
    /// at a time; further SYNs are answered with a RST.
    pub max_conns_per_source: usize,
    /// Which of several stacks sharing one seed and one set of addresses
    /// this is (the daemon's `--threads`): see [`Shard`].
    pub shard: Shard,
}

/// One of `count` stacks that share a seed and addresses, each owning the
/// connections the host hands it (one queue of a multiqueue TUN each).
/// They share the ISN and SYN cookie secrets, so that each can check the
/// others' cookies, but draw keys, nonces and the rest from streams of
/// their own, and pick ephemeral ports from disjoint sets (port ≡ index mod
/// count), so that two shards never open the same 4-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u16,
    pub count: u16,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: Seed::default(),
            tcp: TcpConfig::default(),
            max_connections: 65536,
            max_time_wait: 65536,
            backlog: 128,
            syn_cookies: SynCookies::OnOverflow,
            hop_limit: 64,
            mptcp: MptcpConfig::default(),
            limits: RateLimits::default(),
            max_memory: 1 << 30,
            max_conns_per_source: 65536,
            shard: Shard::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TokenPrefix;

    #[test]
    fn a_token_prefix_is_its_first_bits() {
        let p = TokenPrefix::new(5, 4).unwrap();
        assert!(p.matches(0x5fff_ffff));
        assert!(p.matches(0x5000_0000));
        assert!(!p.matches(0x4fff_ffff));
        assert!(!p.matches(0x6000_0000));
        let one = TokenPrefix::new(1, 1).unwrap();
        assert!(one.matches(0x8000_0000) && !one.matches(0x7fff_ffff));
        let eight = TokenPrefix::new(255, 8).unwrap();
        assert!(eight.matches(0xff00_0000) && !eight.matches(0xfe00_0000));
        for (id, bits) in [(0, 0), (2, 1), (16, 4), (0, 9), (256, 8)] {
            assert_eq!(TokenPrefix::new(id, bits), None, "{id}/{bits}");
        }
    }

    #[test]
    fn a_shard_index_follows_the_instance_id() {
        let inst = TokenPrefix::new(1, 1);
        let p = TokenPrefix::nested(inst, 2, 2).unwrap();
        assert_eq!((p.id(), p.bits()), (0b110, 3));
        assert!(p.matches(0xc000_0000) && !p.matches(0xe000_0000));
        assert_eq!(TokenPrefix::inner(inst, 2, 0xc000_0000), 2);
        assert_eq!(TokenPrefix::inner(inst, 2, 0xe7ff_ffff), 3);
        assert_eq!(TokenPrefix::inner(None, 1, 0x8000_0000), 1);
        assert_eq!(TokenPrefix::inner(inst, 0, 0xffff_ffff), 0);
        assert_eq!(TokenPrefix::nested(None, 0, 0), None);
        assert_eq!(TokenPrefix::nested(inst, 0, 0), inst);
        assert_eq!(TokenPrefix::nested(None, 4, 2), None);
        assert_eq!(TokenPrefix::nested(TokenPrefix::new(1, 7), 1, 2), None);
    }
}
