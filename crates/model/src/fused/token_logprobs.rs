//! `log softmax(logits)[target]` per row as one op: the log-probability of
//! each given token, differentiable in the logits.
//!
//! The composed chain (max shift, `exp`, sum, `log`, subtract, gather)
//! materialises the full `[rows, vocab]` log-softmax and records five
//! passes over it for the backward pass, whose gather step scatters into a
//! zeroed tensor. Fused, the forward pass keeps nothing but its `[rows]`
//! result, and the backward pass writes `∂x = g · (onehot(t) − softmax(x))`
//! in one pass per row. Rows whose gradient is 0, such as padding, are left
//! at zero without the `exp` pass, unless their softmax is not a number (a
//! NaN logit, or a maximum of ±inf): there the composed chain's `0 · NaN`
//! gives NaN, and so does this op, so a diverged model is not hidden.

use std::sync::Arc;

use candle_core::{Layout, Shape, Tensor};
use rayon::prelude::*;

use super::{backward2, last_dim, max, op1, sum, Kernel, Real};

/// The log-probability of `targets[r]` under `softmax(logits[r])` for each
/// row `r` of `logits` (`[rows, vocab]`, f32 or f64 on the CPU); returns
/// `[rows]`.
pub(crate) fn token_logprobs(logits: &Tensor, targets: Vec<u32>) -> candle_core::Result<Tensor> {
    op1(
        &logits.contiguous()?,
        Forward {
            targets: targets.into(),
        },
    )
}

const NAME: &str = "token-logprobs";

#[derive(Debug, Clone)]
struct Forward {
    targets: Arc<[u32]>,
}

/// `(logits, ∂out) ↦ ∂logits`.
#[derive(Debug, Clone)]
struct Backward {
    targets: Arc<[u32]>,
}

/// Checks the logits against the targets; returns the vocabulary size.
fn check(name: &str, l: &Layout, targets: &[u32]) -> candle_core::Result<usize> {
    let vocab = last_dim(name, l)?;
    let rows = l.shape().elem_count() / vocab;
    if rows != targets.len() {
        candle_core::bail!(
            "{name}: {} targets for {rows} rows of logits",
            targets.len()
        );
    }
    if let Some((r, t)) = targets
        .iter()
        .enumerate()
        .find(|(_, &t)| t as usize >= vocab)
    {
        candle_core::bail!("{name}: target {t} of row {r} is outside the vocabulary of {vocab}");
    }
    Ok(vocab)
}

/// `exp(x − max(x))` into `e`; returns `max(x)` and the sum of `e`, rounded
/// as the composed chain's max shift, `exp` and `sum_keepdim` round.
fn shifted_exp<T: Real>(x: &[T], e: &mut [T]) -> (T, T) {
    let top = max(x);
    for (e, &x) in e.iter_mut().zip(x) {
        *e = (x - top).exp();
    }
    (top, sum(e))
}

/// Whether `softmax(x)` is NaN: `x` holds a NaN, or its maximum is not
/// finite (`+inf − +inf`, or every entry `-inf`).
fn softmax_is_nan<T: Real>(x: &[T]) -> bool {
    x.iter().any(|v| v.is_nan()) || !max(x).is_finite()
}

impl Kernel for Forward {
    const NAME: &'static str = NAME;

    fn run<T: Real>(&self, xs: &[&[T]], ls: &[&Layout]) -> candle_core::Result<(Vec<T>, Shape)> {
        let vocab = check(NAME, ls[0], &self.targets)?;
        let mut out = vec![T::zero(); self.targets.len()];
        out.par_iter_mut()
            .zip(xs[0].par_chunks(vocab).zip(self.targets.par_iter()))
            .for_each_init(
                || vec![T::zero(); vocab],
                |e, (out, (x, &t))| {
                    let (top, total) = shifted_exp(x, e);
                    *out = (x[t as usize] - top) - total.ln();
                },
            );
        Ok((out, Shape::from(self.targets.len())))
    }

    fn grads(
        &self,
        args: &[&Tensor],
        _: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Vec<Option<Tensor>>> {
        let op = Backward {
            targets: self.targets.clone(),
        };
        Ok(vec![Some(backward2(args[0], grad, op)?)])
    }
}

impl Kernel for Backward {
    const NAME: &'static str = "token-logprobs-backward";

    fn run<T: Real>(&self, xs: &[&[T]], ls: &[&Layout]) -> candle_core::Result<(Vec<T>, Shape)> {
        let vocab = check(Self::NAME, ls[0], &self.targets)?;
        let (x, g) = (xs[0], xs[1]);
        if g.len() != self.targets.len() {
            candle_core::bail!(
                "{}: {} gradients for {} rows",
                Self::NAME,
                g.len(),
                self.targets.len()
            );
        }
        let mut dx = vec![T::zero(); x.len()];
        dx.par_chunks_mut(vocab)
            .zip(
                x.par_chunks(vocab)
                    .zip(g.par_iter().zip(self.targets.par_iter())),
            )
            .for_each(|(dx, (x, (&g, &t)))| {
                if g == T::zero() {
                    if softmax_is_nan(x) {
                        dx.fill(T::nan());
                    }
                    return;
                }
                let (_, total) = shifted_exp(x, dx);
                let scale = -g / total;
                for d in dx.iter_mut() {
                    *d *= scale;
                }
                dx[t as usize] += g;
            });
        Ok((dx, ls[0].shape().clone()))
    }
}
