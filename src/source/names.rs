//! Pairing the tables of two databases by name when the user names none
//! (a whole-database diff): exact names first, then, when either side is
//! SQLite, as SQLite itself finds a table (ASCII letters in any case, and
//! a server's `SCHEMA.NAME` as the file's `NAME`). A name that could mean
//! two tables is an error naming both, never a guess.

/// The tables of both sides, paired.
#[derive(Debug, Default, PartialEq)]
pub struct Pairing {
    /// (source name, replica name), in the source's order.
    pub pairs: Vec<(String, String)>,
    /// Source tables with no replica table: (source name, the name looked
    /// for).
    pub only_source: Vec<(String, String)>,
    /// Replica tables no source table was paired with.
    pub only_target: Vec<String>,
}

/// Pairs each source table with the replica's table named `replica(name)`
/// (the config's mapping, the name itself by default). With `sqlite_rules`
/// (either side is SQLite), a name with no exact match is found as SQLite
/// finds names; a name that could then mean two tables, or a replica table
/// claimed by two source tables, is an error saying which.
pub fn pair(
    source: &[String],
    target: &[String],
    sqlite_rules: bool,
    replica: &dyn Fn(&str) -> String,
) -> Result<Pairing, String> {
    let mut out = Pairing::default();
    let mut claimed: Vec<(String, String)> = Vec::new();
    for t in source {
        let wanted = replica(t);
        let found = match target.contains(&wanted) {
            true => Some(wanted.clone()),
            false if sqlite_rules => loose_match(&wanted, target)?,
            false => None,
        };
        match found {
            Some(r) => {
                if let Some((other, _)) = claimed.iter().find(|(_, c)| *c == r) {
                    return Err(format!(
                        "the source tables {other:?} and {t:?} both match the replica's table \
                         {r:?} (SQLite matches names in any case and without a schema); name \
                         the pair meant with --table SOURCE_NAME=REPLICA_NAME"
                    ));
                }
                claimed.push((t.clone(), r.clone()));
                out.pairs.push((t.clone(), r));
            }
            None => out.only_source.push((t.clone(), wanted)),
        }
    }
    out.only_target = target
        .iter()
        .filter(|t| !claimed.iter().any(|(_, c)| c == *t))
        .cloned()
        .collect();
    Ok(out)
}

/// The one table of `among` that `wanted` names as SQLite reads names (any
/// ASCII case; `SCHEMA.NAME` also as `NAME`); `None` when none does.
fn loose_match(wanted: &str, among: &[String]) -> Result<Option<String>, String> {
    let bare = wanted
        .split_once('.')
        .map(|(_, n)| n)
        .filter(|n| !n.is_empty());
    let hits: Vec<&String> = among
        .iter()
        .filter(|t| {
            t.eq_ignore_ascii_case(wanted) || bare.is_some_and(|b| t.eq_ignore_ascii_case(b))
        })
        .collect();
    match hits.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        many => Err(format!(
            "{wanted:?} could mean any of the tables {} (SQLite matches names in any case \
             and without a schema); name the one meant with --table SOURCE_NAME=REPLICA_NAME",
            many.iter()
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn same(t: &str) -> String {
        t.to_string()
    }

    #[test]
    fn exact_names_pair_and_the_rest_is_lonely() {
        let p = pair(&names(&["a", "b"]), &names(&["b", "c"]), false, &same).expect("pairs");
        assert_eq!(p.pairs, vec![("b".into(), "b".into())]);
        assert_eq!(p.only_source, vec![("a".into(), "a".into())]);
        assert_eq!(p.only_target, names(&["c"]));
        // Without SQLite on either side, case matters.
        let p = pair(&names(&["Orders"]), &names(&["orders"]), false, &same).expect("pairs");
        assert!(p.pairs.is_empty());
    }

    #[test]
    fn sqlite_rules_match_case_and_drop_the_schema() {
        let src = names(&["Orders", "sales.items", "x"]);
        let tgt = names(&["orders", "ITEMS", "X"]);
        let p = pair(&src, &tgt, true, &same).expect("pairs");
        assert_eq!(
            p.pairs,
            vec![
                ("Orders".into(), "orders".into()),
                ("sales.items".into(), "ITEMS".into()),
                ("x".into(), "X".into()),
            ]
        );
        assert!(p.only_source.is_empty() && p.only_target.is_empty());
        // An exact name wins over a loose one.
        let p = pair(&names(&["a"]), &names(&["A", "a"]), true, &same).expect("pairs");
        assert_eq!(p.pairs, vec![("a".into(), "a".into())]);
        assert_eq!(p.only_target, names(&["A"]));
    }

    #[test]
    fn ambiguous_names_are_refused() {
        // A server side holding `Orders` and `ORDERS`, looked for loosely.
        let e = pair(
            &names(&["orders"]),
            &names(&["Orders", "ORDERS"]),
            true,
            &same,
        )
        .expect_err("ambiguous");
        assert!(
            e.contains("\"Orders\"") && e.contains("\"ORDERS\"") && e.contains("--table"),
            "{e}"
        );
        // Two source tables claiming one SQLite table.
        let e = pair(
            &names(&["orders", "Orders"]),
            &names(&["orders"]),
            true,
            &same,
        )
        .expect_err("claimed twice");
        assert!(e.contains("both match"), "{e}");
    }
}
