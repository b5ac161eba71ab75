//! What an alert says: the incident as one JSON document (the `json` format
//! and a command's stdin), its one-line summary, and the `slack` body
//! (`{"text": …}`). Also the detail an incident keeps of the run that last
//! found it. Keys and ranges are sent, row values never: a webhook is a
//! place data should not leak to.

use serde_json::{json, Value as J};

use crate::history::incident::{Event, Incident, Kind};
use crate::history::record::LevelResult;
use crate::report::model::TableReport;

/// Version of the payload document.
pub const FORMAT_VERSION: u32 = 1;

/// The table an incident of a whole run names: no table was reached.
pub const RUN_TABLE: &str = "*";
/// The level of that incident.
pub const RUN_LEVEL: &str = "run";

/// Keys and ranges listed in a payload (the counts count them all).
pub const LISTED: usize = 10;

/// What a drift or error incident keeps of the result that last found it.
pub fn detail(r: &LevelResult) -> J {
    let (counts, ranges, differences) = match &r.outcome {
        Some(o) => {
            let report = TableReport::from_outcome(o);
            let ranges: Vec<J> = report
                .ranges()
                .iter()
                .take(LISTED)
                .map(|g| json!({"first": g.first, "last": g.last}))
                .collect();
            let differences: Vec<J> = report
                .listed()
                .iter()
                .take(LISTED)
                .map(|d| {
                    let mut j = json!({"kind": d.kind, "key": d.key});
                    if let Some(c) = &d.columns {
                        j["columns"] = json!(c);
                    }
                    j
                })
                .collect();
            let c = &r.counts;
            let counts = json!({"missing": c.missing, "extra": c.extra, "changed": c.changed});
            (counts, json!(ranges), json!(differences))
        }
        None => (J::Null, json!([]), json!([])),
    };
    json!({
        "rows": rows(r),
        "counts": counts,
        "source_rows": r.source_rows,
        "target_rows": r.target_rows,
        "drifted_ranges": ranges,
        "differences": differences,
        "error": r.error,
    })
}

/// How many rows drifted: every difference found, or for `count`, how far
/// the counts are apart.
pub fn rows(r: &LevelResult) -> u64 {
    match (&r.outcome, r.source_rows, r.target_rows) {
        (Some(_), _, _) => r.counts.total(),
        (None, Some(s), Some(t)) => s.abs_diff(t),
        _ => 0,
    }
}

/// What the error incident of a run that reached no table keeps.
pub fn run_detail(error: &str) -> J {
    json!({
        "rows": 0,
        "counts": null,
        "source_rows": null,
        "target_rows": null,
        "drifted_ranges": [],
        "differences": [],
        "error": error,
    })
}

/// What an overdue incident keeps.
pub fn overdue_detail(last_completed: Option<i64>, interval: u64) -> J {
    json!({"last_completed": last_completed, "interval_seconds": interval})
}

