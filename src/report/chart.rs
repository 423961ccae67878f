//! The report's charts, drawn by plotters' SVG backend into strings the page inlines. Each chart
//! shows numbers of the [`Report`] only; an empty section draws no chart.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use serde_json::{Value, json};

use super::{Report, ReportError, Slot};

const SIZE: (u32, u32) = (760, 300);
const BAR: RGBColor = RGBColor(29, 120, 200);
const LINE: RGBColor = RGBColor(220, 90, 20);
const GRID: RGBColor = RGBColor(225, 228, 232);
const FONT: &str = "sans-serif";

/// Every chart of `report` as inline SVG (null where its section is empty).
pub(super) fn all(report: &Report) -> Result<Value, ReportError> {
    if report.period.is_none() {
        return Ok(json!({ "daily": null, "hashtags": null, "hours": null, "weekdays": null }));
    }
    let hours = filled(&report.hours, 0..24, |h| format!("{h:02}"));
    let weekdays =
        filled(&report.weekdays, 1..8, |d| ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][d as usize - 1].into());
    Ok(json!({
        "daily": (!report.daily.is_empty()).then(|| daily(report)).transpose()?,
        "hashtags": (!report.top_hashtags.is_empty()).then(|| hashtags(report)).transpose()?,
        "hours": (!report.hours.is_empty()).then(|| columns("tweets per hour of the day (UTC)", &hours, "hour (UTC)")).transpose()?,
        "weekdays": (!report.weekdays.is_empty()).then(|| columns("tweets per weekday", &weekdays, "")).transpose()?,
    }))
}

/// `(label, tweets)` for every slot in `range`; a slot without tweets draws as zero.
fn filled(slots: &[Slot], range: std::ops::Range<u32>, label: impl Fn(u32) -> String) -> Vec<(String, u64)> {
    range.map(|s| (label(s), slots.iter().find(|x| x.slot == s).map_or(0, |x| x.tweets))).collect()
}

fn failed<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ReportError {
    move |e| ReportError::Draw { what, message: e.to_string() }
}

/// Marks the SVG as one image for screen readers, named `label`.
fn labelled(svg: String, label: &str) -> String {
    svg.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"{label}\" class=\"chart\" "), 1)
}

/// The axis label of segment `v` of a chart with `labels`.
fn segment_label(labels: &[String], v: &SegmentValue<u32>) -> String {
    match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
        SegmentValue::Last => String::new(),
    }
}

/// Every day of the period with its tweets and retweet share (None: no tweets that day).
fn period_days(report: &Report) -> Vec<(String, Option<(u64, f64)>)> {
    let Some(period) = &report.period else { return Vec::new() };
    let parse = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    let (Some(first), Some(last)) = (parse(&period.first_day), parse(&period.last_day)) else { return Vec::new() };
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| {
            let date = d.format("%Y-%m-%d").to_string();
            let day = report.daily.iter().find(|x| x.date == date).map(|x| (x.tweets, x.retweet_share));
            (d.format("%m-%d").to_string(), day)
        })
        .collect()
}

