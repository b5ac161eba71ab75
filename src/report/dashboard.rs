//! What the dashboard shows, gathered from a config and its run history:
//! the status of every (table, level) against its tier's interval, the
//! history's results since a cutoff and the patterns found in them. The
//! page itself is drawn by [`super::html`]; this file only reads.

use crate::config::Config;
use crate::history::latest::Latest;
use crate::history::patterns::{self, PatternInput, PatternOptions, Patterns};
use crate::history::repair::RepairRecord;
use crate::history::{self, History, HistoryError, Status};
use crate::plan::{due, Level};

/// Whether the page has anything to show.
#[derive(Clone, Debug, PartialEq)]
pub enum PageState {
    Ready,
    /// No history yet, or one without a result: why, in words.
    Empty(String),
    /// A history this build cannot read (written by a newer driftsum).
    Unreadable(String),
}

/// Where a (table, level) stands against its tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeliness {
    /// Completed within its interval.
    OnTime,
    /// Its interval has passed since it last completed.
    Due,
    /// Twice its interval has passed (what opens an overdue incident).
    Overdue,
    /// Its tier runs it no more.
    Off,
}

impl Timeliness {
    pub fn as_str(self) -> &'static str {
        match self {
            Timeliness::OnTime => "on time",
            Timeliness::Due => "due",
            Timeliness::Overdue => "overdue",
            Timeliness::Off => "off",
        }
    }
}

/// One cell of the status grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub latest: Latest,
    /// The tier's interval for this level, seconds (`None`: off).
    pub interval: Option<u64>,
    pub timeliness: Timeliness,
}

/// Everything one page shows.
#[derive(Clone, Debug)]
pub struct Page {
    /// Unix seconds.
    pub generated: i64,
    pub since: i64,
    pub history: String,
    pub state: PageState,
    /// By table, then level.
    pub cells: Vec<Cell>,
    pub input: PatternInput,
    pub patterns: Patterns,
    /// Repairs since the cutoff (`check`'s automatic ones and `repair
    /// --apply`'s), newest first.
    pub repairs: Vec<RepairRecord>,
}

impl Page {
    fn without(generated: i64, since: i64, history: String, state: PageState) -> Page {
        Page {
            generated,
            since,
            history,
            state,
            cells: Vec::new(),
            input: PatternInput::default(),
            patterns: patterns::analyze(&PatternInput::default(), &PatternOptions::new(generated)),
            repairs: Vec::new(),
        }
    }

    /// The tables on the page, in name order.
    pub fn tables(&self) -> Vec<&str> {
        let mut t: Vec<&str> = self
            .cells
            .iter()
            .map(|c| c.latest.result.table.as_str())
            .collect();
        t.dedup();
        t
    }
}

/// Why a page could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{0}")]
    Location(String),
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Reads the config's history (never creating it) and gathers the page at
/// `now` over the results since `since`.
pub fn gather(config: &Config, now: i64, since: i64) -> Result<Page, DashboardError> {
    let location = history::location(config).map_err(DashboardError::Location)?;
    let shown = location.display();
    let hist = match History::open_existing(location) {
        Ok(Some(h)) => h,
        Ok(None) => {
            let why = format!("no run history at {shown} yet: run driftsum check first");
            return Ok(Page::without(now, since, shown, PageState::Empty(why)));
        }
        Err(HistoryError::Invalid { message, .. }) if message.contains("newer driftsum") => {
            let why = format!("the run history {shown}: {message}");
            return Ok(Page::without(now, since, shown, PageState::Unreadable(why)));
        }
        Err(e) => return Err(e.into()),
    };
    gather_from(config, &hist, now, since)
}

/// Gathers the page from an open history.
pub fn gather_from(
    config: &Config,
    hist: &History,
    now: i64,
    since: i64,
) -> Result<Page, DashboardError> {
    let latest = hist.latest()?;
    if latest.is_empty() {
        let why = "the run history holds no result yet: run driftsum check first".to_string();
        return Ok(Page::without(
            now,
            since,
            hist.location().display(),
            PageState::Empty(why),
        ));
    }
    let cells = latest
        .into_iter()
        .map(|l| {
            let level = l.result.level.parse::<Level>().ok();
            let interval = level
                .and_then(|lv| due::interval(config, &l.result.tier, lv))
                .map(|d| d.as_secs());
            let timeliness = timeliness(interval, l.last_completed, now);
            Cell {
                latest: l,
                interval,
                timeliness,
            }
        })
        .collect();
    let input = hist.pattern_input(since)?;
    let patterns = patterns::analyze(&input, &PatternOptions::new(now));
    let repairs = hist.repairs(since, None)?;
    Ok(Page {
        generated: now,
        since,
        history: hist.location().display(),
        state: PageState::Ready,
        cells,
        input,
        patterns,
        repairs,
    })
}

/// Where a level last completed at `last` stands at `now`.
pub fn timeliness(interval: Option<u64>, last: Option<i64>, now: i64) -> Timeliness {
    let Some(every) = interval.map(|i| i as i64) else {
        return Timeliness::Off;
    };
    match last.map(|l| now.saturating_sub(l)) {
        None => Timeliness::Overdue,
        Some(age) if age >= every.saturating_mul(2) => Timeliness::Overdue,
        Some(age) if age >= every => Timeliness::Due,
        Some(_) => Timeliness::OnTime,
    }
}

/// A cell's status in words, as the grid shows it.
pub fn status_text(s: Status) -> &'static str {
    match s {
        Status::InSync => "in sync",
        Status::Drift => "drift",
        Status::Error => "error",
        Status::Skipped => "skipped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeliness_against_the_interval() {
        assert_eq!(timeliness(None, Some(0), 100), Timeliness::Off);
        assert_eq!(timeliness(Some(60), Some(50), 100), Timeliness::OnTime);
        assert_eq!(timeliness(Some(60), Some(40), 100), Timeliness::Due);
        assert_eq!(timeliness(Some(60), Some(-20), 100), Timeliness::Overdue);
        assert_eq!(timeliness(Some(60), None, 100), Timeliness::Overdue);
    }
}
