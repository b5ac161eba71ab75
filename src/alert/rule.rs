//! One `[[alerts]]` entry's rules: which incidents it announces (`on`,
//! `min_rows`, `after_runs`), when it reminds, and so which event, if any,
//! it owes an incident given what was delivered to it so far. Pure: the
//! history and the clock are passed in.

use std::time::Duration;

use crate::config::{parse_interval, AlertConfig, AlertEvent};
use crate::history::incident::{Delivery, Event, Incident, Kind, Outcome};

/// How long one attempt may take when the config does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An alert's rules, read from its config.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// How the history names this alert: `alert-N` (N from 1, in the
    /// order of the file).
    pub name: String,
    on: Vec<AlertEvent>,
    min_rows: u64,
    after_runs: u32,
    remind: Option<i64>,
    pub timeout: Duration,
}

impl Rule {
    /// The rules of the `index`th alert (intervals were validated on load).
    pub fn new(index: usize, c: &AlertConfig) -> Rule {
        let interval =
            |v: &Option<String>| v.as_deref().and_then(|v| parse_interval(v).ok().flatten());
        Rule {
            name: format!("alert-{}", index + 1),
            on: c.on.clone().unwrap_or_else(|| {
                vec![
                    AlertEvent::Drift,
                    AlertEvent::Error,
                    AlertEvent::Recovered,
                    AlertEvent::Overdue,
                ]
            }),
            min_rows: c.min_rows.unwrap_or(1),
            after_runs: c.after_runs.unwrap_or(1).max(1),
            remind: interval(&c.remind).map(|d| d.as_secs() as i64),
            timeout: interval(&c.timeout).unwrap_or(DEFAULT_TIMEOUT),
        }
    }

    /// Whether this alert announces an open incident as it stands now.
    pub fn wants(&self, i: &Incident) -> bool {
        let (event, persists) = match i.kind {
            Kind::Drift => (AlertEvent::Drift, i.runs >= self.after_runs),
            Kind::Error => (AlertEvent::Error, i.runs >= self.after_runs),
            Kind::Overdue => (AlertEvent::Overdue, true),
        };
        let big_enough =
            i.kind != Kind::Drift || i.detail["rows"].as_u64().unwrap_or(u64::MAX) >= self.min_rows;
        self.on.contains(&event) && persists && big_enough
    }