/// Tweets per day of the period as columns, the retweet share as points on the right-hand axis
/// (joined where days follow each other).
fn daily(report: &Report) -> Result<String, ReportError> {
    const WHAT: &str = "tweets per day";
    let days = period_days(report);
    let labels: Vec<String> = days.iter().map(|(label, _)| label.clone()).collect();
    let n = labels.len() as u32;
    let top = days.iter().filter_map(|(_, d)| d.map(|(t, _)| t)).max().unwrap_or(0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed(WHAT))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(54)
            .right_y_label_area_size(54)
            .build_cartesian_2d(slots(n), 0u64..headroom(top))
            .map_err(failed(WHAT))?
            .set_secondary_coord(slots(n), 0f64..1f64);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .x_labels(labels.len().min(10))
            .x_label_formatter(&|v| segment_label(&labels, v))
            .y_desc("tweets")
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(failed(WHAT))?;
        chart
            .configure_secondary_axes()
            .y_labels(5)
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .y_desc("retweet share")
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(failed(WHAT))?;
        let bars = days.iter().enumerate().filter_map(|(i, (_, d))| d.map(|(t, _)| (i as u32, t)));
        let bars = Histogram::vertical(&*chart).style(BAR.filled()).margin(2).data(bars);
        chart
            .draw_series(bars)
            .map_err(failed(WHAT))?
            .label("tweets")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], BAR.filled()));
        let share: Vec<(u32, f64)> =
            days.iter().enumerate().filter_map(|(i, (_, d))| d.map(|(_, s)| (i as u32, s))).collect();
        for run in share.chunk_by(|a, b| b.0 == a.0 + 1) {
            let points = run.iter().map(|(i, s)| (SegmentValue::CenterOf(*i), *s));
            chart.draw_secondary_series(LineSeries::new(points, LINE.stroke_width(2))).map_err(failed(WHAT))?;
        }
        chart
            .draw_secondary_series(
                share.iter().map(|(i, s)| Circle::new((SegmentValue::CenterOf(*i), *s), 3, LINE.filled())),
            )
            .map_err(failed(WHAT))?
            .label("retweet share")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], LINE.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(GRID)
            .label_font((FONT, 13))
            .draw()
            .map_err(failed(WHAT))?;
        root.present().map_err(failed(WHAT))?;
    }
    Ok(labelled(svg, WHAT))
}

/// The top hashtags as horizontal bars, the most used on top.
fn hashtags(report: &Report) -> Result<String, ReportError> {
    const WHAT: &str = "top hashtags";
    let labels: Vec<String> = report.top_hashtags.iter().rev().map(|h| format!("#{}", h.hashtag)).collect();
    let n = labels.len() as u32;
    let top = report.top_hashtags.iter().map(|h| h.tweets).max().unwrap_or(0);
    let height = 40 + 28 * n.max(3);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE).map_err(failed(WHAT))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(150)
            .build_cartesian_2d(0u64..headroom(top), slots(n))
            .map_err(failed(WHAT))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .y_labels(labels.len())
            .y_label_formatter(&|v| segment_label(&labels, v))
            .x_desc("tweets")
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(failed(WHAT))?;
        let bars = report.top_hashtags.iter().rev().enumerate().map(|(i, h)| (i as u32, h.tweets));
        chart
            .draw_series(Histogram::horizontal(&chart).style(BAR.filled()).margin(4).data(bars))
            .map_err(failed(WHAT))?;
        root.present().map_err(failed(WHAT))?;
    }
    Ok(labelled(svg, WHAT))
}

/// One column per `(label, tweets)`.
fn columns(what: &'static str, data: &[(String, u64)], x_desc: &str) -> Result<String, ReportError> {
    let labels: Vec<String> = data.iter().map(|(l, _)| l.clone()).collect();
    let n = labels.len() as u32;
    let top = data.iter().map(|(_, t)| *t).max().unwrap_or(0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(failed(what))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(if x_desc.is_empty() { 26 } else { 44 })
            .y_label_area_size(54)
            .build_cartesian_2d(slots(n), 0u64..headroom(top))
            .map_err(failed(what))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .x_labels(labels.len())
            .x_label_formatter(&|v| segment_label(&labels, v))
            .x_desc(x_desc)
            .y_desc("tweets")
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(failed(what))?;
        let bars = data.iter().enumerate().map(|(i, (_, t))| (i as u32, *t));
        chart
            .draw_series(Histogram::vertical(&chart).style(BAR.filled()).margin(3).data(bars))
            .map_err(failed(what))?;
        root.present().map_err(failed(what))?;
    }
    Ok(labelled(svg, what))
}

/// `n` segments, one per bar: plotters' integer ranges include their end. (A single bar gets two,
/// the second empty: a one-value range draws its bar off its label.)
fn slots(n: u32) -> plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordu32> {
    (0..n.saturating_sub(1).max(1)).into_segmented()
}

/// The value axis' top: a tenth above the largest value, at least 1.
fn headroom(top: u64) -> u64 {
    top + top / 10 + 1
}
