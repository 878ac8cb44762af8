//! `toolgym plot`: the paper's Figure 6 for a run — reward, KL, response
//! length and validation accuracy per step — as one PNG; for runs against
//! multi-turn environments also turns and failed tool calls per episode.

use crate::metrics::{read_metrics, StepMetrics};
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

/// Draws `RUN_DIR/training_curves.png` (or `out`) from `RUN_DIR/metrics.jsonl`;
/// returns the path and any unreadable metrics lines.
pub fn plot_run(run_dir: &Path, out: Option<&Path>) -> Result<(PathBuf, Vec<String>), TrainError> {
    let (metrics, bad) = read_metrics(run_dir)?;
    let grpo: Vec<&StepMetrics> = metrics.iter().filter(|m| m.phase == "grpo").collect();
    let rows: Vec<&StepMetrics> = if grpo.is_empty() {
        metrics.iter().collect()
    } else {
        grpo
    };
    if rows.is_empty() {
        return Err(TrainError::Data(format!(
            "{} has no metrics to plot",
            run_dir.display()
        )));
    }
    let path = out.map_or_else(|| run_dir.join("training_curves.png"), Path::to_path_buf);
    let text = load_font();
    let series = |f: &dyn Fn(&StepMetrics) -> Option<f64>| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|m| f(m).map(|v| (m.step as f64, v)))
            .collect()
    };
    let mut panels: Vec<(&str, Vec<(f64, f64)>)> = vec![
        ("reward (mean)", series(&|m| m.reward_mean)),
        ("KL to reference", series(&|m| m.kl)),
        ("model tokens per episode", series(&|m| m.response_len_mean)),
        ("validation accuracy", series(&|m| m.val_accuracy)),
    ];
    let multi_turn = rows.iter().any(|m| m.turns_max.is_some_and(|t| t > 1));
    if multi_turn {
        panels.push(("turns per episode (mean)", series(&|m| m.turns_mean)));
        panels.push((
            "failed tool calls per episode",
            series(&|m| {
                let episodes: usize = m.end_reasons.values().sum();
                (episodes > 0)
                    .then(|| m.tool_errors.values().sum::<usize>() as f64 / episodes as f64)
            }),
        ));
    }
    let grid = if multi_turn { (3, 2) } else { (2, 2) };
    let err =
        |e: &dyn std::fmt::Display| TrainError::Data(format!("plotting {}: {e}", path.display()));
    {
        let root = BitMapBackend::new(&path, (1200, 450 * grid.0 as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        for (area, (title, pts)) in root.split_evenly(grid).iter().zip(panels) {
            draw_panel(area, title, &pts, text).map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok((path, bad))
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
    title: &str,
    pts: &[(f64, f64)],
    text: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (x0, x1) = bounds(pts.iter().map(|p| p.0));
    let (y0, y1) = bounds(pts.iter().map(|p| p.1));
    let mut builder = ChartBuilder::on(area);
    builder.margin(16);
    if text {
        builder
            .caption(title, ("sans-serif", 22))
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
    let color = RGBColor(31, 119, 180);
    chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?;
    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
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
    (lo - pad, hi + pad)
}
