//! A repair script for a PostgreSQL or MySQL/MariaDB replica (`--sql-out`):
//! driftsum never writes to a server, but it can write the statements that
//! put the replica's drifted rows right, in the server's own dialect
//! (identifier quoting, string, boolean, byte and time literals), as one
//! transaction that `psql -f FILE` or `mariadb DB < FILE` applies. Each
//! value is the source's, written as a literal the server converts to the
//! column's type on its own.

use driftsum_core::time::{format_date, format_time, format_timestamp};
use driftsum_core::value::hex;
use driftsum_core::Value;

use super::plan::Guard;
use super::RepairError;
use crate::check::TableOutcome;
use crate::reconcile::{DiffKind, Difference};
use crate::source::ScanSpec;

/// The SQL a server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "PostgreSQL",
            Dialect::Mysql => "MySQL/MariaDB",
        }
    }

    /// An identifier, quoted.
    pub fn ident(self, name: &str) -> String {
        match self {
            Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            Dialect::Mysql => format!("`{}`", name.replace('`', "``")),
        }
    }

    /// A string literal that reads back as exactly `s` whatever the
    /// session's settings (`standard_conforming_strings`, `sql_mode`).
    fn string(self, s: &str) -> Result<String, String> {
        match self {
            Dialect::Postgres if s.contains('\0') => {
                Err("PostgreSQL text cannot hold a NUL character".into())
            }
            // With backslashes, E'' spells them the same in every setting.
            Dialect::Postgres if s.contains('\\') => Ok(format!(
                "E'{}'",
                s.replace('\\', "\\\\").replace('\'', "''")
            )),
            Dialect::Postgres => Ok(format!("'{}'", s.replace('\'', "''"))),
            // A backslash means something unless NO_BACKSLASH_ESCAPES is on:
            // the bytes in hex, read as UTF-8 text, mean one thing always.
            Dialect::Mysql if s.contains(['\\', '\0']) => {
                Ok(format!("CONVERT(X'{}' USING utf8mb4)", hex(s.as_bytes())))
            }
            Dialect::Mysql => Ok(format!("'{}'", s.replace('\'', "''"))),
        }
    }

    /// `v` as a literal of this dialect.
    pub fn literal(self, v: &Value) -> Result<String, String> {
        let infinite = || {
            format!(
                "{} has no infinite dates or times; repair this row by hand",
                self.name()
            )
        };
        Ok(match (self, v) {
            (_, Value::Null) => "NULL".into(),
            (_, Value::Int(i)) => i.to_string(),
            (Dialect::Postgres, Value::Float(f)) if f.is_nan() => "'NaN'".into(),
            (Dialect::Postgres, Value::Float(f)) if f.is_infinite() => match *f > 0.0 {
                true => "'Infinity'".into(),
                false => "'-Infinity'".into(),
            },
            (Dialect::Mysql, Value::Float(f)) if !f.is_finite() => {
                return Err(format!("MySQL/MariaDB cannot store the float {f}"))
            }
            // The shortest digits that read back as `f`, with an exponent:
            // a floating-point literal in both dialects.
            (_, Value::Float(f)) => format!("{f:e}"),
            (_, Value::Decimal(d)) => d.clone(),
            (_, Value::Text(s)) | (_, Value::Json(s)) => self.string(s)?,
            // decode() reads the same whatever standard_conforming_strings is.
            (Dialect::Postgres, Value::Bytes(b)) => format!("decode('{}', 'hex')", hex(b)),
            (Dialect::Mysql, Value::Bytes(b)) => format!("X'{}'", hex(b)),
            (Dialect::Postgres, Value::Bool(b)) => match b {
                true => "TRUE".into(),
                false => "FALSE".into(),
            },
            (Dialect::Mysql, Value::Bool(b)) => u8::from(*b).to_string(),
            // The script sets the session's zone to UTC first, so an
            // instant written as UTC wall-clock time is that instant.
            (_, Value::Timestamp(m)) | (_, Value::TimestampNaive(m)) => {
                let t = format_timestamp(*m);
                match (self, t.contains("infinity")) {
                    (Dialect::Mysql, true) => return Err(infinite()),
                    _ => format!("'{}'", t.replace('T', " ")),
                }
            }
            (_, Value::Date(d)) => {
                let t = format_date(*d);
                match (self, t.contains("infinity")) {
                    (Dialect::Mysql, true) => return Err(infinite()),
                    _ => format!("'{t}'"),
                }
            }
            (_, Value::Time(t)) => format!("'{}'", format_time(*t)),
            (_, Value::Uuid(u)) => {
                let h = hex(u);
                format!(
                    "'{}-{}-{}-{}-{}'",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                )
            }
            (_, Value::Invalid(s)) => {
                return Err(format!(
                    "the source's value could not be read ({s}); repair this row by hand"
                ))
            }
        })
    }

    /// The script's first statements: one transaction, in UTC.
    fn begin(self) -> &'static str {
        match self {
            Dialect::Postgres => "BEGIN;\nSET LOCAL TimeZone = 'UTC';\n",
            Dialect::Mysql => "SET time_zone = '+00:00';\nSTART TRANSACTION;\n",
        }
    }
}

