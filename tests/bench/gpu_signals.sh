#!/usr/bin/env bash
# Signals on an NVIDIA GPU (onnxruntime-gpu, CUDA provider, the fp16 graph) for docs/benchmarks.md:
# 50/512-token latency at batch 1, batch-16 throughput (bench_signals.py), and the held-out figures of the GPU
# path next to the CPU path's, request by request (gpu_check.py). Run from the repository root:
#   python tests/bench/gpu_check.py prepare        # first, where the data packages are (writes .gpu/heldout.*)
#   bash tests/bench/gpu_signals.sh                # then, on the GPU machine
# By default it installs onnxruntime-gpu (CUDA 13 builds, >= 1.27) into .gpu-venv so the CPU venv is untouched.
# With ORT_SITE=DIR it uses an onnxruntime-gpu already unpacked in DIR and the host python3 (which then needs
# numpy, tokenizers, pyyaml), for machines that cannot reach PyPI. MODEL_DIR (default models/dist) needs
# encoder.fp16.onnx, tokenizer.json and labels.json. Writes $OUT_DIR (default docs/bench)/gpu.json and
# gpu_check.json; `make bench` merges them into docs/signals.md and docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL_DIR=${MODEL_DIR:-models/dist}
OUT_DIR=${OUT_DIR:-docs/bench}
REF=${REF:-.gpu/heldout}
if [ -n "${ORT_SITE:-}" ]; then
    PY=python3
    export PYTHONPATH="$ORT_SITE${PYTHONPATH:+:$PYTHONPATH}"
else
    VENV=${GPU_VENV:-.gpu-venv}
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "onnxruntime-gpu[cuda,cudnn]>=1.27" tokenizers numpy pyyaml
    PY="$VENV/bin/python"
fi
# onnxruntime-gpu dlopens cuBLAS/cuDNN/cuFFT/cuRAND: point the loader at NVIDIA's pip wheels where they are
LIBS=$("$PY" - <<'EOF'
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
print(":".join(sorted({os.path.dirname(f) for r in roots
                       for f in glob.glob(os.path.join(r, "nvidia", "**", "lib*.so*"), recursive=True)})))
EOF
)
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PY" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
mkdir -p "$OUT_DIR"
"$PY" tests/bench/bench_signals.py --device cuda --model-dir "$MODEL_DIR" --no-doc --json "$OUT_DIR/gpu.json"
if [ -e "$REF.json" ]; then
    "$PY" tests/bench/gpu_check.py compare --ref "$REF" --model-dir "$MODEL_DIR" --json "$OUT_DIR/gpu_check.json"
else
    echo "no $REF.json: run 'python tests/bench/gpu_check.py prepare' where the data packages are" >&2
fi
