//! `toolgym plot`: the paper's Figure 6 for a run — reward, KL, response
//! length and held-out accuracy per step — as one PNG, with the SFT loss
//! when SFT ran, and for runs against multi-turn environments turns and
//! failed tool calls per episode.

use crate::metrics::{read_metrics, StepMetrics, METRICS_FILE};
use crate::TrainError;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Fonts tried, in order, for labels (`TOOLGYM_FONT` overrides). Without any,
/// the curves are drawn without text.
const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// One curve of a panel.
struct Curve {
    label: &'static str,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    /// Thin, light line with dots (raw per-step values) or a bold line.
    raw: bool,
}

/// One chart: a title and its curves.
struct Panel {
    title: &'static str,
    curves: Vec<Curve>,
    /// Fixed axis ranges; otherwise the data's.
    x_range: Option<(f64, f64)>,
    y_range: Option<(f64, f64)>,
}

impl Panel {
    fn new(title: &'static str, curves: Vec<Curve>) -> Self {
        Panel {
            title,
            curves,
            x_range: None,
            y_range: None,
        }
    }
}

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const LIGHT_BLUE: RGBColor = RGBColor(177, 207, 229);

/// Draws `RUN_DIR/training_curves.png` (or `out`) from `RUN_DIR/metrics.jsonl`;
/// returns the path and any unreadable metrics lines.
///
/// Panels: the GRPO reward per step with a moving average over it; KL;
/// model tokens per episode; held-out accuracy (greedy and, when
/// configured, sampled) before GRPO (step 0), at every `run.eval_every`
/// and after the last step; the SFT loss when SFT ran; and for multi-turn
/// environments turns and failed tool calls per episode.
pub fn plot_run(run_dir: &Path, out: Option<&Path>) -> Result<(PathBuf, Vec<String>), TrainError> {
    if run_dir.is_file() {
        return Err(TrainError::Data(format!(
            "{} is a file: give the run directory that holds {METRICS_FILE}",
            run_dir.display()
        )));
    }
    let (metrics, bad) = read_metrics(run_dir)?;
    let grpo: Vec<&StepMetrics> = metrics.iter().filter(|m| m.phase == "grpo").collect();
    let sft: Vec<&StepMetrics> = metrics
        .iter()
        .filter(|m| m.phase == "sft" && m.is_step())
        .collect();
    if grpo.is_empty() && sft.is_empty() {
        let why = match bad.first() {
            Some(first) => format!(" ({} unreadable line(s); the first: {first})", bad.len()),
            None => String::new(),
        };
        return Err(TrainError::Data(format!(
            "{} has no metrics to plot{why}",
            run_dir.display()
        )));
    }
    let rows = if grpo.is_empty() { &sft } else { &grpo };
    let path = out.map_or_else(|| run_dir.join("training_curves.png"), Path::to_path_buf);
    // Checked before drawing: the image library's own errors do not say
    // what to change.
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg" | "bmp")) || path.is_dir() {
        return Err(TrainError::Data(format!(
            "{}: the plot is written as an image file: give a path ending in .png",
            path.display()
        )));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(TrainError::Data(format!(
                "{}: no directory {} to write the plot in",
                path.display(),
                parent.display()
            )));
        }
    }
    let text = load_font();
    let series = |rows: &[&StepMetrics], f: &dyn Fn(&StepMetrics) -> Option<f64>| {
        rows.iter()
            .filter_map(|m| f(m).map(|v| (m.step as f64, v)))
            .collect::<Vec<_>>()
    };
    let raw_and_mean = |label: &'static str, points: Vec<(f64, f64)>| {
        let smooth = moving_average(&points);
        vec![
            Curve {
                label,
                points,
                color: LIGHT_BLUE,
                raw: true,
            },
            Curve {
                label: "moving average",
                points: smooth,
                color: BLUE,
                raw: false,
            },
        ]
    };
    let line = |label: &'static str, points: Vec<(f64, f64)>, color: RGBColor| Curve {
        label,
        points,
        color,
        raw: false,
    };
    let mut panels = Vec::new();
    if !grpo.is_empty() {
        let reward = series(&grpo, &|m| m.reward_mean);
        panels.push(Panel::new(
            "GRPO reward (mean per step)",
            raw_and_mean("per step", reward),
        ));
        let kl = series(&grpo, &|m| m.kl);
        panels.push(Panel::new(
            "KL to reference",
            vec![line("per step", kl, BLUE)],
        ));
        let len = series(&grpo, &|m| m.response_len_mean);
        panels.push(Panel::new(
            "model tokens per episode",
            vec![line("per step", len, BLUE)],
        ));
    }
    let last_step = rows.iter().map(|m| m.step).max().unwrap_or(0) as f64;
    panels.push(Panel {
        x_range: Some((-0.02 * last_step, 1.02 * last_step.max(1.0))),
        y_range: Some((-0.02, 1.02)),
        ..Panel::new(
            "held-out accuracy (step 0: before)",
            vec![
                line("greedy", series(rows, &|m| m.val_accuracy), BLUE),
                line("sampled", series(rows, &|m| m.val_sampled_accuracy), ORANGE),
            ],
        )
    });
    if !sft.is_empty() {
        let loss = series(&sft, &|m| (m.loss > 0.0).then(|| m.loss.log10()));
        panels.push(Panel::new(
            "SFT loss (log10, per token)",
            raw_and_mean("per step", loss),
        ));
    }
    if grpo.iter().any(|m| m.turns_max.is_some_and(|t| t > 1)) {
        let turns = series(&grpo, &|m| m.turns_mean);
        panels.push(Panel::new(
            "turns per episode (mean)",
            vec![line("per step", turns, BLUE)],
        ));
        let failed = series(&grpo, &|m| {
            let episodes: usize = m.end_reasons.values().sum();
            (episodes > 0).then(|| m.tool_errors.values().sum::<usize>() as f64 / episodes as f64)
        });
        panels.push(Panel::new(
            "failed tool calls per episode",
            vec![line("per step", failed, BLUE)],
        ));
    }
    let rows_of_panels = panels.len().div_ceil(2);
    let err =
        |e: &dyn std::fmt::Display| TrainError::Data(format!("plotting {}: {e}", path.display()));
    // Drawn beside it under another name (the extension kept: it picks the
    // image format) and renamed when whole: an earlier plot is never left
    // half written.
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let ext = path.extension().unwrap_or_default().to_string_lossy();
    let partial = path.with_file_name(format!(".{name}.partial-{}.{ext}", std::process::id()));
    let drawn = (|| {
        let root =
            BitMapBackend::new(&partial, (1200, 450 * rows_of_panels as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        for (area, panel) in root.split_evenly((rows_of_panels, 2)).iter().zip(&panels) {
            draw_panel(area, panel, text).map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))
    })()
    .and_then(|()| std::fs::rename(&partial, &path).map_err(|e| err(&e)));
    if drawn.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    drawn.map(|()| (path, bad))
}

