//! The configuration file (`--config driftsum.toml`): the two sides, the
//! run history, the tiers and how often each runs its levels, and per-table
//! and per-column settings for how the replica names and stores things.
//! Which tables fall in which tier, and what is due, is `plan`'s business.
//!
//! ```toml
//! [source]
//! url_env = "SHOP_URL"      # or url = "postgres://app@db/shop"
//! [replica]
//! url = "sqlite:/var/lib/app/replica.db"
//! [history]                 # default: driftsum-history.sqlite beside this file
//! url = "sqlite:/var/lib/driftsum/history.db"   # or postgres://… (schema = "driftsum")
//! keep = "180d"
//!
//! [tiers.critical]          # how often each level runs; "off" disables it
//! count = "5m"
//! keys = "15m"
//! full = "6h"
//!
//! [defaults]
//! tier = "critical"         # the tier of tables not named below
//! exclude_tables = ["tmp_*"] # names or glob patterns (`*`, `?`)
//! stored_as = "iso8601"     # how the replica stores temporal values
//! time_zone = "UTC"         # offset assumed for replica instants stored without one
//!
//! [tables.orders]           # the source's name for the table
//! tier = "critical"
//! replica = "orders_copy"   # the replica's name, when it differs
//! key = ["id"]              # key columns, when there is no primary key
//! exclude_columns = ["updated_at"]
//! stored_as = "unix_seconds"
//!
//! where = "status <> 'draft'"   # SQL for both sides (also source_where, target_where)
//! since = "placed_at=2024-01-01" # typed, engine-neutral range (also until)
//! updated_column = "updated_at"  # rows updated in the last min_age are
//! min_age = "5m"                 # still being replicated: left out
//!
//! [tables.orders.columns.placed_at]
//! replica = "placed"        # the replica's column name
//! stored_as = "unix_millis" # auto | iso8601 | unix_seconds | unix_millis | julian_day
//! time_zone = "+02:00"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use driftsum_core::coerce::TimeStorage;
use serde::Deserialize;

mod alerts;
pub use alerts::{AlertConfig, AlertEvent, AlertFormat, AlertTarget, HeaderSource};

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub source: Option<SideConfig>,
    pub replica: Option<SideConfig>,
    pub history: Option<HistoryConfig>,
    #[serde(default)]
    pub tiers: BTreeMap<String, TierConfig>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub tables: BTreeMap<String, TableConfig>,
    /// Where incidents are announced (`[[alerts]]`, see docs/alerts.md).
    #[serde(default)]
    pub alerts: Vec<AlertConfig>,
    /// Prometheus metrics (`[metrics] textfile`).
    pub metrics: Option<MetricsConfig>,
    /// The file's directory, where relative paths start (set by `load`).
    #[serde(skip)]
    pub dir: Option<PathBuf>,
}

/// Settings for every table not saying otherwise; unset fields inherit.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub stored_as: Option<TimeStorage>,
    pub time_zone: Option<String>,
    /// The tier of a table the config does not put in one.
    pub tier: Option<String>,
    /// Tables never checked: names or glob patterns (`*`, `?`).
    #[serde(default)]
    pub exclude_tables: Vec<String>,
    /// The update-time column `min_age` reads (a table's own wins).
    pub updated_column: Option<String>,
}

/// One side's database: its URL in the file, or the environment variable
/// holding it (so that a password need never be written in the file).
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SideConfig {
    pub url: Option<String>,
    pub url_env: Option<String>,
    /// A file holding the server's password (its first line), so that the
    /// URL need hold none; relative to the config file's directory.
    pub password_file: Option<PathBuf>,
    /// The environment variable holding the server's password.
    pub password_env: Option<String>,
    /// For an agent side (`driftsum://HOST:PORT`): a file holding its token,
    /// relative to the config file's directory.
    pub token_file: Option<PathBuf>,
    /// For an agent side: the environment variable holding its token.
    pub token_env: Option<String>,
}

// By hand: the URL may hold a password.
impl std::fmt::Debug for SideConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideConfig")
            .field("url", &self.url.as_deref().map(crate::source::url::redact))
            .field("url_env", &self.url_env)
            .field("password_file", &self.password_file)
            .field("password_env", &self.password_env)
            .field("token_file", &self.token_file)
            .field("token_env", &self.token_env)
            .finish()
    }
}

/// Where the run history lives, and for how long results are kept.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// `sqlite:PATH` (or a path), or `postgres://…` for a history several
    /// checkers share; `url_env`, `password_file` and `password_env` as a
    /// side's.
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// The schema of a PostgreSQL history (default `driftsum`).
    pub schema: Option<String>,
    /// Runs, and incidents closed, longer ago than this are deleted (an
    /// interval such as "180d").
    pub keep: Option<String>,
    /// Differences kept per table and level (all are counted).
    pub max_differences: Option<u64>,
}

