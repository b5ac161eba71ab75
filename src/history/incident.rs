//! Incidents and the deliveries of their alerts, as stored in the history.
//! An incident is one stretch of trouble for a (table, level): drift, an
//! error, or a check overdue; it stays open while runs keep finding it and
//! closes when one finds it gone. Each alert's delivery of each event is a
//! row, claimed before it is sent so that two checkers never send it twice.
//! When an incident opens, closes or is announced is `alert`'s business;
//! this file only stores and reads.

use serde_json::Value as J;

use super::db::{Db, DbError, Row};
use super::{History, HistoryError};

/// What kind of trouble an incident is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Drift,
    Error,
    /// A due level that has not completed within twice its interval.
    Overdue,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Drift => "drift",
            Kind::Error => "error",
            Kind::Overdue => "overdue",
        }
    }

    fn parse(s: &str) -> Kind {
        match s {
            "drift" => Kind::Drift,
            "overdue" => Kind::Overdue,
            _ => Kind::Error,
        }
    }
}

/// What a delivery announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The incident, for the first time.
    Open,
    /// The incident, still open after `remind`.
    Reminder,
    /// The incident closed.
    Recovered,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Open => "open",
            Event::Reminder => "reminder",
            Event::Recovered => "recovered",
        }
    }

    fn parse(s: &str) -> Event {
        match s {
            "open" => Event::Open,
            "recovered" => Event::Recovered,
            _ => Event::Reminder,
        }
    }
}

/// One incident as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Incident {
    pub id: i64,
    pub table: String,
    pub tier: Option<String>,
    pub level: String,
    pub kind: Kind,
    /// Unix seconds: the start of the first run that found it.
    pub opened: i64,
    pub opened_run: Option<i64>,
    pub closed: Option<i64>,
    pub closed_run: Option<i64>,
    /// Runs in a row that found it.
    pub runs: u32,
    pub last_run: Option<i64>,
    /// What the last run that found it saw (counts, keys, ranges, error),
    /// as alert payloads show it.
    pub detail: J,
}

/// How a delivery went: `sending` while its sender works on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sending,
    Delivered,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sending => "sending",
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Outcome {
        match s {
            "sending" => Outcome::Sending,
            "delivered" => Outcome::Delivered,
            _ => Outcome::Failed,
        }
    }
}

/// One delivery of one event of an incident to one alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub incident: i64,
    pub alert: String,
    pub event: Event,
    /// Unix seconds: when sending began.
    pub at: i64,
    pub outcome: Outcome,
    pub attempts: u32,
    pub seconds: f64,
    pub error: Option<String>,
}

const INCIDENT_COLUMNS: &str = "id, table_name, tier, level, kind, opened, opened_run, closed, \
                                closed_run, runs, last_run, detail";

fn incident(r: &Row) -> Result<Incident, DbError> {
    let detail: String = r.get(11)?;
    Ok(Incident {
        id: r.get(0)?,
        table: r.get(1)?,
        tier: r.get(2)?,
        level: r.get(3)?,
        kind: Kind::parse(&r.get::<_, String>(4)?),
        opened: r.get(5)?,
        opened_run: r.get(6)?,
        closed: r.get(7)?,
        closed_run: r.get(8)?,
        runs: r.get::<_, i64>(9)?.clamp(0, u32::MAX as i64) as u32,
        last_run: r.get(10)?,
        detail: serde_json::from_str(&detail).unwrap_or(J::Null),
    })
}

fn delivery(r: &Row) -> Result<Delivery, DbError> {
    Ok(Delivery {
        id: r.get(0)?,
        incident: r.get(1)?,
        alert: r.get(2)?,
        event: Event::parse(&r.get::<_, String>(3)?),
        at: r.get(4)?,
        outcome: Outcome::parse(&r.get::<_, String>(5)?),
        attempts: r.get::<_, i64>(6)?.clamp(0, u32::MAX as i64) as u32,
        seconds: r.get(7)?,
        error: r.get(8)?,
    })
}

const DELIVERY_COLUMNS: &str =
    "id, incident_id, alert, event, at, outcome, attempts, seconds, error";

/// Where a run found a (table, level) in trouble.
pub struct Sighting<'a> {
    pub table: &'a str,
    pub tier: &'a str,
    pub level: &'a str,
    pub kind: Kind,
    pub run: i64,
    /// Unix seconds: the start of the check that found it.
    pub at: i64,
    pub detail: J,
}

/// The PostgreSQL lock under which a (table, level)'s incidents open and
/// close (overdue ones may be found by two checkers at once).
fn incident_key(table: &str, level: &str) -> String {
    format!("incident\0{table}\0{level}")
}

