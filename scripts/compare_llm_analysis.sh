#!/usr/bin/env bash
# Side-by-side process wall time of `bottleneck infer` and llm-analysis 0.2.2 (PyPI) on the same
# case. Not used by any test. llm-analysis lives only in a throwaway virtualenv:
#   python3 -m venv /work/venv-llma && /work/venv-llma/bin/pip install llm-analysis==0.2.2
#   apt-get install -y hyperfine
#   cargo build --release -p bottleneck-cli
# Usage: scripts/compare_llm_analysis.sh [path/to/bottleneck] [venv]
#
# llm-analysis 0.2.2 has no DeepSeek-V3 (no MLA/MoE configs), so the shared case is
# Llama-2-70B on A100-SXM-80GB, TP4, batch 16, 2000 prompt + 256 output tokens, fp16/bf16.
# The issue's own case (deepseek-v3 --ops) is timed for bottleneck alone.
set -euo pipefail
BIN=${1:-target/release/bottleneck}
VENV=${2:-/work/venv-llma}
LLMA="$VENV/bin/python -m llm_analysis.analysis infer --model_name upstage_Llama-2-70b-instruct-v2 \
  --gpu_name a100-sxm-80gb --dtype_name w16a16e16 --tp_size 4 --batch_size_per_gpu 16 \
  --seq_len 2000 --num_tokens_to_generate 256 --log_level ERROR --output_dir /tmp/llma-out"
mkdir -p /tmp/llma-out
hyperfine -N --warmup 20 --runs 300 \
  "$BIN infer --model deepseek-v3 --ops" \
  "$BIN infer --model deepseek-v3 --ops --json" \
  "$BIN infer --model llama-2-70b --gpu a100-sxm-80gb --tp 4 --batch 16 --prompt 2000 --output 256"
hyperfine --warmup 2 --runs 10 "$LLMA"