// By hand: the URL may hold a password.
impl std::fmt::Debug for HistoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryConfig")
            .field("url", &self.url.as_deref().map(crate::source::url::redact))
            .field("url_env", &self.url_env)
            .field("password_file", &self.password_file)
            .field("password_env", &self.password_env)
            .field("schema", &self.schema)
            .field("keep", &self.keep)
            .field("max_differences", &self.max_differences)
            .finish()
    }
}

/// Where Prometheus metrics are written after every check.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// A node_exporter textfile (`*.prom`), relative to the config's
    /// directory; rewritten atomically.
    pub textfile: Option<String>,
}

/// How often each level runs for the tables of one tier: an interval such
/// as "5m", "6h", "7d", or "off" (also when unset).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    pub count: Option<String>,
    pub keys: Option<String>,
    pub full: Option<String>,
    /// How long to wait before reading differing keys again, to tell rows
    /// in flight from drift (an interval such as "30s"; default: off).
    pub recheck_after: Option<String>,
    /// Differing rows changed (by `updated_column`, on either side) within
    /// this interval are not judged: reported as recent (default: off).
    pub min_age: Option<String>,
    /// `auto`: `check` repairs confirmed drift in a SQLite replica (`plan::autorepair`).
    pub repair: Option<RepairMode>,
    /// The most drifted rows of one table an automatic repair puts right (default 10,000).
    pub max_repair_rows: Option<u64>,
}

/// Whether `check` repairs the confirmed drift of a tier's tables.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RepairMode {
    #[default]
    Off,
    Auto,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The table's tier (default: `[defaults] tier`).
    pub tier: Option<String>,
    pub replica: Option<String>,
    pub key: Option<Vec<String>>,
    #[serde(default)]
    pub exclude_columns: Vec<String>,
    pub stored_as: Option<TimeStorage>,
    pub time_zone: Option<String>,
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnConfig>,
    /// An SQL condition for both sides (with any `--where`: both apply).
    #[serde(rename = "where")]
    pub filter: Option<String>,
    /// An SQL condition for the source only.
    pub source_where: Option<String>,
    /// An SQL condition for the replica only.
    pub target_where: Option<String>,
    /// `COL=VALUE`: only rows whose column is at least VALUE (typed).
    pub since: Option<String>,
    /// `COL=VALUE`: only rows whose column is below VALUE (typed).
    pub until: Option<String>,
    /// The update-time column `min_age` and `max_age` are measured on.
    pub updated_column: Option<String>,
    /// Rows updated more recently than this ("5m") are left out.
    pub min_age: Option<String>,
    /// Rows updated longer ago than this ("30d") are left out.
    pub max_age: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    pub replica: Option<String>,
    pub stored_as: Option<TimeStorage>,
    pub time_zone: Option<String>,
}

