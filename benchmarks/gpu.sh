#!/usr/bin/env bash
# The GPU check of issue 15: bf16 DeepSpeed ZeRO-2 update step (tokens/s, MFU) and a vLLM rollout.
# Usage on a CUDA machine, from the repository root, with the project's venv set up for CUDA
# (make setup TORCH_SPEC="torch==2.13.0" with the CUDA index; pip install vllm for the rollout):
#   bash benchmarks/gpu.sh [--vllm-model DIR] [--hidden 2048 --layers 16 ...]
# Prints a Markdown block to paste into benchmarks/REPORT.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${MMUPT_PYTHON:-$here/.venv/bin/python}"
gpus="$("$python" -c 'import torch; print(torch.cuda.device_count())')"
if [[ "$gpus" == "0" ]]; then echo "gpu.sh: no CUDA device visible" >&2; exit 2; fi
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$HOME/.cache/mmupt/torch_extensions}"
# one process per GPU, as the training job's workers would be
exec "$(dirname "$python")/deepspeed" --num_gpus "$gpus" "$here/benchmarks/gpu_bench.py" "$@"
