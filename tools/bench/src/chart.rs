//! The exec latency chart: for each path an exec can take, the share of
//! calls done within a time (a CDF) on a log-ms axis, as SVG. The curves
//! are percentiles of the same histograms the tables print, so the chart
//! and the figures cannot disagree.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::phases::ExecLatency;
use crate::stats::{Samples, ms};

const SIZE: (u32, u32) = (960, 600);

/// Percentiles drawn: every half percent, and the tail finer, where the
/// paths differ most.
fn quantiles() -> Vec<f64> {
    let mut qs: Vec<f64> = (0..=200).map(|i| f64::from(i) * 0.5).collect();
    qs.extend((1..10).map(|i| 99.0 + f64::from(i) * 0.1));
    qs.sort_by(f64::total_cmp);
    qs
}

fn cdf(s: &Samples) -> Vec<(f64, f64)> {
    quantiles()
        .into_iter()
        .filter_map(|q| s.pct(q).map(|d| (ms(d).max(0.001), q)))
        .collect()
}

/// An axis label at 1, 2 and 5 times a power of ten (`0.05`, `0.2`, `5`,
/// no trailing zeros); the other grid lines of the log axis stay unlabelled,
/// or their labels would run into each other at the end of each decade.
fn label(v: f64) -> String {
    let leading = (v / 10f64.powf(v.log10().floor())).round();
    if ![1.0, 2.0, 5.0].contains(&leading) {
        return String::new();
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Writes the chart of `l` to `path`.
pub fn exec_latency_svg(path: &Path, l: &ExecLatency, machine: &str) -> anyhow::Result<()> {
    let series = [
        (
            "service over HTTP (agent), exec true",
            &l.service,
            RGBColor(0x1f, 0x77, 0xb4),
        ),
        (
            "raw docker exec true",
            &l.docker,
            RGBColor(0xd6, 0x27, 0x28),
        ),
        (
            "attach floor: agent Exec true",
            &l.floor_exec,
            RGBColor(0x2c, 0xa0, 0x2c),
        ),
        (
            "attach floor: agent Hello",
            &l.floor_hello,
            RGBColor(0x7f, 0x7f, 0x7f),
        ),
    ];
    let curves: Vec<_> = series
        .into_iter()
        .filter(|(_, s, _)| !s.is_empty())
        .map(|(name, s, color)| (format!("{name} (n={})", s.len()), cdf(s), color))
        .collect();
    let xs = || {
        curves
            .iter()
            .flat_map(|(_, c, _)| c.iter().map(|(x, _)| *x))
    };
    // Whole decades: plotters puts log-axis grid lines from the first
    // power of ten within the range (just under it, or rounding skips it).
    let lo = 10f64.powf(xs().fold(f64::INFINITY, f64::min).log10().floor()) * 0.999;
    let hi = 10f64.powf(xs().fold(0.0, f64::max).log10().ceil());
    anyhow::ensure!(
        lo.is_finite() && hi > lo,
        "no exec latency samples to chart"
    );

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    // The legend goes above the plot, so it never hides a curve.
    let (top, body) = root.split_vertically(84);
    top.draw(&Text::new(
        format!("exec latency at concurrency 1, warm channels ({machine})"),
        (16, 10),
        ("sans-serif", 17),
    ))?;
    for (i, (name, _, color)) in curves.iter().enumerate() {
        let x = 24 + 460 * i32::from(i % 2 == 1);
        let y = 44 + 22 * i32::from(i >= 2);
        top.draw(&PathElement::new(
            vec![(x, y), (x + 28, y)],
            color.stroke_width(3),
        ))?;
        top.draw(&Text::new(
            name.clone(),
            (x + 36, y - 7),
            ("sans-serif", 14),
        ))?;
    }
    let mut chart = ChartBuilder::on(&body)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..100.0)?;
    chart
        .configure_mesh()
        // Enough for plotters to put a grid line at every 1..9 of a decade
        // (up to 5 decades), and none between them.
        .x_labels(50)
        .x_max_light_lines(0)
        .y_max_light_lines(1)
        .y_labels(11)
        .x_desc("latency, ms (log scale)")
        .y_desc("% of calls done within")
        .x_label_formatter(&|v| label(*v))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for (_, points, color) in curves {
        chart.draw_series(LineSeries::new(points, color.stroke_width(2)))?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn writes_an_svg_with_every_curve() {
        let mut l = ExecLatency::default();
        for i in 1..=100u64 {
            l.service.push(Duration::from_micros(1000 + i * 10));
            l.docker.push(Duration::from_millis(40 + i / 10));
            l.floor_exec.push(Duration::from_micros(700 + i * 5));
            l.floor_hello.push(Duration::from_micros(200 + i));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        exec_latency_svg(&path, &l, "test machine").unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        for name in [
            "service over HTTP",
            "raw docker exec",
            "agent Exec",
            "agent Hello",
        ] {
            assert!(svg.contains(name), "{name} is missing");
        }
    }

    #[test]
    fn axis_labels_at_1_2_5_without_trailing_zeros() {
        assert_eq!(label(0.05), "0.05");
        assert_eq!(label(5.0), "5");
        assert_eq!(label(0.2), "0.2");
        assert_eq!(label(20.000_000_001), "20");
        assert_eq!(label(0.3), "");
        assert_eq!(label(70.0), "");
    }
}
