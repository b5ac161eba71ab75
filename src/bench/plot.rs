//! The SVG plot: comparison cost (seconds) against table size (rows), both on
//! log scales, one line per difference count. Hand-written SVG, so it needs
//! no plotting library and opens in any browser.

use std::fmt::Write;

use super::output::thousands;
use super::run::Measurement;

const W: f64 = 720.0;
const H: f64 = 440.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 62.0;
/// Line colours, one per difference count (colour-blind friendly).
const COLOURS: [&str; 6] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9",
];
const MARKERS: [&str; 3] = ["circle", "square", "diamond"];

/// Powers of ten covering `[lo, hi]` (at least one decade).
fn decades(lo: f64, hi: f64) -> (i32, i32) {
    let a = lo.log10().floor() as i32;
    let b = (hi.log10().ceil() as i32).max(a + 1);
    (a, b)
}

fn seconds_label(e: i32) -> String {
    match e {
        e if e < -3 => format!("1e{e} s"),
        -3 => "1 ms".into(),
        -2 => "10 ms".into(),
        -1 => "100 ms".into(),
        0 => "1 s".into(),
        e => format!("{} s", thousands(10u64.pow(e as u32))),
    }
}

fn rows_label(e: i32) -> String {
    match e {
        e if e >= 9 => format!("{}G", 10u64.pow(e as u32 - 9)),
        e if e >= 6 => format!("{}M", 10u64.pow(e as u32 - 6)),
        e if e >= 3 => format!("{}k", 10u64.pow(e as u32 - 3)),
        e if e >= 0 => 10u64.pow(e as u32).to_string(),
        e => format!("1e{e}"),
    }
}

fn marker(out: &mut String, shape: &str, x: f64, y: f64, colour: &str) {
    let _ = match shape {
        "square" => write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="8" height="8" fill="{colour}"/>"#,
            x - 4.0,
            y - 4.0
        ),
        "diamond" => write!(
            out,
            r#"<path d="M{x:.1},{:.1} l5,5 l-5,5 l-5,-5 z" fill="{colour}"/>"#,
            y - 5.0
        ),
        _ => write!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="4.5" fill="{colour}"/>"#
        ),
    };
}

