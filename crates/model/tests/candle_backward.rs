//! Checks of the vendored candle-core's patched backward pass
//! (`vendor/README.md`): a node's first gradient is stored as it is, later
//! ones are added (or subtracted). candle's own tests are not vendored, so
//! these cover every accumulation path the model uses, against central
//! finite differences in f64:
//!
//! - fan-in: one tensor feeding several ops, and the same tensor on both
//!   sides of an op (`x * x`, `x + x`);
//! - the subtracting rules (`a - b`, `a / b` on their right-hand side),
//!   first and later gradients;
//! - views whose gradient arrives non-contiguous (transpose, broadcast,
//!   narrow), then meets other gradients;
//! - the unary, reduction, matmul and index-select rules of a transformer.

use toolgym_model::candle_core::{Device, Tensor, Var, D};
use toolgym_model::Rng;

/// The scalar function under test, built from `a` ([3, 4]), `b` ([3, 4])
/// and `w` ([4, 2]).
fn f(a: &Tensor, b: &Tensor, w: &Tensor) -> Tensor {
    let ids = Tensor::new(&[2u32, 0, 2], a.device()).unwrap();
    // Fan-in of `a`: it feeds a product with itself, a sum with itself, a
    // subtraction's right-hand side and a matmul.
    let sq = (a * a).unwrap();
    let twice = (a + a).unwrap();
    let diff = (b - a).unwrap();
    let ratio = (b / (a.sqr().unwrap() + 1.0).unwrap()).unwrap();
    // A non-contiguous gradient: through a transpose and a broadcast.
    let at = a.t().unwrap().contiguous().unwrap();
    let row = a.sum_keepdim(0).unwrap(); // [1, 4]
    let bcast = row.broadcast_as(a.shape()).unwrap();
    let mixed = ((sq + twice).unwrap() * diff.silu().unwrap()).unwrap();
    let mixed = (mixed + ratio.exp().unwrap()).unwrap();
    let mixed = (mixed - bcast.tanh().unwrap()).unwrap();
    let proj = mixed.matmul(w).unwrap(); // [3, 2]
    let proj = (proj + at.narrow(0, 1, 2).unwrap().t().unwrap().sqr().unwrap()).unwrap();
    let picked = proj.index_select(&ids, 0).unwrap(); // row 2 twice
    let soft = candle_softmax(&picked);
    (soft * smooth_abs(&picked)).unwrap().sum_all().unwrap()
}

fn candle_softmax(x: &Tensor) -> Tensor {
    let max = x.max_keepdim(D::Minus1).unwrap().detach();
    let e = x.broadcast_sub(&max).unwrap().exp().unwrap();
    e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap()
}

/// `sqrt(x² + 1)`: smooth, and through the `sqrt` and `sqr` rules.
fn smooth_abs(x: &Tensor) -> Tensor {
    (x.sqr().unwrap() + 1.0).unwrap().sqrt().unwrap()
}

/// `n` values uniform in [-1, 1).
fn values(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.next_f64() * 2.0 - 1.0).collect()
}

#[test]
fn patched_backward_matches_finite_differences() {
    let dev = Device::Cpu;
    let shapes = [(3, 4), (3, 4), (4, 2)];
    let data: Vec<Vec<f64>> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(r, c))| values(11 + i as u64, r * c))
        .collect();
    let vars: Vec<Var> = data
        .iter()
        .zip(shapes)
        .map(|(d, s)| Var::from_tensor(&Tensor::from_vec(d.clone(), s, &dev).unwrap()).unwrap())
        .collect();
    let loss = f(
        vars[0].as_tensor(),
        vars[1].as_tensor(),
        vars[2].as_tensor(),
    );
    let grads = loss.backward().unwrap();
    let eval = |k: usize, j: usize, h: f64| -> f64 {
        let ts: Vec<Tensor> = data
            .iter()
            .zip(shapes)
            .enumerate()
            .map(|(i, (d, s))| {
                let mut d = d.clone();
                if i == k {
                    d[j] += h;
                }
                Tensor::from_vec(d, s, &dev).unwrap()
            })
            .collect();
        f(&ts[0], &ts[1], &ts[2]).to_scalar::<f64>().unwrap()
    };
    for (k, var) in vars.iter().enumerate() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for input {k}"));
        assert!(g.is_contiguous(), "input {k}: gradient not contiguous");
        assert_eq!(g.dims(), var.as_tensor().dims());
        let g: Vec<f64> = g.flatten_all().unwrap().to_vec1().unwrap();
        for (j, &gj) in g.iter().enumerate() {
            let h = 1e-5;
            let fd = (eval(k, j, h) - eval(k, j, -h)) / (2.0 * h);
            assert!(
                (gj - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
                "input {k}, element {j}: backward {gj}, finite difference {fd}"
            );
        }
    }
}

/// The first gradient stored as it is must not alias state that a later
/// accumulation changes: `y = x + x` hands the same gradient tensor to both
/// sides, and `z = y * y + y` reaches `y` twice.
#[test]
fn shared_first_gradients_add_up() {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::new(&[0.5f64, -1.5, 2.0], &dev).unwrap()).unwrap();
    let y = (x.as_tensor() + x.as_tensor()).unwrap();
    let z = ((&y * &y).unwrap() + &y).unwrap().sum_all().unwrap();
    let g: Vec<f64> = z
        .backward()
        .unwrap()
        .get(x.as_tensor())
        .unwrap()
        .to_vec1()
        .unwrap();
    // z = Σ 4x² + 2x, dz/dx = 8x + 2.
    assert_eq!(g, vec![6.0, -10.0, 18.0]);
    // The input's own data is untouched by the backward pass.
    assert_eq!(
        x.as_tensor().to_vec1::<f64>().unwrap(),
        vec![0.5, -1.5, 2.0]
    );
}