    /// The event this alert owes the incident at `now`, given the
    /// deliveries to it so far: the incident once it qualifies, a reminder
    /// each `remind` after the last announcement, and `recovered` once it
    /// closes (only if it was announced). A failed delivery is owed again.
    pub fn next(&self, i: &Incident, so_far: &[Delivery], now: i64) -> Option<Event> {
        let delivered = |e: Event| {
            so_far
                .iter()
                .filter(move |d| d.event == e && d.outcome == Outcome::Delivered)
        };
        let announced = delivered(Event::Open).next().is_some();
        if i.closed.is_some() {
            let owed = announced
                && self.on.contains(&AlertEvent::Recovered)
                && delivered(Event::Recovered).next().is_none();
            return owed.then_some(Event::Recovered);
        }
        if !announced {
            return self.wants(i).then_some(Event::Open);
        }
        let last = delivered(Event::Open)
            .chain(delivered(Event::Reminder))
            .map(|d| d.at)
            .max()?;
        let every = self.remind?;
        (now.saturating_sub(last) >= every).then_some(Event::Reminder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(text: &str) -> Rule {
        let c: crate::config::Config = toml::from_str(text).unwrap();
        c.validate().unwrap();
        Rule::new(0, &c.alerts[0])
    }

    fn incident(kind: Kind, runs: u32, rows: u64) -> Incident {
        Incident {
            id: 1,
            table: "t".into(),
            tier: None,
            level: "keys".into(),
            kind,
            opened: 100,
            opened_run: Some(1),
            closed: None,
            closed_run: None,
            runs,
            last_run: Some(1),
            detail: json!({ "rows": rows }),
        }
    }

    fn sent(event: Event, at: i64, outcome: Outcome) -> Delivery {
        Delivery {
            id: 0,
            incident: 1,
            alert: "alert-1".into(),
            event,
            at,
            outcome,
            attempts: 1,
            seconds: 0.0,
            error: None,
        }
    }

    const HOOK: &str = "[[alerts]]\nto = \"webhook\"\nurl = \"http://x/\"\n";

    #[test]
    fn announced_once_then_reminded() {
        let r = rule(&format!("{HOOK}remind = \"1h\""));
        let i = incident(Kind::Drift, 1, 1);
        assert_eq!(r.next(&i, &[], 100), Some(Event::Open));
        let failed = [sent(Event::Open, 100, Outcome::Failed)];
        assert_eq!(r.next(&i, &failed, 160), Some(Event::Open));
        let once = [sent(Event::Open, 100, Outcome::Delivered)];
        assert_eq!(r.next(&i, &once, 3699), None);
        assert_eq!(r.next(&i, &once, 3700), Some(Event::Reminder));
        let twice = [
            sent(Event::Open, 100, Outcome::Delivered),
            sent(Event::Reminder, 3700, Outcome::Delivered),
        ];
        assert_eq!(r.next(&i, &twice, 7299), None);
        assert_eq!(r.next(&i, &twice, 7300), Some(Event::Reminder));
        // No remind: never again.
        assert_eq!(rule(HOOK).next(&i, &once, 1_000_000), None);
    }

    #[test]
    fn recovered_only_after_an_announcement() {
        let r = rule(HOOK);
        let mut i = incident(Kind::Drift, 1, 1);
        i.closed = Some(200);
        assert_eq!(r.next(&i, &[], 200), None);
        let once = [sent(Event::Open, 100, Outcome::Delivered)];
        assert_eq!(r.next(&i, &once, 200), Some(Event::Recovered));
        let both = [
            once[0].clone(),
            sent(Event::Recovered, 200, Outcome::Delivered),
        ];
        assert_eq!(r.next(&i, &both, 300), None);
        let quiet = rule(&format!("{HOOK}on = [\"drift\"]"));
        assert_eq!(quiet.next(&i, &once, 200), None);
    }

    #[test]
    fn thresholds_and_kinds() {
        let r = rule(&format!(
            "{HOOK}after_runs = 2\nmin_rows = 5\non = [\"drift\", \"overdue\"]"
        ));
        assert!(!r.wants(&incident(Kind::Drift, 1, 10)));
        assert!(!r.wants(&incident(Kind::Drift, 2, 4)));
        assert!(r.wants(&incident(Kind::Drift, 2, 5)));
        assert!(!r.wants(&incident(Kind::Error, 5, 0)));
        // Overdue needs no second run, and has no rows.
        assert!(r.wants(&incident(Kind::Overdue, 1, 0)));
    }

    #[test]
    fn bad_alerts_are_refused() {
        for (text, says) in [
            ("[[alerts]]\nto = \"pager\"", "pager"),
            (
                "[[alerts]]\nto = \"webhook\"",
                "exactly one of url and url_env",
            ),
            ("[[alerts]]\nto = \"command\"", "run ="),
            ("[[alerts]]\nto = \"command\"\nrun = []", "run ="),
            (format!("{HOOK}on = [\"drfit\"]").as_str(), "drfit"),
            (format!("{HOOK}remind = \"1 day\"").as_str(), "remind"),
            (format!("{HOOK}format = \"teams\"").as_str(), "teams"),
            (format!("{HOOK}headers.X = \"plain\"").as_str(), "plain"),
        ] {
            let e = match toml::from_str::<crate::config::Config>(text) {
                Err(e) => e.to_string(),
                Ok(c) => c.validate().unwrap_err(),
            };
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