impl History {
    /// Records that a run found trouble: the open incident of that (table,
    /// level, kind) counts one more run and takes the new detail, or a new
    /// one opens. Returns it as it now is.
    pub fn sighted(&mut self, s: &Sighting<'_>) -> Result<Incident, HistoryError> {
        self.write(&incident_key(s.table, s.level), |db| sighted_in(db, s))
    }

    /// Closes the open incidents of (table, level) of these kinds; returns
    /// them, closed.
    pub fn close_incidents(
        &mut self,
        table: &str,
        level: &str,
        kinds: &[Kind],
        run: i64,
        now: i64,
    ) -> Result<Vec<Incident>, HistoryError> {
        self.write(&incident_key(table, level), |db| {
            let mut closed = Vec::new();
            for k in kinds {
                let open: Vec<i64> = db.query_map(
                    "SELECT id FROM incidents
                     WHERE table_name = $1 AND level = $2 AND kind = $3 AND closed IS NULL",
                    args![table, level, k.as_str()],
                    |r| r.get(0),
                )?;
                for id in open {
                    db.execute(
                        "UPDATE incidents SET closed = $2, closed_run = $3 WHERE id = $1",
                        args![id, now, run],
                    )?;
                    closed.push(db.query_row(
                        &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"),
                        args![id],
                        incident,
                    )?);
                }
            }
            Ok(closed)
        })
    }

    /// Every open incident, and those closed at or after `closed_since`,
    /// oldest first.
    pub fn incidents(&self, closed_since: i64) -> Result<Vec<Incident>, HistoryError> {
        self.direct(|db| {
            db.query_map(
                &format!(
                    "SELECT {INCIDENT_COLUMNS} FROM incidents
                     WHERE closed IS NULL OR closed >= $1 ORDER BY id"
                ),
                args![closed_since],
                incident,
            )
        })
    }

    /// When the history's oldest kept run started (`None`: no run yet).
    pub fn first_run(&self) -> Result<Option<i64>, HistoryError> {
        self.direct(|db| db.query_row("SELECT min(started) FROM runs", args![], |r| r.get(0)))
    }

    /// An incident's deliveries to `alert`, oldest first.
    pub fn deliveries(&self, incident: i64, alert: &str) -> Result<Vec<Delivery>, HistoryError> {
        self.direct(|db| deliveries_in(db, incident, alert))
    }

    /// Claims the next delivery of an incident to an alert, in one write
    /// transaction: `next` sees the deliveries so far (none still being
    /// sent by a sender that began after `stale_before`) and names the
    /// event to send, if any, which is recorded as `sending`. Returns the
    /// claimed delivery's id and event.
    pub fn claim_delivery(
        &mut self,
        incident: i64,
        alert: &str,
        now: i64,
        stale_before: i64,
        next: impl FnOnce(&[Delivery]) -> Option<Event>,
    ) -> Result<Option<(i64, Event)>, HistoryError> {
        let key = format!("delivery\0{incident}\0{alert}");
        self.write(&key, |db| {
            let mut so_far = deliveries_in(db, incident, alert)?;
            // A sender that died mid-way left `sending`: after a while it
            // counts as failed, so that the event is sent again.
            if so_far
                .iter()
                .any(|d| d.outcome == Outcome::Sending && d.at >= stale_before)
            {
                return Ok(None);
            }
            for d in so_far.iter_mut().filter(|d| d.outcome == Outcome::Sending) {
                d.outcome = Outcome::Failed;
            }
            let Some(event) = next(&so_far) else {
                return Ok(None);
            };
            let id: i64 = db.query_row(
                "INSERT INTO deliveries (incident_id, alert, event, at, outcome)
                 VALUES ($1, $2, $3, $4, 'sending') RETURNING id",
                args![incident, alert, event.as_str(), now],
                |r| r.get(0),
            )?;
            Ok(Some((id, event)))
        })
    }

    /// Records how a claimed delivery went.
    pub fn finish_delivery(
        &mut self,
        id: i64,
        outcome: Outcome,
        attempts: u32,
        seconds: f64,
        error: Option<&str>,
    ) -> Result<(), HistoryError> {
        self.direct(|db| {
            db.execute(
                "UPDATE deliveries SET outcome = $2, attempts = $3, seconds = $4, error = $5
                 WHERE id = $1",
                args![id, outcome.as_str(), attempts, seconds, error],
            )
        })
        .map(drop)
    }
}

