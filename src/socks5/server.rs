//! The server's half of a SOCKS5 handshake: method selection, RFC 1929
//! credentials when the service has users, and the request. Only CONNECT is
//! served; BIND and UDP ASSOCIATE get "command not supported".

use super::wire::{self, protocol_error, Reply, Target};
use super::Users;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a client may take over its handshake (greeting, credentials and
/// request): a peer that opens and says nothing does not hold a task.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the handshake ended when it did not produce a CONNECT.
#[derive(Debug)]
pub enum Refused {
    /// The client offered no method we accept (answered 0xFF).
    NoMethod,
    /// Wrong username or password (answered with a failure status).
    BadCredentials,
    /// A request we do not serve (answered with its reply code).
    Request(Reply),
    /// Not SOCKS5, or a broken message, or the connection ended.
    Io(io::Error),
}

impl From<io::Error> for Refused {
    fn from(e: io::Error) -> Self {
        Refused::Io(e)
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NoMethod => f.write_str("no acceptable authentication method"),
            Refused::BadCredentials => f.write_str("bad username or password"),
            Refused::Request(r) => write!(f, "request refused: {}", r.text()),
            Refused::Io(e) => write!(f, "{e}"),
        }
    }
}

/// A handshake that produced no CONNECT, and what the caller owes the client.
#[derive(Debug)]
pub enum Failed {
    /// The client was answered (a refusal it understands): just close.
    Answered(io::Error),
    /// A broken stream, not SOCKS5, or silence past [`HANDSHAKE_TIMEOUT`]:
    /// reset the client.
    Reset(io::Error),
}

/// [`accept`] within [`HANDSHAKE_TIMEOUT`], its refusal sorted into what
/// the caller owes the client.
pub async fn accept_within<S>(s: &mut S, users: Option<&Users>) -> Result<Target, Failed>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept(s, users)).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(Refused::Io(e))) => Err(Failed::Reset(e)),
        Ok(Err(r)) => Err(Failed::Answered(io::Error::new(
            io::ErrorKind::PermissionDenied,
            r.to_string(),
        ))),
        Err(_) => Err(Failed::Reset(io::Error::new(
            io::ErrorKind::TimedOut,
            "no SOCKS5 request within the handshake timeout",
        ))),
    }
}

/// Runs the server's side up to the request and returns its target. The
/// caller answers with [`reply`] once it knows how the CONNECT went.
pub async fn accept<S>(s: &mut S, users: Option<&Users>) -> Result<Target, Refused>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await?;
    if head[0] != wire::VERSION {
        return Err(protocol_error("not SOCKS version 5").into());
    }
    let mut methods = [0u8; 255];
    let methods = &mut methods[..head[1] as usize];
    s.read_exact(methods).await?;
    let wanted = match users {
        Some(_) => wire::METHOD_USERPASS,
        None => wire::METHOD_NO_AUTH,
    };
    if !methods.contains(&wanted) {
        s.write_all(&[wire::VERSION, wire::METHOD_NONE_ACCEPTABLE])
            .await?;
        return Err(Refused::NoMethod);
    }
    s.write_all(&[wire::VERSION, wanted]).await?;
    if let Some(users) = users {
        let ok = read_credentials(s, users).await?;
        s.write_all(&[wire::USERPASS_VERSION, if ok { 0 } else { 1 }])
            .await?;
        if !ok {
            return Err(Refused::BadCredentials);
        }
    }
    let mut req = [0u8; 5];
    s.read_exact(&mut req).await?;
    if req[0] != wire::VERSION {
        return Err(protocol_error("request is not SOCKS version 5").into());
    }
    let Some(len) = wire::addr_len(req[3], req[4]) else {
        reply(s, Reply::AddressNotSupported).await?;
        return Err(Refused::Request(Reply::AddressNotSupported));
    };
    let mut addr = [0u8; 1 + 255 + 2];
    addr[0] = req[4];
    s.read_exact(&mut addr[1..len]).await?;
    let target = wire::decode_addr(req[3], &addr[..len])?;
    if req[1] != wire::CMD_CONNECT {
        reply(s, Reply::CommandNotSupported).await?;
        return Err(Refused::Request(Reply::CommandNotSupported));
    }
    Ok(target)
}

async fn read_credentials<S: AsyncRead + Unpin>(s: &mut S, users: &Users) -> io::Result<bool> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await?;
    if head[0] != wire::USERPASS_VERSION {
        return Err(protocol_error(
            "bad username/password sub-negotiation version",
        ));
    }
    let mut user = [0u8; 255];
    let user = &mut user[..head[1] as usize];
    s.read_exact(user).await?;
    let mut plen = [0u8; 1];
    s.read_exact(&mut plen).await?;
    let mut pass = [0u8; 255];
    let pass = &mut pass[..plen[0] as usize];
    s.read_exact(pass).await?;
    Ok(users.check(user, pass))
}

/// Answers the request. The bound address is not meaningful to a CONNECT
/// client and would tell it about the server's own sockets: all zeros.
pub async fn reply<S: AsyncWrite + Unpin>(s: &mut S, r: Reply) -> io::Result<()> {
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    s.write_all(&wire::encode_reply(r, unspecified)).await?;
    s.flush().await
}
