//! Forward → backward: the operators of a training step, derived from the forward lowering.
//!
//! Every backward operator is an [`Op`] priced by `core::pricing` like any other; this module
//! only decides which operators a backward pass runs and their shapes:
//!
//! - a forward GEMM `Y = X·W` with shape `[m, n, k]` has an input-gradient GEMM
//!   `dX = dY·Wᵀ` of shape `[m, k, n]` and a weight-gradient GEMM `dW = Xᵀ·dY` of shape
//!   `[k, n, m]`, each with the forward's FLOPs and bytes (they read and write tensors of the
//!   same sizes);
//! - fused attention backward (FlashAttention-2, Dao 2023 §3.2) runs five matrix products to the
//!   forward's two, recomputing the scores: 2.5× the forward FLOPs; it reads Q, K, V, O, dO and
//!   writes dQ, dK, dV: twice the forward's bytes;
//! - pointwise kernels read their input and the output gradient and write the input gradient:
//!   twice the forward bytes; norms also reduce the weight gradient (1.5× bytes);
//! - the embedding backward scatters gradients into the table (the forward's bytes);
//! - every collective has its conjugate: an all-reduce stays an all-reduce, an all-gather
//!   becomes a reduce-scatter and vice versa, all-to-all and send/recv repeat.

use bottleneck_core::ir::{Collective, CollectiveKind, Op, OpClass};
use serde::Serialize;

/// FLOPs of fused attention backward per forward FLOP (FlashAttention-2 §3.2: 5 vs 2 GEMMs).
pub const ATTENTION_BACKWARD_FLOPS: f64 = 2.5;
/// Bytes of fused attention backward per forward byte (Q, K, V, O, dO in; dQ, dK, dV out).
pub const ATTENTION_BACKWARD_BYTES: f64 = 2.0;

/// What an operator of a training step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Forward,
    /// Input-gradient GEMM (`dX = dY·Wᵀ`).
    InputGrad,
    /// Weight-gradient GEMM (`dW = Xᵀ·dY`).
    WeightGrad,
    /// Backward of a non-GEMM kernel or a collective.
    Backward,
}

/// An operator and its role in the step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainOp {
    pub role: Role,
    pub op: Op,
}

/// The conjugate of a forward collective in the backward pass.
pub fn conjugate(kind: CollectiveKind) -> CollectiveKind {
    match kind {
        CollectiveKind::AllGather => CollectiveKind::ReduceScatter,
        CollectiveKind::ReduceScatter => CollectiveKind::AllGather,
        k => k,
    }
}

/// Appends the backward operators of `fwd` (in reverse order, as autograd runs them).
pub fn backward_of(fwd: &[Op], out: &mut Vec<TrainOp>) {
    for op in fwd.iter().rev() {
        match op.class {
            OpClass::Gemm => {
                let [m, n, k] = op.gemm.unwrap_or([0.0; 3]);
                let mut dgrad = op.clone();
                dgrad.gemm = Some([m, k, n]);
                out.push(TrainOp {
                    role: Role::InputGrad,
                    op: dgrad,
                });
                let mut wgrad = op.clone();
                wgrad.gemm = Some([k, n, m]);
                // dY takes the weight's place as the streamed operand; dW is written.
                wgrad.weight_bytes = 0.0;
                out.push(TrainOp {
                    role: Role::WeightGrad,
                    op: wgrad,
                });
            }
            OpClass::Attention => {
                let mut b = op.clone();
                b.flops *= ATTENTION_BACKWARD_FLOPS;
                b.bytes *= ATTENTION_BACKWARD_BYTES;
                out.push(TrainOp {
                    role: Role::Backward,
                    op: b,
                });
            }
            OpClass::Elementwise => {
                let mut b = op.clone();
                b.flops *= 2.0;
                b.bytes *= 2.0;
                out.push(TrainOp {
                    role: Role::Backward,
                    op: b,
                });
            }
            OpClass::Norm => {
                let mut b = op.clone();
                b.flops *= 2.0;
                b.bytes *= 1.5;
                out.push(TrainOp {
                    role: Role::Backward,
                    op: b,
                });
            }
            OpClass::Embedding | OpClass::Optimizer => {
                out.push(TrainOp {
                    role: Role::Backward,
                    op: op.clone(),
                });
            }
            OpClass::Collective => {
                let mut b = op.clone();
                if let Some(c) = &op.collective {
                    b.collective = Some(Collective {
                        kind: conjugate(c.kind),
                        ..*c
                    });
                }
                out.push(TrainOp {
                    role: Role::Backward,
                    op: b,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bottleneck_core::Precision;

    #[test]
    fn gemm_backward_is_two_gemms_with_permuted_shapes() {
        let f = Op::gemm("x", Precision::Bf16, [8.0, 16.0, 32.0], 2.0, 2.0, 3.0);
        let mut out = Vec::new();
        backward_of(std::slice::from_ref(&f), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].role, Role::InputGrad);
        assert_eq!(out[0].op.gemm, Some([8.0, 32.0, 16.0]));
        assert_eq!(out[1].role, Role::WeightGrad);
        assert_eq!(out[1].op.gemm, Some([32.0, 16.0, 8.0]));
        // Backward = 2 × forward FLOPs.
        let b: f64 = out.iter().map(|o| o.op.total_flops()).sum();
        assert_eq!(b, 2.0 * f.total_flops());
    }

    #[test]
    fn collectives_conjugate() {
        assert_eq!(
            conjugate(CollectiveKind::AllGather),
            CollectiveKind::ReduceScatter
        );
        assert_eq!(
            conjugate(CollectiveKind::AllReduce),
            CollectiveKind::AllReduce
        );
    }
}
