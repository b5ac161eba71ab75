//! Prometheus metrics: the newest result of every (table, level) in the
//! run history, in the text exposition format, written atomically as a
//! node_exporter textfile (`[metrics] textfile = "…"`) after every check and
//! served by `watch` at `/metrics`. The numbers come from the history alone,
//! so every checker sharing it shows the same state.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::history::latest::Latest;
use crate::history::{self, History, Status};

/// Open incidents of one (table, level), for the `driftsum_open_incidents`
/// family. The metric is written only when its caller knows incidents: a
/// missing number must not read as "none open".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenIncidents {
    pub table: String,
    pub level: String,
    pub open: u64,
}

/// Metrics that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(transparent)]
    History(#[from] history::HistoryError),
    #[error("{0}")]
    Config(String),
    #[error("metrics textfile {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The textfile the config names, relative to the config's directory.
pub fn textfile(config: &Config) -> Option<PathBuf> {
    let file = config.metrics.as_ref()?.textfile.as_deref()?;
    let dir = config.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    Some(dir.join(file))
}

/// The exposition of the history the config names, its open incidents
/// included (as `check` writes it and `watch` serves it).
pub fn render_config(config: &Config) -> Result<String, MetricsError> {
    let path = history::location(config).map_err(MetricsError::Config)?;
    let hist = History::open(&path)?;
    let latest = hist.latest()?;
    let open = open_incidents(&hist, &latest)?;
    Ok(render(&latest, Some(&open)))
}

/// The open incidents of every (table, level) with a result (0 when none
/// is open) and of every other (table, level) with one open (an overdue
/// level that never ran, a run that reached no table).
pub fn open_incidents(
    hist: &History,
    latest: &[Latest],
) -> Result<Vec<OpenIncidents>, MetricsError> {
    let mut counts: std::collections::BTreeMap<(String, String), u64> = latest
        .iter()
        .map(|l| ((l.result.table.clone(), l.result.level.clone()), 0))
        .collect();
    // Closed incidents are read only from the far future: none.
    for i in hist.incidents(i64::MAX)? {
        if i.closed.is_none() {
            *counts.entry((i.table, i.level)).or_insert(0) += 1;
        }
    }
    Ok(counts
        .into_iter()
        .map(|((table, level), open)| OpenIncidents { table, level, open })
        .collect())
}

/// Rewrites the config's textfile, if it names one, from its history.
pub fn write_configured(config: &Config) -> Result<(), MetricsError> {
    let Some(path) = textfile(config) else {
        return Ok(());
    };
    let text = render_config(config)?;
    write_atomically(&path, &text)
}

/// Writes `text` to `path` through a temporary file in the same directory
/// renamed over it: a reader (node_exporter) sees the old file or the new
/// one, never half of one.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), MetricsError> {
    let err = |source| MetricsError::Write {
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // A name node_exporter ignores (it reads `*.prom`) while half written.
    let mut tmp = tempfile::Builder::new()
        .prefix(".driftsum-metrics")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(text.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    // node_exporter often runs as another user; nothing here is secret.
    {
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(0o644);
        tmp.as_file().set_permissions(perms).map_err(err)?;
    }
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// A family's samples of one result: an extra label, if any, and the value.
type Samples = Vec<(Option<(&'static str, &'static str)>, f64)>;

/// One metric family: its name, help, type, and how a result gives its
/// samples.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: fn(&Latest) -> Samples,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "driftsum_check_last_run_timestamp_seconds",
        help: "When the newest check of the table at the level started (Unix seconds).",
        kind: "gauge",
        samples: |r| vec![(None, r.result.started as f64)],
    },
    Family {
        name: "driftsum_check_last_completed_timestamp_seconds",
        help: "When the newest check that completed (in sync or drift) started (Unix seconds).",
        kind: "gauge",
        samples: |r| r.last_completed.map_or(Vec::new(), |t| vec![(None, t as f64)]),
    },
    Family {
        name: "driftsum_check_status",
        help: "The newest check's result: 1 for the status it has, 0 for the others.",
        kind: "gauge",
        samples: |r| {
            [Status::InSync, Status::Drift, Status::Error]
                .into_iter()
                .map(|s| {
                    let on = (r.result.status == s) as u8 as f64;
                    (Some(("status", s.as_str())), on)
                })
                .collect()
        },
    },
    Family {
        name: "driftsum_check_differing_rows",
        help: "Rows the newest keys or full check found differing, by kind (missing from the replica, extra in it, changed).",
        kind: "gauge",
        samples: |r| {
            // A count names no rows, and a failed check found none.
            if r.result.level == "count" || r.result.status == Status::Error {
                return Vec::new();
            }
            vec![
                (Some(("kind", "missing")), r.result.missing as f64),
                (Some(("kind", "extra")), r.result.extra as f64),
                (Some(("kind", "changed")), r.result.changed as f64),
            ]
        },
    },
    Family {
        name: "driftsum_check_source_rows",
        help: "Rows of the table in the source, as the newest check counted them.",
        kind: "gauge",
        samples: |r| r.result.source_rows.map_or(Vec::new(), |n| vec![(None, n as f64)]),
    },
    Family {
        name: "driftsum_check_replica_rows",
        help: "Rows of the table in the replica, as the newest check counted them.",
        kind: "gauge",
        samples: |r| r.result.target_rows.map_or(Vec::new(), |n| vec![(None, n as f64)]),
    },
    Family {
        name: "driftsum_check_rows_read",
        help: "Rows the newest check read, both sides together.",
        kind: "gauge",
        samples: |r| vec![(None, r.result.rows_read as f64)],
    },
    Family {
        name: "driftsum_check_duration_seconds",
        help: "How long the newest check took.",
        kind: "gauge",
        samples: |r| vec![(None, r.result.seconds)],
    },
    Family {
        name: "driftsum_check_exchanged_bytes",
        help: "Bytes the newest check exchanged between the sides.",
        kind: "gauge",
        samples: |r| vec![(None, r.result.bytes as f64)],
    },
];

/// The exposition of `latest` (and of `open`, when known).
pub fn render(latest: &[Latest], open: Option<&[OpenIncidents]>) -> String {
    let mut out = String::new();
    for f in FAMILIES {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for r in latest {
            for (extra, value) in (f.samples)(r) {
                let mut labels = format!(
                    "table=\"{}\",tier=\"{}\",level=\"{}\"",
                    escape(&r.result.table),
                    escape(&r.result.tier),
                    escape(&r.result.level)
                );
                if let Some((k, v)) = extra {
                    let _ = write!(labels, ",{k}=\"{}\"", escape(v));
                }
                let _ = writeln!(out, "{}{{{labels}}} {}", f.name, number(value));
            }
        }
    }
    if let Some(open) = open {
        let name = "driftsum_open_incidents";
        let _ = writeln!(
            out,
            "# HELP {name} Incidents open for the table at the level."
        );
        let _ = writeln!(out, "# TYPE {name} gauge");
        for i in open {
            let _ = writeln!(
                out,
                "{name}{{table=\"{}\",level=\"{}\"}} {}",
                escape(&i.table),
                escape(&i.level),
                i.open
            );
        }
    }
    out
}

/// A label value as the exposition format quotes it.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: integers without a fraction, the rest as Rust prints
/// them (never with an exponent), non-finite values as Prometheus spells
/// them.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::observation::Observation;

    fn latest(table: &str, status: Status) -> Latest {
        Latest {
            result: Observation {
                id: 1,
                run: 1,
                table: table.into(),
                tier: "t".into(),
                level: "count".into(),
                status,
                started: 1_700_000_000,
                seconds: 0.25,
                source_rows: Some(10),
                target_rows: None,
                missing: 1,
                extra: 0,
                changed: 2,
                in_flight: 0,
                bytes: 0,
                rows_read: 20,
            },
            last_completed: None,
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let text = render(&[latest("we\"ird\\na\nme", Status::Drift)], None);
        assert!(text.contains(r#"table="we\"ird\\na\nme""#), "{text}");
        assert!(!text.contains("driftsum_open_incidents"), "{text}");
    }

    #[test]
    fn one_status_is_on() {
        let text = render(&[latest("a", Status::Error)], None);
        let on: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("driftsum_check_status{") && l.ends_with(" 1"))
            .collect();
        assert_eq!(on.len(), 1, "{text}");
        assert!(on[0].contains("status=\"error\""), "{text}");
        // Unknown values are left out, not written as 0.
        assert!(!text.contains("driftsum_check_replica_rows{"), "{text}");
        assert!(!text.contains("driftsum_check_last_completed_timestamp_seconds{"));
    }

    #[test]
    fn numbers() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1e-7), "0.0000001");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }
}
