//! The attention probabilities `softmax(scale · scores + mask)` as one op.
//!
//! Composed from candle ops this chain is five passes over the largest
//! activations of a small model (`[batch, heads, query, key]`): the scale,
//! the mask, the max shift, the exponential and the normalisation; its
//! recorded backward pass is about ten more. Fused, it is one pass each way
//! and keeps only the probabilities: `∂s = scale · p ⊙ (∂p − ⟨∂p, p⟩)` per
//! row. The forward pass rounds like the composed chain and like candle-nn's
//! `softmax_last_dim`; masked entries (`-inf`) skip the exponential, whose
//! value there is exactly 0.

use candle_core::{Layout, Shape, Tensor};
use rayon::prelude::*;

use super::{backward2, last_dim, max, op1, op2, same_shape, sum, Kernel, Real};

/// `softmax(scale · scores + mask)` over the last dimension, differentiable
/// with respect to `scores`.
///
/// * `scores`: `[batch, ..., query, key]`, f32 or f64 on the CPU;
/// * `mask`: additive biases (0 or `-inf`) of shape
///   `[mask_batch, 1, ..., 1, query', key]` (rank 3 or more, every axis
///   between the first and the last two of size 1), where `mask_batch` is 1
///   or `batch` and each batch element's score rows cycle through the mask's
///   `query'` rows (grouped heads stacked along the query axis). Any other
///   shape is an error, not a guess. It gets no gradient.
pub(crate) fn attention_softmax(
    scores: &Tensor,
    mask: Option<&Tensor>,
    scale: f64,
) -> candle_core::Result<Tensor> {
    let scores = scores.contiguous()?;
    let op = Forward { scale };
    match mask {
        None => op1(&scores, op),
        Some(m) => op2(&scores, &m.to_dtype(scores.dtype())?.contiguous()?, op),
    }
}

const NAME: &str = "attention-softmax";

/// The forward op; `scale` multiplies the scores before the mask is added.
#[derive(Debug, Clone, Copy)]
struct Forward {
    scale: f64,
}

/// The backward op: `(p, ∂p) ↦ ∂scores`.
#[derive(Debug, Clone, Copy)]
struct Backward {
    scale: f64,
}

/// How a row of the scores finds its mask row.
#[derive(Debug, Clone, Copy)]
struct MaskRows {
    /// Rows of the scores per batch element.
    rows_per_batch: usize,
    /// Rows of the mask per batch element (its query length).
    query: usize,
    /// Whether all batch elements share the mask's one batch element.
    shared: bool,
}

impl MaskRows {
    /// Checks the mask's shape against the scores' and says how rows map.
    fn new(scores: &Layout, mask: &Layout) -> candle_core::Result<Self> {
        let (sd, md) = (scores.dims(), mask.dims());
        let key = last_dim(NAME, scores)?;
        let bad =
            || candle_core::Error::Msg(format!("{NAME}: mask {md:?} does not fit scores {sd:?}"));
        // `[mask_batch, 1, ..., 1, query, key]`: a mask without its batch
        // axis, or with heads of its own, would otherwise be indexed as one.
        let r = md.len();
        if sd.len() < 2 || r < 3 || md[r - 1] != key || md[1..r - 2].iter().any(|&d| d != 1) {
            return Err(bad());
        }
        let (batch, mask_batch, query) = (sd[0], md[0], md[r - 2]);
        if mask_batch == 0 || (mask_batch != 1 && mask_batch != batch) {
            return Err(bad());
        }
        let rows_per_batch = scores.shape().elem_count() / key / batch.max(1);
        if query == 0 || !rows_per_batch.is_multiple_of(query) {
            return Err(bad());
        }
        Ok(MaskRows {
            rows_per_batch,
            query,
            shared: mask_batch == 1,
        })
    }

    /// The mask row of scores row `r`.
    fn of(&self, r: usize) -> usize {
        let b = if self.shared {
            0
        } else {
            r / self.rows_per_batch
        };
        b * self.query + r % self.query
    }
}

impl Forward {
    /// One row: `d = softmax(s · scale + m)`, rounded as `affine`, the
    /// broadcast add, the max shift, `exp`, the sum and the division round.
    fn row<T: Real>(&self, s: &[T], m: Option<&[T]>, d: &mut [T]) {
        let (mul, zero) = (T::from_f64(self.scale), T::zero());
        match m {
            Some(m) => {
                for ((d, &s), &m) in d.iter_mut().zip(s).zip(m) {
                    *d = (s * mul + zero) + m;
                }
            }
            None => {
                for (d, &s) in d.iter_mut().zip(s) {
                    *d = s * mul + zero;
                }
            }
        }
        let top = max(d);
        for v in d.iter_mut() {
            *v = if *v == T::neg_infinity() {
                zero
            } else {
                (*v - top).exp()
            };
        }
        let total = sum(d);
        for v in d.iter_mut() {
            *v /= total;
        }
    }
}

impl Kernel for Forward {
    const NAME: &'static str = NAME;

    fn run<T: Real>(&self, xs: &[&[T]], ls: &[&Layout]) -> candle_core::Result<(Vec<T>, Shape)> {
        let key = last_dim(NAME, ls[0])?;
        let mask = match ls.get(1) {
            Some(ml) => Some((xs[1], MaskRows::new(ls[0], ml)?)),
            None => None,
        };
        let mut out = vec![T::zero(); xs[0].len()];
        out.par_chunks_mut(key)
            .zip(xs[0].par_chunks(key))
            .enumerate()
            .for_each(|(r, (d, s))| {
                let m = mask.map(|(m, rows)| &m[rows.of(r) * key..][..key]);
                self.row(s, m, d);
            });
        Ok((out, ls[0].shape().clone()))
    }

    fn grads(
        &self,
        _: &[&Tensor],
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Vec<Option<Tensor>>> {
        let dx = backward2(res, grad, Backward { scale: self.scale })?;
        Ok(vec![Some(dx), None])
    }
}

impl Kernel for Backward {
    const NAME: &'static str = "attention-softmax-backward";

    fn run<T: Real>(&self, xs: &[&[T]], ls: &[&Layout]) -> candle_core::Result<(Vec<T>, Shape)> {
        same_shape(Self::NAME, ls[0], ls[1])?;
        let key = last_dim(Self::NAME, ls[0])?;
        let mul = T::from_f64(self.scale);
        let mut dx = vec![T::zero(); xs[0].len()];
        dx.par_chunks_mut(key)
            .zip(xs[0].par_chunks(key).zip(xs[1].par_chunks(key)))
            .for_each(|(dx, (p, g))| {
                let dot = p.iter().zip(g).fold(T::zero(), |acc, (&p, &g)| acc + p * g);
                for ((dx, &p), &g) in dx.iter_mut().zip(p).zip(g) {
                    *dx = mul * p * (g - dot);
                }
            });
        Ok((dx, ls[0].shape().clone()))
    }
}
