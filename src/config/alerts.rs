//! The `[[alerts]]` entries of the configuration file: where incidents go
//! (a webhook or a command), which of them, and how each is checked when
//! the file is loaded. Sending them is `alert`'s business.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::parse_interval;

/// One `[[alerts]]` entry: where incidents go, and which of them.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    pub to: AlertTarget,
    /// `webhook`: the URL, or the variable holding it (it may hold a secret).
    pub url: Option<String>,
    pub url_env: Option<String>,
    /// `webhook`: `json` (the incident) or `slack` (`{"text": …}`).
    #[serde(default)]
    pub format: AlertFormat,
    /// `webhook`: a PEM file of the CA an `https` URL's certificate is signed by.
    pub ca: Option<PathBuf>,
    /// `webhook`: header values, each `{ env = "VAR" }` or `{ file = "PATH" }`.
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderSource>,
    /// `command`: the program and its arguments; the incident is its stdin.
    pub run: Option<Vec<String>>,
    /// Which events (default: all).
    pub on: Option<Vec<AlertEvent>>,
    /// Drift of fewer rows is not announced.
    pub min_rows: Option<u64>,
    /// Announced once this many runs in a row found it (default 1).
    pub after_runs: Option<u32>,
    /// Repeated this often while open (an interval; default: never).
    pub remind: Option<String>,
    /// Per attempt (an interval; default 10s).
    pub timeout: Option<String>,
}

/// Where an alert goes.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AlertTarget {
    Webhook,
    Command,
}

/// A webhook's body.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AlertFormat {
    #[default]
    Json,
    Slack,
}

/// What an alert is sent for.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum AlertEvent {
    Drift,
    Error,
    Recovered,
    Overdue,
}

/// Where a header's value is read from: never from the file itself.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum HeaderSource {
    Env(String),
    File(PathBuf),
}

impl AlertConfig {
    pub(super) fn validate(&self, i: usize) -> Result<(), String> {
        let place = format!("[[alerts]] #{}", i + 1);
        let webhook = self.to == AlertTarget::Webhook;
        if webhook && self.url.is_some() == self.url_env.is_some() {
            return Err(format!(
                "{place}: a webhook needs exactly one of url and url_env"
            ));
        }
        if !webhook && self.run.as_ref().is_none_or(|r| r.is_empty()) {
            return Err(format!(
                "{place}: a command needs run = [\"PROGRAM\", \"ARG\"…]"
            ));
        }
        for (field, v) in [("remind", &self.remind), ("timeout", &self.timeout)] {
            if let Some(v) = v {
                parse_interval(v).map_err(|e| format!("{place} {field}: {e}"))?;
            }
        }
        Ok(())
    }
}
