//! Plots of results, as SVG: the latency percentile spectrum and
//! throughput over time, of one run or of several side by side.
//!
//! Charts are drawn with `plotters` through its SVG backend only, into a
//! string that is then written to a file. The SVG backend emits text as
//! `<text>` elements that the viewer lays out, so no font file, fontconfig
//! or freetype is needed on the machine that draws (text sizes for the
//! layout are estimated by plotters' built-in metrics).
//!
//! The spectrum's x axis is in "nines": percentile `p` sits at
//! `-log10(1 - p / 100)`, so 90 is at 1, 99 at 2, 99.9 at 3, and each
//! further nine gets the same width as the one before. The axis runs from
//! p50 to as many nines as the run's sample count resolves (at least four,
//! at most the six the result file keeps), and the maximum is drawn one
//! step beyond. Latency is on a log scale in milliseconds.

use std::{
    error::Error,
    ops::Range,
    path::{Path, PathBuf},
};

use plotters::{
    coord::{
        ranged1d::{DefaultFormatting, KeyPointHint},
        types::RangedCoordf64,
        Shift,
    },
    prelude::*,
};

use crate::{latency::LatencySummary, BenchError, RunResult};

/// Width and height of every chart, in pixels.
const CHART_SIZE: (u32, u32) = (1000, 600);

/// The spectrum starts at the median: below it a broker's latency is
/// rarely what is being compared.
const SPECTRUM_PERCENTILE_MIN: f64 = 50.0;

/// Nines always shown, up to p99.99, as the summary table's columns go.
const SPECTRUM_NINES_MIN: u32 = 4;

/// The deepest percentile the result file's spectrum keeps is p99.9999.
const SPECTRUM_NINES_MAX: u32 = 6;

/// Series colours, in order; chosen to stay apart for readers with the
/// common colour-vision deficiencies (Okabe-Ito). A ninth series reuses the
/// first colour.
pub const SERIES_COLORS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

const WARM_UP_COLOR: RGBColor = RGBColor(225, 225, 225);

/// Text sizes (plotters' units; the SVG's font size is about 0.65 of
/// these), for a chart read at its own size.
pub(crate) const CAPTION_SIZE: u32 = 28;
pub(crate) const LABEL_SIZE: u32 = 20;

/// A drawing failed. Drawing into memory fails only when a chart cannot be
/// laid out, so this names the chart and says why.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the {chart} chart: {reason}")]
pub struct PlotError {
    pub chart: &'static str,
    pub reason: String,
}

/// The two charts of a run or of a comparison, as SVG text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charts {
    pub spectrum_svg: String,
    pub throughput_svg: String,
}

/// One latency curve: a label and a spectrum from a result file.
#[derive(Debug, Clone, Copy)]
pub struct LatencySeries<'a> {
    pub label: &'a str,
    pub latency: &'a LatencySummary,
}

/// One line of records/s over seconds since the start of the run.
#[derive(Debug, Clone)]
pub struct RateSeries {
    pub label: String,
    /// `(second, records)`: records in the second that starts at `second`.
    pub per_second: Vec<(u64, u64)>,
}

/// The charts of one run: produce→ack and end-to-end on the spectrum;
/// records/s produced (acknowledged) and consumed over time, with the
/// seconds outside the measured window (warm-up, drain) shaded.
pub fn run_charts(result: &RunResult) -> Result<Charts, PlotError> {
    let title = format!(
        "{} ({} driver, rate {})",
        result.workload.name, result.driver, result.workload.rate
    );
    let spectrum_svg = spectrum_svg(
        &format!("latency spectrum: {title}"),
        &[
            LatencySeries {
                label: "produce→ack",
                latency: &result.produce_ack_latency,
            },
            LatencySeries {
                label: "end-to-end",
                latency: &result.end_to_end_latency,
            },
        ],
    )?;
    let produced = RateSeries {
        label: "produced (acknowledged)".into(),
        per_second: result
            .seconds
            .iter()
            .map(|sample| (sample.second, sample.acknowledged))
            .collect(),
    };
    let consumed = RateSeries {
        label: "consumed".into(),
        per_second: result
            .seconds
            .iter()
            .map(|sample| (sample.second, sample.consumed))
            .collect(),
    };
    let unmeasured: Vec<u64> = result
        .seconds
        .iter()
        .filter(|sample| !sample.measured)
        .map(|sample| sample.second)
        .collect();
    let throughput_svg = throughput_svg(
        &format!("throughput: {title}"),
        &[produced, consumed],
        &unmeasured,
    )?;
    Ok(Charts {
        spectrum_svg,
        throughput_svg,
    })
}

