//! The results as people and programs read them: an aligned text table, CSV
//! (one line per size and difference count) and a JSON document.

use super::run::Measurement;

pub use crate::report::text::thousands;

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "?".into(), |b| format!("{:.1}", b as f64 / 1_048_576.0))
}

fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.0}k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

const HEADER: [&str; 14] = [
    "case",
    "rows",
    "diffs",
    "total s",
    "× plain",
    "scan+hash s",
    "walk s",
    "fetch s",
    "src rows/s",
    "rep rows/s",
    "bytes",
    "round trips",
    "peak MiB",
    "found",
];

/// The plain measurement a case is shown beside: same rows, same drift
/// (dense drift: the in-sync pair).
pub fn plain_of<'a>(m: &Measurement, all: &'a [Measurement]) -> Option<&'a Measurement> {
    let diffs = if m.case == "dense" { 0 } else { m.diffs };
    all.iter()
        .find(|p| p.case == "plain" && p.rows == m.rows && p.diffs == diffs)
}

/// The case's time over its plain neighbour's, shown for the cases only.
fn ratio(m: &Measurement, all: &[Measurement]) -> String {
    match plain_of(m, all) {
        Some(p) if m.case != "plain" && p.seconds > 0.0 => format!("{:.2}", m.seconds / p.seconds),
        _ => String::new(),
    }
}

fn cells(m: &Measurement, all: &[Measurement]) -> [String; 14] {
    [
        m.case.clone(),
        thousands(m.rows),
        thousands(m.diffs),
        format!("{:.3}", m.seconds),
        ratio(m, all),
        format!("{:.3}", m.scan_seconds),
        format!("{:.4}", m.walk_seconds),
        format!("{:.4}", m.fetch_seconds),
        rate(m.source_rows_per_second),
        rate(m.target_rows_per_second),
        thousands(m.bytes_exchanged),
        thousands(m.round_trips),
        mib(m.peak_memory_bytes),
        if m.found == m.diffs {
            "exact".into()
        } else {
            thousands(m.found)
        },
    ]
}

/// An aligned plain-text table (numbers right-aligned).
pub fn table(ms: &[Measurement]) -> String {
    let rows: Vec<[String; 14]> = ms.iter().map(|m| cells(m, ms)).collect();
    let width: Vec<usize> = (0..HEADER.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([HEADER[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, cols: &[String]| {
        let padded: Vec<String> = cols
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut out, &HEADER.map(String::from));
    for r in &rows {
        line(&mut out, r);
    }
    out
}

/// A Markdown table of the same figures, for a README.
pub fn markdown(ms: &[Measurement]) -> String {
    let mut out = format!("| {} |\n", HEADER.join(" | "));
    out.push_str(&format!("|{}\n", "---:|".repeat(HEADER.len())));
    for m in ms {
        out.push_str(&format!("| {} |\n", cells(m, ms).join(" | ")));
    }
    out
}

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "rows,diffs,found,seconds,scan_seconds,walk_seconds,fetch_seconds,\
source_rows_per_second,target_rows_per_second,source_rows_read,target_rows_read,\
nodes_compared,bytes_exchanged,round_trips,peak_memory_bytes,runs,case,plain_seconds";

/// CSV with a header line; an unknown peak memory is an empty field.
pub fn csv(ms: &[Measurement]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for m in ms {
        out.push_str(&format!(
            "{},{},{},{:.6},{:.6},{:.6},{:.6},{:.0},{:.0},{},{},{},{},{},{},{},{},{}\n",
            m.rows,
            m.diffs,
            m.found,
            m.seconds,
            m.scan_seconds,
            m.walk_seconds,
            m.fetch_seconds,
            m.source_rows_per_second,
            m.target_rows_per_second,
            m.source_rows_read,
            m.target_rows_read,
            m.nodes_compared,
            m.bytes_exchanged,
            m.round_trips,
            m.peak_memory_bytes
                .map(|b| b.to_string())
                .unwrap_or_default(),
            m.runs,
            m.case,
            plain_of(m, ms)
                .filter(|_| m.case != "plain")
                .map(|p| format!("{:.6}", p.seconds))
                .unwrap_or_default()
        ));
    }
    out
}

/// What a JSON document says about the run besides the measurements.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunInfo {
    pub driftsum_version: &'static str,
    pub encoding_version: u32,
    pub source_engine: String,
    pub replica_engine: String,
    pub cpus: usize,
}

/// One JSON document: the run's settings and every measurement.
pub fn json(info: &RunInfo, ms: &[Measurement]) -> String {
    let doc = serde_json::json!({ "run": info, "measurements": ms });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
