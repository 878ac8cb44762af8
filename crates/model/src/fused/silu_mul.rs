//! The SwiGLU gate `silu(a) ⊙ b` as one op, differentiable in both inputs.
//!
//! Composed, the chain keeps `silu(a)` and records the silu and the
//! product; its backward pass recomputes the sigmoid in five more passes.
//! Fused: `∂a = ∂y ⊙ b ⊙ (σ(a)(1 − silu(a)) + silu(a))`, `∂b = ∂y ⊙ silu(a)`.

use candle_core::{Layout, Shape, Tensor};
use rayon::prelude::*;

use super::{both_grads, same_shape, Kernel, Real};

/// `silu(a) * b`, element-wise; `a` and `b` of one shape, both f32 or f64
/// on the CPU.
pub(crate) fn silu_mul(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    super::op2(&a.contiguous()?, &b.contiguous()?, Forward)
}

/// Rows of this many elements are one parallel task.
const CHUNK: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Forward;

/// `(a, b, ∂y) ↦ [∂a; ∂b]`, stacked flat.
#[derive(Debug, Clone, Copy)]
struct Backward;

/// `silu(a)`, rounded as candle's unary silu rounds.
fn silu<T: Real>(a: T) -> T {
    a / (T::one() + (-a).exp())
}

impl Kernel for Forward {
    const NAME: &'static str = "silu-mul";

    fn run<T: Real>(&self, xs: &[&[T]], ls: &[&Layout]) -> candle_core::Result<(Vec<T>, Shape)> {
        same_shape(Self::NAME, ls[0], ls[1])?;
        let mut y = vec![T::zero(); xs[0].len()];
        y.par_chunks_mut(CHUNK)
            .zip(xs[0].par_chunks(CHUNK).zip(xs[1].par_chunks(CHUNK)))
            .for_each(|(y, (a, b))| {
                for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
                    *y = silu(a) * b;
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
        both_grads(args[0], args[1], grad, Backward)
    }
}

impl Kernel for Backward {
    const NAME: &'static str = "silu-mul-backward";

    fn run<T: Real>(&self, xs: &[&[T]], _: &[&Layout]) -> candle_core::Result<(Vec<T>, Shape)> {
        let (a, b, g) = (xs[0], xs[1], xs[2]);
        if a.len() != g.len() || b.len() != g.len() {
            candle_core::bail!(
                "{}: inputs of {} and {} for {} gradients",
                Self::NAME,
                a.len(),
                b.len(),
                g.len()
            );
        }
        let mut out = vec![T::zero(); 2 * g.len()];
        let (da, db) = out.split_at_mut(g.len());
        da.par_chunks_mut(CHUNK)
            .zip(db.par_chunks_mut(CHUNK))
            .zip(
                a.par_chunks(CHUNK)
                    .zip(b.par_chunks(CHUNK))
                    .zip(g.par_chunks(CHUNK)),
            )
            .for_each(|((da, db), ((a, b), g))| {
                for i in 0..g.len() {
                    let e = T::one() + (-a[i]).exp();
                    let (sig, s) = (T::one() / e, a[i] / e);
                    da[i] = g[i] * b[i] * (sig * (T::one() - s) + s);
                    db[i] = g[i] * s;
                }
            });
        let len = out.len();
        Ok((out, Shape::from(len)))
    }
}
