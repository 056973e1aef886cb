//! Unary functions and broadcasting binary arithmetic.

use super::{par_chunks, PAR_MIN};
use crate::error::{Error, Result};
use crate::graph::{Graph, Var};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Unary {
    Exp,
    Log,
    Sqrt,
    Gelu,
    Softplus,
    Relu,
    Tanh,
    Sigmoid,
    Scale(f32),
    AddScalar(f32),
}

impl Unary {
    fn forward(self, x: f32) -> f32 {
        match self {
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Gelu => gelu(x),
            Unary::Softplus => softplus(x),
            Unary::Relu => x.max(0.0),
            Unary::Tanh => x.tanh(),
            Unary::Sigmoid => sigmoid(x),
            Unary::Scale(s) => x * s,
            Unary::AddScalar(s) => x + s,
        }
    }

    /// Derivative given the input `x` and output `y`.
    fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            Unary::Exp => y,
            Unary::Log => 1.0 / x,
            Unary::Sqrt => 0.5 / y,
            Unary::Gelu => gelu_grad(x),
            Unary::Softplus => sigmoid(x),
            Unary::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Unary::Tanh => 1.0 - y * y,
            Unary::Sigmoid => y * (1.0 - y),
            Unary::Scale(s) => s,
            Unary::AddScalar(_) => 1.0,
        }
    }
}

/// The error function, accurate to f32 rounding.
pub fn erf(x: f32) -> f32 {
    libm::erff(x)
}

/// GELU in its exact form `x * Phi(x)` with the normal CDF `Phi`.
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Derivative of [`gelu`]: `Phi(x) + x * phi(x)`.
pub fn gelu_grad(x: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    let pdf = (-0.5 * x * x).exp() * 0.398_942_3;
    cdf + x * pdf
}

fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl Graph<'_> {
    fn unary(&mut self, x: Var, op: Unary) -> Var {
        let n = self.value(x).len();
        let mut out = self.alloc(n);
        {
            let xs = self.value(x);
            par_chunks(&mut out, |s, c| {
                let n = c.len();
                for (o, &v) in c.iter_mut().zip(&xs[s..s + n]) {
                    *o = op.forward(v);
                }
            });
        }
        let shape = self.shape(x).to_vec();
        self.custom_op(&[x], shape, out, move |inp, sink| {
            let (xs, ys, g) = (inp.value(x), inp.output(), inp.grad_output());
            if let Some(dx) = sink.grad(x) {
                par_chunks(dx, |s, c| {
                    for (i, d) in c.iter_mut().enumerate() {
                        let j = s + i;
                        *d += g[j] * op.derivative(xs[j], ys[j]);
                    }
                });
            }
        })
        .expect("unary output has the input's shape")
    }

    /// Elementwise `e^x`.
    pub fn exp(&mut self, x: Var) -> Var {
        self.unary(x, Unary::Exp)
    }
    /// Elementwise natural logarithm.
    pub fn log(&mut self, x: Var) -> Var {
        self.unary(x, Unary::Log)
    }
    /// Elementwise square root.
    pub fn sqrt(&mut self, x: Var) -> Var {
        self.unary(x, Unary::Sqrt)
    }
    /// Elementwise GELU, exact erf form.
    pub fn gelu(&mut self, x: Var) -> Var {
        self.unary(x, Unary::Gelu)
    }
    /// Elementwise `ln(1 + e^x)`, computed without overflow.
    pub fn softplus(&mut self, x: Var) -> Var {
        self.unary(x, Unary::Softplus)
    }
    /// Elementwise `max(x, 0)`.
    pub fn relu(&mut self, x: Var) -> Var {
        self.unary(x, Unary::Relu)
    }
    /// Elementwise hyperbolic tangent.
    pub fn tanh(&mut self, x: Var) -> Var {
        self.unary(x, Unary::Tanh)
    }
    /// Elementwise logistic sigmoid.
    pub fn sigmoid(&mut self, x: Var) -> Var {
        self.unary(x, Unary::Sigmoid)
    }
    /// Multiplies every element by `s`.
    pub fn scale(&mut self, x: Var, s: f32) -> Var {
        self.unary(x, Unary::Scale(s))
    }
    /// Adds `s` to every element.
    pub fn add_scalar(&mut self, x: Var, s: f32) -> Var {
        self.unary(x, Unary::AddScalar(s))
    }

    /// Elementwise `a + b` with NumPy broadcasting.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the shapes do not broadcast.
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(a, b, Binary::Add)
    }
    /// Elementwise `a - b` with NumPy broadcasting.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the shapes do not broadcast.
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(a, b, Binary::Sub)
    }
    /// Elementwise `a * b` with NumPy broadcasting.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the shapes do not broadcast.
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(a, b, Binary::Mul)
    }
    /// Elementwise `a / b` with NumPy broadcasting.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the shapes do not broadcast.
    pub fn div(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(a, b, Binary::Div)
    }

    fn binary(&mut self, a: Var, b: Var, op: Binary) -> Result<Var> {
        let (sa, sb) = (self.shape(a).to_vec(), self.shape(b).to_vec());
        let plan = Broadcast::new(op.name(), &sa, &sb)?;
        let mut out = self.alloc(plan.len());
        {
            let (xa, xb) = (self.value(a), self.value(b));
            let plan = &plan;
            match plan.mode {
                Mode::Same => par_chunks(&mut out, |s, c| {
                    let n = c.len();
                    for ((o, &x), &y) in c.iter_mut().zip(&xa[s..s + n]).zip(&xb[s..s + n]) {
                        *o = op.apply(x, y);
                    }
                }),
                Mode::RepeatB if plan.b_len > 0 => super::par_rows(&mut out, plan.b_len, |r, row| {
                    let w = row.len();
                    for ((o, &x), &y) in row.iter_mut().zip(&xa[r * w..(r + 1) * w]).zip(xb) {
                        *o = op.apply(x, y);
                    }
                }),
                _ => par_chunks(&mut out, |s, c| {
                    for (i, o) in c.iter_mut().enumerate() {
                        let (ia, ib) = plan.indices(s + i);
                        *o = op.apply(xa[ia], xb[ib]);
                    }
                }),
            }
        }
        let shape = plan.out_shape.clone();
        self.custom_op(&[a, b], shape, out, move |inp, sink| {
            let (xa, xb, g) = (inp.value(a), inp.value(b), inp.grad_output());
            let n = g.len();
            // The gradient of an operand is summed over the output elements
            // that read each of its elements.
            for (var, is_a) in [(a, true), (b, false)] {
                let Some(d) = sink.grad(var) else { continue };
                let local = |i: usize| {
                    let (ia, ib) = plan.indices(i);
                    let (x, y) = (xa[ia], xb[ib]);
                    (if is_a { ia } else { ib }, g[i] * op.partial(x, y, is_a))
                };
                let same = d.len() == n;
                if same && matches!((op, plan.mode), (Binary::Add, Mode::Same) | (Binary::Sub, Mode::Same)) {
                    // The common residual and bias cases: the gradient is +-g.
                    let sign = if is_a || matches!(op, Binary::Add) { 1.0 } else { -1.0 };
                    par_chunks(d, |s, c| {
                        let m = c.len();
                        c.iter_mut().zip(&g[s..s + m]).for_each(|(v, &x)| *v += sign * x);
                    });
                } else if same {
                    par_chunks(d, |s, c| {
                        for (k, v) in c.iter_mut().enumerate() {
                            *v += local(s + k).1;
                        }
                    });
                } else if n >= PAR_MIN && plan.inner_broadcast(is_a) {
                    // Operand repeated along leading axes (a bias): rows of the
                    // output are reduced per thread, then summed in order.
                    let w = d.len();
                    let rows = n / w;
                    let parts: Vec<Vec<f32>> = (0..rows)
                        .into_par_iter()
                        .fold_chunks(rows.div_ceil(64).max(1), || vec![0.0f32; w], |mut acc, r| {
                            for (j, v) in acc.iter_mut().enumerate() {
                                *v += local(r * w + j).1;
                            }
                            acc
                        })
                        .collect();
                    for p in parts {
                        d.iter_mut().zip(p).for_each(|(x, y)| *x += y);
                    }
                } else {
                    for i in 0..n {
                        let (j, v) = local(i);
                        d[j] += v;
                    }
                }
            }
        })
    }
}

#[derive(Clone, Copy, Debug)]
enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

