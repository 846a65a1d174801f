//! Faults in time: how long each fault stalled writers and readers
//! ([`fault_spans`]), and the run's timeline chart ([`timeline_svg`]):
//! acknowledged sends, records read and failed sends per second, and the
//! acknowledgement latency, over the run, with every fault shaded from
//! its start to its healing.
//!
//! A fault's write stall is the longest time, from the fault's start to
//! the next fault's (or to the end of the clients' work), in which some
//! partition had no send acknowledged; its read stall the same for records
//! read. Partitions are apart because a fault may strike some of them
//! only (the leader of one): a partition that cannot be written is a
//! stall even while others are. At 1,000 sends a second an unharmed run's
//! stalls are a few milliseconds, so a stall is the fault's cost as the
//! clients felt it.

use std::collections::{BTreeMap, HashMap};

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::history::{Event, EventType, Function};
use crate::plot::{self, PlotError};

/// The timeline's size in pixels: two charts, one above the other.
const TIMELINE_SIZE: (u32, u32) = (1200, 800);
/// About this many time buckets across the timeline.
const BUCKETS: u64 = 400;
/// A bucket is at least this long.
const BUCKET_NS_MIN: u64 = 50_000_000;

/// One fault as the history tells it, and what it cost the clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpan {
    pub kind: String,
    pub target: String,
    /// Seconds since the run began.
    pub start_s: f64,
    /// When it healed; `None`: not within the history.
    pub end_s: Option<f64>,
    /// The longest time from the fault's start to the next fault (or the
    /// end of the clients' work) in which some partition had no send
    /// acknowledged.
    pub write_stall_ms: f64,
    /// The same for records read (the final read left out).
    pub read_stall_ms: f64,
}

/// The faults of `events`, each start paired with the next end of the
/// same kind and target, with their stalls.
pub fn fault_spans(events: &[Event]) -> Vec<FaultSpan> {
    let mut spans: Vec<(FaultSpan, u64)> = Vec::new();
    for event in events.iter().filter(|e| e.kind == EventType::Fault) {
        let kind = event.fault.clone().unwrap_or_default();
        let target = event.target.clone().unwrap_or_default();
        let at = event.mono_ns as f64 / 1e9;
        if event.phase.as_deref() == Some("end") {
            if let Some((span, _)) = spans
                .iter_mut()
                .find(|(s, _)| s.end_s.is_none() && s.kind == kind && s.target == target)
            {
                span.end_s = Some(at);
            }
        } else {
            let span = FaultSpan {
                kind,
                target,
                start_s: at,
                end_s: None,
                write_stall_ms: 0.0,
                read_stall_ms: 0.0,
            };
            spans.push((span, event.mono_ns));
        }
    }
    let clients_end = events
        .iter()
        .filter(|e| e.kind != EventType::Fault && !e.final_read)
        .map(|e| e.mono_ns)
        .max()
        .unwrap_or(0);
    let writes = sorted_times(events, Function::Send);
    let reads = sorted_times(events, Function::Poll);
    let starts: Vec<u64> = spans.iter().map(|(_, start)| *start).collect();
    spans
        .into_iter()
        .enumerate()
        .map(|(index, (mut span, start))| {
            let end = starts
                .get(index + 1)
                .copied()
                .unwrap_or(u64::MAX)
                .min(clients_end);
            let stall = |times: &HashMap<Key, Vec<u64>>| {
                times
                    .values()
                    .map(|times| longest_gap(times, start, end))
                    .max()
                    .unwrap_or(end.saturating_sub(start)) as f64
                    / 1e6
            };
            span.write_stall_ms = stall(&writes);
            span.read_stall_ms = stall(&reads);
            span
        })
        .collect()
}

/// The longest write stall of each fault kind, in milliseconds.
pub fn longest_stalls(spans: &[FaultSpan]) -> BTreeMap<String, f64> {
    let mut longest = BTreeMap::new();
    for span in spans {
        let entry = longest.entry(span.kind.clone()).or_insert(0f64);
        *entry = entry.max(span.write_stall_ms);
    }
    longest
}

/// A partition: topic and index.
type Key = (String, u32);

/// When each partition had a send acknowledged (`Send`) or records read
/// (`Poll`, the final read left out), in order.
fn sorted_times(events: &[Event], function: Function) -> HashMap<Key, Vec<u64>> {
    let mut times: HashMap<Key, Vec<u64>> = HashMap::new();
    for event in events
        .iter()
        .filter(|e| e.kind == EventType::Ok && e.f == Some(function) && !e.final_read)
    {
        if function == Function::Send {
            if let (Some(topic), Some(partition)) = (&event.topic, event.partition) {
                times
                    .entry((topic.clone(), partition))
                    .or_default()
                    .push(event.mono_ns);
            }
        } else {
            for read in &event.reads {
                times
                    .entry((read.topic.clone(), read.partition))
                    .or_default()
                    .push(event.mono_ns);
            }
        }
    }
    for times in times.values_mut() {
        times.sort_unstable();
        times.dedup();
    }
    times
}

