//! The last line of defence against printing a password: every secret the
//! command line (or a password variable) holds, cut out of whatever the
//! binary is about to print on stderr, however a library quoted it. URLs are
//! redacted where they are printed; this catches the rest (a driver echoing
//! part of a URL, clap quoting an argument it could not place).

use driftsum::source::secrets::percent_decode as percent_decoded;
use driftsum::source::url::{redact, secret_spans};

/// Shorter secrets are not cut out: they would match ordinary words.
const MIN_LEN: usize = 3;

/// Environment variables the drivers read a password from.
const PASSWORD_VARS: &[&str] = &["PGPASSWORD", "MYSQL_PWD"];

pub struct Secrets {
    args: Vec<String>,
    secrets: Vec<String>,
}

impl Secrets {
    /// The secrets of this process's arguments and environment.
    pub fn of_process() -> Secrets {
        let args: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let env = PASSWORD_VARS.iter().filter_map(|v| std::env::var(v).ok());
        Secrets::new(args, env)
    }

    pub fn new(args: Vec<String>, env: impl Iterator<Item = String>) -> Secrets {
        let mut secrets: Vec<String> = env.collect();
        for arg in &args {
            // `--opt=VALUE` is quoted by clap as VALUE alone.
            let value = arg.split_once('=').map(|(_, v)| v);
            for text in std::iter::once(arg.as_str()).chain(value) {
                for span in secret_spans(text) {
                    let s = &text[span];
                    secrets.push(s.to_string());
                    secrets.push(percent_decoded(s));
                    // A value hidden to the end of the string: its first word
                    // (up to `&` or a space) is what a driver would read.
                    let word = s
                        .trim_start()
                        .split(['&', ' '])
                        .next()
                        .unwrap_or("")
                        .trim_matches(['\'', '"']);
                    secrets.push(percent_decoded(word));
                    secrets.push(word.to_string());
                }
            }
        }
        secrets.retain(|s| s.chars().count() >= MIN_LEN);
        // Longest first, so a secret holding another is cut out whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Secrets { args, secrets }
    }

    /// `message` with every argument that names a URL with a password shown
    /// redacted, and every remaining secret replaced by `***`.
    pub fn scrub(&self, message: &str) -> String {
        let mut out = message.to_string();
        for arg in &self.args {
            let value = arg.split_once('=').map(|(_, v)| v);
            for quoted in std::iter::once(arg.as_str()).chain(value) {
                let shown = redact(quoted);
                if shown != quoted {
                    out = out.replace(quoted, &shown);
                }
            }
        }
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_out_every_form_of_a_password() {
        let s = Secrets::new(
            vec![
                "--source=postgres://u:S3cr3t/Pa55@h/db".into(),
                "host=h password='p%41ss word' dbname=d".into(),
            ],
            ["envpass1".to_string()].into_iter(),
        );
        let m =
            s.scrub("bad postgres://u:S3cr3t/Pa55@h/db; also S3cr3t/Pa55, pAss, p%41ss, envpass1");
        for leaked in ["S3cr3t", "pAss", "p%41ss", "envpass1"] {
            assert!(!m.contains(leaked), "{m}");
        }
        assert!(m.contains("postgres://u:***@h/db"), "{m}");
    }
}
