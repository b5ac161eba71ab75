//! The dashboard as one self-contained HTML page: inline styles, a few
//! lines of script and SVG charts, nothing fetched, so that it opens from
//! `file://`, from an e-mail attachment and from `watch`'s `/` alike. What
//! it shows is gathered by [`super::dashboard`]; the charts are
//! [`super::svg`]'s.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::dashboard::{status_text, Page, PageState, Timeliness};
use super::svg::{esc, heat_map, key_space, legend, short_time, time_chart, Series};
use crate::history::patterns::{DriftKey, Observation};
use crate::history::Status;

const LEVELS: [&str; 3] = ["count", "keys", "full"];

/// How many recent results, ranges and differences a drill-down lists.
const RECENT: usize = 20;

const STYLE: &str = r#"
:root{--ok:#1a7f37;--bad:#b42318;--warn:#9a6700;--mute:#57606a;--line:#d0d7de;--bg:#fff;--fg:#1f2328}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header,main{max-width:1100px;margin:0 auto;padding:0 16px}
header{padding-top:12px}
h1{font-size:1.4em;margin:.3em 0}
h2{font-size:1.15em;margin:1.4em 0 .5em;border-bottom:1px solid var(--line)}
h3{font-size:1em;margin:1em 0 .3em}
small,.meta{color:var(--mute)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
td.num,th.num{text-align:right}
.st{font-weight:600}
.s-in_sync .st{color:var(--ok)}
.s-drift .st,.s-error .st{color:var(--bad)}
.s-skipped .st,.s-none .st{color:var(--mute)}
.s-drift,.s-error{background:#fff1f0}
.s-in_sync{background:#f0fff4}
.badge{display:inline-block;font-size:.8em;padding:0 5px;border-radius:3px;border:1px solid currentColor}
.t-overdue{color:var(--bad)}
.t-due{color:var(--warn)}
.banner{padding:10px 14px;border:2px solid var(--warn);border-radius:6px;background:#fff8c5;margin:12px 0}
.banner.bad{border-color:var(--bad);background:#fff1f0}
a{color:#0969da}
details.table{border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:0 10px}
details.table>summary{cursor:pointer;padding:8px 0;font-weight:600}
details.table[open]>summary{border-bottom:1px solid var(--line)}
svg.chart,svg.keys{width:100%;height:auto;max-height:200px;display:block}
svg.heat{width:100%;max-width:640px;display:block}
.axis{stroke:#8c959f;stroke-width:1}
.tick,.cnt{font-size:10px;fill:var(--mute)}
.cnt{fill:#fff;font-weight:600}
.line{fill:none;stroke-width:1.5}
.total{stroke:var(--fg)}.pt{fill:var(--fg)}
.missing{stroke:#cf222e}.extra{stroke:#8250df}.changed{stroke:#bf8700}.dur{stroke:#0969da}
.pt.dur{fill:#0969da}
.range{fill:#cf222e;opacity:.6}
.h0{fill:#eef1f4}.h1{fill:#fbb4ae}.h2{fill:#f4796f}.h3{fill:#d93a2b}.h4{fill:#8e1b12}
.legend span{margin-right:12px;white-space:nowrap;font-size:.9em}
button.open{font:inherit;border:0;background:none;color:#0969da;text-decoration:underline;cursor:pointer;padding:0;text-align:left}
@media (max-width:600px){body{font-size:14px}th,td{padding:3px 4px}.hide-sm{display:none}}
"#;

/// Opens a table's drill-down from the status grid (and from a `#t-N` link
/// or address), then scrolls to it.
const SCRIPT: &str = r#"
function openTable(id){var d=document.getElementById(id);if(!d)return;d.open=true;d.scrollIntoView({block:'start'});}
document.querySelectorAll('button.open').forEach(function(b){b.addEventListener('click',function(){openTable(b.getAttribute('data-target'));history.replaceState(null,'','#'+b.getAttribute('data-target'));});});
if(location.hash.length>1){openTable(location.hash.slice(1));}
"#;

/// How every page starts: `report --out` replaces only a file starting so.
pub const MAGIC: &str = "<!doctype html><!-- driftsum dashboard -->";

/// The page as HTML.
pub fn render(page: &Page) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let _ = write!(
        s,
        r#"<!doctype html><!-- driftsum dashboard --><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>driftsum status</title><style>{STYLE}</style></head><body><header><h1>driftsum status</h1><p class="meta">Generated {} UTC by driftsum {} from {} · results since {} UTC</p></header><main>"#,
        esc(&short_time(page.generated)),
        env!("CARGO_PKG_VERSION"),
        esc(&page.history),
        esc(&short_time(page.since.max(0)))
    );
    match &page.state {
        PageState::Ready => {
            status_grid(&mut s, page);
            incidents(&mut s, page);
            repairs(&mut s, page);
            patterns(&mut s, page);
            drill_downs(&mut s, page);
        }
        PageState::Empty(why) => {
            let _ = write!(
                s,
                r#"<p class="banner" id="state">Nothing to show yet: {}.</p>"#,
                esc(why)
            );
        }
        PageState::Unreadable(why) => {
            let _ = write!(
                s,
                r#"<p class="banner bad" id="state">This page cannot show the history: {}. Upgrade driftsum to read it.</p>"#,
                esc(why)
            );
        }
    }
    let _ = writeln!(s, "</main><script>{SCRIPT}</script></body></html>");
    s
}

fn ago(now: i64, t: i64) -> String {
    let d = now.saturating_sub(t).max(0);
    match d {
        0..=119 => format!("{d}s ago"),
        120..=7_199 => format!("{}m ago", d / 60),
        7_200..=172_799 => format!("{}h ago", d / 3_600),
        _ => format!("{}d ago", d / 86_400),
    }
}

fn rows_text(n: i64) -> String {
    match n {
        1 => " 1 row".to_string(),
        n => format!(" {n} rows"),
    }
}

fn duration(secs: i64) -> String {
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7_199 => format!("{}m", secs / 60),
        7_200..=172_799 => format!("{:.1}h", secs as f64 / 3_600.0),
        _ => format!("{:.1}d", secs as f64 / 86_400.0),
    }
}

fn status_grid(s: &mut String, page: &Page) {
    s.push_str(r#"<section id="status"><h2>Status</h2><div class="scroll"><table class="grid"><thead><tr><th>Table</th><th class="hide-sm">Tier</th>"#);
    for l in LEVELS {
        let _ = write!(s, "<th>{l}</th>");
    }
    s.push_str("</tr></thead><tbody>");
    for (i, table) in page.tables().into_iter().enumerate() {
        let cells: Vec<_> = page
            .cells
            .iter()
            .filter(|c| c.latest.result.table == table)
            .collect();
        let tier = cells.first().map_or("", |c| c.latest.result.tier.as_str());
        let _ = write!(
            s,
            r#"<tr class="table-row" data-table="{0}"><th><button class="open" data-target="t-{i}">{0}</button></th><td class="hide-sm">{1}</td>"#,
            esc(table),
            esc(tier)
        );
        for level in LEVELS {
            let Some(c) = cells.iter().find(|c| c.latest.result.level == level) else {
                s.push_str(r#"<td class="s-none"><span class="st">not run</span></td>"#);
                continue;
            };
            let l = &c.latest.result;
            let rows = l.missing + l.extra + l.changed;
            let detail = match l.status {
                Status::Drift if rows > 0 => rows_text(rows),
                Status::Drift => match (l.source_rows, l.target_rows) {
                    (Some(a), Some(b)) => rows_text((a - b).abs()),
                    _ => String::new(),
                },
                _ => String::new(),
            };
            let when = match c.timeliness {
                Timeliness::Due | Timeliness::Overdue => format!(
                    r#" · <span class="badge t-{0}">{0}</span>"#,
                    c.timeliness.as_str()
                ),
                _ => String::new(),
            };
            let _ = write!(
                s,
                r#"<td class="s-{}"><span class="st">{}</span>{}<br><small>{}{}</small></td>"#,
                l.status.as_str(),
                status_text(l.status),
                esc(&detail),
                ago(page.generated, l.started),
                when
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div></section>");
}

fn incidents(s: &mut String, page: &Page) {
    s.push_str(r#"<section id="incidents"><h2>Incidents</h2>"#);
    let open: Vec<_> = page
        .patterns
        .recovery
        .iter()
        .filter(|r| r.closed.is_none())
        .collect();
    let closed: Vec<_> = page
        .patterns
        .recovery
        .iter()
        .filter(|r| r.closed.is_some())
        .collect();
    if open.is_empty() {
        s.push_str("<p>No open incident.</p>");
    } else {
        s.push_str(r#"<div class="scroll"><table><thead><tr><th>Table</th><th>Level</th><th>Kind</th><th>Open for</th><th class="num">Runs</th></tr></thead><tbody>"#);
        for r in open {
            let _ = write!(
                s,
                r#"<tr class="s-drift"><td>{}</td><td>{}</td><td><span class="st">{}</span></td><td>{} (since {} UTC)</td><td class="num">{}</td></tr>"#,
                esc(&r.table),
                esc(&r.level),
                r.kind,
                duration(r.open_seconds),
                esc(&short_time(r.opened)),
                r.runs
            );
        }
        s.push_str("</tbody></table></div>");
    }
    if !closed.is_empty() {
        let mut secs: Vec<i64> = closed.iter().map(|r| r.open_seconds).collect();
        secs.sort_unstable();
        let _ = write!(
            s,
            "<h3>Closed since {} UTC</h3><p>{} incidents; time to recovery: median {}, longest {}.</p>",
            esc(&short_time(page.since.max(0))),
            closed.len(),
            duration(secs[secs.len() / 2]),
            duration(secs[secs.len() - 1])
        );
        s.push_str(r#"<div class="scroll"><table><thead><tr><th>Table</th><th>Level</th><th>Kind</th><th>Opened</th><th>Lasted</th><th class="num">Runs</th><th>Closed by</th></tr></thead><tbody>"#);
        for r in closed.iter().rev().take(RECENT) {
            let _ = write!(
                s,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{} UTC</td><td>{}</td><td class="num">{}</td><td>{}</td></tr>"#,
                esc(&r.table),
                esc(&r.level),
                r.kind,
                esc(&short_time(r.opened)),
                duration(r.open_seconds),
                r.runs,
                closed_by(r.closed_by)
            );
        }
        s.push_str("</tbody></table></div>");
    }
    s.push_str("</section>");
}

/// The latest repairs, newest first: what each planned, applied and proved.
fn repairs(s: &mut String, page: &Page) {
    s.push_str(r#"<section id="repairs"><h2>Recent repairs</h2>"#);
    if page.repairs.is_empty() {
        let _ = write!(
            s,
            "<p>No repair since {} UTC.</p></section>",
            esc(&short_time(page.since.max(0)))
        );
        return;
    }
    s.push_str(r#"<div class="scroll"><table><thead><tr><th>Ended</th><th>Table</th><th>By</th><th>Outcome</th><th class="num">Planned</th><th class="num">Applied</th><th>Proved in sync</th><th>Note</th></tr></thead><tbody>"#);
    for r in page.repairs.iter().take(RECENT) {
        let by = match &r.level {
            Some(level) => format!("{} ({level})", r.origin),
            None => r.origin.clone(),
        };
        let class = match r.outcome.as_str() {
            "failed" | "unverified" => r#" class="s-error""#,
            "skipped" | "partial" => r#" class="s-drift""#,
            _ => "",
        };
        let _ = write!(
            s,
            r#"<tr{class}><td>{} UTC</td><td>{}</td><td>{}</td><td><span class="st">{}</span></td><td class="num">{}</td><td class="num">{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&short_time(r.at)),
            esc(&r.table),
            esc(&by),
            esc(&r.outcome),
            r.planned,
            r.applied,
            if r.verified { "yes" } else { "no" },
            esc(r.note.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</tbody></table></div></section>");
}

fn closed_by(how: &str) -> &'static str {
    match how {
        "in_sync" => "in sync again (caught up or repaired)",
        "in_flight" => "rows found in flight",
        "open" => "open",
        _ => "unknown",
    }
}

fn patterns(s: &mut String, page: &Page) {
    let p = &page.patterns;
    s.push_str(r#"<section id="patterns"><h2>Patterns</h2><h3>Tables by drift</h3><div class="scroll"><table id="ranked"><thead><tr><th>Table</th><th>Level</th><th class="num">Drifting checks</th><th class="num">Missing</th><th class="num">Extra</th><th class="num">Changed</th><th class="num">In flight</th><th>Reading</th></tr></thead><tbody>"#);
    for t in &p.tables {
        let reading = match t.behaviour {
            "drift" if t.in_flight_rate.is_some_and(|r| r >= 0.5) => "drift, much of it in flight",
            "drift" => "drift (lost changes)",
            "in_flight_only" => "only rows in flight: a lagging sync",
            _ => "in sync",
        };
        let _ = write!(
            s,
            r#"<tr><td>{}</td><td>{}</td><td class="num">{} of {}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{reading}</td></tr>"#,
            esc(&t.table),
            esc(&t.level),
            t.drifting_runs,
            t.runs,
            t.missing,
            t.extra,
            t.changed,
            t.in_flight_rows
        );
    }
    s.push_str("</tbody></table></div>");
    s.push_str("<h3>When drift is found (UTC)</h3>");
    s.push_str(&heat_map(&p.when));
    s.push_str("<h3>Recurring ranges</h3>");
    if p.recurring_ranges.is_empty() {
        s.push_str("<p>No key range drifted in three or more checks.</p>");
    }
    let mut by_table: BTreeMap<(&str, &str), Vec<_>> = BTreeMap::new();
    for r in &p.recurring_ranges {
        by_table
            .entry((r.table.as_str(), r.level.as_str()))
            .or_default()
            .push(r);
    }
    for ((table, level), ranges) in by_table {
        let _ = write!(s, "<p><b>{}</b> ({})</p>", esc(table), esc(level));
        s.push_str(&key_space(&ranges));
        s.push_str("<ul>");
        for r in ranges {
            let hours: Vec<String> = r.hours.iter().map(|h| format!("{h:02}h")).collect();
            let _ = write!(
                s,
                "<li>{} to {}: drifted in {} of the last {} checks, at {} UTC</li>",
                esc(&r.first.to_string()),
                esc(&r.last.to_string()),
                r.runs,
                r.of_runs,
                hours.join(", ")
            );
        }
        s.push_str("</ul>");
    }
    if !p.recurring_keys.is_empty() {
        s.push_str("<h3>Rows that drifted again after being in sync</h3><ul>");
        for k in p.recurring_keys.iter().take(RECENT) {
            let _ = write!(
                s,
                "<li>{} {}: {} times, last {} UTC</li>",
                esc(&k.table),
                esc(&k.key.to_string()),
                k.returns,
                esc(&short_time(k.last_seen))
            );
        }
        s.push_str("</ul>");
    }
    if !p.growing.is_empty() {
        s.push_str("<h3>Growing drift</h3><ul>");
        for g in &p.growing {
            let _ = write!(
                s,
                "<li>{} ({}): {} to {} rows over {} checks{}</li>",
                esc(&g.table),
                esc(&g.level),
                g.from_rows,
                g.to_rows,
                g.runs,
                if g.ongoing { ", still growing" } else { "" }
            );
        }
        s.push_str("</ul>");
    }
    s.push_str(r#"<h3>Cost per table size</h3><div class="scroll"><table id="cost"><thead><tr><th>Table</th><th>Level</th><th class="num">Rows</th><th class="num">Mean seconds</th><th class="num">s per M rows</th><th class="num">Mean bytes</th></tr></thead><tbody>"#);
    for c in &p.cost {
        let _ = write!(
            s,
            r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{:.3}</td><td class="num">{}</td><td class="num">{:.0}</td></tr>"#,
            esc(&c.table),
            esc(&c.level),
            c.rows,
            c.mean_seconds,
            c.seconds_per_million_rows
                .map_or("-".into(), |v| format!("{v:.2}")),
            c.mean_bytes
        );
    }
    s.push_str("</tbody></table></div></section>");
}

/// The deepest level's result of each run of a table, oldest first: one
/// point per run on its charts (with the run's summed duration).
fn per_run<'a>(results: &[&'a Observation]) -> Vec<(&'a Observation, f64)> {
    let mut runs: Vec<(&Observation, f64)> = Vec::new();
    for &o in results {
        match runs.iter_mut().find(|(r, _)| r.run == o.run) {
            Some((r, secs)) => {
                *secs += o.seconds;
                if (o.drifted(), o.level.as_str() == "full")
                    > (r.drifted(), r.level.as_str() == "full")
                {
                    *r = o;
                }
            }
            None => runs.push((o, o.seconds)),
        }
    }
    runs
}

fn drill_downs(s: &mut String, page: &Page) {
    s.push_str(r#"<section id="tables"><h2>Tables</h2>"#);
    let mut by_table: BTreeMap<&str, Vec<&Observation>> = BTreeMap::new();
    for o in &page.input.results {
        by_table.entry(o.table.as_str()).or_default().push(o);
    }
    for (i, table) in page.tables().into_iter().enumerate() {
        let results = by_table.remove(table).unwrap_or_default();
        let worst = page
            .cells
            .iter()
            .filter(|c| c.latest.result.table == table)
            .map(|c| c.latest.result.status)
            .max_by_key(|s| match s {
                Status::Error => 3,
                Status::Drift => 2,
                Status::Skipped => 1,
                Status::InSync => 0,
            })
            .unwrap_or(Status::Skipped);
        let _ = write!(
            s,
            r#"<details class="table" id="t-{i}" data-table="{0}"><summary>{0} <span class="s-{1}"><span class="st">{2}</span></span></summary>"#,
            esc(table),
            worst.as_str(),
            status_text(worst)
        );
        let runs = per_run(&results);
        let times: Vec<i64> = runs.iter().map(|(o, _)| o.started).collect();
        let series = |f: fn(&Observation) -> i64| runs.iter().map(|(o, _)| f(o) as f64).collect();
        let drift = [
            Series {
                name: "rows drifted",
                class: "total",
                dash: "0",
                values: series(|o| o.drifted()),
            },
            Series {
                name: "missing",
                class: "missing",
                dash: "4 2",
                values: series(|o| o.missing),
            },
            Series {
                name: "extra",
                class: "extra",
                dash: "1 2",
                values: series(|o| o.extra),
            },
            Series {
                name: "changed",
                class: "changed",
                dash: "6 2 1 2",
                values: series(|o| o.changed),
            },
        ];
        let _ = write!(s, "<h3>Drift per check ({} checks)</h3>", runs.len());
        s.push_str(r#"<div class="drift-chart">"#);
        s.push_str(&time_chart(
            &format!("{table}: rows drifted per check"),
            "",
            &times,
            &drift,
        ));
        s.push_str("</div>");
        s.push_str(&legend(&drift));
        let dur = [Series {
            name: "seconds",
            class: "dur",
            dash: "0",
            values: runs.iter().map(|(_, secs)| *secs).collect(),
        }];
        s.push_str("<h3>Check duration</h3>");
        s.push_str(&time_chart(
            &format!("{table}: seconds per check"),
            "s",
            &times,
            &dur,
        ));
        recent(s, page, &results);
        s.push_str("</details>");
    }
    s.push_str("</section>");
}

fn recent(s: &mut String, page: &Page, results: &[&Observation]) {
    s.push_str(r#"<h3>Recent results</h3><div class="scroll"><table><thead><tr><th>Started (UTC)</th><th>Level</th><th>Status</th><th class="num">Missing</th><th class="num">Extra</th><th class="num">Changed</th><th class="num">In flight</th><th class="num">Seconds</th></tr></thead><tbody>"#);
    for o in results.iter().rev().take(RECENT) {
        let _ = write!(
            s,
            r#"<tr class="s-{}"><td>{}</td><td>{}</td><td><span class="st">{}</span></td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{:.2}</td></tr>"#,
            o.status.as_str(),
            esc(&short_time(o.started)),
            esc(&o.level),
            status_text(o.status),
            o.missing,
            o.extra,
            o.changed,
            o.in_flight,
            o.seconds
        );
    }
    s.push_str("</tbody></table></div>");
    let ids: std::collections::HashMap<i64, &Observation> =
        results.iter().map(|o| (o.id, *o)).collect();
    let ranges: Vec<_> = page
        .input
        .ranges
        .iter()
        .filter(|g| ids.contains_key(&g.result))
        .collect();
    if !ranges.is_empty() {
        s.push_str("<h3>Drifted ranges</h3><ul>");
        for g in ranges.iter().rev().take(RECENT) {
            let at = ids.get(&g.result).map_or(0, |o| o.started);
            let _ = write!(
                s,
                "<li>{} to {} ({} UTC)</li>",
                esc(&g.first.to_string()),
                esc(&g.last.to_string()),
                esc(&short_time(at))
            );
        }
        s.push_str("</ul>");
    }
    let keys: Vec<&DriftKey> = page
        .input
        .keys
        .iter()
        .filter(|k| ids.contains_key(&k.result))
        .collect();
    if !keys.is_empty() {
        let _ = write!(
            s,
            "<h3>Sample of differences ({} newest)</h3><ul>",
            keys.len().min(RECENT)
        );
        for k in keys.iter().rev().take(RECENT) {
            let at = ids.get(&k.result).map_or(0, |o| o.started);
            let _ = write!(
                s,
                "<li>{} {} ({} UTC)</li>",
                esc(&k.kind),
                esc(&k.key.to_string()),
                esc(&short_time(at))
            );
        }
        s.push_str("</ul>");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::check::{DiffCounts, RangeOutcome, TableOutcome};
    use crate::config::Config;
    use crate::core::Value;
    use crate::history::record::LevelResult;
    use crate::history::History;
    use crate::reconcile::{DiffKind, Difference};
    use crate::report::dashboard::gather_from;

    /// Monday 2026-01-05 00:00 UTC.
    const MONDAY: i64 = 1_767_571_200;

    fn config() -> Config {
        toml::from_str(
            "[tiers.standard]\ncount = \"1h\"\nkeys = \"1d\"\nfull = \"off\"\n[defaults]\ntier = \"standard\"\n",
        )
        .unwrap()
    }

    /// `days` of hourly runs over `tables` tables (count every hour, keys
    /// every sixth): `t00` loses ids 100..=110 every night at 02:00.
    fn simulate(h: &mut History, days: i64, tables: usize) {
        for hour in 0..days * 24 {
            let at = MONDAY + hour * 3_600;
            let run = h.begin_run(at).unwrap();
            for t in 0..tables {
                let name = format!("t{t:02}");
                let nightly = t == 0 && hour % 24 == 2;
                let mut levels = vec!["count"];
                if hour % 6 == 2 {
                    levels.push("keys");
                }
                for level in levels {
                    let mut r = LevelResult::new(&name, "standard", level, at);
                    r.seconds = 0.01 * (t + 1) as f64;
                    r.source_rows = Some(10_000 * (t as u64 + 1));
                    r.target_rows = Some(r.source_rows.unwrap() - u64::from(nightly) * 11);
                    r.status = if nightly {
                        Status::Drift
                    } else {
                        Status::InSync
                    };
                    if nightly && level == "keys" {
                        r.counts = DiffCounts {
                            missing: 11,
                            ..DiffCounts::default()
                        };
                        let mut o = TableOutcome {
                            key_columns: vec!["id".into()],
                            counts: r.counts,
                            ..TableOutcome::default()
                        };
                        o.ranges.push(RangeOutcome {
                            after: None,
                            first: vec![Value::Int(100)],
                            last: vec![Value::Int(110)],
                            source_rows: 11,
                            target_rows: 0,
                        });
                        o.differences = (100..=110)
                            .map(|id| Difference {
                                kind: DiffKind::Missing,
                                key: vec![Value::Int(id)],
                                source: None,
                                target: None,
                                changed: Vec::new(),
                                float_only: false,
                            })
                            .collect();
                        r.outcome = Some(o);
                    }
                    h.record(run, &r).unwrap();
                }
            }
            h.finish_run(run, at + 30).unwrap();
        }
    }

    fn page(days: i64, tables: usize) -> (tempfile::TempDir, Page, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(dir.path().join("h.sqlite")).unwrap();
        simulate(&mut h, days, tables);
        let now = MONDAY + days * 86_400;
        let page = gather_from(&config(), &h, now, 0).unwrap();
        let html = render(&page);
        (dir, page, html)
    }

    #[test]
    fn a_page_per_table_with_one_point_per_run() {
        let (_dir, page, html) = page(3, 2);
        assert!(html.starts_with(MAGIC));
        assert_eq!(page.tables(), ["t00", "t01"]);
        assert_eq!(html.matches(r#"<tr class="table-row""#).count(), 2);
        assert_eq!(html.matches(r#"<details class="table""#).count(), 2);
        // Every run, one point on each table's drift chart and duration chart.
        assert_eq!(html.matches("<circle class=\"pt total\"").count(), 2 * 72);
        assert_eq!(html.matches("<circle class=\"pt dur\"").count(), 2 * 72);
        assert!(html.contains("{&quot;id&quot;:100} to {&quot;id&quot;:110}: drifted in 3 of the last 12 checks, at 02h UTC"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "nothing to fetch"
        );
    }

    #[test]
    fn says_when_there_is_nothing_to_show() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path().join("h.sqlite")).unwrap();
        let page = gather_from(&config(), &h, MONDAY, 0).unwrap();
        assert!(matches!(page.state, PageState::Empty(_)));
        let html = render(&page);
        assert!(html.contains("Nothing to show yet"));
        assert!(!html.contains("table-row"));
    }

    #[test]
    fn escapes_names_from_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(dir.path().join("h.sqlite")).unwrap();
        let run = h.begin_run(MONDAY).unwrap();
        let mut r = LevelResult::new("<img src=x onerror=alert(1)>", "standard", "count", MONDAY);
        r.status = Status::InSync;
        h.record(run, &r).unwrap();
        let html = render(&gather_from(&config(), &h, MONDAY, 0).unwrap());
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }

    /// Repairs in the history are listed, newest first, names escaped; a
    /// page without any says so.
    #[test]
    fn lists_recent_repairs() {
        let (_dir, page, html) = page(1, 1);
        assert!(page.repairs.is_empty());
        assert!(html.contains("No repair since"));
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(dir.path().join("h.sqlite")).unwrap();
        simulate(&mut h, 1, 1);
        let record = |at: i64, table: &str, outcome: &str| crate::history::repair::RepairRecord {
            id: 0,
            run_id: None,
            at,
            origin: "check".into(),
            table: table.into(),
            level: Some("keys".into()),
            outcome: outcome.into(),
            planned: 11,
            applied: 11,
            already_in_sync: 0,
            changed_since: 0,
            verified: true,
            undo: None,
            note: None,
        };
        h.record_repair(&record(MONDAY + 3 * 3_600, "t00", "repaired"))
            .unwrap();
        h.record_repair(&record(MONDAY + 4 * 3_600, "<b>x</b>", "unverified"))
            .unwrap();
        let page = gather_from(&config(), &h, MONDAY + 86_400, 0).unwrap();
        let html = render(&page);
        assert_eq!(page.repairs.len(), 2);
        let start = html.find("Recent repairs").expect("the section");
        let section = &html[start..start + html[start..].find("</section>").unwrap()];
        let at = |needle: &str| section.find(needle).unwrap_or_else(|| panic!("{needle}"));
        assert!(
            at("&lt;b&gt;x&lt;/b&gt;") < at("<td>t00</td>"),
            "newest first"
        );
        assert!(section.contains(r#"<tr class="s-error">"#));
        assert!(!section.contains("<b>"));
        assert!(!html.contains("No repair since"));
    }

    /// The size the dashboard is built for: 30 days of hourly checks over 20
    /// tables. Not timed as a test (machines differ): it prints the time.
    /// `cargo test --lib -- --ignored thirty_days` runs it.
    #[test]
    #[ignore]
    fn thirty_days_over_twenty_tables() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(dir.path().join("h.sqlite")).unwrap();
        simulate(&mut h, 30, 20);
        let now = MONDAY + 30 * 86_400;
        let started = Instant::now();
        let page = gather_from(&config(), &h, now, 0).unwrap();
        let html = render(&page);
        let took = started.elapsed();
        eprintln!(
            "30 days x 20 tables: {} results, page of {} KiB gathered and drawn in {:.3}s",
            page.input.results.len(),
            html.len() / 1024,
            took.as_secs_f64()
        );
        assert_eq!(page.tables().len(), 20);
        let r = &page.patterns.recurring_ranges;
        assert_eq!(r.len(), 1, "t00's nightly range, at the keys level: {r:?}");
        assert!(r.iter().all(|r| r.table == "t00" && r.hours == [2]));
    }
}
