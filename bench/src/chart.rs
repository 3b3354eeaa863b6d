//! A horizontal bar chart of medians as SVG: one group per case, one bar
//! per system, drawn to scale with its value printed at the bar's end.

use std::fmt::Write;

use crate::stats::Summary;

const SYSTEM_COLOURS: [(&str, &str); 4] = [
    ("floor", "#9e9e9e"),
    ("mydocker", "#1565c0"),
    ("CNI bridge", "#ef6c00"),
    ("netavark", "#6a1b9a"),
];

fn colour(system: &str) -> &'static str {
    SYSTEM_COLOURS
        .iter()
        .find(|(s, _)| *s == system)
        .map(|(_, c)| *c)
        .unwrap_or("#455a64")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart for `rows` (grouped by case in the order given).
pub fn svg(title: &str, rows: &[&Summary]) -> String {
    const WIDTH: f64 = 900.0;
    const LABEL: f64 = 250.0;
    const BAR: f64 = 18.0;
    const GAP: f64 = 14.0;
    let max = rows
        .iter()
        .map(|r| r.median_ms)
        .fold(0.0, f64::max)
        .max(1e-9);
    let scale = (WIDTH - LABEL - 90.0) / max;
    let mut body = String::new();
    let mut y = 50.0;
    let mut last_case = "";
    for r in rows {
        if r.case != last_case {
            y += GAP;
            let _ = writeln!(
                body,
                r#"<text x="10" y="{:.0}" font-weight="bold">{}</text>"#,
                y + 13.0,
                escape(&r.case)
            );
            y += BAR + 4.0;
            last_case = &r.case;
        }
        let w = (r.median_ms * scale).max(1.0);
        let _ = writeln!(
            body,
            r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text><rect x="{LABEL}" y="{y:.0}" width="{w:.1}" height="{BAR}" fill="{}"/><text x="{:.1}" y="{:.0}">{:.2} ms</text>"#,
            LABEL - 8.0,
            y + 13.0,
            escape(&r.system),
            colour(&r.system),
            LABEL + w + 6.0,
            y + 13.0,
            r.median_ms
        );
        y += BAR + 4.0;
    }
    let height = y + 20.0;
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="28" font-size="17" font-weight="bold">{}</text>
{body}</svg>
"#,
        escape(title)
    )
}
