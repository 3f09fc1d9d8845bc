//! Kernel classes from kernel names and trace categories, for NVIDIA (CUDA, cuBLAS, cuDNN,
//! CUTLASS, NCCL, FlashAttention, Triton) and AMD (ROCm, rocBLAS/Tensile, hipBLASLt, CK, MIOpen,
//! RCCL) libraries; and HTA's three-way split for `--compat hta`.

use serde::Serialize;

/// What a GPU operation does, judged from its name and category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelClass {
    /// Matrix multiplication (cuBLAS, cuBLASLt, CUTLASS, rocBLAS/Tensile, hipBLASLt, Triton mm).
    Gemm,
    /// Convolution (cuDNN, MIOpen, implicit GEMM).
    Convolution,
    /// Fused attention (FlashAttention, cuDNN/CK fMHA, paged attention, SDPA).
    Attention,
    /// Element-wise and data-movement kernels run by the SMs (copies, casts, activations).
    Elementwise,
    /// Layer, RMS, batch and group normalisation; softmax.
    Normalization,
    /// Reductions (sum, mean, max, arg-max, Triton reduction kernels).
    Reduction,
    /// Collective or point-to-point communication (NCCL, RCCL, custom all-reduce).
    Communication,
    /// Memory copies (`gpu_memcpy`, `Memcpy …`, DMA).
    Memcpy,
    /// Memory sets (`gpu_memset`, `Memset …`).
    Memset,
    /// Synchronisation kernels (HTA's "other": names containing `Sync`).
    Sync,
    /// Any other kernel: counted as computation.
    Other,
}

impl KernelClass {
    /// The temporal-breakdown bucket of this class.
    pub fn bucket(self) -> Bucket {
        match self {
            Self::Communication => Bucket::Communication,
            Self::Memcpy | Self::Memset => Bucket::Memory,
            Self::Sync => Bucket::Other,
            _ => Bucket::Computation,
        }
    }

    /// Whether the class is usually limited by memory bandwidth rather than arithmetic.
    pub fn memory_bound(self) -> bool {
        matches!(
            self,
            Self::Elementwise | Self::Normalization | Self::Reduction | Self::Memcpy | Self::Memset
        )
    }
}

/// The four temporal-breakdown buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Compute kernels.
    Computation,
    /// Communication kernels.
    Communication,
    /// Memcpy and memset.
    Memory,
    /// Synchronisation kernels.
    Other,
}

/// Collective type of a communication kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Collective {
    /// All-reduce.
    AllReduce,
    /// All-gather.
    AllGather,
    /// Reduce-scatter.
    ReduceScatter,
    /// Broadcast.
    Broadcast,
    /// Reduce.
    Reduce,
    /// All-to-all.
    AllToAll,
    /// Send, receive or send/receive.
    SendRecv,
    /// Barrier.
    Barrier,
    /// The name does not say (e.g. `ncclDevKernel_Generic` without arguments).
    Unknown,
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    // ASCII case-insensitive substring search; needles are lowercase ASCII.
    // Candidates are found by their first byte in either case (`memchr2`), then compared.
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    let Some((&first, rest)) = n.split_first() else {
        return true;
    };
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), h).any(|p| {
        h.get(p + 1..p + n.len()).is_some_and(|w| {
            w.iter()
                .zip(rest)
                .all(|(a, b)| a.to_ascii_lowercase() == *b)
        })
    })
}

/// The part of a kernel name before its argument list, lowercased, with `void ` and
/// namespaces kept (they carry library names).
fn head(name: &str) -> String {
    let name = name.replace("(anonymous namespace)", "");
    let cut = name.find('(').unwrap_or(name.len());
    name[..cut].to_ascii_lowercase()
}

/// Whether `name` is a communication kernel by name alone.
pub fn is_comm_name(name: &str) -> bool {
    let h = head(name);
    (h.starts_with("nccl") && h.contains("kernel"))
        || h.starts_with("rccl")
        || h.contains("nccldevkernel")
        || h.contains("ncclkernel")
        || h.contains("cross_device_reduce")
        || h.contains("all_reduce")
        || h.contains("allreduce")
        || h.contains("all_gather")
        || h.contains("allgather")
        || h.contains("reduce_scatter")
        || h.contains("alltoall")
        || h.contains("all_to_all")
        || h.contains("nvshmem")
}

