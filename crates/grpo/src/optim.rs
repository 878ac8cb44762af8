//! AdamW with savable state, global-norm gradient clipping and a learning
//! rate schedule (linear warm-up, then constant or cosine), as verl's actor
//! uses them (torch AdamW, `clip_grad_norm_`, warm-up + constant).
//!
//! Mixed precision: parameters held in bf16 or f16 get an f32 master copy
//! inside the optimiser, as in verl's FSDP actor (f32 parameters, bf16
//! compute). The update is applied to the master and the result rounded
//! into the parameter. Without it, the paper's lr of 1e-6 would vanish in
//! bf16 rounding (one bf16 ulp of a weight near 0.02 is about 1.2e-4), and
//! the bf16 policy would never move.

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Optimiser settings. Defaults are the paper's (verl's) actor settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// Peak learning rate (paper: 1e-6).
    pub lr: f64,
    /// Decoupled weight decay (verl: 0.01).
    pub weight_decay: f64,
    /// Adam β1.
    pub beta1: f64,
    /// Adam β2.
    pub beta2: f64,
    /// Adam ε.
    pub eps: f64,
    /// Clip the global gradient norm to this (verl: 1.0; 0 = off).
    pub max_grad_norm: f64,
    /// Linear warm-up steps (paper: 0).
    pub warmup_steps: usize,
    /// How warm-up counts: `linear` (default: optimiser step k of n has
    /// `lr·(k+1)/n`, so no step is wasted) or `verl`, the released verl's
    /// `min(1, k / max(1, n))` over *rollout* steps (its scheduler steps
    /// once per actor update, whatever the mini-batches in it), whose
    /// first rollout step has lr 0 even with no warm-up: the paper's run
    /// spent every update of its first step that way (Adam's moments
    /// still took their gradients). With `verl`, GRPO's `warmup_steps`
    /// and cosine schedule count rollout steps; SFT's count optimiser
    /// steps either way (verl's SFT trainer steps its scheduler per
    /// update).
    pub warmup_style: WarmupStyle,
    /// After warm-up: constant (verl's default) or cosine decay to `min_lr_ratio * lr`.
    pub schedule: Schedule,
    /// Floor of the cosine schedule, as a fraction of `lr`.
    pub min_lr_ratio: f64,
}

impl OptimConfig {
    /// Checks the values (`section` names them in the error, e.g.
    /// `grpo.optim`): finite, the rates ≥ 0, the βs in [0, 1), ε > 0, the
    /// cosine floor in [0, 1].
    pub fn validate(&self, section: &str) -> std::result::Result<(), crate::TrainError> {
        use crate::config::number;
        let key = |k: &str| format!("{section}.{k}");
        let nonneg = |v: f64| v >= 0.0 && v.is_finite();
        number(&key("lr"), self.lr, nonneg(self.lr), "≥ 0 and finite")?;
        let wd = self.weight_decay;
        number(&key("weight_decay"), wd, nonneg(wd), "≥ 0 and finite")?;
        // Decoupled decay multiplies each weight by 1 - lr·wd per step.
        number(
            &key("weight_decay"),
            wd,
            self.lr * wd < 1.0,
            &format!("such that lr × weight_decay < 1 (lr is {}; each step scales the weights by 1 - lr × weight_decay)", self.lr),
        )?;
        for (k, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            number(&key(k), b, (0.0..1.0).contains(&b), "in [0, 1)")?;
        }
        number(
            &key("eps"),
            self.eps,
            self.eps > 0.0 && self.eps.is_finite(),
            "> 0",
        )?;
        let norm = self.max_grad_norm;
        number(&key("max_grad_norm"), norm, nonneg(norm), "≥ 0 (0 = off)")?;
        let floor = self.min_lr_ratio;
        number(
            &key("min_lr_ratio"),
            floor,
            (0.0..=1.0).contains(&floor),
            "in [0, 1]",
        )
    }
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 1e-6,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            max_grad_norm: 1.0,
            warmup_steps: 0,
            warmup_style: WarmupStyle::Linear,
            schedule: Schedule::Constant,
            min_lr_ratio: 0.0,
        }
    }
}

/// How the warm-up ramp counts (see [`OptimConfig::warmup_style`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WarmupStyle {
    /// `lr·(k+1)/n` for step k < n.
    #[default]
    Linear,
    /// The released verl's `lr·min(1, k / max(1, n))`: lr 0 at step 0
    /// (GRPO counts its rollout steps here, see
    /// [`OptimConfig::warmup_style`]).
    Verl,
}

