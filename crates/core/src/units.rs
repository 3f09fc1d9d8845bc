//! Numeric precisions and their storage sizes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;

/// A numeric format for weights, activations, KV cache or a GEMM's inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Tf32,
    Bf16,
    Fp16,
    Fp8,
    Int8,
    Int4,
}

impl Precision {
    /// Every precision, widest first.
    pub const ALL: [Precision; 7] = [
        Precision::Fp32,
        Precision::Tf32,
        Precision::Bf16,
        Precision::Fp16,
        Precision::Fp8,
        Precision::Int8,
        Precision::Int4,
    ];

    /// Bytes one element occupies in memory (tf32 is stored as fp32; int4 packs two per byte).
    pub fn bytes(self) -> f64 {
        match self {
            Precision::Fp32 | Precision::Tf32 => 4.0,
            Precision::Bf16 | Precision::Fp16 => 2.0,
            Precision::Fp8 | Precision::Int8 => 1.0,
            Precision::Int4 => 0.5,
        }
    }

    /// The lowercase name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
            Precision::Fp8 => "fp8",
            Precision::Int8 => "int8",
            Precision::Int4 => "int4",
        }
    }

    /// The precision a GEMM runs in when its weights are stored in `self` and activations in
    /// `activations`: fp8 and int8 weights run W8A8 GEMMs; int4 weights are dequantized and run
    /// at the activation precision (W4A16, as AWQ/GPTQ kernels do).
    pub fn gemm_precision(self, activations: Precision) -> Precision {
        match self {
            Precision::Fp8 | Precision::Int8 => self,
            Precision::Int4 => activations,
            other => {
                if other.bytes() > activations.bytes() {
                    other
                } else {
                    activations
                }
            }
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == lower)
            .or(match lower.as_str() {
                "float32" => Some(Precision::Fp32),
                "bfloat16" => Some(Precision::Bf16),
                "float16" | "half" => Some(Precision::Fp16),
                "e4m3" | "float8" => Some(Precision::Fp8),
                _ => None,
            })
            .ok_or_else(|| CoreError::UnknownPrecision(s.to_string()))
    }
}

/// Bytes in a GiB.
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Bytes in a GB (decimal, as bandwidths are quoted).
pub const GB: f64 = 1e9;
/// FLOP/s in a TFLOP/s.
pub const TFLOPS: f64 = 1e12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_rejects_unknown() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        }
        assert_eq!("BF16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert!("fp6".parse::<Precision>().is_err());
    }

    #[test]
    fn gemm_precision_follows_weight_quantization() {
        assert_eq!(
            Precision::Fp8.gemm_precision(Precision::Bf16),
            Precision::Fp8
        );
        assert_eq!(
            Precision::Int4.gemm_precision(Precision::Fp16),
            Precision::Fp16
        );
        assert_eq!(
            Precision::Bf16.gemm_precision(Precision::Bf16),
            Precision::Bf16
        );
    }
}
