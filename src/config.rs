//! The configuration file (`--config driftsum.toml`): per-table and
//! per-column settings for how the replica names and stores things.
//!
//! ```toml
//! [defaults]
//! stored_as = "iso8601"     # how the replica stores temporal values
//! time_zone = "UTC"         # offset assumed for replica instants stored without one
//!
//! [tables.orders]           # the source's name for the table
//! replica = "orders_copy"   # the replica's name, when it differs
//! key = ["id"]              # key columns, when there is no primary key
//! exclude_columns = ["updated_at"]
//! stored_as = "unix_seconds"
//!
//! [tables.orders.columns.placed_at]
//! replica = "placed"        # the replica's column name
//! stored_as = "unix_millis" # auto | iso8601 | unix_seconds | unix_millis | julian_day
//! time_zone = "+02:00"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use driftsum_core::coerce::TimeStorage;
use serde::Deserialize;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub defaults: Storage,
    #[serde(default)]
    pub tables: BTreeMap<String, TableConfig>,
}

/// How the replica stores values; unset fields inherit.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub stored_as: Option<TimeStorage>,
    pub time_zone: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    pub replica: Option<String>,
    pub key: Option<Vec<String>>,
    #[serde(default)]
    pub exclude_columns: Vec<String>,
    pub stored_as: Option<TimeStorage>,
    pub time_zone: Option<String>,
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnConfig>,
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
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: shown,
            message,
        })?;
        Ok(config)
    }

    /// Checks what serde cannot: time zones parse.
    fn validate(&self) -> Result<(), String> {
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
}