/// Draws the measurements; `subtitle` says what was compared on what machine.
pub fn svg(ms: &[Measurement], subtitle: &str) -> String {
    let pts: Vec<&Measurement> = ms
        .iter()
        .filter(|m| m.rows > 0 && m.seconds > 0.0)
        .collect();
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="Helvetica, Arial, sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="22" font-size="16" font-weight="bold">driftsum: comparison cost by table size</text>
<text x="{LEFT}" y="39" fill="#555">{}</text>
"##,
        escape(subtitle)
    );
    if pts.is_empty() {
        out.push_str("<text x=\"100\" y=\"200\">no measurements</text>\n</svg>\n");
        return out;
    }
    let fold = |f: fn(f64, f64) -> f64, init: f64, g: fn(&Measurement) -> f64| {
        pts.iter().map(|m| g(m)).fold(init, f)
    };
    let (x0, x1) = decades(
        fold(f64::min, f64::MAX, |m| m.rows as f64),
        fold(f64::max, 0.0, |m| m.rows as f64),
    );
    let (y0, y1) = decades(
        fold(f64::min, f64::MAX, |m| m.seconds),
        fold(f64::max, 0.0, |m| m.seconds),
    );
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let px = |rows: f64| LEFT + (rows.log10() - x0 as f64) / (x1 - x0) as f64 * pw;
    let py = |s: f64| TOP + ph - (s.log10() - y0 as f64) / (y1 - y0) as f64 * ph;

    // Grid and axes: a line and a label per decade, light minor lines at 2..9.
    out.push_str(r##"<g stroke="#e4e4e4" stroke-width="1">"##);
    for e in x0..x1 {
        for m in 2..10 {
            let x = px(m as f64 * 10f64.powi(e));
            let _ = write!(
                out,
                r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}"/>"#,
                TOP + ph
            );
        }
    }
    for e in y0..y1 {
        for m in 2..10 {
            let y = py(m as f64 * 10f64.powi(e));
            let _ = write!(
                out,
                r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/>"#,
                LEFT + pw
            );
        }
    }
    out.push_str("</g>\n<g stroke=\"#b0b0b0\" stroke-width=\"1\">");
    for e in x0..=x1 {
        let x = px(10f64.powi(e));
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}"/>"#,
            TOP + ph
        );
    }
    for e in y0..=y1 {
        let y = py(10f64.powi(e));
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/>"#,
            LEFT + pw
        );
    }
    out.push_str("</g>\n");
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    for e in x0..=x1 {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            px(10f64.powi(e)),
            TOP + ph + 18.0,
            rows_label(e)
        );
    }
    for e in y0..=y1 {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            py(10f64.powi(e)) + 4.0,
            seconds_label(e)
        );
    }
    let _ = write!(
        out,
        r#"
<text x="{:.1}" y="{:.1}" text-anchor="middle">rows per table (log scale)</text>
<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">wall time, seconds (log scale)</text>
"#,
        LEFT + pw / 2.0,
        H - 16.0,
        TOP + ph / 2.0
    );

    // A dashed line of slope one through the largest plain in-sync point (or
    // the largest point): where a cost that grows linearly with the rows
    // lies. Drawn before the measured lines, so they stay on top.
    let anchor = pts
        .iter()
        .filter(|m| m.case == "plain" && m.diffs == 0)
        .max_by_key(|m| m.rows)
        .or_else(|| pts.iter().max_by_key(|m| m.rows));
    if let (Some(a), true) = (anchor, x1 > x0) {
        let at = |rows: f64| a.seconds * rows / a.rows as f64;
        // Clipped to the plot: from the left edge or the bottom, whichever
        // the line meets first, to the right edge or the top.
        let lo = 10f64
            .powi(x0)
            .max(10f64.powi(y0) * a.rows as f64 / a.seconds);
        let hi = 10f64
            .powi(x1)
            .min(10f64.powi(y1) * a.rows as f64 / a.seconds);
        if lo < hi {
            let _ = write!(
                out,
                r##"<path d="M{:.1},{:.1} L{:.1},{:.1}" stroke="#888" stroke-width="1.5" stroke-dasharray="6 4" fill="none"><title>cost proportional to rows</title></path>"##,
                px(lo),
                py(at(lo)),
                px(hi),
                py(at(hi))
            );
        }
    }

    // One line per case and difference count as asked for (`10`, or `10%`
    // of each size), in the order given.
    let mut counts: Vec<(&str, &str)> = Vec::new();
    for m in &pts {
        if !counts.contains(&(m.case.as_str(), m.drift.as_str())) {
            counts.push((&m.case, &m.drift));
        }
    }
    for (i, (case, d)) in counts.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let shape = MARKERS[i % MARKERS.len()];
        let mut line: Vec<&&Measurement> = pts
            .iter()
            .filter(|m| m.case == *case && m.drift == *d)
            .collect();
        line.sort_by_key(|m| m.rows);
        let path: Vec<String> = line
            .iter()
            .map(|m| format!("{:.1},{:.1}", px(m.rows as f64), py(m.seconds)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for m in &line {
            // A hover tooltip with the exact figure.
            let _ = write!(
                out,
                r#"<g><title>{}{} rows, {} differences: {:.3} s</title>"#,
                match *case {
                    "plain" => String::new(),
                    c => format!("{}: ", escape(c)),
                },
                thousands(m.rows),
                thousands(m.diffs),
                m.seconds
            );
            marker(&mut out, shape, px(m.rows as f64), py(m.seconds), colour);
            out.push_str("</g>");
        }
        let ly = TOP + 14.0 + 24.0 * i as f64;
        let lx = LEFT + pw + 18.0;
        let _ = write!(
            out,
            r#"
<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/>"#,
            lx + 28.0
        );
        marker(&mut out, shape, lx + 14.0, ly, colour);
        let label = match d.strip_suffix('%') {
            Some(p) => format!("{p}% of rows differ"),
            None => match d.parse::<u64>() {
                Ok(1) => "1 difference".to_string(),
                Ok(n) => format!("{} differences", thousands(n)),
                Err(_) => escape(d),
            },
        };
        let label = match *case {
            "plain" => label,
            c => format!("{}: {label}", escape(c)),
        };
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{label}</text>"#,
            lx + 36.0,
            ly + 4.0,
        );
    }
    if anchor.is_some() {
        let ly = TOP + 14.0 + 24.0 * counts.len() as f64;
        let lx = LEFT + pw + 18.0;
        let _ = writeln!(
            out,
            r##"<path d="M{lx:.1},{ly:.1} h28" stroke="#888" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}">∝ rows (linear)</text>"##,
            lx + 36.0,
            ly + 4.0,
        );
    }
    out.push_str("</svg>\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_decades() {
        assert_eq!(decades(10_000.0, 1_000_000.0), (4, 6));
        assert_eq!(decades(0.02, 0.03), (-2, -1));
        assert_eq!(rows_label(6), "1M");
        assert_eq!(rows_label(4), "10k");
        assert_eq!(seconds_label(-2), "10 ms");
        assert_eq!(seconds_label(2), "100 s");
    }
}
