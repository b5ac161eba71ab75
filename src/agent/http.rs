//! Just enough HTTP/1.1 for the agent, over `std::net`, plain or TLS (the
//! `tls::Stream`): one request per connection (`Connection: close`), bodies
//! sized by `Content-Length`, every read and write under a deadline and a
//! size limit.
//!
//! Hand-written rather than a crate: the agent needs a dozen fixed endpoints
//! and hard limits, not a framework, and this adds nothing to the build.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use super::tls::{Peer, Stream};
use std::time::{Duration, Instant};

/// The largest request or response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;

/// A request as the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The `Authorization: Bearer …` token, if any.
    pub token: Option<String>,
    pub body: Vec<u8>,
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("timed out")]
    Timeout,
    #[error("the connection closed early")]
    Closed,
    #[error("the message is larger than the {0}-byte limit")]
    TooLarge(usize),
    #[error("malformed HTTP: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Io(io::Error),
}

fn io_err(e: io::Error) -> HttpError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::Timeout,
        io::ErrorKind::UnexpectedEof => HttpError::Closed,
        _ => HttpError::Io(e),
    }
}

/// Reads from a stream until a deadline.
struct Deadline<'a> {
    stream: &'a mut Stream,
    until: Instant,
}

impl Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::Timeout);
        }
        self.stream
            .set_read_timeout(Some(left))
            .map_err(HttpError::Io)?;
        loop {
            match self.stream.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(e)),
            }
        }
    }

    /// Reads up to the blank line ending a head; returns the head and any
    /// body bytes read past it.
    fn head(&mut self) -> Result<(String, Vec<u8>), HttpError> {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let rest = buf.split_off(i + 4);
                buf.truncate(i);
                let head = String::from_utf8(buf)
                    .map_err(|_| HttpError::Malformed("head is not UTF-8"))?;
                return Ok((head, rest));
            }
            if buf.len() > MAX_HEAD {
                return Err(HttpError::TooLarge(MAX_HEAD));
            }
            let n = self.read(&mut chunk)?;
            if n == 0 {
                return Err(HttpError::Closed);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn body(&mut self, mut have: Vec<u8>, len: usize) -> Result<Vec<u8>, HttpError> {
        if have.len() > len {
            return Err(HttpError::Malformed("more body than Content-Length"));
        }
        have.reserve(len - have.len());
        let mut chunk = [0u8; 16 * 1024];
        while have.len() < len {
            let want = (len - have.len()).min(chunk.len());
            let n = self.read(&mut chunk[..want])?;
            if n == 0 {
                return Err(HttpError::Closed);
            }
            have.extend_from_slice(&chunk[..n]);
        }
        Ok(have)
    }
}

/// The headers the agent cares about.
struct Head {
    first_line: String,
    content_length: usize,
    token: Option<String>,
}

fn parse_head(head: &str, max_body: usize) -> Result<Head, HttpError> {
    let mut lines = head.split("\r\n");
    let first_line = lines.next().unwrap_or_default().to_string();
    let mut content_length = 0usize;
    let mut token = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Malformed("a header without a colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value
                .parse()
                .map_err(|_| HttpError::Malformed("bad Content-Length"))?;
            if content_length > max_body {
                return Err(HttpError::TooLarge(max_body));
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::Malformed(
                "only Content-Length bodies are accepted",
            ));
        } else if name.eq_ignore_ascii_case("authorization") {
            token = bearer(value).map(str::to_string);
        }
    }
    Ok(Head {
        first_line,
        content_length,
        token,
    })
}

/// The token of an `Authorization` value in the `Bearer` scheme, whose
/// name is case-insensitive (RFC 7235) and followed by one or more spaces.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Reads one request, all of it within `timeout` and its body within
/// `max_body` bytes: a client that sends slowly or too much is cut off.
pub fn read_request(
    stream: &mut Stream,
    timeout: Duration,
    max_body: usize,
) -> Result<Request, HttpError> {
    let mut d = Deadline {
        stream,
        until: Instant::now() + timeout,
    };
    let (head, rest) = d.head()?;
    let h = parse_head(&head, max_body)?;
    let mut parts = h.first_line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed("bad request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("not HTTP/1.x"));
    }
    let body = d.body(rest, h.content_length)?;
    Ok(Request {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or_default().to_string(),
        token: h.token,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Content Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// Writes a whole response and closes the exchange.
pub fn write_response(
    stream: &mut Stream,
    status: u16,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    stream.set_write_timeout(Some(timeout))?;
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Sends one request and reads the whole response: its status and body.
/// `timeout` bounds the whole exchange after connecting; responses larger
/// than `max_body` are refused.
pub fn call(
    peer: Peer<'_>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
    timeout: Duration,
    max_body: usize,
) -> Result<(u16, Vec<u8>), CallError> {
    let addr = peer.addr;
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(CallError::Connect)?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let stream = stream.ok_or(CallError::Connect(last))?;
    let mut stream = Stream::connect(stream, addr, peer.tls).map_err(CallError::Tls)?;
    let _ = stream.set_nodelay(true);
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| CallError::Http(HttpError::Io(e)))?;
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| CallError::Http(io_err(e)))?;
    let mut d = Deadline {
        stream: &mut stream,
        until: Instant::now() + timeout,
    };
    let (head, rest) = d.head().map_err(CallError::Http)?;
    let h = parse_head(&head, max_body).map_err(CallError::Http)?;
    let status = h
        .first_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(CallError::Http(HttpError::Malformed("bad status line")))?;
    let body = d.body(rest, h.content_length).map_err(CallError::Http)?;
    Ok((status, body))
}

/// Reads a response's head within `timeout` and returns its status, for a
/// caller that wrote its own request (an alert's webhook); the body is left
/// unread.
pub fn read_status(stream: &mut Stream, timeout: Duration) -> Result<u16, HttpError> {
    let mut d = Deadline {
        stream,
        until: Instant::now() + timeout,
    };
    let (head, _) = d.head()?;
    let first = head.split("\r\n").next().unwrap_or_default();
    first
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(HttpError::Malformed("bad status line"))
}

/// A request that got no response.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error(transparent)]
    Http(HttpError),
    #[error("{0}")]
    Tls(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The scheme in any case, with any spaces before the token; other
    /// schemes and empty tokens are no token.
    #[test]
    fn bearer_scheme_in_any_case() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            for gap in [" ", "  ", "\t", " \t "] {
                let head = format!("GET / HTTP/1.1\r\nAuthorization: {scheme}{gap}tok-123 ");
                let h = parse_head(&head, 10).expect("parses");
                assert_eq!(h.token.as_deref(), Some("tok-123"), "{head:?}");
            }
        }
        for value in [
            "Basic tok-123",
            "Bearertok-123",
            "Bearer",
            "Bearer   ",
            "tok-123",
        ] {
            let head = format!("GET / HTTP/1.1\r\nAuthorization: {value}");
            let h = parse_head(&head, 10).expect("parses");
            assert_eq!(h.token, None, "{value:?}");
        }
    }

    proptest! {
        #[test]
        fn head_parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse_head(&s, 1000);
        }
    }
}
