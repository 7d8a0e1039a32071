//! Charts as server-rendered SVG (no script, no external library, no inline styles:
//! colours are presentation attributes, so the console's strict CSP holds): stacked
//! bars for time series and a pie for shares. Every chart has a title and a text
//! description for screen readers, and the pages show the numbers in a table too.

use super::report::{Chart, Slice};
use crate::html::escape;

/// Series colours: each has at least 3:1 contrast against the white page.
pub const PALETTE: &[&str] = &[
    "#1f5fa8", "#b3541e", "#2e7d32", "#7b3fa0", "#a01c4b", "#00695c", "#5d4037", "#455a64",
];

const W: f64 = 720.0;
const H: f64 = 240.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 10.0;

/// A stacked bar chart of `chart` (one bar per bucket).
pub fn bars(chart: &Chart, title: &str) -> String {
    let n = chart.buckets.len().max(1);
    let totals: Vec<u64> = (0..n)
        .map(|i| {
            chart
                .series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - TOP - BOTTOM;
    let step = plot_w / n as f64;
    let bar_w = (step * 0.8).max(1.0);
    let desc: Vec<String> = chart
        .series
        .iter()
        .map(|s| format!("{}: {} in all", s.name, s.values.iter().sum::<u64>()))
        .collect();
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"{id}-t\">{t}</title><desc id=\"{id}-d\">{d}</desc>",
        id = slug(title),
        t = escape(title),
        d = escape(&desc.join("; ")),
    );
    // Axis and the maximum's grid line.
    svg.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#555\"/>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{x1}\" y2=\"{TOP}\" stroke=\"#ccc\"/>\
         <text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\" font-size=\"11\" fill=\"#333\">{max}</text>\
         <text x=\"{tx}\" y=\"{y0}\" text-anchor=\"end\" font-size=\"11\" fill=\"#333\">0</text>",
        y0 = TOP + plot_h,
        x1 = W - 8.0,
        tx = LEFT - 4.0,
        ty = TOP + 10.0,
    ));
    let label_every = n.div_ceil(8);
    for i in 0..n {
        let x = LEFT + step * i as f64 + (step - bar_w) / 2.0;
        let mut y = TOP + plot_h;
        for (si, s) in chart.series.iter().enumerate() {
            let v = s.values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let h = plot_h * v as f64 / max as f64;
            y -= h;
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" fill=\"{c}\"><title>{b} {name}: {v}</title></rect>",
                c = PALETTE[si % PALETTE.len()],
                b = escape(chart.buckets.get(i).map(String::as_str).unwrap_or("")),
                name = escape(&s.name),
            ));
        }
        if i % label_every == 0
            && let Some(b) = chart.buckets.get(i)
        {
            svg.push_str(&format!(
                "<text x=\"{cx:.1}\" y=\"{ly}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#333\">{}</text>",
                escape(b),
                cx = x + bar_w / 2.0,
                ly = H - 10.0,
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A pie of `slices` (an empty circle and "no data" when they sum to nothing).
pub fn pie(slices: &[Slice], title: &str) -> String {
    let total: u64 = slices.iter().map(|s| s.value).sum();
    let desc: Vec<String> = slices
        .iter()
        .map(|s| format!("{}: {}", s.label, s.value))
        .collect();
    let mut svg = format!(
        "<svg class=\"pie\" viewBox=\"0 0 200 200\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"{id}-t\">{t}</title><desc id=\"{id}-d\">{d}</desc>",
        id = slug(title),
        t = escape(title),
        d = escape(
            if desc.is_empty() {
                "no data".to_string()
            } else {
                desc.join("; ")
            }
            .as_str()
        ),
    );
    let (cx, cy, r) = (100.0_f64, 100.0_f64, 90.0_f64);
    if total == 0 {
        svg.push_str("<circle cx=\"100\" cy=\"100\" r=\"90\" fill=\"none\" stroke=\"#999\"/>");
    } else if slices.iter().filter(|s| s.value > 0).count() == 1 {
        svg.push_str(&format!(
            "<circle cx=\"100\" cy=\"100\" r=\"90\" fill=\"{}\"/>",
            PALETTE[slices.iter().position(|s| s.value > 0).unwrap_or(0) % PALETTE.len()]
        ));
    } else {
        let mut angle = -std::f64::consts::FRAC_PI_2;
        for (i, s) in slices.iter().enumerate() {
            if s.value == 0 {
                continue;
            }
            let sweep = std::f64::consts::TAU * s.value as f64 / total as f64;
            let (x0, y0) = (cx + r * angle.cos(), cy + r * angle.sin());
            angle += sweep;
            let (x1, y1) = (cx + r * angle.cos(), cy + r * angle.sin());
            let large = i32::from(sweep > std::f64::consts::PI);
            svg.push_str(&format!(
                "<path d=\"M{cx},{cy} L{x0:.2},{y0:.2} A{r},{r} 0 {large} 1 {x1:.2},{y1:.2} Z\" fill=\"{c}\" stroke=\"#fff\"><title>{l}: {v}</title></path>",
                c = PALETTE[i % PALETTE.len()],
                l = escape(&s.label),
                v = s.value,
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out.insert_str(0, "chart-");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::report::Series;

    #[test]
    fn charts_escape_labels_and_draw_every_value() {
        let c = Chart {
            buckets: vec!["2026-12-05".into(), "2026-12-06".into()],
            series: vec![Series {
                name: "<b>".into(),
                values: vec![1, 3],
            }],
        };
        let svg = bars(&c, "Messages");
        assert!(svg.contains("&lt;b&gt;"));
        assert_eq!(svg.matches("<rect").count(), 2);
        let p = pie(
            &[
                Slice {
                    label: "linux".into(),
                    value: 2,
                },
                Slice {
                    label: "ios".into(),
                    value: 1,
                },
            ],
            "Devices",
        );
        assert_eq!(p.matches("<path").count(), 2);
    }
}