/// A bad configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {message}")]
    Read { path: String, message: String },
    #[error("config file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// How one replica column is named and stored, after inheritance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaColumn {
    pub name: String,
    pub time_storage: TimeStorage,
    pub offset_secs: i32,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: shown,
            message,
        })?;
        config.dir = Some(
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        );
        Ok(config)
    }

    /// Checks what serde cannot: time zones and intervals parse, and every
    /// tier named exists.
    pub fn validate(&self) -> Result<(), String> {
        for (name, tier) in &self.tiers {
            for (level, value) in [
                ("count", &tier.count),
                ("keys", &tier.keys),
                ("full", &tier.full),
                ("recheck_after", &tier.recheck_after),
                ("min_age", &tier.min_age),
            ] {
                if let Some(v) = value {
                    parse_interval(v).map_err(|e| format!("[tiers.{name}] {level}: {e}"))?;
                }
            }
        }
        if let Some(keep) = self.history.as_ref().and_then(|h| h.keep.as_ref()) {
            parse_interval(keep).map_err(|e| format!("[history] keep: {e}"))?;
        }
        let named = std::iter::once(("[defaults]".to_string(), &self.defaults.tier)).chain(
            self.tables
                .iter()
                .map(|(t, c)| (format!("[tables.{t}]"), &c.tier)),
        );
        for (place, tier) in named {
            if let Some(tier) = tier {
                if !self.tiers.contains_key(tier) {
                    let known: Vec<&str> = self.tiers.keys().map(String::as_str).collect();
                    return Err(format!(
                        "{place} names the tier {tier:?}, which no [tiers.{tier}] defines \
                         (defined: {})",
                        match known.is_empty() {
                            true => "none".to_string(),
                            false => known.join(", "),
                        }
                    ));
                }
            }
        }
        for (place, side) in [("source", &self.source), ("replica", &self.replica)] {
            if let Some(s) = side {
                if s.url.is_some() == s.url_env.is_some() {
                    return Err(format!("[{place}] needs exactly one of url and url_env"));
                }
            }
        }
        self.alerts
            .iter()
            .enumerate()
            .try_for_each(|(i, a)| a.validate(i))?;
        for (name, t) in &self.tables {
            for (key, value) in [("min_age", &t.min_age), ("max_age", &t.max_age)] {
                if let Some(v) = value {
                    parse_interval(v).map_err(|e| format!("[tables.{name}] {key}: {e}"))?;
                }
            }
            for (key, value) in [("since", &t.since), ("until", &t.until)] {
                if value.as_ref().is_some_and(|v| {
                    v.split_once('=')
                        .is_none_or(|(c, v)| c.trim().is_empty() || v.trim().is_empty())
                }) {
                    return Err(format!(
                        "[tables.{name}] {key} takes \"COL=VALUE\", such as \
                         \"placed_at=2024-01-01T09:00:00\""
                    ));
                }
            }
        }
        let mut zones = vec![&self.defaults.time_zone];
        for t in self.tables.values() {
            zones.push(&t.time_zone);
            zones.extend(t.columns.values().map(|c| &c.time_zone));
        }
        for z in zones.into_iter().flatten() {
            parse_offset(z)?;
        }
        Ok(())
    }

    pub fn table(&self, source_name: &str) -> Option<&TableConfig> {
        self.tables.get(source_name)
    }

    /// The replica's name for a source table.
    pub fn replica_table(&self, source_name: &str) -> String {
        self.table(source_name)
            .and_then(|t| t.replica.clone())
            .unwrap_or_else(|| source_name.to_string())
    }

    /// How the replica names and stores a source column.
    pub fn replica_column(&self, table: &str, column: &str) -> ReplicaColumn {
        let t = self.table(table);
        let c = t.and_then(|t| t.columns.get(column));
        let time_storage = c
            .and_then(|c| c.stored_as)
            .or(t.and_then(|t| t.stored_as))
            .or(self.defaults.stored_as)
            .unwrap_or_default();
        let zone = c
            .and_then(|c| c.time_zone.as_deref())
            .or(t.and_then(|t| t.time_zone.as_deref()))
            .or(self.defaults.time_zone.as_deref());
        ReplicaColumn {
            name: c
                .and_then(|c| c.replica.clone())
                .unwrap_or_else(|| column.to_string()),
            time_storage,
            // Validated on load.
            offset_secs: zone.map_or(0, |z| parse_offset(z).unwrap_or(0)),
        }
    }
}

impl SideConfig {
    /// The side's URL: from the file, or read from its variable. A relative
    /// `sqlite:PATH` is relative to `dir`, the config file's directory.
    pub fn resolve(&self, place: &str, dir: Option<&Path>) -> Result<String, String> {
        let url = match (&self.url, &self.url_env) {
            (Some(u), None) => u.clone(),
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                format!("[{place}] url_env names the variable {var}, which is not set")
            })?,
            _ => return Err(format!("[{place}] needs exactly one of url and url_env")),
        };
        let is_agent = url.starts_with("driftsum://");
        if !is_agent && (self.token_file.is_some() || self.token_env.is_some()) {
            return Err(format!(
                "[{place}] token_file and token_env are for an agent (driftsum://HOST:PORT); \
                 a database's password goes in password_file or password_env"
            ));
        }
        let (file, var) = (self.password_file.as_deref(), self.password_env.as_deref());
        let url = crate::source::userinfo::with_config_password(url, file, var, dir)
            .map_err(|e| format!("[{place}] {e}"))?;
        let Some((scheme, rest)) = url.split_once(':') else {
            return Ok(url);
        };
        let path = rest.strip_prefix("//").unwrap_or(rest);
        match (scheme.to_ascii_lowercase().as_str(), dir) {
            ("sqlite" | "sqlite3", Some(dir)) if !path.is_empty() && !path.starts_with('/') => {
                Ok(format!("sqlite:{}", dir.join(path).display()))
            }
            _ => Ok(url),
        }
    }

    /// The agent token this side names (`token_file`, relative to `dir`,
    /// or `token_env`), held to the rules of `serve`'s; `None` when it
    /// names none.
    pub fn token(&self, place: &str, dir: Option<&Path>) -> Result<Option<String>, String> {
        use crate::agent::auth;
        match (&self.token_file, &self.token_env) {
            (Some(_), Some(_)) => Err(format!(
                "[{place}] gives both token_file and token_env; keep one"
            )),
            (Some(file), None) => {
                let path = match dir {
                    Some(d) if file.is_relative() => d.join(file),
                    _ => file.clone(),
                };
                auth::read_token(&path)
                    .map(Some)
                    .map_err(|e| format!("[{place}] token_file: {e}"))
            }
            (None, Some(var)) => auth::token_from_env(var)
                .map(Some)
                .map_err(|e| format!("[{place}] token_env: {e}")),
            (None, None) => Ok(None),
        }
    }
}