/// The charts of runs side by side, one series per run labelled
/// `label (driver)`: the produce→ack spectrum, and records/s produced
/// (acknowledged) over time.
pub fn comparison_charts(runs: &[(String, RunResult)]) -> Result<Charts, PlotError> {
    let labels: Vec<String> = runs
        .iter()
        .map(|(label, run)| format!("{label} ({})", run.driver))
        .collect();
    let latencies: Vec<LatencySeries> = runs
        .iter()
        .zip(&labels)
        .map(|((_, run), label)| LatencySeries {
            label,
            latency: &run.produce_ack_latency,
        })
        .collect();
    let spectrum_svg = spectrum_svg("latency spectrum: produce→ack", &latencies)?;
    let rates: Vec<RateSeries> = runs
        .iter()
        .zip(&labels)
        .map(|((_, run), label)| RateSeries {
            label: label.clone(),
            per_second: run
                .seconds
                .iter()
                .map(|sample| (sample.second, sample.acknowledged))
                .collect(),
        })
        .collect();
    let throughput_svg = throughput_svg("throughput: produced (acknowledged)", &rates, &[])?;
    Ok(Charts {
        spectrum_svg,
        throughput_svg,
    })
}

/// Writes a run's charts beside its JSON file: `result.json` gets
/// `result.spectrum.svg` and `result.throughput.svg`. Returns their paths.
pub fn write_run_charts(result: &RunResult, json_path: &Path) -> Result<[PathBuf; 2], BenchError> {
    let stem = json_path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "result".into());
    let at = |kind: &str| json_path.with_file_name(format!("{stem}.{kind}.svg"));
    let charts = run_charts(result).map_err(|error| not_written(&at("spectrum"), error))?;
    write_charts(&charts, at("spectrum"), at("throughput"))
}

/// Writes the comparison's charts into `dir` (made if missing) as
/// `compare-spectrum.svg` and `compare-throughput.svg`. Returns their
/// paths.
pub fn write_comparison_charts(
    runs: &[(String, RunResult)],
    dir: &Path,
) -> Result<[PathBuf; 2], BenchError> {
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let spectrum = dir.join("compare-spectrum.svg");
    let charts = comparison_charts(runs).map_err(|error| not_written(&spectrum, error))?;
    write_charts(&charts, spectrum, dir.join("compare-throughput.svg"))
}

fn write_charts(
    charts: &Charts,
    spectrum: PathBuf,
    throughput: PathBuf,
) -> Result<[PathBuf; 2], BenchError> {
    for (path, svg) in [
        (&spectrum, &charts.spectrum_svg),
        (&throughput, &charts.throughput_svg),
    ] {
        std::fs::write(path, svg).map_err(|source| BenchError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok([spectrum, throughput])
}

fn not_written(path: &Path, error: PlotError) -> BenchError {
    BenchError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(error),
    }
}

/// Where percentile `percentile` (below 100) sits on the nines axis.
fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).log10()
}

/// The tick label of `count` nines: 1 → "90", 2 → "99", 3 → "99.9".
fn nines_label(count: u32) -> String {
    let mut label = "9".repeat(count.min(2) as usize);
    if count == 1 {
        label.push('0');
    }
    if count > 2 {
        label.push('.');
        label.push_str(&"9".repeat(count as usize - 2));
    }
    label
}

/// The nines a sample count resolves: p99.99 needs 10,000 samples to be
/// other than the maximum.
fn nines_resolved(count: u64) -> u32 {
    let resolved = (count.max(1) as f64).log10().floor() as u32;
    resolved.clamp(SPECTRUM_NINES_MIN, SPECTRUM_NINES_MAX)
}