/// The longest time within `[from, to]` between successive `times` (and
/// from `from` to the first, and from the last to `to`).
fn longest_gap(times: &[u64], from: u64, to: u64) -> u64 {
    if to <= from {
        return 0;
    }
    let first = times.partition_point(|t| *t <= from);
    let mut previous = from;
    let mut longest = 0;
    for &time in times[first..].iter().take_while(|t| **t <= to) {
        longest = longest.max(time - previous);
        previous = time;
    }
    longest.max(to - previous)
}

/// What one time bucket of the timeline holds.
#[derive(Default, Clone)]
struct Bucket {
    acked: u64,
    failed: u64,
    read: u64,
    latencies_ns: Vec<u64>,
}

/// The timeline of `events` as SVG text.
pub fn timeline_svg(title: &str, events: &[Event]) -> Result<String, PlotError> {
    let end_ns = events.iter().map(|e| e.mono_ns).max().unwrap_or(0).max(1);
    let bucket_ns = (end_ns / BUCKETS).max(BUCKET_NS_MIN);
    let mut buckets = vec![Bucket::default(); (end_ns / bucket_ns + 1) as usize];
    let mut invoked: HashMap<u64, u64> = HashMap::new();
    for event in events {
        let bucket = &mut buckets[(event.mono_ns / bucket_ns) as usize];
        match (event.kind, event.f) {
            (EventType::Invoke, Some(Function::Send)) => {
                if let Some(op) = event.op {
                    invoked.insert(op, event.mono_ns);
                }
            }
            (EventType::Ok, Some(Function::Send)) => {
                bucket.acked += 1;
                if let Some(start) = event.op.and_then(|op| invoked.get(&op)) {
                    bucket
                        .latencies_ns
                        .push(event.mono_ns.saturating_sub(*start));
                }
            }
            (EventType::Fail | EventType::Info, Some(Function::Send)) => bucket.failed += 1,
            (EventType::Ok, Some(Function::Poll)) if !event.final_read => {
                bucket.read += event.reads.len() as u64;
            }
            _ => {}
        }
    }
    let per_second = 1e9 / bucket_ns as f64;
    let at = |index: usize| (index as f64 + 0.5) * bucket_ns as f64 / 1e9;
    type Count = fn(&Bucket) -> u64;
    let counts: [(&str, Count); 3] = [
        ("sends acknowledged/s", |b| b.acked),
        ("records read/s", |b| b.read),
        ("sends failed or unknown/s", |b| b.failed),
    ];
    let rates = counts.map(|(label, count)| {
        let points: Vec<(f64, f64)> = buckets
            .iter()
            .enumerate()
            .map(|(index, bucket)| (at(index), count(bucket) as f64 * per_second))
            .collect();
        (label, points)
    });
    let mut latencies: [(&str, Vec<(f64, f64)>); 2] = [
        ("ack latency, max", Vec::new()),
        ("ack latency, median", Vec::new()),
    ];
    for (index, bucket) in buckets.iter_mut().enumerate() {
        if bucket.latencies_ns.is_empty() {
            continue;
        }
        bucket.latencies_ns.sort_unstable();
        let ms = |ns: u64| (ns as f64 / 1e6).max(0.001);
        let sorted = &bucket.latencies_ns;
        latencies[0]
            .1
            .push((at(index), ms(sorted[sorted.len() - 1])));
        latencies[1]
            .1
            .push((at(index), ms(sorted[sorted.len() / 2])));
    }
    let spans = fault_spans(events);
    let seconds = end_ns as f64 / 1e9;
    let rate_max = rates
        .iter()
        .flat_map(|(_, points)| points.iter().map(|(_, rate)| *rate))
        .fold(1f64, f64::max)
        * 1.3;
    let (ms_min, ms_max) = latencies[0]
        .1
        .iter()
        .chain(&latencies[1].1)
        .fold((f64::INFINITY, 0f64), |(low, high), (_, ms)| {
            (low.min(*ms), high.max(*ms))
        });
    let ms_range = if ms_max > 0.0 {
        plot::decades(ms_min, ms_max * 3.0)
    } else {
        0.01..1.0
    };
    plot::render_sized("timeline", TIMELINE_SIZE, |root| {
        root.fill(&WHITE)?;
        let root = root.titled(title, ("sans-serif", plot::CAPTION_SIZE))?;
        let (upper, lower) = root.split_vertically(TIMELINE_SIZE.1 / 2 - 20);
        let x_label = |second: &f64| format!("{second:.0}");
        let rate_label = |rate: &f64| plot::rate_label(*rate);
        let mut chart = ChartBuilder::on(&upper)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..seconds, 0f64..rate_max)?;
        chart
            .configure_mesh()
            .y_desc("per second")
            .x_label_formatter(&x_label)
            .y_label_formatter(&rate_label)
            .label_style(("sans-serif", plot::LABEL_SIZE))
            .axis_desc_style(("sans-serif", plot::LABEL_SIZE))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        shade(&mut chart, &spans, seconds, 0.0, rate_max)?;
        for (index, (label, points)) in rates.iter().enumerate() {
            let style = plot::color(index).stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))?
                .label(*label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", plot::LABEL_SIZE))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;

        let ms_label = |ms: &f64| plot::significant(*ms);
        let mut chart = ChartBuilder::on(&lower)
            .margin(12)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..seconds, ms_range.clone().log_scale())?;
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc("ack latency (ms)")
            .x_label_formatter(&x_label)
            .y_label_formatter(&ms_label)
            .label_style(("sans-serif", plot::LABEL_SIZE))
            .axis_desc_style(("sans-serif", plot::LABEL_SIZE))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        shade(&mut chart, &spans, seconds, ms_range.start, ms_range.end)?;
        for (index, (label, points)) in latencies.iter().enumerate() {
            let color = plot::color(index + 3);
            chart
                .draw_series(points.iter().map(|at| Circle::new(*at, 2, color.filled())))?
                .label(*label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", plot::LABEL_SIZE))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// Each fault's span as a band from `low` to `high`, one color and one
/// legend entry per kind.
fn shade<Y: plotters::coord::ranged1d::Ranged<ValueType = f64>>(
    chart: &mut ChartContext<SVGBackend, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    spans: &[FaultSpan],
    seconds: f64,
    low: f64,
    high: f64,
) -> plot::Drawn {
    let mut kinds: Vec<&str> = spans.iter().map(|span| span.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for (index, kind) in kinds.into_iter().enumerate() {
        let fill = FAULT_COLORS[index % FAULT_COLORS.len()].mix(0.35).filled();
        let bands = spans.iter().filter(|span| span.kind == kind).map(|span| {
            let end = span.end_s.unwrap_or(seconds).max(span.start_s + 0.01);
            Rectangle::new([(span.start_s, low), (end, high)], fill)
        });
        chart
            .draw_series(bands)?
            .label(format!("fault: {kind}"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], fill));
    }
    Ok(())
}

/// Fault bands, by kind.
const FAULT_COLORS: [RGBColor; 5] = [
    RGBColor(230, 80, 80),
    RGBColor(240, 170, 40),
    RGBColor(90, 120, 230),
    RGBColor(160, 90, 200),
    RGBColor(120, 120, 120),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn at(kind: EventType, f: Option<Function>, ms: u64) -> Event {
        let mut event = Event::new(kind, ms * 1_000_000);
        event.f = f;
        event.topic = Some("t".into());
        event.partition = Some(0);
        event
    }

    fn fault(phase: &str, ms: u64) -> Event {
        let mut event = at(EventType::Fault, None, ms);
        event.fault = Some("kill".into());
        event.target = Some("node 0".into());
        event.phase = Some(phase.into());
        event
    }

    #[test]
    fn a_stall_is_the_longest_time_without_an_acknowledgement_after_a_fault() {
        let mut events = Vec::new();
        // Acknowledgements every 10 ms, none from 1000 to 1700 ms.
        for ms in (0..3000)
            .step_by(10)
            .filter(|ms| !(1000..1700).contains(ms))
        {
            events.push(at(EventType::Ok, Some(Function::Send), ms));
        }
        events.push(fault("start", 1005));
        events.push(fault("end", 1300));
        events.sort_by_key(|e| e.mono_ns);
        let spans = fault_spans(&events);
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(span.kind, "kill");
        assert_eq!(span.target, "node 0");
        assert!((span.start_s - 1.005).abs() < 1e-9);
        assert!((span.end_s.unwrap() - 1.3).abs() < 1e-9);
        assert!((span.write_stall_ms - 695.0).abs() < 1e-6, "{span:?}");
        assert_eq!(span.read_stall_ms, span.read_stall_ms.max(0.0));
        assert_eq!(longest_stalls(&spans)["kill"], span.write_stall_ms);
    }

    #[test]
    fn a_stall_that_never_ends_lasts_to_the_end_of_the_clients_work() {
        let mut events = vec![at(EventType::Ok, Some(Function::Send), 100)];
        events.push(fault("start", 200));
        events.push(at(EventType::Info, Some(Function::Send), 900));
        let spans = fault_spans(&events);
        assert!((spans[0].write_stall_ms - 700.0).abs() < 1e-6);
        assert_eq!(spans[0].end_s, None);
    }

    #[test]
    fn the_timeline_draws_faults_and_latency() {
        let mut events = Vec::new();
        for ms in (0..2000).step_by(5) {
            let mut invoke = at(EventType::Invoke, Some(Function::Send), ms);
            invoke.op = Some(ms);
            let mut ok = at(EventType::Ok, Some(Function::Send), ms + 2);
            ok.op = Some(ms);
            events.extend([invoke, ok]);
        }
        events.push(fault("start", 500));
        events.push(fault("end", 800));
        events.sort_by_key(|e| e.mono_ns);
        let svg = timeline_svg("a run", &events).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("fault: kill"));
        assert!(svg.contains("ack latency"));
    }
}
