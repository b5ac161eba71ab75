//! Claims: how concurrent checkers split the work. A checker takes a claim
//! row per (table, level) in a write transaction (SQLite: `BEGIN
//! IMMEDIATE`, one writer at a time; PostgreSQL: an advisory lock on that
//! (table, level), so checkers on several hosts serialize on it), and only
//! if the level is still due and no live checker holds it; the result's
//! record releases it. A claim expires at its deadline, or at once when its
//! owner, on this host, is no longer running.

use super::record::host_name;
use super::{claim_key, History, HistoryError};

/// What taking a claim found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ours: run it.
    Taken,
    /// Not due any more (another checker just completed it).
    NotDue,
    /// Another live checker holds it.
    Held,
}

impl History {
    /// Claims (table, level) for `run` until `expires`, if it is still due:
    /// `due(last)` is asked about the start of its last completed result
    /// inside the same transaction, so that two checkers cannot both see it
    /// due.
    pub fn claim(
        &mut self,
        run: i64,
        table: &str,
        level: &str,
        now: i64,
        expires: i64,
        due: impl Fn(Option<i64>) -> bool,
    ) -> Result<Claim, HistoryError> {
        let host = host_name();
        self.write(&claim_key(table, level), |db| {
            let holder: Option<(String, i64, i64)> = db.query_opt(
                "SELECT host, pid, expires FROM claims WHERE table_name = $1 AND level = $2",
                args![table, level],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            if let Some((h, pid, until)) = holder {
                // Another host's checker is alive until its claim expires;
                // only here can a process be asked whether it still runs.
                let alive = until > now && (h != host || process_alive(pid));
                if alive {
                    return Ok(Claim::Held);
                }
                db.execute(
                    "DELETE FROM claims WHERE table_name = $1 AND level = $2",
                    args![table, level],
                )?;
            }
            let last = super::query::last_completed_in(db, table, level)?;
            if !due(last) {
                return Ok(Claim::NotDue);
            }
            db.execute(
                "INSERT INTO claims (table_name, level, run_id, host, pid, expires)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                args![table, level, run, host, std::process::id(), expires],
            )?;
            Ok(Claim::Taken)
        })
    }

    /// Drops the claims a run still holds (a level it did not record).
    pub fn release_claims(&mut self, run: i64) -> Result<(), HistoryError> {
        self.direct(|db| db.execute("DELETE FROM claims WHERE run_id = $1", args![run]))
            .map(drop)
    }
}

/// Whether a process of this host is running (a zombie counts as dead
/// only once reaped, which is what a killed checker's parent does).
fn process_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 checks for existence and sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