/// The points of a spectrum drawn on an axis of `nines_shown` nines, the
/// maximum one step beyond: `(x in nines, latency in ms)`. Zero latencies
/// (an empty histogram) are left out, as a log axis cannot show them.
fn spectrum_points(latency: &LatencySummary, nines_shown: u32) -> Vec<(f64, f64)> {
    let x_max = f64::from(nines_shown) + 1.0;
    latency
        .spectrum
        .iter()
        .filter(|point| point.latency_us > 0.0 && point.percentile >= SPECTRUM_PERCENTILE_MIN)
        .filter_map(|point| {
            let x = if point.percentile >= 100.0 {
                x_max
            } else {
                nines(point.percentile)
            };
            // A little slack: nines(99.99) is 4 only to within rounding.
            (x <= f64::from(nines_shown) + 1e-6 || x == x_max)
                .then_some((x, point.latency_us / 1000.0))
        })
        .collect()
}

/// A log axis from the decade at or below `min` to the decade above `max`.
pub(crate) fn decades(min: f64, max: f64) -> Range<f64> {
    let low = 10f64.powf(min.log10().floor());
    let mut high = 10f64.powf(max.log10().ceil());
    if high <= low {
        high = low * 10.0;
    }
    low..high
}

/// `value` to three significant digits, trailing zeros dropped.
pub(crate) fn significant(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let decimals = (2 - value.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A rate with an SI suffix: 1500 → "1.5k", 2000000 → "2M".
pub(crate) fn rate_label(value: f64) -> String {
    match value.abs() {
        v if v >= 1e6 => format!("{}M", significant(value / 1e6)),
        v if v >= 1e3 => format!("{}k", significant(value / 1e3)),
        _ => significant(value),
    }
}

pub(crate) fn color(index: usize) -> RGBColor {
    SERIES_COLORS[index % SERIES_COLORS.len()]
}

/// The first series is drawn wider than the others, so that a series that
/// lies on top of it (end-to-end on produce→ack, one run on another) still
/// leaves it visible at both edges.
pub(crate) fn line_style(index: usize) -> ShapeStyle {
    color(index).stroke_width(if index == 0 { 5 } else { 2 })
}

pub(crate) type Drawn = Result<(), Box<dyn Error>>;

/// The spectrum's x axis: linear in nines, with a tick (and a grid line)
/// at each nine and none between. (plotters' own key-point combinator
/// leaves an `f64` axis without a label formatter.)
struct NinesAxis {
    nines: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for NinesAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.nines.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.nines.range()
    }
}

/// Draws into an SVG string.
fn render(
    chart: &'static str,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Drawn,
) -> Result<String, PlotError> {
    render_sized(chart, CHART_SIZE, draw)
}

/// As [`render`], at `size` pixels.
pub(crate) fn render_sized(
    chart: &'static str,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Drawn,
) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root)
            .and_then(|()| root.present().map_err(Into::into))
            .map_err(|error| PlotError {
                chart,
                reason: error.to_string(),
            })?;
    }
    Ok(svg)
}

