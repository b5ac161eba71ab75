//! Which tier each source table falls in: named under `[tables.NAME]`, else
//! `[defaults] tier`; excluded tables (by name or glob) are in none. A table
//! in no tier is an error, never silently left unchecked.

use super::PlanError;
use crate::config::Config;

/// A table to check and the tier that says how often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableTier {
    pub table: String,
    pub tier: String,
}

/// The tier of every table of the source (sorted by name), and of every
/// table the config puts in a tier though the source lacks it (its check
/// then fails, so that a dropped table is not silently forgotten).
pub fn assign(config: &Config, source_tables: &[String]) -> Result<Vec<TableTier>, PlanError> {
    if config.tiers.is_empty() {
        return Err(PlanError::Invalid(
            "the config defines no tiers; add one, e.g. [tiers.standard] with \
             count = \"1h\", keys = \"1d\", full = \"7d\""
                .into(),
        ));
    }
    let mut names: Vec<&String> = source_tables.iter().collect();
    for (name, t) in &config.tables {
        if t.tier.is_some() && !names.contains(&name) {
            names.push(name);
        }
    }
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    let mut homeless = Vec::new();
    for name in names {
        if excluded(config, name) {
            continue;
        }
        let tier = config
            .table(name)
            .and_then(|t| t.tier.clone())
            .or_else(|| config.defaults.tier.clone());
        match tier {
            Some(tier) => out.push(TableTier {
                table: name.clone(),
                tier,
            }),
            None => homeless.push(name.as_str()),
        }
    }
    if !homeless.is_empty() {
        return Err(PlanError::Invalid(format!(
            "table(s) {} are in no tier: set [defaults] tier, give each a tier \
             under [tables.NAME], or exclude them with [defaults] exclude_tables",
            homeless.join(", ")
        )));
    }
    Ok(out)
}

/// Whether `[defaults] exclude_tables` leaves `table` out.
pub fn excluded(config: &Config, table: &str) -> bool {
    config
        .defaults
        .exclude_tables
        .iter()
        .any(|p| glob(p.as_bytes(), table.as_bytes()))
}

/// `*` matches any run of characters, `?` any one; the rest literally.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let c: Config = toml::from_str(text).unwrap();
        c.validate().unwrap();
        c
    }

    #[test]
    fn tables_fall_in_tiers() {
        let c = config(
            r#"
            [tiers.critical]
            count = "5m"
            [tiers.standard]
            count = "1h"
            [defaults]
            tier = "standard"
            exclude_tables = ["tmp_*", "audit"]
            [tables.orders]
            tier = "critical"
            "#,
        );
        let src: Vec<String> = ["audit", "orders", "tmp_1", "users"]
            .map(String::from)
            .to_vec();
        let got = assign(&c, &src).unwrap();
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|t| (t.table.as_str(), t.tier.as_str()))
            .collect();
        assert_eq!(pairs, [("orders", "critical"), ("users", "standard")]);
    }

    #[test]
    fn a_table_in_no_tier_is_an_error() {
        let c = config("[tiers.critical]\ncount = \"5m\"\n[tables.orders]\ntier = \"critical\"");
        let e = assign(&c, &["orders".into(), "users".into()]).unwrap_err();
        assert!(e.to_string().contains("users"), "{e}");
        assert!(!e.to_string().contains("orders"), "{e}");
    }

    #[test]
    fn globs() {
        assert!(glob(b"tmp_*", b"tmp_"));
        assert!(glob(b"*_log", b"a_log"));
        assert!(glob(b"t?", b"t1"));
        assert!(!glob(b"t?", b"t12"));
        assert!(!glob(b"tmp_*", b"orders"));
    }
}
