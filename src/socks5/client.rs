//! The client's half: asks a SOCKS5 server to CONNECT to a target, with
//! RFC 1929 credentials if given.

use super::wire::{self, protocol_error, Reply, Target};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Username and password for a server that asks for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub pass: String,
}

/// CONNECT through the server at the other end of `s`. A failure reply is
/// the error the client's own connect would have given (refused,
/// unreachable, timed out).
pub async fn connect<S>(s: &mut S, target: &Target, creds: Option<&Credentials>) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let method = match creds {
        Some(_) => wire::METHOD_USERPASS,
        None => wire::METHOD_NO_AUTH,
    };
    // The greeting, then the request once the server chose: not both at
    // once. Saving the round trip breaks servers that read a message per
    // read and drop what came with it (microsocks does).
    s.write_all(&[wire::VERSION, 1, method]).await?;
    s.flush().await?;
    let mut sel = [0u8; 2];
    s.read_exact(&mut sel).await?;
    if sel[0] != wire::VERSION || sel[1] != method {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "SOCKS5 server accepts none of our authentication methods",
        ));
    }
    if let Some(c) = creds {
        s.write_all(&wire::encode_userpass(&c.user, &c.pass)?)
            .await?;
        s.flush().await?;
        let mut status = [0u8; 2];
        s.read_exact(&mut status).await?;
        if status[1] != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "SOCKS5 server refused our username and password",
            ));
        }
    }
    s.write_all(&wire::encode_connect(target)?).await?;
    s.flush().await?;
    let mut head = [0u8; 5];
    s.read_exact(&mut head).await?;
    if head[0] != wire::VERSION {
        return Err(protocol_error("reply is not SOCKS version 5"));
    }
    let len = wire::addr_len(head[3], head[4])
        .ok_or_else(|| protocol_error("reply with an unknown address type"))?;
    let mut rest = [0u8; 1 + 255 + 2];
    s.read_exact(&mut rest[1..len]).await?;
    match Reply::from_code(head[1]) {
        Reply::Succeeded => Ok(()),
        r => Err(r.to_error()),
    }
}