/// The percentile spectrum of each series, on one chart.
pub fn spectrum_svg(title: &str, series: &[LatencySeries]) -> Result<String, PlotError> {
    let count_max = series
        .iter()
        .map(|series| series.latency.count)
        .max()
        .unwrap_or(0);
    let nines_shown = nines_resolved(count_max);
    let x_max = f64::from(nines_shown) + 1.0;
    let lines: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|series| (series.label, spectrum_points(series.latency, nines_shown)))
        .collect();
    let (ms_min, ms_max) = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|(_, ms)| *ms))
        .fold((f64::INFINITY, 0f64), |(low, high), ms| {
            (low.min(ms), high.max(ms))
        });
    // Headroom above the highest point for the legend.
    let y_range = if ms_max > 0.0 {
        decades(ms_min, ms_max * 3.0)
    } else {
        0.01..1.0
    };
    let x_min = nines(SPECTRUM_PERCENTILE_MIN);
    let mut ticks = vec![x_min];
    ticks.extend((1..=nines_shown).map(f64::from));
    ticks.push(x_max);
    let x_label = move |x: &f64| {
        if (x - x_max).abs() < 1e-9 {
            "max".to_string()
        } else if (x - x_min).abs() < 1e-9 {
            significant(SPECTRUM_PERCENTILE_MIN)
        } else {
            nines_label(x.round() as u32)
        }
    };
    let y_label = |ms: &f64| significant(*ms);
    render("spectrum", |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", CAPTION_SIZE))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(
                NinesAxis {
                    nines: (x_min..x_max).into(),
                    ticks,
                },
                y_range.log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style(("sans-serif", LABEL_SIZE))
            .axis_desc_style(("sans-serif", LABEL_SIZE))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (index, (label, points)) in lines.iter().enumerate() {
            let style = line_style(index);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))?
                .label(*label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
            // A marker at each percentile, of a shape per series, so that
            // series that coincide can still be told apart.
            let marker = color(index).filled();
            match index % 3 {
                0 => chart.draw_series(points.iter().map(|at| Circle::new(*at, 5, marker)))?,
                1 => chart
                    .draw_series(points.iter().map(|at| TriangleMarker::new(*at, 6, marker)))?,
                _ => chart.draw_series(
                    points
                        .iter()
                        .map(|at| Cross::new(*at, 5, color(index).stroke_width(2))),
                )?,
            };
        }
        if !lines.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(("sans-serif", LABEL_SIZE))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .draw()?;
        }
        Ok(())
    })
}

