//! The statements of a repair, as SQL text: one `DELETE`, `INSERT` or
//! `UPDATE` per row (only the changed columns in an `UPDATE`), the way
//! sqldiff writes them, either with `?` placeholders (for `--apply`) or
//! with the values as SQLite literals (for a script that
//! `sqlite3 replica.db < FILE` applies with the same result).

use rusqlite::types::Value as Sql;

use super::plan::{Op, RepairPlan, TablePlan};
use crate::reconcile::DiffKind;
use crate::source::quote_ident;

/// A statement's text and the values for its placeholders, in order.
pub struct Statement {
    pub sql: String,
    pub params: Vec<Sql>,
}

fn where_key(t: &TablePlan, op: &Op, params: &mut Vec<Sql>) -> String {
    let mut parts = Vec::new();
    for (name, v) in t.key_names().zip(&op.key_sql) {
        parts.push(format!("{}=?", quote_ident(name)));
        params.push(v.clone());
    }
    parts.join(" AND ")
}

/// The statement that makes the replica's row `op` right.
pub fn statement(t: &TablePlan, op: &Op) -> Statement {
    let table = quote_ident(&t.target_table);
    let mut params = Vec::new();
    let sql = match op.kind {
        DiffKind::Extra => format!(
            "DELETE FROM {table} WHERE {}",
            where_key(t, op, &mut params)
        ),
        DiffKind::Changed => {
            let sets: Vec<String> = op
                .set
                .iter()
                .map(|(c, v)| {
                    params.push(v.clone());
                    format!("{}=?", quote_ident(&t.values[*c].name))
                })
                .collect();
            let w = where_key(t, op, &mut params);
            format!("UPDATE {table} SET {} WHERE {w}", sets.join(", "))
        }
        DiffKind::Missing => {
            let mut names: Vec<String> = t.key_names().map(quote_ident).collect();
            params.extend(op.key_sql.iter().cloned());
            for (c, v) in &op.set {
                names.push(quote_ident(&t.values[*c].name));
                params.push(v.clone());
            }
            let marks = vec!["?"; names.len()].join(",");
            format!("INSERT INTO {table}({}) VALUES({marks})", names.join(","))
        }
    };
    Statement { sql, params }
}

/// The order statements run in: deletes, then updates, then inserts, so a
/// row replaced one-for-one never meets its replacement in a unique index.
pub fn ordered(plan: &RepairPlan) -> Vec<(&TablePlan, &Op)> {
    let mut out = Vec::with_capacity(plan.rows());
    for kind in [DiffKind::Extra, DiffKind::Changed, DiffKind::Missing] {
        for t in &plan.tables {
            out.extend(t.ops.iter().filter(|o| o.kind == kind).map(|o| (t, o)));
        }
    }
    out
}

/// A value as a SQLite literal that reads back as exactly that value.
pub fn literal(v: &Sql) -> String {
    match v {
        Sql::Null => "NULL".into(),
        Sql::Integer(i) => i.to_string(),
        Sql::Real(f) if f.is_infinite() => match *f > 0.0 {
            true => "9e999".into(),
            false => "-9e999".into(),
        },
        Sql::Real(f) => real_literal(*f),
        Sql::Text(s) if s.contains(['\0', '\r']) => {
            format!(
                "CAST(X'{}' AS TEXT)",
                driftsum_core::value::hex(s.as_bytes())
            )
        }
        Sql::Text(s) => format!("'{}'", s.replace('\'', "''")),
        Sql::Blob(b) => format!("X'{}'", driftsum_core::value::hex(b)),
    }
}

/// A REAL literal every SQLite reads back as exactly `f`. SQLite's decimal
/// parser is not correctly rounded in every version (the 3.40 of Debian 12
/// reads about one double in 250 written in its shortest form one bit off
/// what today's reads), so a decimal is written only when it is short: at
/// most 15 significant digits times a power of ten within 10^±22, which one
/// correctly rounded operation converts, and which reads back exactly here.
/// Any other value is written as its binary form: an integer mantissa
/// scaled by powers of two, arithmetic that is exact in every version.
fn real_literal(f: f64) -> String {
    let short = format!("{f:e}");
    let simple = short.split_once('e').is_some_and(|(mantissa, exp)| {
        let digits = mantissa.bytes().filter(u8::is_ascii_digit).count() as i32;
        exp.parse::<i32>()
            .is_ok_and(|e| digits <= 15 && (e - (digits - 1)).abs() <= 22)
    });
    if f == 0.0 || (simple && reads_back(&short, f)) {
        return short;
    }
    exact_real(f)
}

