//! HTTPS for the agent: the rustls configurations of `driftsum serve` (its
//! certificate chain and key, from PEM files) and of a comparer (the CA it
//! trusts, from a PEM file), [`Stream`], the connection the HTTP code reads
//! and writes whether it is plain or TLS, and the rule for where the agent
//! may listen without TLS.
//!
//! A comparer trusts only the CA file it is given, never the public roots:
//! an agent's certificate comes from its operator's own CA. Not here: HTTP
//! itself (`http`), tokens (`auth`), TLS to the databases (`source::tls`).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::crypto::CryptoProvider;
use rustls::ServerConnection;
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// How long a comparer waits for the TLS handshake once connected.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate, key or CA file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// The agent's side: its certificate chain and private key.
#[derive(Clone)]
pub struct ServerTls(Arc<ServerConfig>);

// By hand: nothing of the key is shown.
impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

/// A comparer's side: the CA an agent's certificate must be signed by.
#[derive(Clone)]
pub struct ClientTls(Arc<ClientConfig>);

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate of a PEM file, at least one.
fn certificates(file: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = file.display();
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(|e| TlsError(format!("{what} {shown}: cannot read it: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{what} {shown}: not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{what} {shown}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(certs)
}

impl ServerTls {
    /// The certificate chain (the agent's certificate first) and its
    /// private key, each a PEM file.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let chain = certificates(cert, "--tls-cert")?;
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            TlsError(format!(
                "--tls-key {}: not a readable PEM private key: {e}",
                key.display()
            ))
        })?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| {
                TlsError(format!(
                    "--tls-cert {} with --tls-key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
        Ok(ServerTls(Arc::new(config)))
    }
}

impl ClientTls {
    /// Trusts the CA certificates of a PEM file, and only those.
    pub fn from_ca_file(ca: &Path) -> Result<ClientTls, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in certificates(ca, "--ca")? {
            roots.add(cert).map_err(|e| {
                TlsError(format!("--ca {}: not a CA certificate: {e}", ca.display()))
            })?;
        }
        ClientTls::trusting(roots)
    }

    /// A client configuration trusting `roots` only.
    fn trusting(roots: RootCertStore) -> Result<ClientTls, TlsError> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ClientTls(Arc::new(config)))
    }

    /// Trusts the public web CAs (webpki-roots), for endpoints on the
    /// internet such as alert webhooks; an agent never is one.
    pub fn public_roots() -> Result<ClientTls, TlsError> {
        ClientTls::trusting(RootCertStore::from_iter(
            webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
        ))
    }
}

/// Added to a plain-HTTP exchange that went wrong the way one with an
/// HTTPS agent does.
pub const PLAIN_HINT: &str =
    " (if the agent serves HTTPS, give the CA of its certificate with --ca FILE)";

/// Where a comparer's request goes: the agent's `HOST:PORT`, and the CA
/// its certificate must be signed by (HTTPS), or none (plain HTTP).
#[derive(Clone, Copy)]
pub struct Peer<'a> {
    pub addr: &'a str,
    pub tls: Option<&'a ClientTls>,
}

/// Whether `listen` is loopback only: every address it names is, so only
/// this machine can connect. An address that does not resolve is not.
pub fn is_loopback(listen: &str) -> bool {
    match listen.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// Refuses to serve in clear text on an address other machines can reach,
/// unless told to (`insecure_plaintext`): the token and the data would
/// cross the network readable by anyone on the way.
pub fn check_listen(
    listen: &str,
    tls: Option<&ServerTls>,
    insecure_plaintext: bool,
) -> Result<(), TlsError> {
    if tls.is_some() || insecure_plaintext || is_loopback(listen) {
        return Ok(());
    }
    Err(TlsError(format!(
        "refusing to listen on {listen} without TLS: the token and the rows would cross \
         the network in clear text. Give --tls-cert FILE --tls-key FILE (comparers then \
         give --ca FILE), or --insecure-plaintext on a network you trust"
    )))
}

/// The host part of `HOST:PORT` (`[v6]:PORT` too), the name an agent's
/// certificate must hold.
fn host_of(addr: &str) -> &str {
    if let Some(v6) = addr.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    addr.rsplit_once(':').map_or(addr, |(h, _)| h)
}

/// One agent connection, plain or TLS, as the HTTP code reads and writes
/// it: timeouts are set on the socket beneath, and a TLS read stops at its
/// deadline even while the handshake is still going on.
pub struct Stream(Inner);

enum Inner {
    Plain(TcpStream),
    Tls(Box<Tls>),
}

struct Tls {
    conn: Connection,
    tcp: TcpStream,
    /// When reads must have ended (from the last read timeout set).
    until: Option<Instant>,
}

impl Stream {
    /// A connection the agent accepted: TLS when it serves HTTPS. The
    /// handshake happens as the request is read, under its deadline.
    pub fn accept(tcp: TcpStream, tls: Option<&ServerTls>) -> io::Result<Stream> {
        let Some(tls) = tls else {
            return Ok(Stream(Inner::Plain(tcp)));
        };
        let conn = ServerConnection::new(tls.0.clone()).map_err(io::Error::other)?;
        Ok(Stream(Inner::Tls(Box::new(Tls {
            conn: Connection::Server(conn),
            tcp,
            until: None,
        }))))
    }

    /// A connection to the agent at `addr` (`HOST:PORT`): TLS when the
    /// comparer was given a CA, with the handshake done here so that an
    /// untrusted agent is refused before the token is sent.
    pub fn connect(tcp: TcpStream, addr: &str, tls: Option<&ClientTls>) -> Result<Stream, String> {
        let Some(tls) = tls else {
            return Ok(Stream(Inner::Plain(tcp)));
        };
        let host = host_of(addr);
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host:?} cannot be checked against a certificate: {e}"))?;
        let conn = ClientConnection::new(tls.0.clone(), name).map_err(|e| e.to_string())?;
        let mut t = Tls {
            conn: Connection::Client(conn),
            tcp,
            until: None,
        };
        t.handshake(HANDSHAKE_TIMEOUT).map_err(|e| explain(&e))?;
        Ok(Stream(Inner::Tls(Box::new(t))))
    }

    fn tcp(&self) -> &TcpStream {
        match &self.0 {
            Inner::Plain(s) => s,
            Inner::Tls(t) => &t.tcp,
        }
    }

    /// The same as [`TcpStream::set_read_timeout`]; for TLS, the time left
    /// also bounds the handshake.
    pub fn set_read_timeout(&mut self, d: Option<Duration>) -> io::Result<()> {
        if let Inner::Tls(t) = &mut self.0 {
            t.until = d.map(|d| Instant::now() + d);
        }
        self.tcp().set_read_timeout(d)
    }

    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(d)
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nodelay(on)
    }
}