/// Records/s over time of each series, on one chart; the seconds in
/// `shaded` (outside the measured window) get a grey band.
pub fn throughput_svg(
    title: &str,
    series: &[RateSeries],
    shaded: &[u64],
) -> Result<String, PlotError> {
    let seconds = series
        .iter()
        .flat_map(|series| series.per_second.iter().map(|(second, _)| second + 1))
        .chain(shaded.iter().map(|second| second + 1))
        .max()
        .unwrap_or(1);
    let rate_max = series
        .iter()
        .flat_map(|series| series.per_second.iter().map(|(_, records)| *records))
        .max()
        .unwrap_or(0);
    // Headroom for the legend, above the lines.
    let y_max = (rate_max as f64 * 1.3).max(1.0);
    let x_label = |second: &f64| format!("{second:.0}");
    let y_label = |rate: &f64| rate_label(*rate);
    render("throughput", |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", CAPTION_SIZE))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..seconds as f64, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc("records/s")
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style(("sans-serif", LABEL_SIZE))
            .axis_desc_style(("sans-serif", LABEL_SIZE))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        if !shaded.is_empty() {
            let bands = shaded.iter().map(|second| {
                let second = *second as f64;
                Rectangle::new(
                    [(second, 0.0), (second + 1.0, y_max)],
                    WARM_UP_COLOR.filled(),
                )
            });
            chart
                .draw_series(bands)?
                .label("not measured (warm-up, drain)")
                .legend(|(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 20, y + 6)], WARM_UP_COLOR.filled())
                });
        }
        for (index, series) in series.iter().enumerate() {
            let style = line_style(index);
            // Each second's count is drawn at the middle of its second.
            let points = series
                .per_second
                .iter()
                .map(|(second, records)| (*second as f64 + 0.5, *records as f64));
            chart
                .draw_series(LineSeries::new(points, style))?
                .label(series.label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        }
        if !series.is_empty() || !shaded.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(("sans-serif", LABEL_SIZE))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .draw()?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        latency::LatencyRecorder,
        result::{ErrorCounts, SecondSample, Throughput, RESULT_FORMAT_VERSION},
        workload::Workload,
    };

    /// A run of `seconds` seconds (the first one warm-up) at `rate`/s,
    /// whose latencies are 1..=`count` microseconds times `scale`.
    fn run(name: &str, driver: &str, rate: u64, count: u64, scale: u64) -> RunResult {
        let workload = Workload::parse(&format!(
            r#"
            name = "{name}"
            topics = 1
            partitions_per_topic = 1
            message_size = 100
            producers_per_topic = 1
            consumers_per_topic = 1
            batch_bytes = 131072
            linger_ms = 1
            rate = {rate}
            warm_up_s = 1
            duration_s = 5
            "#
        ))
        .unwrap();
        let mut ack = LatencyRecorder::new();
        let mut end_to_end = LatencyRecorder::new();
        for us in 1..=count {
            ack.record(us * scale * 1000);
            end_to_end.record(us * scale * 2000);
        }
        RunResult {
            format_version: RESULT_FORMAT_VERSION,
            workload,
            driver: driver.into(),
            brokers: "127.0.0.1:9192".into(),
            command: vec!["sluice-bench".into()],
            started_unix_ms: 1_700_000_000_000,
            harness_cores: vec![1],
            durability: None,
            machine_cores: 2,
            produced: Throughput::over(rate * 5, rate * 500, 5.0),
            consumed: Throughput::over(rate * 5, rate * 500, 5.0),
            produce_ack_latency: ack.summary(),
            end_to_end_latency: end_to_end.summary(),
            errors: ErrorCounts::default(),
            seconds: (0..6)
                .map(|second| SecondSample {
                    second,
                    measured: second > 0,
                    sent: rate,
                    acknowledged: rate - second,
                    acknowledged_bytes: rate * 100,
                    consumed: rate - 2 * second,
                    consumed_bytes: rate * 100,
                    errors: 0,
                    produce_ack_p99_us: 1.0,
                    end_to_end_p99_us: 2.0,
                })
                .collect(),
        }
    }

    /// The point counts of the polylines drawn in `color`.
    fn polylines(svg: &str, color: RGBColor) -> Vec<usize> {
        let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
        svg.split("<polyline")
            .skip(1)
            .map(|tag| &tag[..tag.find("/>").expect("a closed tag")])
            .filter(|tag| tag.contains(&stroke))
            .map(|tag| {
                let points = tag.split("points=\"").nth(1).expect("points");
                points[..points.find('"').unwrap()]
                    .split_whitespace()
                    .count()
            })
            .collect()
    }

    /// The text of every `<text>` element.
    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text")
            .skip(1)
            .map(|element| {
                let body = &element[element.find('>').unwrap() + 1..];
                body[..body.find("</text>").unwrap()].trim()
            })
            .collect()
    }

    /// The longest line in `color`: the series (its legend sample has 2).
    fn series_points(svg: &str, color: RGBColor) -> usize {
        polylines(svg, color).into_iter().max().unwrap_or(0)
    }

    #[test]
    fn nines_axis() {
        assert!((nines(90.0) - 1.0).abs() < 1e-9);
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        assert!((nines(99.99) - 4.0).abs() < 1e-6);
        assert_eq!(nines_label(1), "90");
        assert_eq!(nines_label(2), "99");
        assert_eq!(nines_label(3), "99.9");
        assert_eq!(nines_label(5), "99.999");
        assert_eq!(nines_resolved(0), SPECTRUM_NINES_MIN);
        assert_eq!(nines_resolved(200_000), 5);
        assert_eq!(nines_resolved(100_000_000), SPECTRUM_NINES_MAX);
        assert_eq!(decades(0.05, 3.0), 0.01..10.0);
        assert_eq!(decades(1.0, 1.0), 1.0..10.0);
        assert_eq!(significant(0.12345), "0.123");
        assert_eq!(significant(2.5), "2.5");
        assert_eq!(significant(1000.0), "1000");
        assert_eq!(rate_label(20_000.0), "20k");
        assert_eq!(rate_label(1_500_000.0), "1.5M");
    }

    #[test]
    fn spectrum_points_from_the_median_to_the_max() {
        let result = run("a", "native", 1000, 100_000, 1);
        // 100,000 samples resolve 5 nines: p50, 75, 90, 95, 99, 99.5,
        // 99.9, 99.95, 99.99, 99.995, 99.999 and the max.
        let points = spectrum_points(&result.produce_ack_latency, 5);
        assert_eq!(points.len(), 12, "{points:?}");
        assert_eq!(points.last().unwrap().0, 6.0);
        assert!((points.last().unwrap().1 - 100.0).abs() < 0.1, "{points:?}");
        assert!((points[0].1 - 50.0).abs() < 0.1, "{points:?}");
        for pair in points.windows(2) {
            assert!(pair[0].0 < pair[1].0, "x goes back: {points:?}");
            assert!(pair[0].1 <= pair[1].1, "latency goes back: {points:?}");
        }
        let empty = LatencyRecorder::new().summary();
        assert!(spectrum_points(&empty, 4).is_empty());
    }

    #[test]
    fn a_run_gets_both_charts_beside_its_json() {
        let result = run("one-partition", "native", 20_000, 100_000, 1);
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("result.json");
        result.save(&json).unwrap();
        let [spectrum, throughput] = write_run_charts(&result, &json).unwrap();
        assert_eq!(spectrum, dir.path().join("result.spectrum.svg"));
        assert_eq!(throughput, dir.path().join("result.throughput.svg"));

        let svg = std::fs::read_to_string(&spectrum).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in ["produce→ack", "end-to-end", "one-partition", "percentile"] {
            assert!(svg.contains(text), "no {text:?} in\n{svg}");
        }
        let texts = texts(&svg);
        for tick in ["50", "90", "99", "99.9", "99.99", "99.999", "max"] {
            assert!(texts.contains(&tick), "no tick {tick:?} in {texts:?}");
        }
        assert!(!texts.contains(&"99.9999"), "{texts:?}");
        assert_eq!(series_points(&svg, SERIES_COLORS[0]), 12, "{svg}");
        assert_eq!(series_points(&svg, SERIES_COLORS[1]), 12, "{svg}");

        let svg = std::fs::read_to_string(&throughput).unwrap();
        for text in ["produced (acknowledged)", "consumed", "records/s", "20k"] {
            assert!(svg.contains(text), "no {text:?} in\n{svg}");
        }
        assert_eq!(series_points(&svg, SERIES_COLORS[0]), 6, "{svg}");
        assert_eq!(series_points(&svg, SERIES_COLORS[1]), 6, "{svg}");
        let warm_up = format!(
            "fill=\"#{:02X}{:02X}{:02X}\"",
            WARM_UP_COLOR.0, WARM_UP_COLOR.1, WARM_UP_COLOR.2
        );
        // The warm-up second, and the legend's sample.
        assert_eq!(svg.matches(&warm_up).count(), 2, "{svg}");
    }

    #[test]
    fn comparison_draws_every_run_on_one_chart() {
        let runs = vec![
            ("sluice".to_string(), run("a", "native", 20_000, 100_000, 1)),
            ("peer".to_string(), run("a", "kafka", 10_000, 1_000, 10)),
        ];
        let dir = tempfile::tempdir().unwrap();
        let plots = dir.path().join("plots");
        let [spectrum, throughput] = write_comparison_charts(&runs, &plots).unwrap();
        assert_eq!(spectrum, plots.join("compare-spectrum.svg"));
        assert_eq!(throughput, plots.join("compare-throughput.svg"));
        assert_eq!(std::fs::read_dir(&plots).unwrap().count(), 2);

        let svg = std::fs::read_to_string(&spectrum).unwrap();
        for text in ["sluice (native)", "peer (kafka)", "produce→ack"] {
            assert!(svg.contains(text), "no {text:?} in\n{svg}");
        }
        // The axis goes as deep as the larger run resolves (5 nines); the
        // smaller run's p99.999 and beyond are still drawn, at its max.
        assert_eq!(series_points(&svg, SERIES_COLORS[0]), 12, "{svg}");
        assert_eq!(series_points(&svg, SERIES_COLORS[1]), 12, "{svg}");
        assert!(!svg.contains("end-to-end"), "{svg}");

        let svg = std::fs::read_to_string(&throughput).unwrap();
        for text in ["sluice (native)", "peer (kafka)"] {
            assert!(svg.contains(text), "no {text:?} in\n{svg}");
        }
        assert_eq!(series_points(&svg, SERIES_COLORS[0]), 6, "{svg}");
        assert_eq!(series_points(&svg, SERIES_COLORS[1]), 6, "{svg}");
    }

    #[test]
    fn empty_results_still_draw() {
        let mut result = run("empty", "native", 10, 0, 1);
        result.seconds.clear();
        let charts = run_charts(&result).unwrap();
        assert!(charts.spectrum_svg.contains("</svg>"));
        assert!(charts.throughput_svg.contains("</svg>"));
        assert!(comparison_charts(&[]).is_ok());
    }
}
