#!/usr/bin/env bash
# Signal latency and throughput on an NVIDIA GPU (onnxruntime-gpu), for docs/benchmarks.md.
# Run from the repository root on a machine with a GPU, after `make models` (or with models/dist copied):
#   bash tests/bench/gpu_signals.sh
# It installs onnxruntime-gpu into a separate venv so the CPU project venv is untouched, measures
# 50/512-token latency at batch 1 and throughput at batch 16, and writes docs/bench/gpu.json
# (the card's name included); `make bench` then merges it into docs/signals.md and docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${GPU_VENV:-.gpu-venv}
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q onnxruntime-gpu tokenizers numpy pyyaml grpcio protobuf prometheus-client
"$VENV/bin/pip" install -q --no-deps -e .
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee /tmp/gpu-name.txt
mkdir -p docs/bench
"$VENV/bin/python" tests/bench/bench_signals.py --device cuda --no-doc --json docs/bench/gpu.json
echo "wrote docs/bench/gpu.json"