impl Tls {
    /// Sends what rustls has to send.
    fn send(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.tcp)?;
        }
        Ok(())
    }

    /// Reads one batch of TLS records from the socket, within the deadline.
    fn receive(&mut self) -> io::Result<usize> {
        if let Some(until) = self.until {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.tcp.set_read_timeout(Some(left))?;
        }
        let n = self.conn.read_tls(&mut self.tcp)?;
        if let Err(e) = self.conn.process_new_packets() {
            // Tell the peer why (an alert), then give up.
            let _ = self.send();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(n)
    }

    fn handshake(&mut self, timeout: Duration) -> io::Result<()> {
        self.until = Some(Instant::now() + timeout);
        self.tcp.set_write_timeout(Some(timeout))?;
        while self.conn.is_handshaking() {
            self.send()?;
            if self.conn.is_handshaking() && self.receive()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        self.send()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = match &mut self.0 {
            Inner::Plain(s) => return s.read(buf),
            Inner::Tls(t) => t,
        };
        loop {
            match t.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            t.send()?;
            // At the end of the stream the reader says so on the next turn.
            t.receive()?;
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let t = match &mut self.0 {
            Inner::Plain(s) => return s.write(buf),
            Inner::Tls(t) => t,
        };
        if t.conn.is_handshaking() {
            // A request that failed before the handshake ended: no answer.
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the TLS handshake did not complete",
            ));
        }
        let n = t.conn.writer().write(buf)?;
        t.send()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Inner::Plain(s) => s.flush(),
            Inner::Tls(t) => {
                t.conn.writer().flush()?;
                t.send()
            }
        }
    }
}

/// A failed handshake, in the terms of the command line.
fn explain(e: &io::Error) -> String {
    let message = e.to_string();
    let hint = if message.contains("UnknownIssuer") {
        "the agent's certificate is not signed by the CA given with --ca"
    } else if message.contains("not valid for name") || message.contains("NotValidForName") {
        "the agent's certificate does not name the host in driftsum://HOST:PORT; \
         connect by a name it holds"
    } else if message.contains("expired") || message.contains("Expired") {
        "the agent's certificate has expired"
    } else if matches!(
        e.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    ) {
        "does the agent serve HTTPS (driftsum serve --tls-cert)? Without --ca, a \
         comparer speaks plain HTTP"
    } else if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        "no TLS answer in time; does the agent serve HTTPS (driftsum serve --tls-cert)?"
    } else {
        return format!("TLS handshake failed: {message}");
    };
    format!("TLS handshake failed: {message} ({hint})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(host_of("agent.example:7878"), "agent.example");
        assert_eq!(host_of("127.0.0.1:7878"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7878"), "::1");
    }

    #[test]
    fn plaintext_only_on_loopback() {
        for ok in ["127.0.0.1:7878", "[::1]:7878", "localhost:0"] {
            assert!(check_listen(ok, None, false).is_ok(), "{ok}");
        }
        for far in ["0.0.0.0:7878", "[::]:7878", "10.1.2.3:7878"] {
            let e = check_listen(far, None, false).expect_err(far).to_string();
            assert!(e.contains("--insecure-plaintext"), "{e}");
            assert!(check_listen(far, None, true).is_ok());
        }
    }
}