/// Trailing mean over a window of a tenth of the points (at least 1).
fn moving_average(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let w = (points.len() / 10).max(1);
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            sum += y;
            if i >= w {
                sum -= points[i - w].1;
            }
            (x, sum / (i + 1).min(w) as f64)
        })
        .collect()
}

fn load_font() -> bool {
    let env = std::env::var("TOOLGYM_FONT").ok();
    let candidates = env.iter().map(String::as_str).chain(FONT_CANDIDATES);
    for p in candidates {
        if let Ok(bytes) = std::fs::read(p) {
            // plotters keeps the font for the process; leaking one copy is fine.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    text: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let all = || panel.curves.iter().flat_map(|c| c.points.iter());
    let (x0, x1) = panel.x_range.unwrap_or_else(|| bounds(all().map(|p| p.0)));
    let (y0, y1) = panel.y_range.unwrap_or_else(|| bounds(all().map(|p| p.1)));
    let mut builder = ChartBuilder::on(area);
    builder.margin(16);
    if text {
        builder
            .caption(panel.title, ("sans-serif", 22))
            .x_label_area_size(36)
            .y_label_area_size(56);
    }
    let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc("step").light_line_style(WHITE.mix(0.0));
    if !text {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw()?;
    let drawn: Vec<&Curve> = panel
        .curves
        .iter()
        .filter(|c| !c.points.is_empty())
        .collect();
    for c in &drawn {
        let color = c.color;
        let width = if c.raw { 1 } else { 2 };
        chart
            .draw_series(LineSeries::new(
                c.points.iter().copied(),
                color.stroke_width(width),
            ))?
            .label(c.label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        let radius = if c.raw { 2 } else { 3 };
        chart.draw_series(
            c.points
                .iter()
                .map(|&p| Circle::new(p, radius, color.filled())),
        )?;
    }
    if text && drawn.len() > 1 {
        // The legend goes where the curves are not: above falling ones.
        let falling = drawn
            .last()
            .is_some_and(|c| c.points.last().map(|p| p.1) < c.points.first().map(|p| p.1));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 16))
            .position(if falling {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::LowerRight
            })
            .draw()?;
    }
    Ok(())
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-9 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.05;
    if !(lo - pad).is_finite() || !(hi + pad).is_finite() {
        // Values near f64's limits (a hand-edited file): no padding, and a
        // span the axis code can divide (with an infinite one it never
        // ends).
        let (mut lo, mut hi) = (lo, hi);
        while !(hi - lo).is_finite() {
            lo /= 2.0;
            hi /= 2.0;
        }
        return (lo, hi);
    }
    (lo - pad, hi + pad)
}

#[cfg(test)]
mod tests {
    use super::{bounds, moving_average, plot_run};

    #[test]
    fn ranges_near_the_limits_of_f64_stay_finite() {
        for values in [[0.0, 1.75e308], [-1e308, 1e308], [f64::MAX, -f64::MAX]] {
            let (lo, hi) = bounds(values.into_iter());
            assert!((hi - lo).is_finite() && lo < hi, "{values:?}: {lo} {hi}");
        }
        assert_eq!(bounds([1.0, 1.0].into_iter()), (0.5, 1.5));
    }

    #[test]
    fn paths_the_plot_cannot_be_written_to_are_named() {
        let dir = std::env::temp_dir().join(format!("toolgym-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let metrics = dir.join(super::METRICS_FILE);
        std::fs::write(&metrics, "{\"phase\": \"sft\", \"step\": 1, \"loss\": 0.5, \"lr\": 0.1, \"grad_norm\": 1, \"step_seconds\": 1}\n").unwrap();
        let fails = |out: Option<&std::path::Path>, run: &std::path::Path, needle: &str| {
            let e = plot_run(run, out).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        fails(Some(&dir.join("x")), &dir, "give a path ending in .png");
        fails(Some(&dir), &dir, "give a path ending in .png");
        fails(Some(&dir.join("no/such/x.png")), &dir, "no directory");
        fails(None, &metrics, "give the run directory");
        std::fs::write(&metrics, "not json\n").unwrap();
        fails(None, &dir, "1 unreadable line(s); the first");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_moving_average_trails_over_a_tenth_of_the_points() {
        let pts: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, (i % 2) as f64)).collect();
        let avg = moving_average(&pts);
        assert_eq!(avg.len(), 20);
        assert_eq!(avg[0], (0.0, 0.0));
        assert_eq!(avg[1], (1.0, 0.5));
        assert!(avg[2..].iter().all(|&(_, y)| y == 0.5));
        assert_eq!(
            moving_average(&pts[..3]),
            vec![(0.0, 0.0), (1.0, 1.0), (2.0, 0.0)]
        );
    }
}