/// Whether the bundled SQLite reads `literal` as exactly `f`.
fn reads_back(literal: &str, f: f64) -> bool {
    thread_local! {
        static DB: Option<rusqlite::Connection> = rusqlite::Connection::open_in_memory().ok();
    }
    DB.with(|db| {
        db.as_ref().is_some_and(|db| {
            db.query_row(&format!("SELECT {literal}"), [], |r| r.get::<_, f64>(0))
                .is_ok_and(|b| b.to_bits() == f.to_bits())
        })
    })
}

/// A finite, non-zero `f` as `(CAST(m AS REAL) * 2^a … / 2^b …)`: `m` below
/// 2^53 and each power of two an integer literal, so every step is exact
/// (the value stays representable all the way to `f`).
fn exact_real(f: f64) -> String {
    let bits = f.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mut m, mut e) = match biased {
        0 => (fraction, -1074),
        _ => (fraction | (1 << 52), biased - 1075),
    };
    let zeros = m.trailing_zeros().min(63);
    m >>= zeros;
    e += zeros as i32;
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let mut out = format!("(CAST({sign}{m} AS REAL)");
    let op = if e < 0 { " / " } else { " * " };
    let mut left = e.unsigned_abs();
    while left > 0 {
        let step = left.min(62);
        out.push_str(op);
        out.push_str(&(1u64 << step).to_string());
        left -= step;
    }
    out.push(')');
    out
}

/// A statement with its placeholders replaced by literals.
pub fn inline(s: &Statement) -> String {
    let mut out = String::with_capacity(s.sql.len() + 16 * s.params.len());
    let mut params = s.params.iter();
    // Placeholders are the only `?` outside quoted names; names are quoted
    // with double quotes, so a `?` inside one is skipped.
    let mut quoted = false;
    for c in s.sql.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => match params.next() {
                Some(v) => out.push_str(&literal(v)),
                None => out.push(c),
            },
            _ => out.push(c),
        }
    }
    out
}

/// How a SQLite repair script begins: foreign keys are checked at the
/// commit, not after each statement.
const BEGIN: &str = "BEGIN IMMEDIATE;\nPRAGMA defer_foreign_keys = ON;\n";

/// One transaction as a script: `header` as SQL comments, then `begin`,
/// each statement (ending in its `;`) on a line of its own, and the commit.
pub(super) fn transaction(
    header: &str,
    begin: &str,
    statements: impl IntoIterator<Item = impl AsRef<str>>,
) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("-- ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(begin);
    for s in statements {
        out.push_str(s.as_ref());
        out.push('\n');
    }
    out.push_str("COMMIT;\n");
    out
}

/// The whole plan as a script: one transaction, foreign keys checked at
/// its end.
pub fn script(plan: &RepairPlan, header: &str) -> String {
    let statements = ordered(plan)
        .into_iter()
        .map(|(t, op)| inline(&statement(t, op)) + ";");
    transaction(header, BEGIN, statements)
}

/// Statements as a script, already rendered (the undo of a repair).
pub fn script_of(statements: &[Statement], header: &str) -> String {
    transaction(header, BEGIN, statements.iter().map(|s| inline(s) + ";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_read_back_exactly() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let values = [
            Sql::Null,
            Sql::Integer(i64::MIN),
            Sql::Real(0.1),
            Sql::Real(-1e-300),
            Sql::Real(f64::MAX),
            Sql::Real(f64::INFINITY),
            Sql::Real(5e-324),
            Sql::Real(-1.831360491731529e-308),
            Sql::Real(f64::MIN_POSITIVE),
            Sql::Real(-f64::MAX),
            Sql::Real(1.0 / 3.0),
            Sql::Real(123456.789e250),
            Sql::Real(-0.0),
            Sql::Real(3.0),
            Sql::Text("it's \"q\" ?\n\0x\r".into()),
            Sql::Blob(vec![0, 255, 7]),
        ];
        for v in values {
            let back: Sql = db
                .query_row(&format!("SELECT {}", literal(&v)), [], |r| r.get(0))
                .unwrap();
            assert_eq!(back, v, "{}", literal(&v));
        }
    }

    /// The binary form is exact for doubles of every exponent, subnormals
    /// included, whatever the literal chosen for them.
    #[test]
    fn binary_forms_are_exact() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..4000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if !f.is_finite() || f == 0.0 {
                continue;
            }
            for sql in [exact_real(f), real_literal(f)] {
                let back: f64 = db
                    .query_row(&format!("SELECT {sql}"), [], |r| r.get(0))
                    .unwrap();
                assert_eq!(back.to_bits(), f.to_bits(), "{f:e} as {sql}");
            }
        }
    }
}
