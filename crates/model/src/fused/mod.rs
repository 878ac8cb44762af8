//! Fused CPU kernels with their own backward passes, for the element-wise
//! chains that dominate a small model's training step once the matmuls are
//! fast: each replaces a chain of candle ops (and the chain's recorded
//! backward graph) with one pass forward and one backward.
//!
//! Every forward kernel rounds exactly as the composed chain it replaces
//! (same operations in the same order, candle's own reductions), so
//! inference, rollouts and reference log-probs keep their bits. The backward
//! kernels compute the same gradients with fewer roundings.
//!
//! CPU only, in f32 or f64 (the compute dtypes of norms, attention and
//! log-probs): callers keep the composed chain for other devices and dtypes,
//! see [`fits`].

mod attention_softmax;
mod rms_norm;
mod silu_mul;
mod token_logprobs;

pub(crate) use attention_softmax::attention_softmax;
pub(crate) use rms_norm::rms_norm;
pub(crate) use silu_mul::silu_mul;
pub(crate) use token_logprobs::token_logprobs;

use candle_core::backend::BackendStorage;
use candle_core::cpu::kernels::VecOps;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor, WithDType,
};
use num_traits::Float;

/// Whether the fused kernels can run on `t`: a CPU tensor of f32 or f64.
pub(crate) fn fits(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

/// The floats the kernels run in (f32 and f64).
trait Real: WithDType + VecOps + Float {}
impl Real for f32 {}
impl Real for f64 {}

/// One fused kernel over contiguous inputs of one dtype.
trait Kernel {
    /// The op's name, for errors.
    const NAME: &'static str;

    /// Computes the output and its shape from the inputs' data and layouts.
    fn run<T: Real>(&self, xs: &[&[T]], ls: &[&Layout]) -> candle_core::Result<(Vec<T>, Shape)>;

    /// The gradients of the inputs from the result and its gradient
    /// (`None` for an input that takes none). Backward kernels have none.
    fn grads(
        &self,
        _args: &[&Tensor],
        _res: &Tensor,
        _grad: &Tensor,
    ) -> candle_core::Result<Vec<Option<Tensor>>> {
        candle_core::bail!("{}: no backward pass", Self::NAME)
    }
}

/// A [`Kernel`] as a candle custom op.
struct Fused<K>(K);

impl<K: Kernel> CustomOp1 for Fused<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        apply(&self.0, &[(s, l)])
    }

    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(self.0.grads(&[x], res, grad)?.into_iter().next().flatten())
    }
}

impl<K: Kernel> CustomOp2 for Fused<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn cpu_fwd(
        &self,
        a: &CpuStorage,
        al: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        apply(&self.0, &[(a, al), (b, bl)])
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let mut g = self.0.grads(&[a, b], res, grad)?.into_iter();
        Ok((g.next().flatten(), g.next().flatten()))
    }
}

impl<K: Kernel> CustomOp3 for Fused<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn cpu_fwd(
        &self,
        a: &CpuStorage,
        al: &Layout,
        b: &CpuStorage,
        bl: &Layout,
        c: &CpuStorage,
        cl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        apply(&self.0, &[(a, al), (b, bl), (c, cl)])
    }
}

/// Applies `k` to `x`, recording it for the backward pass.
fn op1<K: Kernel + Send + Sync + 'static>(x: &Tensor, k: K) -> candle_core::Result<Tensor> {
    x.apply_op1(Fused(k))
}

/// Applies `k` to `(a, b)`, recording it for the backward pass.
fn op2<K: Kernel + Send + Sync + 'static>(
    a: &Tensor,
    b: &Tensor,
    k: K,
) -> candle_core::Result<Tensor> {
    a.apply_op2(b, Fused(k))
}

/// Applies a backward kernel to `(a, b)` (contiguous copies when needed),
/// outside the graph.
fn backward2<K: Kernel>(a: &Tensor, b: &Tensor, k: K) -> candle_core::Result<Tensor> {
    a.contiguous()?
        .apply_op2_no_bwd(&b.contiguous()?, &Fused(k))
}