impl Binary {
    fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
        }
    }
    fn apply(self, x: f32, y: f32) -> f32 {
        match self {
            Binary::Add => x + y,
            Binary::Sub => x - y,
            Binary::Mul => x * y,
            Binary::Div => x / y,
        }
    }
    /// Partial derivative with respect to the left (`wrt_left`) or right operand.
    fn partial(self, x: f32, y: f32, wrt_left: bool) -> f32 {
        match (self, wrt_left) {
            (Binary::Add, _) => 1.0,
            (Binary::Sub, true) => 1.0,
            (Binary::Sub, false) => -1.0,
            (Binary::Mul, true) => y,
            (Binary::Mul, false) => x,
            (Binary::Div, true) => 1.0 / y,
            (Binary::Div, false) => -x / (y * y),
        }
    }
}

/// Index mapping from an output element to the elements of both operands.
struct Broadcast {
    out_shape: Vec<usize>,
    out_strides: Vec<usize>,
    a_strides: Vec<usize>,
    b_strides: Vec<usize>,
    a_len: usize,
    b_len: usize,
    mode: Mode,
}

#[derive(Clone, Copy)]
enum Mode {
    Same,
    /// `b` is the output's trailing block repeated.
    RepeatB,
    /// `a` is the output's trailing block repeated.
    RepeatA,
    General,
}

impl Broadcast {
    fn new(op: &'static str, a: &[usize], b: &[usize]) -> Result<Self> {
        let rank = a.len().max(b.len());
        let pad = |s: &[usize]| {
            let mut v = vec![1; rank - s.len()];
            v.extend_from_slice(s);
            v
        };
        let (pa, pb) = (pad(a), pad(b));
        let mut out_shape = Vec::with_capacity(rank);
        for (&x, &y) in pa.iter().zip(&pb) {
            if x != y && x != 1 && y != 1 {
                return Err(Error::ShapeMismatch { op, lhs: a.to_vec(), rhs: b.to_vec() });
            }
            out_shape.push(if x == 1 { y } else { x });
        }
        let strides = |s: &[usize]| {
            let mut st = vec![0; rank];
            let mut acc = 1;
            for i in (0..rank).rev() {
                st[i] = if s[i] == 1 && out_shape[i] != 1 { 0 } else { acc };
                acc *= s[i];
            }
            st
        };
        let mut out_strides = vec![0; rank];
        let mut acc = 1;
        for i in (0..rank).rev() {
            out_strides[i] = acc;
            acc *= out_shape[i];
        }
        let mut plan = Broadcast {
            a_strides: strides(&pa),
            b_strides: strides(&pb),
            out_strides,
            a_len: pa.iter().product(),
            b_len: pb.iter().product(),
            out_shape,
            mode: Mode::General,
        };
        let n = plan.len();
        plan.mode = if plan.a_len == n && plan.b_len == n {
            Mode::Same
        } else if plan.a_len == n && plan.inner_broadcast(false) {
            Mode::RepeatB
        } else if plan.b_len == n && plan.inner_broadcast(true) {
            Mode::RepeatA
        } else {
            Mode::General
        };
        Ok(plan)
    }

    fn len(&self) -> usize {
        self.out_shape.iter().product()
    }

    #[inline]
    fn indices(&self, i: usize) -> (usize, usize) {
        match self.mode {
            Mode::Same => return (i, i),
            Mode::RepeatB => return (i, i % self.b_len),
            Mode::RepeatA => return (i % self.a_len, i),
            Mode::General => {}
        }
        let (mut ia, mut ib, mut rest) = (0, 0, i);
        for d in 0..self.out_shape.len() {
            let q = rest / self.out_strides[d];
            rest %= self.out_strides[d];
            ia += q * self.a_strides[d];
            ib += q * self.b_strides[d];
        }
        (ia, ib)
    }

    /// True when the operand is the output's trailing block repeated, as a
    /// bias row is: its element for output `i` is `i % len`.
    fn inner_broadcast(&self, is_a: bool) -> bool {
        let st = if is_a { &self.a_strides } else { &self.b_strides };
        let len = if is_a { self.a_len } else { self.b_len };
        let rank = self.out_shape.len();
        let mut acc = 1;
        let mut d = rank;
        while d > 0 && acc < len {
            d -= 1;
            if st[d] != acc && self.out_shape[d] != 1 {
                return false;
            }
            acc *= self.out_shape[d];
        }
        acc == len && st[..d].iter().zip(&self.out_shape[..d]).all(|(&s, &o)| s == 0 || o == 1)
    }
}
