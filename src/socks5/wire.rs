//! SOCKS version 5 on the wire (RFC 1928, and RFC 1929's username/password
//! sub-negotiation): the messages both ends exchange, encoded into and decoded
//! from byte buffers. The async halves (`server.rs`, `client.rs`) read exactly
//! the lengths these functions name, so a hostile peer can make neither end
//! read more than a request's 262 bytes.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const VERSION: u8 = 5;
/// Version of the username/password sub-negotiation (RFC 1929).
pub const USERPASS_VERSION: u8 = 1;

pub const METHOD_NO_AUTH: u8 = 0x00;
pub const METHOD_USERPASS: u8 = 0x02;
pub const METHOD_NONE_ACCEPTABLE: u8 = 0xff;

pub const CMD_CONNECT: u8 = 0x01;

const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

/// Where a CONNECT goes: an address, or a host name the server resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Addr(SocketAddr),
    Domain(String, u16),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(a) => write!(f, "{a}"),
            Target::Domain(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// The REP field of a reply (RFC 1928 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reply {
    Succeeded = 0,
    GeneralFailure = 1,
    NotAllowed = 2,
    NetworkUnreachable = 3,
    HostUnreachable = 4,
    ConnectionRefused = 5,
    TtlExpired = 6,
    CommandNotSupported = 7,
    AddressNotSupported = 8,
}

impl Reply {
    pub fn from_code(code: u8) -> Reply {
        match code {
            0 => Reply::Succeeded,
            2 => Reply::NotAllowed,
            3 => Reply::NetworkUnreachable,
            4 => Reply::HostUnreachable,
            5 => Reply::ConnectionRefused,
            6 => Reply::TtlExpired,
            7 => Reply::CommandNotSupported,
            8 => Reply::AddressNotSupported,
            _ => Reply::GeneralFailure,
        }
    }

    /// The reply for a failed attempt to reach the target.
    pub fn for_error(e: &io::Error) -> Reply {
        use io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => Reply::ConnectionRefused,
            NetworkUnreachable => Reply::NetworkUnreachable,
            // A name that does not resolve is a host we cannot reach.
            HostUnreachable | NotFound | AddrNotAvailable => Reply::HostUnreachable,
            TimedOut => Reply::TtlExpired,
            _ => match e.raw_os_error() {
                Some(libc::ENETUNREACH) => Reply::NetworkUnreachable,
                Some(libc::EHOSTUNREACH) => Reply::HostUnreachable,
                _ => Reply::GeneralFailure,
            },
        }
    }

    /// What a client makes of a failure reply: the error its own connect
    /// would have given.
    pub fn to_error(self) -> io::Error {
        use io::ErrorKind::*;
        let kind = match self {
            Reply::ConnectionRefused => ConnectionRefused,
            Reply::NetworkUnreachable => NetworkUnreachable,
            Reply::HostUnreachable => HostUnreachable,
            Reply::TtlExpired => TimedOut,
            Reply::NotAllowed => PermissionDenied,
            Reply::CommandNotSupported | Reply::AddressNotSupported => Unsupported,
            Reply::Succeeded | Reply::GeneralFailure => Other,
        };
        io::Error::new(kind, format!("SOCKS5 server: {}", self.text()))
    }

    pub fn text(self) -> &'static str {
        match self {
            Reply::Succeeded => "succeeded",
            Reply::GeneralFailure => "general failure",
            Reply::NotAllowed => "connection not allowed by ruleset",
            Reply::NetworkUnreachable => "network unreachable",
            Reply::HostUnreachable => "host unreachable",
            Reply::ConnectionRefused => "connection refused",
            Reply::TtlExpired => "TTL expired",
            Reply::CommandNotSupported => "command not supported",
            Reply::AddressNotSupported => "address type not supported",
        }
    }
}

/// Why a peer's message was refused.
pub fn protocol_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("SOCKS5: {what}"))
}

/// How many more bytes the address of type `atyp` takes, given its first
/// byte (the length of a domain name); the port's two bytes included.
pub fn addr_len(atyp: u8, first: u8) -> Option<usize> {
    match atyp {
        ATYP_IPV4 => Some(4 + 2),
        ATYP_IPV6 => Some(16 + 2),
        ATYP_DOMAIN if first > 0 => Some(1 + first as usize + 2),
        _ => None,
    }
}

/// Decode an address of type `atyp` from `b` (as long as [`addr_len`] says).
pub fn decode_addr(atyp: u8, b: &[u8]) -> io::Result<Target> {
    let port = u16::from_be_bytes([b[b.len() - 2], b[b.len() - 1]]);
    match atyp {
        ATYP_IPV4 => {
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Ok(Target::Addr(SocketAddr::new(ip.into(), port)))
        }
        ATYP_IPV6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[..16]);
            Ok(Target::Addr(SocketAddr::new(
                Ipv6Addr::from(o).into(),
                port,
            )))
        }
        ATYP_DOMAIN => {
            let name = std::str::from_utf8(&b[1..b.len() - 2])
                .map_err(|_| protocol_error("host name is not UTF-8"))?;
            // A name that is an address literal is that address.
            match name.parse::<IpAddr>() {
                Ok(ip) => Ok(Target::Addr(SocketAddr::new(ip, port))),
                Err(_) => Ok(Target::Domain(name.to_owned(), port)),
            }
        }
        _ => Err(protocol_error("unknown address type")),
    }
}