/// Classifies one GPU operation. `cat` is the event category (`kernel`, `gpu_memcpy`, ...).
pub fn classify(name: &str, cat: &str) -> KernelClass {
    match cat {
        "gpu_memcpy" | "Memcpy" => return KernelClass::Memcpy,
        "gpu_memset" | "Memset" => return KernelClass::Memset,
        _ => {}
    }
    if name.starts_with("Memcpy") || name.starts_with("dma") {
        return KernelClass::Memcpy;
    }
    if name.starts_with("Memset") {
        return KernelClass::Memset;
    }
    if is_comm_name(name) {
        return KernelClass::Communication;
    }
    if name.contains("Sync") && !name.contains('(') && !name.contains('<') {
        return KernelClass::Sync;
    }
    let h = head(name);
    let has = |s: &str| h.contains(s);
    if has("flash")
        || has("fmha")
        || has("attention")
        || has("attn")
        || has("sdpa")
        || has("mha_")
        || has("_mha")
        || has("paged_attention")
        || has("unified_attention")
    {
        return KernelClass::Attention;
    }
    if has("conv") || has("implicit_gemm") || has("winograd") || has("miopen") && has("conv") {
        return KernelClass::Convolution;
    }
    if has("gemm")
        || has("gemv")
        || has("cutlass")
        || has("cublas")
        || has("xmma")
        || has("nvjet")
        || has("cijk_")
        || has("hipblaslt")
        || has("wgmma")
        || has("matmul")
        || has("triton_tem_")
        || has("triton_mm")
        || h.starts_with("mm_")
        || has("_mm_")
        || has("bmm")
        || has("splitk")
        || has("s16816")
        || has("h16816")
        || has("s1688")
        || has("h1688")
        || has("tensorop")
    {
        return KernelClass::Gemm;
    }
    if has("norm") || has("softmax") || has("bn_fw") || has("bn_bw") || has("batchnorm") {
        return KernelClass::Normalization;
    }
    if has("reduce")
        || has("reduction")
        || has("triton_red_")
        || has("triton_per_")
        || has("argmax")
        || has("argmin")
        || has("cub::")
        || has("topk")
        || has("scan")
    {
        return KernelClass::Reduction;
    }
    if has("elementwise")
        || has("triton_poi_")
        || has("copy")
        || has("fill")
        || has("cast")
        || has("index")
        || has("gather")
        || has("scatter")
        || has("cat")
        || has("transpose")
        || has("act_and_mul")
        || has("silu")
        || has("gelu")
        || has("relu")
        || has("rotary")
        || has("rope")
        || has("embedding")
        || has("where")
        || has("pointwise")
        || has("tensoropwithscalar")
        || has("subtensorop")
        || has("op_tensor")
        || has("cache")
    {
        return KernelClass::Elementwise;
    }
    KernelClass::Other
}

/// The collective type from a kernel name or a `Collective name` argument.
pub fn collective(name: &str) -> Collective {
    let n = name.to_ascii_lowercase().replace(['_', ' '], "");
    if n.contains("allreduce") {
        Collective::AllReduce
    } else if n.contains("allgather") {
        Collective::AllGather
    } else if n.contains("reducescatter") {
        Collective::ReduceScatter
    } else if n.contains("alltoall") {
        Collective::AllToAll
    } else if n.contains("broadcast") || n.contains("bcast") {
        Collective::Broadcast
    } else if n.contains("sendrecv") || n.contains("send") || n.contains("recv") {
        Collective::SendRecv
    } else if n.contains("barrier") {
        Collective::Barrier
    } else if n.contains("reduce") {
        Collective::Reduce
    } else {
        Collective::Unknown
    }
}

/// HTA's kernel types (`hta.utils.utils.get_kernel_type`, HTA 0.5): communication is
/// `^nccl.*Kernel`, memory is `^(Memcpy|Memset|dma)`, computation is any name not matching
/// `(^nccl.*Kernel)|(.*(Memcpy)|(Memset))|(.*Sync)` anchored at the start, and the rest is
/// "other". Names only: HTA ignores the category.
pub fn classify_hta(name: &str) -> KernelClass {
    let nccl = name.starts_with("nccl") && name.contains("Kernel");
    if nccl {
        return KernelClass::Communication;
    }
    if name.starts_with("Memcpy") || name.starts_with("dma") {
        return KernelClass::Memcpy;
    }
    if name.starts_with("Memset") {
        return KernelClass::Memset;
    }
    if name.contains("Memcpy") || name.contains("Sync") {
        return KernelClass::Sync;
    }
    KernelClass::Other
}

