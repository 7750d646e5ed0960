//! The stream page's charts: SVG drawn on the server by plotters, from the points of
//! [`super::history`]. The x axis is minutes before now (the last hour); each chart is one or
//! two lines. Steps without a value (no attempt, no batch cut, no sync) are left out of a line.

use plotters::prelude::*;

use super::history::Point;

/// Width and height of one chart, pixels.
const SIZE: (u32, u32) = (540, 210);
const BLUE: RGBColor = RGBColor(31, 102, 196);
const ORANGE: RGBColor = RGBColor(222, 110, 20);

/// A line of a chart: its label and the value it takes of a point (`None`: no value).
pub type Line = (&'static str, fn(&Point) -> Option<f64>);

/// One chart: its title, its unit and its lines (`(label, value of a point)`).
pub struct Chart {
    /// Heading.
    pub title: &'static str,
    /// The y axis's unit.
    pub unit: &'static str,
    /// The lines.
    pub lines: Vec<Line>,
}

impl std::fmt::Debug for Chart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chart").field("title", &self.title).finish()
    }
}

/// The stream page's charts, in order.
#[must_use]
pub fn stream_charts() -> Vec<Chart> {
    vec![
        Chart {
            title: "Incoming records",
            unit: "records/s",
            lines: vec![("records/s", |p| Some(p.incoming_records_per_s))],
        },
        Chart {
            title: "Incoming bytes",
            unit: "bytes/s",
            lines: vec![("bytes/s", |p| Some(p.incoming_bytes_per_s))],
        },
        Chart {
            title: "Delivery success",
            unit: "ratio",
            lines: vec![("success", |p| p.success)],
        },
        Chart {
            title: "Records delivered",
            unit: "per 10 s",
            lines: vec![("records", |p| Some(p.delivered_records as f64))],
        },
        Chart {
            title: "Data freshness",
            unit: "seconds; blue p50, orange p99",
            lines: vec![
                ("p50", |p| Some(p.freshness_p50)),
                ("p99", |p| Some(p.freshness_p99)),
            ],
        },
        Chart {
            title: "Backlog",
            unit: "records",
            lines: vec![("records", |p| Some(p.backlog_records as f64))],
        },
        Chart {
            title: "Error-output records",
            unit: "per 10 s",
            lines: vec![("records", |p| Some(p.error_output_records as f64))],
        },
        Chart {
            title: "Buffering time",
            unit: "seconds",
            lines: vec![("mean", |p| p.buffering_s)],
        },
        Chart {
            title: "WAL sync latency p99",
            unit: "ms",
            lines: vec![("p99", |p| p.wal_sync_p99_s.map(|s| s * 1000.0))],
        },
    ]
}

/// Draws `chart` over `points` (oldest first) as an SVG document; `now_ms` is the right edge.
///
/// # Errors
/// The drawing backend's error, as text.
pub fn render(chart: &Chart, points: &[Point], now_ms: u64) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let lines: Vec<Vec<(f64, f64)>> = chart
            .lines
            .iter()
            .map(|(_, f)| {
                points
                    .iter()
                    .filter_map(|p| {
                        let x = -(now_ms.saturating_sub(p.t_ms) as f64) / 60_000.0;
                        f(p).filter(|v| v.is_finite()).map(|v| (x, v))
                    })
                    .collect()
            })
            .collect();
        let top = lines
            .iter()
            .flatten()
            .map(|(_, y)| *y)
            .fold(0.0f64, f64::max);
        let top = if top <= 0.0 { 1.0 } else { top * 1.1 };
        let mut c = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(24)
            .x_label_area_size(22)
            .y_label_area_size(56)
            .build_cartesian_2d(-60.0f64..0.0f64, 0.0f64..top)
            .map_err(|e| e.to_string())?;
        c.configure_mesh()
            .x_labels(7)
            .y_labels(5)
            .x_label_formatter(&|x| format!("{:.0} min", x))
            .y_label_formatter(&|y| short(*y))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, line) in lines.into_iter().enumerate() {
            let color = if i == 0 { BLUE } else { ORANGE };
            c.draw_series(LineSeries::new(line, color.stroke_width(2)))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A number in a few characters: 1234567 → 1.2M.
#[must_use]
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_an_svg_with_a_line_per_series() {
        let now = 10_000_000;
        let points: Vec<Point> = (0..30u64)
            .map(|i| Point {
                t_ms: now - (30 - i) * 10_000,
                incoming_records_per_s: i as f64,
                freshness_p50: 1.0,
                freshness_p99: 2.0,
                ..Point::default()
            })
            .collect();
        for chart in stream_charts() {
            let svg = render(&chart, &points, now).unwrap();
            assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
            // Our lines are the polylines drawn in our colours (the mesh is drawn as polylines
            // too, in grey).
            let polylines = svg
                .split("<polyline")
                .skip(1)
                .filter(|p| p.contains("#1F66C4") || p.contains("#DE6E14"))
                .count();
            assert!(
                !svg.contains("style="),
                "inline styles break the CSP: {svg}"
            );
            let expect = if [
                "Incoming records",
                "Incoming bytes",
                "Records delivered",
                "Data freshness",
                "Backlog",
                "Error-output records",
            ]
            .contains(&chart.title)
            {
                chart.lines.len()
            } else {
                0
            };
            assert_eq!(polylines, expect, "{}", chart.title);
        }
    }
}