/// Append ATYP, address and port.
pub fn encode_addr(t: &Target, out: &mut Vec<u8>) -> io::Result<()> {
    match t {
        Target::Addr(SocketAddr::V4(a)) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&a.ip().octets());
        }
        Target::Addr(SocketAddr::V6(a)) => {
            out.push(ATYP_IPV6);
            out.extend_from_slice(&a.ip().octets());
        }
        Target::Domain(name, _) => {
            let len = u8::try_from(name.len())
                .ok()
                .filter(|&l| l > 0)
                .ok_or_else(|| protocol_error("host name must be 1 to 255 bytes"))?;
            out.push(ATYP_DOMAIN);
            out.push(len);
            out.extend_from_slice(name.as_bytes());
        }
    }
    let port = match t {
        Target::Addr(a) => a.port(),
        Target::Domain(_, p) => *p,
    };
    out.extend_from_slice(&port.to_be_bytes());
    Ok(())
}

/// A CONNECT request.
pub fn encode_connect(t: &Target) -> io::Result<Vec<u8>> {
    let mut out = vec![VERSION, CMD_CONNECT, 0];
    encode_addr(t, &mut out)?;
    Ok(out)
}

/// A reply with its bound address (`BND.ADDR`/`BND.PORT`).
pub fn encode_reply(reply: Reply, bound: SocketAddr) -> Vec<u8> {
    let mut out = vec![VERSION, reply as u8, 0];
    encode_addr(&Target::Addr(bound), &mut out).expect("an address always encodes");
    out
}

/// RFC 1929's request: version, username, password (each 1 to 255 bytes).
pub fn encode_userpass(user: &str, pass: &str) -> io::Result<Vec<u8>> {
    let mut out = vec![USERPASS_VERSION];
    for field in [user, pass] {
        let len = u8::try_from(field.len())
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| protocol_error("username and password must be 1 to 255 bytes"))?;
        out.push(len);
        out.extend_from_slice(field.as_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(t: Target) {
        let req = encode_connect(&t).unwrap();
        assert_eq!(&req[..3], &[5, 1, 0]);
        let (atyp, rest) = (req[3], &req[4..]);
        assert_eq!(addr_len(atyp, rest[0]), Some(rest.len()));
        assert_eq!(decode_addr(atyp, rest).unwrap(), t);
    }

    #[test]
    fn connect_requests_round_trip() {
        round_trip(Target::Addr("10.1.2.3:80".parse().unwrap()));
        round_trip(Target::Addr("[2001:db8::7]:443".parse().unwrap()));
        round_trip(Target::Domain("example.org".into(), 8080));
    }

    #[test]
    fn a_host_name_that_is_an_address_is_that_address() {
        let mut b = vec![9];
        b.extend_from_slice(b"127.0.0.1");
        b.extend_from_slice(&[0, 80]);
        assert_eq!(
            decode_addr(ATYP_DOMAIN, &b).unwrap(),
            Target::Addr("127.0.0.1:80".parse().unwrap())
        );
    }

    #[test]
    fn bad_addresses_are_refused() {
        assert_eq!(addr_len(0x09, 0), None);
        assert_eq!(addr_len(ATYP_DOMAIN, 0), None, "an empty name");
        assert!(decode_addr(ATYP_DOMAIN, &[2, 0xff, 0xfe, 0, 80]).is_err());
        assert!(encode_connect(&Target::Domain(String::new(), 80)).is_err());
        assert!(encode_connect(&Target::Domain("x".repeat(256), 80)).is_err());
        assert!(encode_userpass("", "p").is_err());
    }

    #[test]
    fn errors_map_to_replies_and_back() {
        use io::ErrorKind::*;
        for (kind, reply) in [
            (ConnectionRefused, Reply::ConnectionRefused),
            (NetworkUnreachable, Reply::NetworkUnreachable),
            (HostUnreachable, Reply::HostUnreachable),
            (TimedOut, Reply::TtlExpired),
        ] {
            assert_eq!(Reply::for_error(&io::Error::from(kind)), reply);
            assert_eq!(reply.to_error().kind(), kind);
        }
        let enet = io::Error::from_raw_os_error(libc::ENETUNREACH);
        assert_eq!(Reply::for_error(&enet), Reply::NetworkUnreachable);
        assert_eq!(Reply::from_code(0x42), Reply::GeneralFailure);
        let r = encode_reply(Reply::NotAllowed, "0.0.0.0:0".parse().unwrap());
        assert_eq!(r, vec![5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