/// Whether a CUDA/HIP runtime call blocks the host until the device (or a stream or event)
/// finishes.
pub fn is_sync_call(name: &str) -> bool {
    matches!(
        name,
        "cudaDeviceSynchronize"
            | "cudaStreamSynchronize"
            | "cudaEventSynchronize"
            | "cudaMemcpy"
            | "cudaStreamWaitEvent"
            | "cuStreamSynchronize"
            | "cuCtxSynchronize"
            | "cuEventSynchronize"
            | "hipDeviceSynchronize"
            | "hipStreamSynchronize"
            | "hipEventSynchronize"
            | "hipMemcpy"
            | "hipMemcpyWithStream"
    )
}

/// Whether a CPU operator is the data loader handing out a batch.
pub fn is_dataloader(name: &str) -> bool {
    contains_ci(name, "dataloader")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_ci_matches_a_lowercased_search() {
        for hay in [
            "",
            "d",
            "DataLoader",
            "enumerate(DataLoader)#_MultiProcessingDataLoaderIter.__next__",
            "ddataloadeR",
            "xdataloade",
            "DDDDATALOADER",
            "dataloader",
            "no loader here",
        ] {
            let want = hay.to_ascii_lowercase().contains("dataloader");
            assert_eq!(contains_ci(hay, "dataloader"), want, "{hay}");
            assert_eq!(is_dataloader(hay), want, "{hay}");
        }
    }

    #[test]
    fn nvidia_and_amd_names() {
        let cases = [
            ("ampere_sgemm_128x64_tn", KernelClass::Gemm),
            ("nvjet_tst_64x8_64x16_4x1_v_bz_TNT", KernelClass::Gemm),
            ("Cijk_Ailk_Bljk_BBS_BH_MT128x128x32", KernelClass::Gemm),
            ("void cutlass::Kernel<cutlass_80_tensorop_s16816gemm>(Params)", KernelClass::Gemm),
            ("void flash_fwd_kernel<Flash_fwd_kernel_traits>(Params)", KernelClass::Attention),
            ("ncclDevKernel_AllGather_RING_LL(ncclDevKernelArgsStorage<4096ul>)", KernelClass::Communication),
            ("ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long, ncclWork*)", KernelClass::Communication),
            ("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>(int)", KernelClass::Elementwise),
            ("void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float>(int)", KernelClass::Normalization),
            ("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float>>(at::native::ReduceOp<float>)", KernelClass::Reduction),
            ("void cudnn::bn_bw_1C11_kernel_new<float, float, float2, 32, true, 1>(float)", KernelClass::Normalization),
            ("triton_poi_fused_0", KernelClass::Elementwise),
            ("triton_red_fused_sum_1", KernelClass::Reduction),
            ("Memcpy HtoD (Pageable -> Device)", KernelClass::Memcpy),
            ("void implicit_convolve_sgemm<float, float, 128, 5, 5>(int)", KernelClass::Convolution),
        ];
        for (name, want) in cases {
            assert_eq!(classify(name, "kernel"), want, "{name}");
        }
        assert_eq!(classify("anything", "gpu_memset"), KernelClass::Memset);
    }

    #[test]
    fn collectives_from_names_and_args() {
        assert_eq!(
            collective("ncclDevKernel_AllGather_RING_LL"),
            Collective::AllGather
        );
        assert_eq!(collective("_allgather_base"), Collective::AllGather);
        assert_eq!(
            collective("reduce_scatter_tensor_coalesced"),
            Collective::ReduceScatter
        );
        assert_eq!(collective("allreduce"), Collective::AllReduce);
        assert_eq!(collective("ncclDevKernel_SendRecv"), Collective::SendRecv);
        assert_eq!(collective("ncclDevKernel_Generic"), Collective::Unknown);
    }

    #[test]
    fn hta_classes() {
        assert_eq!(
            classify_hta("ncclKernel_AllReduce_RING_LL_Sum_float"),
            KernelClass::Communication
        );
        assert_eq!(classify_hta("Memset (Device)"), KernelClass::Memset);
        assert_eq!(classify_hta("Stream Sync"), KernelClass::Sync);
        assert_eq!(classify_hta("rcclGenericKernel"), KernelClass::Other);
        assert_eq!(
            classify_hta("void foo_kernel<float>(float)").bucket(),
            Bucket::Computation
        );
    }
}