/// The statement that makes the replica's row of `d` right.
fn statement(
    dialect: Dialect,
    table: &str,
    spec: &ScanSpec,
    d: &Difference,
) -> Result<String, String> {
    let t = dialect.ident(&spec.table);
    let lit = |v: &Value| dialect.literal(v);
    let key = || -> Result<String, String> {
        let parts = spec
            .key
            .iter()
            .zip(&d.key)
            .map(|(c, v)| match v {
                Value::Null => Ok(format!("{} IS NULL", dialect.ident(&c.name))),
                v => Ok(format!("{} = {}", dialect.ident(&c.name), lit(v)?)),
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(parts.join(" AND "))
    };
    let source = || {
        d.source
            .as_ref()
            .ok_or_else(|| format!("table {table:?}: a difference lacks the source's values"))
    };
    Ok(match d.kind {
        DiffKind::Extra => format!("DELETE FROM {t} WHERE {};", key()?),
        DiffKind::Changed => {
            let src = source()?;
            let sets = d
                .changed
                .iter()
                .enumerate()
                .map(|(n, &c)| {
                    let name = &spec.values.get(c).ok_or("a column out of range")?.name;
                    let v = src.get(n).ok_or("a value out of range")?;
                    Ok(format!("{} = {}", dialect.ident(name), lit(v)?))
                })
                .collect::<Result<Vec<_>, String>>()?;
            format!("UPDATE {t} SET {} WHERE {};", sets.join(", "), key()?)
        }
        DiffKind::Missing => {
            let src = source()?;
            let names: Vec<String> = spec
                .key
                .iter()
                .chain(&spec.values)
                .map(|c| dialect.ident(&c.name))
                .collect();
            let values = d
                .key
                .iter()
                .chain(src.iter())
                .map(lit)
                .collect::<Result<Vec<_>, String>>()?;
            format!(
                "INSERT INTO {t} ({}) VALUES ({});",
                names.join(", "),
                values.join(", ")
            )
        }
    })
}

/// The repair of the compared tables `outcomes` (each with the replica's
/// scan spec it was read with) as one script; refuses a table over the
/// guard's limits, or one whose differences were not all listed.
pub fn script(
    dialect: Dialect,
    tables: &[(&TableOutcome, ScanSpec)],
    guard: &Guard,
    header: &str,
) -> Result<(String, usize), RepairError> {
    let mut body = Vec::new();
    for (o, spec) in tables {
        let listed = o.differences.len() as u64;
        if listed < o.counts.total() || (listed == 0 && !o.ranges.is_empty()) {
            return Err(RepairError::Invalid(format!(
                "table {:?}: the diff did not name every drifted row; repair needs both \
                 sides as databases",
                o.table
            )));
        }
        let n = o.differences.len() as u64;
        let rows = o.source_rows.max(o.target_rows).max(1);
        let share = 100.0 * n as f64 / rows as f64;
        if n > guard.max_rows || (n > super::plan::SMALL && share > guard.max_share) {
            return Err(RepairError::TooMany {
                table: o.table.clone(),
                rows: n,
                share,
                max_rows: guard.max_rows,
                max_share: guard.max_share,
            });
        }
        // Deletes, then updates, then inserts: a row replaced one for one
        // never meets its replacement in a unique index.
        for kind in [DiffKind::Extra, DiffKind::Changed, DiffKind::Missing] {
            for d in o.differences.iter().filter(|d| d.kind == kind) {
                let s = statement(dialect, &o.table, spec, d).map_err(|reason| {
                    RepairError::Invalid(format!(
                        "table {:?}, key {}: cannot write the {} statement: {reason}",
                        o.table,
                        super::apply::show_key(&d.key),
                        dialect.name()
                    ))
                })?;
                body.push(s);
            }
        }
    }
    Ok((
        super::script::transaction(header, dialect.begin(), &body),
        body.len(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        let pg = Dialect::Postgres;
        let my = Dialect::Mysql;
        assert_eq!(pg.literal(&Value::Text("it's".into())).unwrap(), "'it''s'");
        assert_eq!(
            pg.literal(&Value::Text("a\\b".into())).unwrap(),
            "E'a\\\\b'"
        );
        assert_eq!(
            my.literal(&Value::Text("a\\b".into())).unwrap(),
            "CONVERT(X'615c62' USING utf8mb4)"
        );
        assert_eq!(pg.literal(&Value::Bool(true)).unwrap(), "TRUE");
        assert_eq!(my.literal(&Value::Bool(true)).unwrap(), "1");
        assert_eq!(
            pg.literal(&Value::Bytes(vec![0, 255])).unwrap(),
            "decode('00ff', 'hex')"
        );
        assert_eq!(my.literal(&Value::Bytes(vec![0, 255])).unwrap(), "X'00ff'");
        assert_eq!(pg.literal(&Value::Float(0.1)).unwrap(), "1e-1");
        assert!(my.literal(&Value::Float(f64::NAN)).is_err());
        assert_eq!(
            pg.literal(&Value::Timestamp(1_500_000)).unwrap(),
            "'1970-01-01 00:00:01.5'"
        );
        assert_eq!(pg.ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(my.ident("a`b"), "`a``b`");
    }
}