/// Learning-rate shape after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Constant.
    Constant,
    /// Cosine decay over the run: over the optimiser steps it plans (GRPO:
    /// steps × epochs × mini-batches per step). A planned step that makes
    /// no update (a mini-batch with nothing to train on, one dynamic
    /// sampling left unfilled) still counts ([`AdamW::pass_step`]), so the
    /// run ends at the floor.
    Cosine,
}

impl OptimConfig {
    /// The learning rate at optimiser step `step` (0-based) of `total` steps.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        match self.warmup_style {
            WarmupStyle::Linear if step < self.warmup_steps => {
                return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
            }
            WarmupStyle::Verl if step < self.warmup_steps.max(1) => {
                return self.lr * step as f64 / self.warmup_steps.max(1) as f64;
            }
            _ => {}
        }
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine => {
                let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
                let progress = ((step - self.warmup_steps.min(step)) as f64 / span).min(1.0);
                let floor = self.min_lr_ratio * self.lr;
                floor + (self.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

/// Gradients by parameter name, summed over micro-batches. Ordered by
/// name, so the global norm sums the same terms in the same order in every
/// process (a hash map's order changed the norm's last bit, and with it
/// the clipping factor, from run to run).
#[derive(Default)]
pub struct GradAccumulator {
    grads: BTreeMap<String, Tensor>,
}

impl GradAccumulator {
    /// Adds the gradients of `loss` (one micro-batch) for `params`.
    pub fn backward(&mut self, loss: &Tensor, params: &[(String, Var)]) -> Result<()> {
        self.add(&loss.backward()?, params)
    }

    /// Adds one micro-batch's gradients (`loss.backward()`, computed
    /// elsewhere, e.g. on another thread) for `params`. Adding the same
    /// stores in the same order gives the same sums, bit for bit.
    pub fn add(&mut self, store: &GradStore, params: &[(String, Var)]) -> Result<()> {
        for (name, var) in params {
            if let Some(g) = store.get(var.as_tensor()) {
                let g = g.to_dtype(DType::F32)?;
                let sum = match self.grads.remove(name) {
                    Some(prev) => (prev + g)?,
                    None => g,
                };
                self.grads.insert(name.clone(), sum);
            }
        }
        Ok(())
    }

    /// The accumulated gradient of `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.grads.get(name)
    }

    /// Global L2 norm of all gradients, summed in name order
    /// (deterministic).
    pub fn norm(&self) -> Result<f64> {
        let mut sq = 0.0f64;
        for g in self.grads.values() {
            sq += g
                .sqr()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
        }
        Ok(sq.sqrt())
    }

    /// Forgets all gradients.
    pub fn clear(&mut self) {
        self.grads.clear();
    }

    /// Whether any gradient was accumulated.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }
}

/// AdamW whose moments are named tensors, so they can be checkpointed.
pub struct AdamW {
    /// Settings.
    pub config: OptimConfig,
    /// Optimiser steps taken so far (skipped and passed ones included:
    /// the schedule moves on).
    pub step: usize,
    /// Updates applied so far: Adam's bias correction counts these, as
    /// torch's per-parameter step does (a step skipped for a non-finite
    /// gradient leaves it as it was).
    pub applied: usize,
    m: HashMap<String, Tensor>,
    v: HashMap<String, Tensor>,
    /// f32 copies of the parameters that are not held in f32 or f64.
    master: HashMap<String, Tensor>,
}

/// What one [`AdamW::step`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
    /// False when the step was skipped because the gradient was not finite.
    pub applied: bool,
}

impl AdamW {
    /// A fresh optimiser.
    pub fn new(config: OptimConfig) -> Self {
        Self {
            config,
            step: 0,
            applied: 0,
            m: HashMap::new(),
            v: HashMap::new(),
            master: HashMap::new(),
        }
    }

    /// Clips the gradients to `max_grad_norm`, then updates every parameter
    /// in place. `total_steps` optimiser steps drive the schedule. A
    /// non-finite gradient norm skips the update but still counts the step
    /// for the schedule (later verl versions do this; the released one
    /// stepped anyway, which would turn every weight into NaN); Adam's
    /// bias correction counts applied updates only.
    pub fn step(
        &mut self,
        params: &[(String, Var)],
        grads: &GradAccumulator,
        total_steps: usize,
    ) -> Result<StepStats> {
        let lr = self.config.lr_at(self.step, total_steps);
        self.step_at_lr(params, grads, lr)
    }

