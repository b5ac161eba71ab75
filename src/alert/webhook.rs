//! Sending an alert to a webhook: one `POST` of a JSON body, over the
//! agent's HTTP/1.1 code and its rustls set-up (`https` trusts the public
//! CAs, or only the CA file the alert names). A 2xx answer is delivered; a
//! 429, a 5xx or no answer is worth another attempt; any other answer is
//! not. The URL and header values may be secrets (a Slack webhook URL is
//! one): no message here contains them.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::agent::http;
use crate::agent::tls::{ClientTls, Stream};
use crate::config::{AlertConfig, HeaderSource};

use super::Failure;

/// A webhook ready to be called: its URL and header values read.
pub struct Webhook {
    /// `HOST:PORT`, as connected to and as a certificate must name.
    addr: String,
    /// The `Host` header.
    host: String,
    /// Path and query.
    target: String,
    tls: Option<ClientTls>,
    headers: Vec<(String, String)>,
}

// By hand: the URL and header values may be secrets.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Webhook")
    }
}

impl Webhook {
    /// Reads the URL (from the file or its variable) and the header values
    /// (from their variables or files, relative to `dir`).
    pub fn new(c: &AlertConfig, dir: Option<&Path>) -> Result<Webhook, Failure> {
        let permanent = |m: String| Failure::permanent(m);
        let url = match (&c.url, &c.url_env) {
            (Some(u), _) => u.clone(),
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                permanent(format!(
                    "url_env names the variable {var}, which is not set"
                ))
            })?,
            (None, None) => return Err(permanent("no url or url_env".into())),
        };
        let parsed = url::Url::parse(url.trim())
            .map_err(|e| permanent(format!("the webhook URL does not parse: {e}")))?;
        let https = match parsed.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(permanent(format!(
                    "the webhook URL's scheme is {other:?}; write http:// or https://"
                )))
            }
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| permanent("the webhook URL names no host".into()))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let tls = match (https, &c.ca) {
            (false, _) => None,
            (true, Some(ca)) => Some(
                ClientTls::from_ca_file(&within(dir, ca))
                    .map_err(|e| permanent(format!("ca: {e}")))?,
            ),
            (true, None) => Some(ClientTls::public_roots().map_err(|e| permanent(e.to_string()))?),
        };
        let mut headers = Vec::new();
        for (name, source) in &c.headers {
            let value = match source {
                HeaderSource::Env(var) => std::env::var(var).map_err(|_| {
                    permanent(format!("header {name}: its variable {var} is not set"))
                })?,
                HeaderSource::File(f) => std::fs::read_to_string(within(dir, f))
                    .map_err(|e| {
                        permanent(format!("header {name}: cannot read {}: {e}", f.display()))
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            };
            let bad = |s: &str| s.is_empty() || s.bytes().any(|b| b < 0x20 && b != b'\t');
            if bad(name.as_str()) || name.contains(':') || bad(value.as_str()) {
                return Err(permanent(format!(
                    "header {name:?}: a name or value that is empty or holds a line break"
                )));
            }
            headers.push((name.clone(), value));
        }
        let host_header = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let mut target = parsed.path().to_string();
        if let Some(q) = parsed.query() {
            target.push('?');
            target.push_str(q);
        }
        Ok(Webhook {
            addr: format!("{host}:{port}"),
            host: host_header,
            target,
            tls,
            headers,
        })
    }

    /// One attempt: connects, posts `body` and reads the answer's status,
    /// all within `timeout`.
    pub fn post(&self, body: &[u8], timeout: Duration) -> Result<(), Failure> {
        let started = Instant::now();
        let left = || {
            timeout
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(1))
        };
        let addrs: Vec<_> = self
            .addr
            .to_socket_addrs()
            .map_err(|e| Failure::retry(format!("cannot resolve the webhook's host: {e}")))?
            .collect();
        let mut last = String::from("the host resolves to no address");
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, left()) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        let tcp = tcp.ok_or_else(|| Failure::retry(format!("cannot connect: {last}")))?;
        let _ = tcp.set_read_timeout(Some(left()));
        let mut stream = Stream::connect(tcp, &self.addr, self.tls.as_ref())
            .map_err(|e| Failure::retry(format!("TLS: {e}")))?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: driftsum/{}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.target,
            self.host,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let sent = stream
            .set_write_timeout(Some(left()))
            .and_then(|()| stream.write_all(head.as_bytes()))
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.flush());
        sent.map_err(|e| Failure::retry(format!("sending: {e}")))?;
        let status = http::read_status(&mut stream, left())
            .map_err(|e| Failure::retry(format!("no answer: {e}")))?;
        match status {
            200..=299 => Ok(()),
            429 | 500..=599 => Err(Failure::retry(format!("answered {status}"))),
            _ => Err(Failure::permanent(format!("answered {status}"))),
        }
    }
}

/// A path from the config, relative to its directory.
fn within(dir: Option<&Path>, p: &Path) -> PathBuf {
    match dir {
        Some(d) if p.is_relative() => d.join(p),
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(text: &str) -> Result<Webhook, Failure> {
        let c: crate::config::Config = toml::from_str(text).unwrap();
        Webhook::new(&c.alerts[0], None)
    }

    #[test]
    fn urls_and_headers() {
        let w =
            hook("[[alerts]]\nto = \"webhook\"\nurl = \"http://h.example:8080/a/b?x=1\"").unwrap();
        assert_eq!(w.addr, "h.example:8080");
        assert_eq!(w.host, "h.example:8080");
        assert_eq!(w.target, "/a/b?x=1");
        let w = hook("[[alerts]]\nto = \"webhook\"\nurl = \"https://hooks.example/T/1\"").unwrap();
        assert_eq!(
            (w.addr.as_str(), w.host.as_str()),
            ("hooks.example:443", "hooks.example")
        );
        assert!(w.tls.is_some());
        for bad in ["ftp://x/", "not a url", "http://"] {
            let text = format!("[[alerts]]\nto = \"webhook\"\nurl = \"{bad}\"");
            let e = hook(&text).unwrap_err();
            assert!(!e.retry, "{bad}");
        }
    }

    #[test]
    fn header_values_are_never_shown() {
        let text = "[[alerts]]\nto = \"webhook\"\nurl = \"http://x/\"\n\
                    headers.Authorization = { env = \"DRIFTSUM_TEST_NO_SUCH_VARIABLE\" }";
        let e = hook(text).unwrap_err();
        assert!(
            e.message.contains("DRIFTSUM_TEST_NO_SUCH_VARIABLE"),
            "{}",
            e.message
        );
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("tok"), "s3cret\nX-Evil: 1\n").unwrap();
        let text = format!(
            "[[alerts]]\nto = \"webhook\"\nurl = \"http://x/\"\n\
             headers.Authorization = {{ file = \"{}\" }}",
            d.path().join("tok").display()
        );
        let e = hook(&text).unwrap_err();
        assert!(e.message.contains("line break"), "{}", e.message);
        assert!(!e.message.contains("s3cret"), "{}", e.message);
    }
}
