//! The dashboard's charts, drawn as inline SVG strings: a series over time
//! (drift by kind, check duration), the hour-by-weekday heat map and
//! recurring ranges along a table's key space. Drawn here rather than by a
//! script library so that the page needs no network and no JavaScript to
//! show them.

use std::fmt::Write;

use serde_json::Value as J;

use crate::history::patterns::{Heat, RecurringRange};

/// Escapes text for HTML and SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One series of a time chart: its name, CSS class and dash pattern (so
/// that series differ by more than colour).
pub struct Series<'a> {
    pub name: &'a str,
    pub class: &'a str,
    pub dash: &'a str,
    pub values: Vec<f64>,
}

const W: f64 = 600.0;
const H: f64 = 160.0;
const PAD_L: f64 = 44.0;
const PAD_B: f64 = 20.0;
const PAD_T: f64 = 8.0;

/// A chart of values per check, evenly spaced (`times`, Unix seconds, label
/// the first and last),
/// with one marked point (class `pt`) per run on the first series and a
/// `<title>` per point saying its values.
pub fn time_chart(label: &str, unit: &str, times: &[i64], series: &[Series<'_>]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
        esc(label)
    );
    let max = series
        .iter()
        .flat_map(|x| x.values.iter().copied())
        .fold(0.0f64, f64::max);
    let top = if max > 0.0 { nice(max) } else { 1.0 };
    // Checks evenly spaced, one x per check: checks minutes apart stay
    // apart, and a pause between them does not squeeze the rest.
    let span = times.len().saturating_sub(1).max(1) as f64;
    let x = |i: usize| PAD_L + 4.0 + (W - PAD_L - 8.0) * i as f64 / span;
    let y = |v: f64| PAD_T + (H - PAD_T - PAD_B) * (1.0 - v / top);
    // Axes and the top value.
    let _ = write!(
        s,
        r#"<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{}"/><line class="axis" x1="{PAD_L}" y1="{0}" x2="{W}" y2="{0}"/>"#,
        H - PAD_B
    );
    let _ = write!(
        s,
        r#"<text class="tick" x="{}" y="{}" text-anchor="end">{}{}</text><text class="tick" x="{}" y="{}" text-anchor="end">0</text>"#,
        PAD_L - 4.0,
        PAD_T + 8.0,
        fmt_num(top),
        esc(unit),
        PAD_L - 4.0,
        H - PAD_B
    );
    if let (Some(&a), Some(&b)) = (times.first(), times.last()) {
        let _ = write!(
            s,
            r#"<text class="tick" x="{PAD_L}" y="{H}" text-anchor="start">{}</text><text class="tick" x="{W}" y="{H}" text-anchor="end">{}</text>"#,
            esc(&short_time(a)),
            esc(&short_time(b))
        );
    }
    for (i, ser) in series.iter().enumerate() {
        if ser.values.iter().all(|&v| v == 0.0) && i > 0 {
            continue;
        }
        let pts: Vec<String> = ser
            .values
            .iter()
            .enumerate()
            .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="line {}" stroke-dasharray="{}" points="{}"><title>{}</title></polyline>"#,
            ser.class,
            ser.dash,
            pts.join(" "),
            esc(ser.name)
        );
    }
    if let Some(first) = series.first() {
        for (i, (&t, &v)) in times.iter().zip(&first.values).enumerate() {
            let what: Vec<String> = series
                .iter()
                .map(|ser| {
                    let v = ser.values.get(i).copied().unwrap_or(0.0);
                    format!("{} {}", fmt_num(v), ser.name)
                })
                .collect();
            let _ = write!(
                s,
                r#"<circle class="pt {}" cx="{:.1}" cy="{:.1}" r="2.5"><title>{}: {}</title></circle>"#,
                first.class,
                x(i),
                y(v),
                esc(&short_time(t)),
                esc(&what.join(", "))
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A legend for a chart's series, in text with each series' line style.
pub fn legend(series: &[Series<'_>]) -> String {
    let mut s = String::from(r#"<p class="legend">"#);
    for ser in series {
        let _ = write!(
            s,
            r#"<span><svg width="22" height="8" aria-hidden="true"><line class="line {}" stroke-dasharray="{}" x1="0" y1="4" x2="22" y2="4"/></svg> {}</span> "#,
            ser.class,
            ser.dash,
            esc(ser.name)
        );
    }
    s.push_str("</p>");
    s
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Drifting checks by day of week (rows) and hour of day (columns), UTC;
/// each cell says its counts in text and in its title.
pub fn heat_map(h: &Heat) -> String {
    let (cw, ch, left, top) = (24.0, 20.0, 36.0, 16.0);
    let max = h.drift.iter().flatten().copied().max().unwrap_or(0).max(1);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="heat" viewBox="0 0 {} {}" role="img" aria-label="drifting checks by hour of day and day of week, UTC">"#,
        left + 24.0 * cw,
        top + 7.0 * ch
    );
    for hr in (0..24).step_by(3) {
        let _ = write!(
            s,
            r#"<text class="tick" x="{}" y="11">{hr:02}h</text>"#,
            left + hr as f64 * cw + 2.0
        );
    }
    for (d, row) in h.drift.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text class="tick" x="0" y="{}">{}</text>"#,
            top + d as f64 * ch + 14.0,
            DAYS[d]
        );
        for (hr, &n) in row.iter().enumerate() {
            let checks = h.checks[d][hr];
            let level = if n == 0 { 0 } else { 1 + (n * 4 - 1) / max };
            let _ = write!(
                s,
                r#"<rect class="h{level}" x="{}" y="{}" width="{}" height="{}"><title>{} {hr:02}:00 UTC: {n} drifting of {checks} checks</title></rect>"#,
                left + hr as f64 * cw,
                top + d as f64 * ch,
                cw - 1.0,
                ch - 1.0,
                DAYS[d]
            );
            if n > 0 {
                let _ = write!(
                    s,
                    r#"<text class="cnt" x="{}" y="{}" text-anchor="middle">{n}</text>"#,
                    left + hr as f64 * cw + cw / 2.0,
                    top + d as f64 * ch + 14.0
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// A single-column numeric key, for placing ranges along the key space.
fn numeric(key: &J) -> Option<f64> {
    match key {
        J::Object(m) if m.len() == 1 => m.values().next()?.as_f64(),
        J::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Recurring ranges of one table drawn along its key space: to scale when
/// its key is one number, else one slot each in key order.
pub fn key_space(ranges: &[&RecurringRange]) -> String {
    let spans: Option<Vec<(f64, f64)>> = ranges
        .iter()
        .map(|r| Some((numeric(&r.first)?, numeric(&r.last)?)))
        .collect();
    let n = ranges.len().max(1) as f64;
    let spans = spans.unwrap_or_else(|| {
        (0..ranges.len())
            .map(|i| (i as f64, i as f64 + 0.8))
            .collect()
    });
    let lo = spans.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let hi = spans.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
    let width = (hi - lo).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="keys" viewBox="0 0 {W} 40" role="img" aria-label="recurring ranges along the key space"><line class="axis" x1="0" y1="30" x2="{W}" y2="30"/>"#
    );
    for (r, (a, b)) in ranges.iter().zip(&spans) {
        let x0 = 4.0 + (W - 8.0) * (a - lo) / width;
        let x1 = 4.0 + (W - 8.0) * (b - lo) / width;
        let _ = write!(
            s,
            r#"<rect class="range" x="{x0:.1}" y="8" width="{:.1}" height="20"><title>{} to {}: drifted in {} of {} checks</title></rect>"#,
            (x1 - x0).max(3.0 / n.min(3.0)),
            esc(&r.first.to_string()),
            esc(&r.last.to_string()),
            r.runs,
            r.of_runs
        );
    }
    s.push_str("</svg>");
    s
}

/// A round number at or above `v` for an axis' top.
fn nice(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// `YYYY-MM-DD HH:MM` UTC.
pub fn short_time(unix: i64) -> String {
    let full = crate::core::time::format_timestamp(unix * 1_000_000).replace('T', " ");
    full.chars().take(16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_point_per_time() {
        let svg = time_chart(
            "drift",
            "",
            &[100, 200, 300],
            &[Series {
                name: "rows",
                class: "total",
                dash: "0",
                values: vec![0.0, 5.0, 2.0],
            }],
        );
        assert_eq!(svg.matches("<circle class=\"pt").count(), 3);
        assert!(svg.contains("5 rows"));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(120.0), 200.0);
    }
}
