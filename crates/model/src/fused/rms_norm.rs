//! RMSNorm `y = x / sqrt(mean(x²) + eps) · w` as one op, differentiable in
//! `x` and `w`.
//!
//! The composed chain records seven ops (square, sum, scale, shift, sqrt,
//! divide, multiply) and their broadcasts. Fused, the backward pass is
//! `∂w = Σ_rows ∂y ⊙ x / r` and
//! `∂x = (∂y ⊙ w − x · ⟨∂y ⊙ w, x⟩ / (n r²)) / r` with `r` the row's RMS.
//! `∂w` is summed over rows in order, so it is deterministic.

use candle_core::{Layout, Shape, Tensor};
use rayon::prelude::*;

use super::{both_grads, last_dim, op2, sum, Kernel, Real};

/// RMSNorm over the last dimension of `x` with weight `w` (`[n]`), both
/// f32 or both f64 on the CPU.
pub(crate) fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    op2(&x.contiguous()?, &w.contiguous()?, Forward { eps })
}

const NAME: &str = "rms-norm";

#[derive(Debug, Clone, Copy)]
struct Forward {
    eps: f64,
}

/// `(x, w, ∂y) ↦ [∂x; ∂w]`, stacked flat.
#[derive(Debug, Clone, Copy)]
struct Backward {
    eps: f64,
}

/// `mean(x²) + eps` of a row, rounded as `sqr`, `mean_keepdim` and the
/// scalar add round; `scratch` holds the squares.
fn mean_square<T: Real>(x: &[T], eps: f64, scratch: &mut [T]) -> T {
    for (s, &x) in scratch.iter_mut().zip(x) {
        *s = x * x;
    }
    let inv_n = T::from_f64(1.0 / x.len() as f64);
    (sum(scratch) * inv_n + T::zero()) * T::one() + T::from_f64(eps)
}

fn check(ls: &[&Layout]) -> candle_core::Result<usize> {
    let n = last_dim(NAME, ls[0])?;
    if ls[1].dims() != [n] {
        candle_core::bail!("{NAME}: weight {:?} for rows of {n}", ls[1].dims());
    }
    Ok(n)
}

impl Kernel for Forward {
    const NAME: &'static str = NAME;

    fn run<T: Real>(&self, xs: &[&[T]], ls: &[&Layout]) -> candle_core::Result<(Vec<T>, Shape)> {
        let n = check(ls)?;
        let (x, w) = (xs[0], xs[1]);
        let mut y = vec![T::zero(); x.len()];
        y.par_chunks_mut(n).zip(x.par_chunks(n)).for_each(|(y, x)| {
            let r = mean_square(x, self.eps, y).sqrt();
            for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
                *y = (x / r) * w;
            }
        });
        Ok((y, ls[0].shape().clone()))
    }

    fn grads(
        &self,
        args: &[&Tensor],
        _: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Vec<Option<Tensor>>> {
        both_grads(args[0], args[1], grad, Backward { eps: self.eps })
    }
}

impl Kernel for Backward {
    const NAME: &'static str = "rms-norm-backward";

    fn run<T: Real>(&self, xs: &[&[T]], _: &[&Layout]) -> candle_core::Result<(Vec<T>, Shape)> {
        let (x, w, g) = (xs[0], xs[1], xs[2]);
        let n = w.len();
        if n == 0 || g.len() != x.len() || g.len() % n != 0 {
            candle_core::bail!("{}: {} gradients for rows of {n}", Self::NAME, g.len());
        }
        let mut out = vec![T::zero(); g.len() + n];
        let (dx, dw) = out.split_at_mut(g.len());
        let mut inv_r = vec![T::zero(); g.len() / n];
        dx.par_chunks_mut(n)
            .zip(x.par_chunks(n).zip(g.par_chunks(n)))
            .zip(inv_r.par_iter_mut())
            .for_each(|((dx, (x, g)), inv_r)| {
                let v = mean_square(x, self.eps, dx);
                let r = v.sqrt();
                *inv_r = T::one() / r;
                let mut dot = T::zero();
                for ((&g, &w), &x) in g.iter().zip(w).zip(x) {
                    dot += g * w * x;
                }
                let c = dot / (T::from_f64(n as f64) * v);
                for (((dx, &g), &w), &x) in dx.iter_mut().zip(g).zip(w).zip(x) {
                    *dx = (g * w - x * c) / r;
                }
            });
        for ((x, g), &inv_r) in x.chunks(n).zip(g.chunks(n)).zip(&inv_r) {
            for ((dw, &x), &g) in dw.iter_mut().zip(x).zip(g) {
                *dw += g * x * inv_r;
            }
        }
        let len = out.len();
        Ok((out, Shape::from(len)))
    }
}