/// How often a level runs; `None` is "off".
pub type Interval = Option<Duration>;

/// Parses an interval: a whole number and one unit, `s`, `m`, `h` or `d`
/// ("90s", "5m", "6h", "7d"), or "off".
pub fn parse_interval(text: &str) -> Result<Interval, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let bad = || {
        format!(
            "{text:?} is not an interval; write a whole number and one unit \
             (s, m, h or d), such as \"30s\", \"5m\", \"6h\" or \"7d\", or \"off\""
        )
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(format!(
            "{text:?} is zero; write \"off\" to disable a level"
        ));
    }
    n.checked_mul(secs)
        .map(|s| Some(Duration::from_secs(s)))
        .ok_or_else(bad)
}

/// Parses `UTC`, `Z`, `+02:00`, `-0530` or `+2` into seconds east of UTC.
pub fn parse_offset(zone: &str) -> Result<i32, String> {
    let z = zone.trim();
    if z.eq_ignore_ascii_case("utc") || z.eq_ignore_ascii_case("z") || z == "+00:00" {
        return Ok(0);
    }
    let bad = || format!("time zone {zone:?} is not an offset; write UTC or an offset like +02:00");
    let (sign, rest) = match z.as_bytes().first() {
        Some(b'+') => (1, &z[1..]),
        Some(b'-') => (-1, &z[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m) = if digits.len() <= 2 {
        (&digits[..], "0")
    } else {
        digits.split_at(digits.len() - 2)
    };
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 15 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inheritance() {
        let c: Config = toml::from_str(
            r#"
            [defaults]
            stored_as = "iso8601"
            [tables.orders]
            replica = "orders_copy"
            time_zone = "+01:00"
            [tables.orders.columns.placed_at]
            replica = "placed"
            stored_as = "unix_millis"
            "#,
        )
        .unwrap();
        assert_eq!(c.replica_table("orders"), "orders_copy");
        assert_eq!(c.replica_table("other"), "other");
        let p = c.replica_column("orders", "placed_at");
        assert_eq!(
            p,
            ReplicaColumn {
                name: "placed".into(),
                time_storage: TimeStorage::UnixMillis,
                offset_secs: 3600
            }
        );
        let q = c.replica_column("other", "x");
        assert_eq!(
            q,
            ReplicaColumn {
                name: "x".into(),
                time_storage: TimeStorage::Iso8601,
                offset_secs: 0
            }
        );
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(toml::from_str::<Config>("[tables.t]\nstored_as = \"weekly\"").is_err());
        assert!(toml::from_str::<Config>("[tables.t]\nunknown = 1").is_err());
        assert_eq!(parse_offset("-05:30"), Ok(-19_800));
        assert_eq!(parse_offset("+2"), Ok(7_200));
        assert!(parse_offset("Europe/Paris").is_err());
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5m"), Ok(Some(Duration::from_secs(300))));
        assert_eq!(parse_interval("7d"), Ok(Some(Duration::from_secs(604_800))));
        assert_eq!(parse_interval("off"), Ok(None));
        for bad in ["5 minutes", "5", "m", "1w", "-5m", "0s", "5M"] {
            let e = parse_interval(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert!(parse_interval("5 minutes").unwrap_err().contains("\"5m\""));
    }

    #[test]
    fn tiers_are_checked() {
        let c: Config = toml::from_str(
            r#"
            [source]
            url_env = "X"
            [tiers.critical]
            count = "5m"
            [defaults]
            tier = "critical"
            [tables.orders]
            tier = "gold"
            "#,
        )
        .unwrap();
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("[tables.orders]") && e.contains("\"gold\""),
            "{e}"
        );
        let c: Config = toml::from_str("[tiers.t]\nkeys = \"5 minutes\"").unwrap();
        assert!(c.validate().unwrap_err().contains("[tiers.t] keys"));
        let c: Config = toml::from_str("[source]\nurl = \"a\"\nurl_env = \"B\"").unwrap();
        assert!(c.validate().is_err());
    }
}
