//! Hand-worked checks of the pricing forms: wave quantization, the smooth roofline, attention
//! at the 16-bit peak and the pipelined-ring collective.

use bottleneck_core::catalog::find_hardware;
use bottleneck_core::pricing::{price_collective, smooth_roofline, wave_utilization};
use bottleneck_core::{price_op, Collective, CollectiveKind, Op, OpClass, Precision, Scope};

fn close(got: f64, want: f64) {
    assert!((got / want - 1.0).abs() < 1e-12, "got {got}, want {want}");
}

#[test]
fn wave_utilization_by_hand() {
    let h100 = find_hardware("h100-sxm").unwrap(); // 132 SMs, tile 128
    let g = |m: f64, n: f64| Op::gemm("g", Precision::Fp8, [m, n, 4096.0], 1.0, 1.0, 1.0);
    // 128 tokens × 4096 columns: 1 × 32 tiles on 132 SMs.
    close(wave_utilization(&g(128.0, 4096.0), h100), 32.0 / 132.0);
    // 129 tokens need a second tile row: 2 × 32 = 64 tiles.
    close(wave_utilization(&g(129.0, 4096.0), h100), 64.0 / 132.0);
    // 2048² = 256 tiles: two waves of 132, the second 124/132 full.
    close(wave_utilization(&g(2048.0, 2048.0), h100), 256.0 / 264.0);
    // A grouped GEMM: 8 experts of one 16-token tile row × 4 column tiles = 32 tiles.
    let mut moe = g(16.0, 512.0);
    moe.flops *= 8.0;
    close(wave_utilization(&moe, h100), 32.0 / 132.0);
    // Not a GEMM: no quantization.
    let norm = Op::memory("n", OpClass::Norm, Precision::Bf16, 1.0, 1e6, 1.0);
    close(wave_utilization(&norm, h100), 1.0);
}

#[test]
fn smooth_roofline_limits() {
    // Equal terms: 2^(1/p) times either.
    close(smooth_roofline(1.0, 1.0, 1.39), 2f64.powf(1.0 / 1.39));
    // p = 1 is the sum; a large p tends to the max; a zero term leaves the other.
    close(smooth_roofline(3.0, 1.0, 1.0), 4.0);
    assert!((smooth_roofline(3.0, 1.0, 200.0) - 3.0).abs() < 1e-9);
    close(smooth_roofline(0.0, 2.5, 1.39), 2.5);
    // Never below the larger term, never above the sum.
    for (c, m) in [(1.0, 0.1), (0.3, 0.9), (5.0, 5.0)] {
        let t = smooth_roofline(c, m, 1.39);
        assert!(t >= f64::max(c, m) && t <= c + m);
    }
}

#[test]
fn gemm_time_by_hand() {
    let hw = find_hardware("h100-sxm").unwrap();
    let e = &hw.efficiency;
    let (m, n, k) = (128.0, 4096.0, 4096.0);
    let op = Op::gemm("o_proj", Precision::Fp8, [m, n, k], 1.0, 1.0, 1.0);
    let compute = 2.0 * m * n * k / (e.gemm_peak_fraction * 1978.9e12 * (32.0 / 132.0));
    let memory = (n * k + m * k + m * n) / (e.memory_bandwidth_fraction * 3350e9);
    let want = smooth_roofline(compute, memory, e.roofline_exponent) + e.gemm_fixed_us * 1e-6;
    close(price_op(&op, hw).time_s, want);
}

#[test]
fn fp8_attention_is_priced_at_the_16_bit_peak() {
    let hw = find_hardware("h100-sxm").unwrap();
    let mut att = Op::memory("attn", OpClass::Attention, Precision::Fp8, 1e12, 0.0, 1.0);
    let fp8 = price_op(&att, hw).compute_s;
    att.precision = Precision::Bf16;
    let bf16 = price_op(&att, hw).compute_s;
    close(fp8, bf16);
    close(
        bf16,
        1e12 / (989.4e12 * hw.efficiency.attention_peak_fraction),
    );
}

#[test]
fn all_reduce_is_a_pipelined_ring() {
    let hw = find_hardware("h100-sxm").unwrap();
    let e = &hw.efficiency;
    let bytes = 32.0 * 1024.0 * 1024.0;
    let c = price_collective(
        &Collective {
            kind: CollectiveKind::AllReduce,
            group: 4,
            scope: Scope::IntraNode,
            bytes,
        },
        hw,
    );
    let wire = 1.5 * bytes / (450e9 * e.intra_node_bus_fraction);
    let want = 6.0 * e.intra_node_step_us * 1e-6
        + wire
        + 2.0 * (e.intra_node_chunk_us * 1e-6 * wire).sqrt();
    close(c.time_s, want);
}