/// The incident as an alert sends it for `event`, during run `run`.
pub fn document(i: &Incident, event: Event, run: i64, now: i64) -> J {
    let until = i.closed.unwrap_or(now);
    let mut j = json!({
        "format_version": FORMAT_VERSION,
        "event": event.as_str(),
        "kind": i.kind.as_str(),
        "incident": i.id,
        "table": i.table,
        "tier": i.tier,
        "level": i.level,
        "run_id": run,
        "opened": i.opened,
        "closed": i.closed,
        "open_seconds": until.saturating_sub(i.opened).max(0),
        "runs": i.runs,
        "summary": summary(i, event, now),
    });
    if let (Some(obj), J::Object(d)) = (j.as_object_mut(), &i.detail) {
        for (k, v) in d {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    j
}

/// The Slack incoming-webhook body: the summary as `text`, with Slack's
/// control characters escaped so that a table name cannot mention
/// `@channel` or forge a link.
pub fn slack(i: &Incident, event: Event, now: i64) -> J {
    let text = summary(i, event, now)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    json!({ "text": text })
}

/// One line for people.
pub fn summary(i: &Incident, event: Event, now: i64) -> String {
    let what = match i.table == RUN_TABLE && i.level == RUN_LEVEL {
        true => "the check run (before any table)".to_string(),
        false => format!(
            "{} ({} level, tier {})",
            i.table,
            i.level,
            i.tier.as_deref().unwrap_or("?")
        ),
    };
    let open = duration(i.closed.unwrap_or(now).saturating_sub(i.opened));
    let d = &i.detail;
    let problem = match i.kind {
        Kind::Drift => {
            let c = &d["counts"];
            let counts = match c.is_object() {
                true => format!(
                    " ({} missing, {} extra, {} changed)",
                    c["missing"], c["extra"], c["changed"]
                ),
                false => format!(
                    " (source {} rows, replica {} rows)",
                    d["source_rows"], d["target_rows"]
                ),
            };
            format!("drift in {what}: {} row(s){counts}", d["rows"])
        }
        Kind::Error => format!(
            "error checking {what}: {}",
            d["error"].as_str().unwrap_or("unknown error")
        ),
        Kind::Overdue => {
            let every = duration(d["interval_seconds"].as_i64().unwrap_or(0));
            match d["last_completed"].as_i64() {
                Some(t) => format!(
                    "{what} is overdue: last completed {} ago, due every {every}",
                    duration(now.saturating_sub(t))
                ),
                None => format!("{what} is overdue: never completed, due every {every}"),
            }
        }
    };
    match event {
        Event::Open => format!("driftsum: {problem}"),
        Event::Reminder => format!("driftsum: still open after {open}: {problem}"),
        Event::Recovered => {
            let back = match i.kind {
                Kind::Drift => "in sync again",
                Kind::Error => "checked without error again",
                Kind::Overdue => "completed again",
            };
            format!("driftsum: recovered: {what} {back} after {open}")
        }
    }
}

/// `1d 2h`, `5m 3s`, `42s`: the two largest units.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let parts: Vec<String> = units
        .iter()
        .scan(s, |left, &(n, u)| {
            let q = *left / n;
            *left %= n;
            Some((q, u))
        })
        .skip_while(|(q, _)| *q == 0)
        .take(2)
        .filter(|(q, _)| *q > 0)
        .map(|(q, u)| format!("{q}{u}"))
        .collect();
    match parts.is_empty() {
        true => "0s".into(),
        false => parts.join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(kind: Kind, detail: J) -> Incident {
        Incident {
            id: 7,
            table: "or<!channel>ders".into(),
            tier: Some("critical".into()),
            level: "keys".into(),
            kind,
            opened: 1000,
            opened_run: Some(1),
            closed: None,
            closed_run: None,
            runs: 2,
            last_run: Some(2),
            detail,
        }
    }

    #[test]
    fn durations() {
        for (s, want) in [
            (0, "0s"),
            (42, "42s"),
            (60, "1m"),
            (3605, "1h"),
            (3725, "1h 2m"),
            (90_061, "1d 1h"),
            (-5, "0s"),
        ] {
            assert_eq!(duration(s), want, "{s}");
        }
    }

    #[test]
    fn a_document_names_the_incident() {
        let d = json!({"rows": 3, "counts": {"missing": 1, "extra": 0, "changed": 2},
                       "differences": [{"kind": "missing", "key": {"id": 5}}]});
        let i = incident(Kind::Drift, d);
        let j = document(&i, Event::Open, 9, 1090);
        assert_eq!(j["table"], "or<!channel>ders");
        assert_eq!(j["open_seconds"], 90);
        assert_eq!(j["run_id"], 9);
        assert_eq!(j["counts"]["changed"], 2);
        assert_eq!(j["differences"][0]["key"]["id"], 5);
        assert_eq!(j["event"], "open");
        assert!(j["summary"]
            .as_str()
            .unwrap()
            .contains("3 row(s) (1 missing, 0 extra, 2 changed)"));
        let s = slack(&i, Event::Reminder, 1090);
        let text = s["text"].as_str().unwrap();
        assert!(text.contains("or&lt;!channel&gt;ders"), "{text}");
        assert!(text.contains("still open after 1m 30s"), "{text}");
    }

    #[test]
    fn every_kind_and_event_reads() {
        let kinds = [
            (
                Kind::Drift,
                json!({"rows": 1, "source_rows": 3, "target_rows": 2}),
            ),
            (Kind::Error, json!({"error": "no such table"})),
            (Kind::Overdue, overdue_detail(Some(0), 60)),
            (Kind::Overdue, overdue_detail(None, 60)),
        ];
        for (k, d) in kinds {
            for e in [Event::Open, Event::Reminder, Event::Recovered] {
                let s = summary(&incident(k, d.clone()), e, 4000);
                assert!(s.starts_with("driftsum: ") && s.contains("ders"), "{s}");
            }
        }
    }
}