/// Applies a backward kernel to `(a, b, c)`, as [`backward2`] does.
fn backward3<K: Kernel>(a: &Tensor, b: &Tensor, c: &Tensor, k: K) -> candle_core::Result<Tensor> {
    a.contiguous()?
        .apply_op3_no_bwd(&b.contiguous()?, &c.contiguous()?, &Fused(k))
}

/// Runs `k` on CPU storages, dispatching on the first one's dtype.
fn apply<K: Kernel>(
    k: &K,
    args: &[(&CpuStorage, &Layout)],
) -> candle_core::Result<(CpuStorage, Shape)> {
    match args[0].0.dtype() {
        DType::F32 => apply_as::<f32, K>(k, args),
        DType::F64 => apply_as::<f64, K>(k, args),
        dt => candle_core::bail!("{}: {dt:?} is not supported (f32 or f64)", K::NAME),
    }
}

fn apply_as<T: Real, K: Kernel>(
    k: &K,
    args: &[(&CpuStorage, &Layout)],
) -> candle_core::Result<(CpuStorage, Shape)> {
    let mut xs = Vec::with_capacity(args.len());
    for (i, (s, l)) in args.iter().enumerate() {
        let data = T::cpu_storage_as_slice(s).map_err(|_| {
            candle_core::Error::Msg(format!("{}: input {i} is not {:?}", K::NAME, T::DTYPE))
        })?;
        match l.contiguous_offsets() {
            Some((a, b)) => xs.push(&data[a..b]),
            None => candle_core::bail!("{}: input {i} is not contiguous", K::NAME),
        }
    }
    let ls: Vec<&Layout> = args.iter().map(|(_, l)| *l).collect();
    let (out, shape) = k.run(&xs, &ls)?;
    Ok((T::to_cpu_storage_owned(out), shape))
}

/// The size of the last dimension, checked non-zero.
fn last_dim(name: &str, l: &Layout) -> candle_core::Result<usize> {
    match l.dims().last() {
        Some(&n) if n > 0 => Ok(n),
        _ => candle_core::bail!("{name}: empty last dimension in {:?}", l.dims()),
    }
}

/// Checks that layouts have the same shape.
fn same_shape(name: &str, a: &Layout, b: &Layout) -> candle_core::Result<()> {
    if a.dims() != b.dims() {
        candle_core::bail!("{name}: shapes {:?} and {:?} differ", a.dims(), b.dims());
    }
    Ok(())
}

/// Sum of a slice with candle's reduction (same order, same rounding as
/// `sum_keepdim` over a contiguous last dimension).
fn sum<T: Real>(xs: &[T]) -> T {
    let mut s = T::zero();
    // SAFETY: `xs` holds `xs.len()` elements and `s` is a valid element.
    unsafe { T::vec_reduce_sum(xs.as_ptr(), &mut s, xs.len()) };
    s
}

/// Maximum of a non-empty slice, as candle's `max_keepdim` finds it.
fn max<T: Real>(xs: &[T]) -> T {
    let mut m = T::neg_infinity();
    // SAFETY: as in `sum`; `xs` is non-empty (checked by `last_dim`).
    unsafe { T::vec_reduce_max(xs.as_ptr(), &mut m, xs.len()) };
    m
}

/// The gradients of both inputs `(a, b)` of a binary op from a backward
/// kernel `k` over `(a, b, ∂y)` that returns them stacked flat.
fn both_grads<K: Kernel>(
    a: &Tensor,
    b: &Tensor,
    grad: &Tensor,
    k: K,
) -> candle_core::Result<Vec<Option<Tensor>>> {
    let packed = backward3(a, b, grad, k)?;
    let g = unpack(&packed, &[a.shape(), b.shape()])?;
    Ok(g.into_iter().map(Some).collect())
}

/// Splits the flat result of a backward kernel with several gradients
/// (stacked in order) into tensors of `shapes`.
fn unpack(packed: &Tensor, shapes: &[&Shape]) -> candle_core::Result<Vec<Tensor>> {
    let mut out = Vec::with_capacity(shapes.len());
    let mut at = 0;
    let flat = packed.flatten_all()?;
    for s in shapes {
        let n = s.elem_count();
        out.push(flat.narrow(0, at, n)?.reshape(*s)?);
        at += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
