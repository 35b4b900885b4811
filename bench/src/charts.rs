//! SVG charts drawn with plotters (SVG backend: text is left to the viewer's
//! fonts, so no font library is compiled in).
use std::path::Path;

use plotters::prelude::*;

use crate::{
    phases::{Mode, Mutation},
    report::Results,
};

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// One labelled group of bars.
struct Group {
    label: String,
    bars: Vec<f64>,
}

fn bar_chart(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[&str],
    groups: &[Group],
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let max = groups
        .iter()
        .flat_map(|g| g.bars.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1e-3)
        * 1.15;
    let n = groups.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..n, 0.0..max)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let labels: Vec<String> = groups.iter().map(|g| g.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let width = 0.8 / series.len().max(1) as f64;
    for (k, name) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        chart
            .draw_series(groups.iter().enumerate().filter_map(|(i, g)| {
                let v = *g.bars.get(k)?;
                v.is_finite().then(|| {
                    let x0 = i as f64 + 0.1 + k as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v)], color.filled())
                })
            }))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

/// Axis labels short enough not to overlap.
fn short(mutation: Mutation) -> &'static str {
    match mutation {
        Mutation::CreateTodo => "todo",
        Mutation::LogStudySession => "session",
        Mutation::SendMessage => "message",
    }
}

fn short_mode(mode: Mode) -> &'static str {
    match mode {
        Mode::OutboxEager => "no gap",
        Mode::OutboxPaused => "paused",
        Mode::DualWrite => "dual",
        other => other.label(),
    }
}

pub fn draw(r: &Results, out: &Path) -> anyhow::Result<()> {
    // Latency: p50/p95/p99 per mode, per mutation, at the middle concurrency.
    let c = r
        .writes
        .iter()
        .map(|w| w.concurrency)
        .filter(|&c| c > 1)
        .min()
        .unwrap_or(1);
    let mut groups = Vec::new();
    for m in Mutation::ALL {
        for mode in Mode::ALL {
            if let Some(s) = r.write(mode, m, c) {
                groups.push(Group {
                    label: format!("{} · {}", short(m), short_mode(mode)),
                    bars: vec![s.p50, s.p95, s.p99],
                });
            }
        }
    }
    bar_chart(
        &out.join("latency.svg"),
        &format!(
            "Mutation latency by write mode, {c} clients (paused = outbox with the worker paused)"
        ),
        "ms",
        &["p50", "p95", "p99"],
        &groups,
    )?;
    // Lag percentiles per worker and rate.
    let groups: Vec<Group> = r
        .lag
        .iter()
        .map(|l| Group {
            label: format!("{} {:.0}/s", l.worker, l.target_rate),
            bars: vec![l.lag.p50, l.lag.p95, l.lag.p99],
        })
        .collect();
    bar_chart(
        &out.join("lag.svg"),
        "Sync lag: commit → applied in MongoDB",
        "ms",
        &["p50", "p95", "p99"],
        &groups,
    )?;
    // Drain vs ceiling.
    let mut groups = Vec::new();
    if let Ok(t) = &r.drain {
        groups.push(Group {
            label: "worker drain".into(),
            bars: vec![t.per_sec],
        });
    }
    if let Ok(t) = &r.ceiling {
        groups.push(Group {
            label: "raw upsert, j: true".into(),
            bars: vec![t.per_sec],
        });
    }
    if let Ok(t) = &r.ceiling_default {
        groups.push(Group {
            label: "raw upsert, default".into(),
            bars: vec![t.per_sec],
        });
    }
    if let Ok(t) = &r.ceiling_same {
        groups.push(Group {
            label: "raw, worker's statements".into(),
            bars: vec![t.per_sec],
        });
    }
    bar_chart(
        &out.join("drain.svg"),
        "Drain throughput vs raw ceiling (same MongoDB server)",
        "documents/s",
        &["per second"],
        &groups,
    )?;
    Ok(())
}
