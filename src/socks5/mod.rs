//! SOCKS5 (RFC 1928, RFC 1929): the concentrator's service (`--socks5`) and
//! the gateway's way of asking it for a destination.
//!
//! Written here rather than taken from a crate (docs/DEPENDENCIES.md): both
//! ends must run over the stack's own streams, map every failure to the reply
//! a client understands (and back to the error its own connect would give),
//! and read no more than a message's bounded length from a hostile peer.

pub mod client;
pub mod local;
pub mod server;
pub mod service;
pub mod wire;

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// Accounts of a SOCKS5 service (`--socks5-users FILE`): one `user:password`
/// per line, `#` comments and blank lines ignored. Only digests are kept.
#[derive(Debug, Clone, Default)]
pub struct Users {
    digests: HashMap<Vec<u8>, [u8; 32]>,
}

/// The text of a file holding passwords, refused if others may read it.
pub fn read_secret_file(path: &Path) -> Result<String, String> {
    crate::trusted_file::read(path, crate::trusted_file::Exposure::Secret)
        .map_err(|e| e.to_string())
}

fn digest(pass: &[u8]) -> [u8; 32] {
    Sha256::digest(pass).into()
}

impl Users {
    pub fn parse(text: &str) -> Result<Users, String> {
        let mut digests = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, pass)) = line.split_once(':') else {
                return Err(format!("line {}: expected user:password", n + 1));
            };
            if user.is_empty() || user.len() > 255 || pass.is_empty() || pass.len() > 255 {
                return Err(format!(
                    "line {}: user and password must each be 1 to 255 bytes",
                    n + 1
                ));
            }
            if digests
                .insert(user.as_bytes().to_vec(), digest(pass.as_bytes()))
                .is_some()
            {
                return Err(format!("line {}: user {user:?} given twice", n + 1));
            }
        }
        if digests.is_empty() {
            return Err("no user in the file".into());
        }
        Ok(Users { digests })
    }

    /// Reads FILE; refuses one that others may read (it holds passwords).
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = read_secret_file(path)?;
        Users::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `pass` is `user`'s password; the comparison takes the same
    /// time wherever the digests differ.
    pub fn check(&self, user: &[u8], pass: &[u8]) -> bool {
        let given = digest(pass);
        match self.digests.get(user) {
            Some(d) => d.iter().zip(given).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client::{self, Credentials};
    use super::server::{self, Refused};
    use super::wire::{Reply, Target};
    use super::*;

    #[test]
    fn users_file() {
        let u = Users::parse("# accounts\nalice:s3cret\n\nbob:pa:ss\n").unwrap();
        assert_eq!(u.len(), 2);
        assert!(u.check(b"alice", b"s3cret"));
        assert!(u.check(b"bob", b"pa:ss"));
        assert!(!u.check(b"alice", b"s3cre"));
        assert!(!u.check(b"carol", b"s3cret"));
        assert!(Users::parse("alice").is_err());
        assert!(Users::parse("alice:a\nalice:b").is_err());
        assert!(Users::parse(":x").is_err());
        assert!(Users::parse("# nobody\n").is_err());
    }

    /// Client and server over an in-memory pipe; the server answers `answer`.
    async fn exchange(
        users: Option<Users>,
        creds: Option<Credentials>,
        target: Target,
        answer: Reply,
    ) -> (Result<Target, Refused>, std::io::Result<()>) {
        let (mut c, mut s) = tokio::io::duplex(1024);
        let srv = tokio::spawn(async move {
            let r = server::accept(&mut s, users.as_ref()).await;
            if r.is_ok() {
                server::reply(&mut s, answer).await.unwrap();
            }
            r
        });
        let cl = client::connect(&mut c, &target, creds.as_ref()).await;
        drop(c);
        (srv.await.unwrap(), cl)
    }

    #[tokio::test]
    async fn connect_without_and_with_credentials() {
        let t = Target::Domain("example.org".into(), 443);
        let (s, c) = exchange(None, None, t.clone(), Reply::Succeeded).await;
        assert_eq!(s.unwrap(), t);
        c.unwrap();

        let users = Users::parse("alice:s3cret").unwrap();
        let good = Credentials {
            user: "alice".into(),
            pass: "s3cret".into(),
        };
        let (s, c) = exchange(Some(users.clone()), Some(good), t.clone(), Reply::Succeeded).await;
        assert_eq!(s.unwrap(), t);
        c.unwrap();

        let bad = Credentials {
            user: "alice".into(),
            pass: "guess".into(),
        };
        let (s, c) = exchange(Some(users.clone()), Some(bad), t.clone(), Reply::Succeeded).await;
        assert!(matches!(s, Err(Refused::BadCredentials)));
        assert_eq!(c.unwrap_err().kind(), std::io::ErrorKind::PermissionDenied);

        // A server with users does not take a client without credentials.
        let (s, c) = exchange(Some(users), None, t, Reply::Succeeded).await;
        assert!(matches!(s, Err(Refused::NoMethod)));
        assert_eq!(c.unwrap_err().kind(), std::io::ErrorKind::PermissionDenied);
    }

    #[tokio::test]
    async fn failure_replies_become_the_errors_of_a_connect() {
        let t = Target::Addr("192.0.2.1:80".parse().unwrap());
        for (reply, kind) in [
            (
                Reply::ConnectionRefused,
                std::io::ErrorKind::ConnectionRefused,
            ),
            (Reply::HostUnreachable, std::io::ErrorKind::HostUnreachable),
            (Reply::TtlExpired, std::io::ErrorKind::TimedOut),
            (Reply::NotAllowed, std::io::ErrorKind::PermissionDenied),
        ] {
            let (_, c) = exchange(None, None, t.clone(), reply).await;
            assert_eq!(c.unwrap_err().kind(), kind, "{reply:?}");
        }
    }

    #[tokio::test]
    async fn other_commands_and_garbage_are_refused() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // BIND (2) to 10.0.0.1:80.
        let (mut c, mut s) = tokio::io::duplex(1024);
        let srv = tokio::spawn(async move { server::accept(&mut s, None).await });
        c.write_all(&[5, 1, 0, 5, 2, 0, 1, 10, 0, 0, 1, 0, 80])
            .await
            .unwrap();
        let mut r = [0u8; 12];
        c.read_exact(&mut r).await.unwrap();
        assert_eq!(&r[..4], &[5, 0, 5, 7]);
        assert!(matches!(
            srv.await.unwrap(),
            Err(Refused::Request(Reply::CommandNotSupported))
        ));
        // SOCKS4, and an unknown address type.
        for bytes in [&[4u8, 1, 0, 80][..], &[5, 1, 0, 5, 1, 0, 9, 1, 2][..]] {
            let (mut c, mut s) = tokio::io::duplex(1024);
            let srv = tokio::spawn(async move { server::accept(&mut s, None).await });
            c.write_all(bytes).await.unwrap();
            drop(c);
            assert!(srv.await.unwrap().is_err());
        }
    }
}
