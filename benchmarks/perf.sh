#!/usr/bin/env bash
# Issue 15's performance harness: every side-by-side ratio in one run, into one dated Markdown file.
#   make bench            (or: bash benchmarks/perf.sh [OUT.md])
# Needs the project's venv (make setup) and the demo's round-0 artifacts (make demo): the tiny SFT
# model and its unlabeled prompts are what the training-step benchmarks train. The competitors
# (TRL + datasets, mathruler) go into .bench/ with pip --target: benchmark-only, never a dependency.
# Run it on an otherwise idle machine; the ratios are measured side by side within each benchmark.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
python="${MMUPT_PYTHON:-$here/.venv/bin/python}"
out="${1:-benchmarks/results/perf-$(date +%Y-%m-%d).md}"
model="${MMUPT_BENCH_MODEL:-runs/demo/round-0/sft/model}"
samples="${MMUPT_BENCH_SAMPLES:-runs/demo/round-0/ingest}"
extras="$here/.bench/packages"
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$HOME/.cache/mmupt/torch_extensions}"
export HF_HUB_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true TOKENIZERS_PARALLELISM=false

if [[ ! -d "$model" || ! -d "$samples" ]]; then
  echo "perf.sh: $model or $samples not found: run \`make demo\` first (or set MMUPT_BENCH_MODEL/MMUPT_BENCH_SAMPLES)" >&2
  exit 2
fi
if [[ ! -f "$extras/.installed" ]]; then
  # --no-deps: everything else they need is already in the project's venv.
  "$python" -m pip install --quiet --target "$extras" --no-deps \
    trl==1.16.0 datasets==5.2.0 "dill<0.4.2" xxhash "multiprocess<0.70.20" mathruler pylatexenc
  touch "$extras/.installed"
fi
export PYTHONPATH="$here:$extras${PYTHONPATH:+:$PYTHONPATH}"

mkdir -p "$(dirname "$out")"
{
  echo "# Performance harness run ($(date '+%Y-%m-%d %H:%M %Z'), commit $(git rev-parse --short HEAD))"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo);" \
    "$("$python" -c 'import platform; from importlib.metadata import version; print("Python", platform.python_version() + ",", ", ".join(p + " " + version(p) for p in ("torch", "transformers", "deepspeed", "ray")))')"
} >"$out"

section() {  # section TITLE COMMAND...: run one benchmark, its command and output into the report
  local title="$1"; shift
  printf '\n## %s\n\n    %s\n\n' "$title" "$*" >>"$out"
  echo ">> $title" >&2
  "$@" 2>/dev/null | tee -a "$out"
}

section "Self-reward throughput (item 1)" env OMP_NUM_THREADS=1 "$python" benchmarks/vote_bench.py --steps 4 --repeats 3
section "Scoring throughput (item 1)" "$python" benchmarks/scoring_bench.py --n 5000 --workers 2
for n in 1 4 8 16; do
  section "Rollouts at n = $n (item 3)" "$python" benchmarks/engine_bench.py --n "$n" --prompts 8 --tokens 32 --repeats 3
done
section "GRPO step vs TRL (item 2)" "$python" benchmarks/trl_step.py --model "$model" --samples "$samples" --steps 5
section "Old log-probs recomputed vs from the rollout (item 2)" "$python" benchmarks/logprob_reuse.py --model "$model" --samples "$samples" --steps 6
section "Step time and memory as the batch doubles (item 5)" "$python" benchmarks/step_scaling.py --samples "$samples" --model "$model" --steps 4
echo "perf.sh: wrote $out" >&2