fn sighted_in(db: &mut Db<'_>, s: &Sighting<'_>) -> Result<Incident, DbError> {
    let detail = s.detail.to_string();
    let open: Option<i64> = db.query_opt(
        "SELECT id FROM incidents
         WHERE table_name = $1 AND level = $2 AND kind = $3 AND closed IS NULL",
        args![s.table, s.level, s.kind.as_str()],
        |r| r.get(0),
    )?;
    let id = match open {
        // The same run may report a (table, level) once only; a second
        // sighting by one run (a rerun of the level) is not another run.
        Some(id) => {
            db.execute(
                "UPDATE incidents
                 SET runs = runs + CASE WHEN last_run IS DISTINCT FROM $2 THEN 1 ELSE 0 END,
                     last_run = $2, detail = $3, tier = $4
                 WHERE id = $1",
                args![id, s.run, detail, s.tier],
            )?;
            id
        }
        None => db.query_row(
            "INSERT INTO incidents (table_name, tier, level, kind, opened, opened_run,
                 runs, last_run, detail)
             VALUES ($1, $2, $3, $4, $5, $6, 1, $6, $7) RETURNING id",
            args![
                s.table,
                s.tier,
                s.level,
                s.kind.as_str(),
                s.at,
                s.run,
                detail
            ],
            |r| r.get(0),
        )?,
    };
    db.query_row(
        &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"),
        args![id],
        incident,
    )
}

fn deliveries_in(db: &mut Db<'_>, incident: i64, alert: &str) -> Result<Vec<Delivery>, DbError> {
    db.query_map(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
             WHERE incident_id = $1 AND alert = $2 ORDER BY id"
        ),
        args![incident, alert],
        delivery,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> (tempfile::TempDir, History) {
        let d = tempfile::tempdir().unwrap();
        let h = History::open(d.path().join("h.sqlite")).unwrap();
        (d, h)
    }

    fn sighting(run: i64, at: i64) -> Sighting<'static> {
        Sighting {
            table: "t",
            tier: "x",
            level: "keys",
            kind: Kind::Drift,
            run,
            at,
            detail: json!({"rows": run}),
        }
    }

    #[test]
    fn an_incident_lasts_until_closed() {
        let (_d, mut h) = store();
        let a = h.sighted(&sighting(1, 100)).unwrap();
        let b = h.sighted(&sighting(2, 200)).unwrap();
        // The same run again is not another run.
        let b2 = h.sighted(&sighting(2, 200)).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!((a.runs, b.runs, b2.runs), (1, 2, 2));
        assert_eq!(b.opened, 100);
        assert_eq!(b.detail, json!({"rows": 2}));
        assert!(h
            .close_incidents("t", "keys", &[Kind::Error], 3, 300)
            .unwrap()
            .is_empty());
        let closed = h
            .close_incidents("t", "keys", &[Kind::Drift], 3, 300)
            .unwrap();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].closed, Some(300));
        let c = h.sighted(&sighting(4, 400)).unwrap();
        assert_ne!(c.id, a.id, "a new stretch of drift is a new incident");
        assert_eq!(h.incidents(300).unwrap().len(), 2);
        assert_eq!(h.incidents(301).unwrap().len(), 1);
    }

    #[test]
    fn a_delivery_is_claimed_once() {
        let (_d, mut h) = store();
        let i = h.sighted(&sighting(1, 100)).unwrap();
        let first = |d: &[Delivery]| {
            (!d.iter().any(|d| d.outcome == Outcome::Delivered)).then_some(Event::Open)
        };
        let (id, ev) = h.claim_delivery(i.id, "a", 100, 0, first).unwrap().unwrap();
        assert_eq!(ev, Event::Open);
        // Being sent: another checker does not send it too.
        assert_eq!(h.claim_delivery(i.id, "a", 101, 0, first).unwrap(), None);
        // Another alert is apart.
        assert!(h
            .claim_delivery(i.id, "b", 101, 0, first)
            .unwrap()
            .is_some());
        h.finish_delivery(id, Outcome::Failed, 3, 1.5, Some("500"))
            .unwrap();
        // Failed: sent again.
        let (id2, _) = h.claim_delivery(i.id, "a", 102, 0, first).unwrap().unwrap();
        h.finish_delivery(id2, Outcome::Delivered, 1, 0.1, None)
            .unwrap();
        assert_eq!(h.claim_delivery(i.id, "a", 103, 0, first).unwrap(), None);
        let all = h.deliveries(i.id, "a").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].attempts, 3);
        assert_eq!(all[0].error.as_deref(), Some("500"));
        assert_eq!(all[1].outcome, Outcome::Delivered);
    }

    #[test]
    fn a_dead_senders_claim_goes_stale() {
        let (_d, mut h) = store();
        let i = h.sighted(&sighting(1, 100)).unwrap();
        let any = |_: &[Delivery]| Some(Event::Open);
        assert!(h.claim_delivery(i.id, "a", 100, 0, any).unwrap().is_some());
        assert!(h.claim_delivery(i.id, "a", 120, 50, any).unwrap().is_none());
        assert!(h
            .claim_delivery(i.id, "a", 200, 150, any)
            .unwrap()
            .is_some());
    }
}