    /// [`AdamW::step`] with the schedule read at `position` of `total` in
    /// the caller's unit (GRPO's rollout steps for
    /// [`WarmupStyle::Verl`]).
    pub fn step_scheduled_at(
        &mut self,
        params: &[(String, Var)],
        grads: &GradAccumulator,
        (position, total): (usize, usize),
    ) -> Result<StepStats> {
        let lr = self.config.lr_at(position, total);
        self.step_at_lr(params, grads, lr)
    }

    /// Counts an optimiser step its caller planned and had nothing to
    /// update with (a mini-batch or an SFT batch left with no sequence to
    /// train on, a mini-batch dynamic sampling did not fill): the
    /// schedule moves on, as over a step skipped for a non-finite
    /// gradient, so a warm-up or a cosine ends where the run's plan puts
    /// it. The moments and Adam's bias correction are left as they are.
    pub fn pass_step(&mut self) {
        self.step += 1;
    }

    fn step_at_lr(
        &mut self,
        params: &[(String, Var)],
        grads: &GradAccumulator,
        lr: f64,
    ) -> Result<StepStats> {
        let grad_norm = grads.norm()?;
        self.step += 1;
        if !grad_norm.is_finite() {
            return Ok(StepStats {
                grad_norm,
                lr,
                applied: false,
            });
        }
        self.applied += 1;
        let c = &self.config;
        let clip = if c.max_grad_norm > 0.0 && grad_norm > c.max_grad_norm {
            c.max_grad_norm / (grad_norm + 1e-6)
        } else {
            1.0
        };
        let t = i32::try_from(self.applied).unwrap_or(i32::MAX);
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        for (name, var) in params {
            let Some(g) = grads.get(name) else { continue };
            let g = (g * clip)?;
            let m = match self.m.get(name) {
                Some(m) => ((m * c.beta1)? + (&g * (1.0 - c.beta1))?)?,
                None => (&g * (1.0 - c.beta1))?,
            };
            let v = match self.v.get(name) {
                Some(v) => ((v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?,
                None => (g.sqr()? * (1.0 - c.beta2))?,
            };
            let update = ((&m / bias1)? / ((&v / bias2)?.sqrt()? + c.eps)?)?;
            let low_precision = !matches!(var.dtype(), DType::F32 | DType::F64);
            let theta = match self.master.get(name) {
                Some(master) if low_precision => master.clone(),
                _ => var.as_tensor().to_dtype(DType::F32)?,
            };
            // Detached: the parameter is a tracked variable, so without it
            // the new master would keep this update's graph (theta, the
            // update, their products: three f32 copies of the parameter),
            // and through the old master every earlier one. That was ~11 GB
            // a GRPO step at the 0.5B shape on an H200 until the GPU ran
            // out (docs/gpu.md, "Measured").
            let new = ((theta * (1.0 - lr * c.weight_decay))? - (update * lr)?)?.detach();
            var.set(&new.to_dtype(var.dtype())?)?;
            if low_precision {
                self.master.insert(name.clone(), new);
            }
            self.m.insert(name.clone(), m.detach());
            self.v.insert(name.clone(), v.detach());
        }
        Ok(StepStats {
            grad_norm,
            lr,
            applied: true,
        })
    }

    /// The f32 master copy of parameter `name`, if it is held in bf16 or
    /// f16 and has been updated at least once.
    pub fn master(&self, name: &str) -> Option<&Tensor> {
        self.master.get(name)
    }

    /// The state as named tensors for saving: the moments (`m.<name>`,
    /// `v.<name>`) and the f32 masters of low-precision parameters
    /// (`master.<name>`).
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (prefix, map) in [("m", &self.m), ("v", &self.v), ("master", &self.master)] {
            for (k, t) in map {
                out.insert(format!("{prefix}.{k}"), t.clone());
            }
        }
        out
    }

    /// Restores the state saved by [`AdamW::state_tensors`] and the step
    /// counts (`applied`: the updates applied, `step` for checkpoints of
    /// builds that did not record them). Tensors with other names are
    /// ignored.
    pub fn load_state(&mut self, tensors: HashMap<String, Tensor>, step: usize, applied: usize) {
        self.m.clear();
        self.v.clear();
        self.master.clear();
        for (k, t) in tensors {
            let Some((prefix, name)) = k.split_once('.') else {
                continue;
            };
            let map = match prefix {
                "m" => &mut self.m,
                "v" => &mut self.v,
                "master" => &mut self.master,
                _ => continue,
            };
            map.insert(name.to_string(), t);
        }
        self.step = step;
        self.applied = applied;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_shapes() {
        let c = OptimConfig {
            lr: 1.0,
            warmup_steps: 4,
            schedule: Schedule::Cosine,
            ..OptimConfig::default()
        };
        assert_eq!(c.lr_at(0, 14), 0.25);
        assert_eq!(c.lr_at(3, 14), 1.0);
        assert!((c.lr_at(9, 14) - 0.5).abs() < 1e-12);
        assert!(c.lr_at(14, 14).abs() < 1e-12);
        assert_eq!(OptimConfig::default().lr_at(100, 10), 1e-6);
    }

    #[test]
    fn verl_warmup_starts_at_zero() {
        // The released verl: min(1, k / max(1, n)); with no warm-up the
        // first step has lr 0 (the paper's run), ours starts at full lr.
        let verl = OptimConfig {
            warmup_style: WarmupStyle::Verl,
            ..OptimConfig::default()
        };
        assert_eq!((verl.lr_at(0, 10), verl.lr_at(1, 10)), (0.0, 1e-6));
        assert_eq!(OptimConfig::default().lr_at(0, 10), 1e-6);
        let four = OptimConfig {
            lr: 1.0,
            warmup_steps: 4,
            ..verl
        };
        let got: Vec<f64> = (0..6).map(|k| four.lr_at(k, 10)).collect();
        assert_eq!(got, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]);
    }

    #[test]
    fn the_gradient_norm_does_not_depend_on_parameter_order() {
        // Squared gradients 4 and seven times 2^-52: added to 4 one by one
        // each rounds away, added together first they do not. With a hash
        // map the order (and the norm's last bit) changed between
        // accumulators.
        let tiny = 2f32.powi(-27);
        let vals = [1.0f32, tiny, tiny, tiny, tiny, tiny, tiny, tiny];
        let params: Vec<(String, Var)> = vals
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let t = Tensor::new(&[v], &Device::Cpu).unwrap();
                (format!("p{i}"), Var::from_tensor(&t).unwrap())
            })
            .collect();
        let loss = |ps: &[(String, Var)]| {
            let mut l = ps[0].1.as_tensor().sqr().unwrap().sum_all().unwrap();
            for (_, p) in &ps[1..] {
                l = (l + p.as_tensor().sqr().unwrap().sum_all().unwrap()).unwrap();
            }
            l
        };
        let mut norms = vec![];
        for rotation in 0..params.len() {
            let mut ps = params.clone();
            ps.rotate_left(rotation);
            let mut acc = GradAccumulator::default();
            acc.backward(&loss(&ps), &ps).unwrap();
            norms.push(acc.norm().unwrap().to_bits());
        }
        assert!(norms.windows(2).all(|w| w[0] == w[1]), "{norms:?}");
    }

    #[test]
    fn adamw_matches_hand_computation() {
        // One scalar parameter x, loss = x^2 at x = 3: grad 6.
        let x = Var::from_tensor(&Tensor::new(&[3.0f32], &Device::Cpu).unwrap()).unwrap();
        let params = vec![("x".to_string(), x.clone())];
        let cfg = OptimConfig {
            lr: 0.1,
            weight_decay: 0.01,
            max_grad_norm: 0.0,
            ..OptimConfig::default()
        };
        let mut opt = AdamW::new(cfg);
        let mut acc = GradAccumulator::default();
        acc.backward(&x.as_tensor().sqr().unwrap().sum_all().unwrap(), &params)
            .unwrap();
        let s = opt.step(&params, &acc, 10).unwrap();
        assert!((s.grad_norm - 6.0).abs() < 1e-6);
        // m = 0.6, v = 0.036; m̂ = 6, v̂ = 36 → update 6/(6+1e-8) ≈ 1.
        let want = 3.0 * (1.0 - 0.1 * 0.01) - 0.1 * (6.0 / (6.0 + 1e-8));
        let got = x.as_tensor().to_vec1::<f32>().unwrap()[0] as f64;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        // Clipping scales the gradient before the moments.
        let y = Var::from_tensor(&Tensor::new(&[3.0f32], &Device::Cpu).unwrap()).unwrap();
        let params = vec![("y".to_string(), y.clone())];
        let mut opt = AdamW::new(OptimConfig {
            max_grad_norm: 1.0,
            ..OptimConfig::default()
        });
        let mut acc = GradAccumulator::default();
        acc.backward(&y.as_tensor().sqr().unwrap().sum_all().unwrap(), &params)
            .unwrap();
        opt.step(&params, &acc, 10).unwrap();
        let m = opt.state_tensors()["m.y"].to_vec1::<f32>().unwrap()[0];
        assert!((m as f64 - 0.1 * 6.0 / (6.0 + 1e-6)).abs() < 1e-6);
    }

    /// A step skipped for a non-finite gradient moves the schedule on but
    /// not Adam's bias correction: the next update is a fresh optimiser's
    /// first, as in torch, whose per-parameter step a skipped
    /// `optimizer.step()` leaves as it was.
    #[test]
    fn a_skipped_step_leaves_the_bias_correction_as_it_was() {
        let run = |skip_first: bool| {
            let x = Var::from_tensor(&Tensor::new(&[3.0f32], &Device::Cpu).unwrap()).unwrap();
            let params = vec![("x".to_string(), x.clone())];
            let mut opt = AdamW::new(OptimConfig {
                lr: 0.1,
                max_grad_norm: 0.0,
                ..OptimConfig::default()
            });
            if skip_first {
                let mut acc = GradAccumulator::default();
                let nan = (x.as_tensor() * f64::NAN).unwrap().sum_all().unwrap();
                acc.backward(&nan, &params).unwrap();
                assert!(!opt.step(&params, &acc, 10).unwrap().applied);
            }
            let mut acc = GradAccumulator::default();
            acc.backward(&x.as_tensor().sqr().unwrap().sum_all().unwrap(), &params)
                .unwrap();
            assert!(opt.step(&params, &acc, 10).unwrap().applied);
            (
                x.as_tensor().to_vec1::<f32>().unwrap()[0],
                opt.step,
                opt.applied,
            )
        };
        let (fresh, ..) = run(false);
        let (after_skip, steps, applied) = run(true);
        assert_eq!((steps, applied), (2, 1));
        assert_eq!(after_skip.to_bits(), fresh.to_bits());
    }

    /// A passed step moves the schedule on and nothing else: the next
    /// update reads the learning rate one step further and is, to the
    /// bit, a fresh optimiser's first update at that rate.
    #[test]
    fn a_passed_step_moves_the_schedule_only() {
        let config = OptimConfig {
            lr: 0.1,
            warmup_steps: 4,
            max_grad_norm: 0.0,
            weight_decay: 0.0,
            ..OptimConfig::default()
        };
        let x = Var::from_tensor(&Tensor::new(&[3.0f32], &Device::Cpu).unwrap()).unwrap();
        let params = vec![("x".to_string(), x.clone())];
        let mut opt = AdamW::new(config.clone());
        opt.pass_step();
        opt.pass_step();
        assert_eq!((opt.step, opt.applied), (2, 0));
        assert!(opt.state_tensors().is_empty());
        let mut acc = GradAccumulator::default();
        acc.backward(&x.as_tensor().sqr().unwrap().sum_all().unwrap(), &params)
            .unwrap();
        let s = opt.step(&params, &acc, 10).unwrap();
        assert_eq!(s.lr, config.lr_at(2, 10));
        assert_eq!((opt.step, opt.applied), (3, 1));
        // Adam's first update moves by about the learning rate.
        let moved = 3.0 - x.as_tensor().to_vec1::<f32>().unwrap()[0] as f64;
        assert!((moved - s.lr).abs() < 1e-6, "{moved} vs {}", s.lr);
    }

    /// GRPO's `verl` warm-up reads the schedule at the rollout step: every
    /// update of the first rollout step has lr 0 (the released verl's
    /// scheduler steps once per actor update), the next step's full lr.
    #[test]
    fn the_verl_schedule_is_read_at_the_position_given() {
        let x = Var::from_tensor(&Tensor::new(&[3.0f32], &Device::Cpu).unwrap()).unwrap();
        let params = vec![("x".to_string(), x.clone())];
        let mut opt = AdamW::new(OptimConfig {
            warmup_style: WarmupStyle::Verl,
            ..OptimConfig::default()
        });
        let mut lrs = Vec::new();
        for rollout_step in 0..2 {
            for _ in 0..4 {
                let mut acc = GradAccumulator::default();
                acc.backward(&x.as_tensor().sqr().unwrap().sum_all().unwrap(), &params)
                    .unwrap();
                lrs.push(
                    opt.step_scheduled_at(&params, &acc, (rollout_step, 10))
                        .unwrap()
                        .lr,
                );
            }
        }
        assert_eq!(lrs, [0.0, 0.0, 0.0, 0.0, 1e-6, 1e-6, 1e-6, 1e-6]);
        assert_eq!((opt.step, opt.applied), (8, 8));
    }

    /// Runs `steps` AdamW steps on loss = sum(w · c) for a parameter starting
    /// at `init` in `dtype`; returns the parameter and the optimiser.
    fn descend(init: &[f32], dtype: DType, steps: usize, lr: f64) -> (Var, AdamW) {
        let dev = Device::Cpu;
        let w =
            Var::from_tensor(&Tensor::new(init, &dev).unwrap().to_dtype(dtype).unwrap()).unwrap();
        let c = Tensor::new(&[1.0f32, -0.5, 0.25], &dev)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let params = vec![("w".to_string(), w.clone())];
        let mut opt = AdamW::new(OptimConfig {
            lr,
            ..OptimConfig::default()
        });
        for _ in 0..steps {
            let mut acc = GradAccumulator::default();
            let loss = (w.as_tensor() * &c).unwrap().sum_all().unwrap();
            acc.backward(&loss, &params).unwrap();
            assert!(opt.step(&params, &acc, steps).unwrap().applied);
        }
        (w, opt)
    }

    #[test]
    fn bf16_parameters_follow_an_f32_master() {
        // bf16-representable start values near typical weight magnitudes.
        let init = [0.01953125f32, -0.0390625, 0.5];
        let (w32, _) = descend(&init, DType::F32, 200, 1e-6);
        let (w16, opt) = descend(&init, DType::BF16, 200, 1e-6);
        let master = opt.master("w").expect("bf16 parameter has a master");
        assert_eq!(master.dtype(), DType::F32);
        // The master follows exactly the trajectory of an f32 parameter…
        let want = w32.as_tensor().to_vec1::<f32>().unwrap();
        let got = master.to_vec1::<f32>().unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-7, "master {got:?} vs f32 run {want:?}");
        }
        // …and the bf16 parameter is its rounding, so 200 steps of 1e-6
        // (2e-4 in all, more than one bf16 ulp near 0.02) are not lost.
        let rounded = master
            .to_dtype(DType::BF16)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let held = w16
            .as_tensor()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(held, rounded);
        assert_ne!(held[0], init[0], "the bf16 weight never moved");
        // f32 parameters need no master.
        let (_, opt32) = descend(&init, DType::F32, 1, 1e-6);
        assert!(opt32.master("w").is_none());
    }

    #[test]
    fn optimiser_state_keeps_no_graph() {
        // A master, moment or parameter that tracked its ops would keep
        // every earlier update alive through its graph: memory that grows
        // with each step (it did, for bf16 masters, until 2026-12-04).
        for dtype in [DType::BF16, DType::F16, DType::F32] {
            let (w, opt) = descend(&[0.02f32, 0.1, -0.3], dtype, 3, 1e-3);
            for (name, t) in opt.state_tensors() {
                assert!(!t.track_op(), "{dtype:?}: {name} keeps a graph");
            }
            assert!(w.as_tensor().is_variable());
        }
    }

    #[test]
    fn masters_survive_a_state_round_trip() {
        let (_, opt) = descend(&[0.02f32, 0.1, -0.3], DType::BF16, 3, 1e-3);
        let saved = opt.state_tensors();
        assert!(
            saved.contains_key("master.w")
                && saved.contains_key("m.w")
                && saved.contains_key("v.w")
        );
        let mut restored = AdamW::new(opt.config.clone());
        restored.load_state(saved, opt.step, opt.applied);
        assert_eq!(restored.step, 3);
        assert_eq!(
            restored.master("w").unwrap().to_vec1::<f32>().unwrap(),
            opt.master("w").unwrap().to_vec1::<f32>().unwrap()
        );
    }
}
